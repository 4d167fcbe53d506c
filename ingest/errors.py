"""Errors a user can act on, worded in French, always naming the file and the cause.

Every stage raises `IngestError` for a problem with one file; the pipeline catches it,
records it in the batch report and goes on with the next file.
"""

from __future__ import annotations


class IngestError(Exception):
    """A file could not be ingested; `reason` is a short French cause."""

    def __init__(self, path: str, reason: str, code: str = "erreur") -> None:
        self.path = str(path)
        self.reason = reason
        self.code = code
        super().__init__(f"{self.path} : {reason}")

    @property
    def message(self) -> str:
        return f"{self.path} : {self.reason}"


class StoreError(Exception):
    """The index itself cannot be used as asked (model mismatch, lock held, server down)."""
