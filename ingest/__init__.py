"""Turns files into the index: loaders → cleaner → chunker → embeddings → store.

Nothing here reads `assistant/`: every function takes what it needs as arguments so that
the ingest floor can be driven by the CLI, the app or a test without hidden configuration.
"""
