"""The document registry: which file is indexed, from which content, with what outcome.

It is what makes ingest incremental (a file whose sha256 matches is skipped without
embedding) and crash-safe (a document's status says whether the removal of its previous
version is still owed). It lives beside the store, in SQLite, even in Chroma server mode.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.models import DocMeta

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    doc_id TEXT,
    sha256 TEXT,
    status TEXT NOT NULL,          -- indexed | cleanup | failed
    chunks INTEGER DEFAULT 0,
    pages INTEGER DEFAULT 0,
    error TEXT,
    ingested_at REAL,
    meta TEXT,                     -- JSON of DocMeta
    meta_sha TEXT                  -- hash of the explicit metadata outside the file (manifest, sidecar)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_doc_id ON documents(doc_id) WHERE doc_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
"""


@dataclass
class Record:
    path: str
    doc_id: str | None
    sha256: str | None
    status: str
    chunks: int
    pages: int
    error: str | None
    ingested_at: float | None
    meta: dict[str, Any]
    meta_sha: str | None = None


def _record(row: sqlite3.Row) -> Record:
    return Record(
        path=row["path"],
        doc_id=row["doc_id"],
        sha256=row["sha256"],
        status=row["status"],
        chunks=row["chunks"] or 0,
        pages=row["pages"] or 0,
        error=row["error"],
        ingested_at=row["ingested_at"],
        meta=json.loads(row["meta"]) if row["meta"] else {},
        meta_sha=row["meta_sha"] if "meta_sha" in row.keys() else None,
    )


def connect(store_dir: Path) -> sqlite3.Connection:
    """One SQLite file for the registry and the lexical index, so both change together."""
    store_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(store_dir / "index.sqlite3", timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Registry:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
        if "meta_sha" not in columns:  # an index built before metadata could change alone
            conn.execute("ALTER TABLE documents ADD COLUMN meta_sha TEXT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing writes: a crash inside leaves the previous state."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def get(self, path: str) -> Record | None:
        row = self.conn.execute("SELECT * FROM documents WHERE path = ?", (path,)).fetchone()
        return _record(row) if row else None

    def by_doc_id(self, doc_id: str) -> Record | None:
        row = self.conn.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return _record(row) if row else None

    def by_sha(self, sha256: str) -> Record | None:
        row = self.conn.execute(
            "SELECT * FROM documents WHERE sha256 = ? AND status != 'failed'", (sha256,)
        ).fetchone()
        return _record(row) if row else None

    def all(self, status: str | None = None) -> list[Record]:
        sql, args = "SELECT * FROM documents", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        return [_record(r) for r in self.conn.execute(sql + " ORDER BY path", args)]

    def mark_written(
        self, path: str, meta: DocMeta, sha256: str, chunks: int, pages: int, meta_sha: str | None = None
    ) -> None:
        """New chunks are in the store; the old version's removal is still owed."""
        self.conn.execute(
            "INSERT INTO documents(path, doc_id, sha256, status, chunks, pages, error, ingested_at, meta,"
            " meta_sha) VALUES (?, ?, ?, 'cleanup', ?, ?, NULL, ?, ?, ?)"
            " ON CONFLICT(path) DO UPDATE SET doc_id=excluded.doc_id, sha256=excluded.sha256,"
            " status='cleanup', chunks=excluded.chunks, pages=excluded.pages, error=NULL,"
            " ingested_at=excluded.ingested_at, meta=excluded.meta, meta_sha=excluded.meta_sha",
            (path, meta.doc_id, sha256, chunks, pages, time.time(), json.dumps(meta.__dict__), meta_sha),
        )

    def learned_fabriques(self) -> list[tuple[str, str, int | None, list[str], list[str]]]:
        """(id, title, edition year, names documents gave it, paths of those documents) of the
        fabriques indexed documents belong to."""
        found: dict[str, tuple[str, set[int], set[str], set[str]]] = {}
        for rec in self.all():
            m = rec.meta
            fid = str(m.get("fabrique") or "")
            if not fid or rec.status == "failed":
                continue
            title, years, names, paths = found.setdefault(
                fid, (str(m.get("fabrique_title") or fid), set(), set(), set()))
            paths.add(rec.path)
            if isinstance(m.get("fabrique_year"), int):
                years.add(int(m["fabrique_year"]))
            if m.get("fabrique_named"):
                names.add(str(m["fabrique_named"]))
        return [(fid, title, min(years, default=None), sorted(names - {title}), sorted(paths))
                for fid, (title, years, names, paths) in sorted(found.items())]

    def mark_indexed(self, path: str) -> None:
        self.conn.execute("UPDATE documents SET status='indexed' WHERE path = ?", (path,))

    def mark_failed(self, path: str, sha256: str | None, error: str) -> None:
        """Record a failure without touching an earlier good version of the same file."""
        row = self.get(path)
        if row and row.status != "failed":
            self.conn.execute("UPDATE documents SET error = ? WHERE path = ?", (error, path))
            return
        self.conn.execute(
            "INSERT INTO documents(path, doc_id, sha256, status, error, ingested_at)"
            " VALUES (?, NULL, ?, 'failed', ?, ?)"
            " ON CONFLICT(path) DO UPDATE SET sha256=excluded.sha256, status='failed',"
            " error=excluded.error, ingested_at=excluded.ingested_at",
            (path, sha256, error, time.time()),
        )

    def remove(self, path: str) -> None:
        self.conn.execute("DELETE FROM documents WHERE path = ?", (path,))


def active_hashes(conn: sqlite3.Connection, doc_ids: list[str]) -> dict[str, str]:
    """The content hash each document is live at; chunks of any other hash are stale."""
    if not doc_ids:
        return {}
    marks = ",".join("?" * len(doc_ids))
    rows = conn.execute(
        f"SELECT doc_id, sha256 FROM documents WHERE status != 'failed' AND doc_id IN ({marks})",
        list(doc_ids),
    )
    return {r["doc_id"]: r["sha256"] for r in rows}
