"""Users' 👍/👎 on answers, kept beside the index so the ANCT team can review what fails.

A vote is useful only with what was voted on: the question (as typed and as rewritten), the
answer text, its mode, back-end and the sources it cited, and the filters in force. One row
per answer (`message_id`): changing one's mind or adding a comment updates the row instead
of counting twice. SQLite in its own file (`feedback.sqlite3` in the store directory), not in
the registry's file, so an ingest never waits on a vote and deleting feedback never touches
the index. Exported as CSV for a spreadsheet (semicolon-separated, UTF-8 with BOM: what
Excel in French expects).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

FILE_NAME = "feedback.sqlite3"
RATING_LABELS = {1: "positif", 0: "négatif"}
CSV_COLUMNS = (
    "date", "avis", "commentaire", "question", "question_reformulee", "mode", "reponse", "sources",
    "moteur", "filtres", "public",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    message_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    rating INTEGER,              -- 1 = 👍, 0 = 👎, NULL = comment only
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL DEFAULT '',
    rewritten TEXT NOT NULL DEFAULT '',
    mode TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT '',
    sources TEXT NOT NULL DEFAULT '[]',   -- JSON list of "title, p. N" strings
    backend TEXT NOT NULL DEFAULT '',
    filters TEXT NOT NULL DEFAULT '{}',   -- JSON of the filters in force
    audience TEXT NOT NULL DEFAULT ''
);
"""


@dataclass
class FeedbackEntry:
    """One answer's feedback and its context."""

    message_id: str
    rating: int | None
    comment: str = ""
    question: str = ""
    rewritten: str = ""
    mode: str = ""
    answer: str = ""
    sources: list[str] = field(default_factory=list)
    backend: str = ""
    filters: dict[str, Any] = field(default_factory=dict)
    audience: str = ""
    created: float = 0.0
    updated: float = 0.0


class FeedbackStore:
    """The feedback table of one store directory; safe to share between Streamlit threads."""

    def __init__(self, store_dir: str | Path) -> None:
        self.path = Path(store_dir) / FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Streamlit runs each rerun in a new thread: one connection, serialised by the lock
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(SCHEMA)

    def record(
        self,
        message_id: str,
        *,
        rating: int | None = None,
        comment: str | None = None,
        question: str = "",
        rewritten: str = "",
        mode: str = "",
        answer: str = "",
        sources: list[str] | None = None,
        backend: str = "",
        filters: dict[str, Any] | None = None,
        audience: str = "",
    ) -> FeedbackEntry:
        """Create or update the feedback of one answer.

        `rating` None keeps the earlier vote (a comment added after voting); `comment` None
        keeps the earlier comment (a vote changed after commenting).
        """
        if rating is not None and rating not in RATING_LABELS:
            raise ValueError(f"avis invalide : {rating!r} (1 = 👍, 0 = 👎)")
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT INTO feedback(message_id, created, updated, rating, comment, question, rewritten,"
                " mode, answer, sources, backend, filters, audience)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(message_id) DO UPDATE SET updated=excluded.updated,"
                " rating=coalesce(?, feedback.rating), comment=coalesce(?, feedback.comment)",
                (
                    message_id, now, now, rating, (comment or "").strip(), question, rewritten, mode,
                    answer, json.dumps(sources or [], ensure_ascii=False), backend,
                    json.dumps(filters or {}, ensure_ascii=False), audience,
                    rating, None if comment is None else comment.strip(),
                ),
            )
        entry = self.get(message_id)
        assert entry is not None
        return entry

    def get(self, message_id: str) -> FeedbackEntry | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM feedback WHERE message_id = ?", (message_id,)).fetchone()
        return _entry(row) if row else None

    def all(self) -> list[FeedbackEntry]:
        """Every entry, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM feedback ORDER BY created, message_id").fetchall()
        return [_entry(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many 👍, 👎 and comments: the summary shown above the export button."""
        entries = self.all()
        return {
            "positif": sum(1 for e in entries if e.rating == 1),
            "négatif": sum(1 for e in entries if e.rating == 0),
            "commentaires": sum(1 for e in entries if e.comment),
        }

    def to_csv(self) -> str:
        """All feedback as CSV text (`;` separator); encode with `utf-8-sig` for Excel."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for e in self.all():
            writer.writerow([
                datetime.fromtimestamp(e.updated).isoformat(timespec="seconds"),
                RATING_LABELS.get(e.rating, "") if e.rating is not None else "",
                e.comment,
                e.question,
                e.rewritten if e.rewritten != e.question else "",
                e.mode,
                e.answer,
                " | ".join(e.sources),
                e.backend,
                ", ".join(f"{k}={v}" for k, v in e.filters.items() if v not in (None, "", [])),
                e.audience,
            ])
        return out.getvalue()

    def csv_bytes(self) -> bytes:
        """The CSV as a spreadsheet opens it correctly (BOM tells Excel it is UTF-8)."""
        return self.to_csv().encode("utf-8-sig")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _entry(row: sqlite3.Row) -> FeedbackEntry:
    return FeedbackEntry(
        message_id=row["message_id"],
        rating=row["rating"],
        comment=row["comment"] or "",
        question=row["question"] or "",
        rewritten=row["rewritten"] or "",
        mode=row["mode"] or "",
        answer=row["answer"] or "",
        sources=json.loads(row["sources"] or "[]"),
        backend=row["backend"] or "",
        filters=json.loads(row["filters"] or "{}"),
        audience=row["audience"] or "",
        created=row["created"],
        updated=row["updated"],
    )
