"""Reads the index and answers: retrieval, cited answers, roadmap drafts, CLI.

Nothing here writes to the index except through `ingest.pipeline`, which the CLI and the
app call for the user; the answering code only reads.
"""
