"""Find the passages that answer a question, within the user's filters and audience.

Filters (fabrique, territory, year or range, document type) and the audience rule
(`public` never sees `interne` documents) are enforced here, inside retrieval, so no caller
can forget them. Passages of a document version that is no longer live (left by a crash
mid-ingest) are dropped by comparing their hash with the registry's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings

from ingest.metadata import fold
from ingest.registry import Registry, active_hashes
from ingest.store import Hit, Store


@dataclass
class Filters:
    fabrique: str | None = None
    territory: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    doc_type: str | None = None

    @staticmethod
    def parse_year(value: str | None) -> tuple[int | None, int | None]:
        """'2019' → (2019, 2019); '2019-2021' → (2019, 2021); '' → (None, None)."""
        if not value:
            return None, None
        m = re.fullmatch(r"\s*(\d{4})\s*(?:[-–:]\s*(\d{4})\s*)?", str(value))
        if not m:
            raise ValueError(f"année invalide : {value!r} (attendu 2019 ou 2019-2021)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        return min(lo, hi), max(lo, hi)


@dataclass
class Passage:
    rank: int
    chunk_id: str
    text: str
    score: float
    meta: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.meta.get("source", ""))

    @property
    def page(self) -> int:
        return int(self.meta.get("page", 1))

    def as_json(self) -> dict[str, Any]:
        """The public `search --json` row."""
        m = self.meta
        return {
            "rank": self.rank,
            "source": self.source,
            "page": self.page,
            "score": round(self.score, 4),
            "text": self.text,
            "title": m.get("title", ""),
            "doc_id": m.get("doc_id", ""),
            "section": m.get("section", ""),
            "fabrique": m.get("fabrique", ""),
            "territories": list(m.get("territories") or []),
            "doc_type": m.get("doc_type", ""),
            "year": m.get("year"),
        }


class Retriever:
    def __init__(
        self, store: Store, registry: Registry, embeddings: Embeddings, audience: str = "interne"
    ) -> None:
        self.store = store
        self.registry = registry
        self.embeddings = embeddings
        self.audience = audience

    def known_territories(self) -> list[str]:
        names: set[str] = set()
        for rec in self.registry.all():
            names.update(rec.meta.get("territories") or [])
        return sorted(names)

    def resolve_territory(self, name: str) -> list[str]:
        """Match what the user typed ('reims', 'Lorient') to the canonical names indexed."""
        want = fold(name).strip()
        known = self.known_territories()
        exact = [t for t in known if fold(t) == want]
        return exact or [t for t in known if want and want in fold(t)] or [name]

    def where(self, filters: Filters | None) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        f = filters or Filters()
        if self.audience == "public":
            clauses.append({"visibility": "public"})
        if f.fabrique:
            clauses.append({"fabrique": f.fabrique})
        if f.doc_type:
            clauses.append({"doc_type": f.doc_type})
        if f.year_from is not None:
            clauses.append({"year": {"$gte": f.year_from}})
        if f.year_to is not None:
            clauses.append({"year": {"$lte": f.year_to}})
        if f.territory:
            names = self.resolve_territory(f.territory)
            ors = [{"territories": {"$contains": n}} for n in names]
            clauses.append(ors[0] if len(ors) == 1 else {"$or": ors})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def live(self, hits: list[Hit]) -> list[Hit]:
        """Drop passages of versions the registry no longer points to."""
        hashes = active_hashes(self.registry.conn, sorted({h.meta.get("doc_id", "") for h in hits}))
        return [h for h in hits if hashes.get(h.meta.get("doc_id")) == h.meta.get("content_hash")]

    def dense(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Passage]:
        vector = self.embeddings.embed_query(query)
        hits = self.live(self.store.search(vector, k * 2 + 5, self.where(filters)))[:k]
        return [Passage(i + 1, h.chunk_id, h.text, h.score, h.meta) for i, h in enumerate(hits)]

    def search(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Passage]:
        return self.dense(query, k, filters)
