"""The vector store: one Chroma collection of passages, embedded or on a Chroma server.

We talk to chromadb directly rather than through langchain-chroma because ingest needs
what that wrapper hides: precomputed vectors (we embed a title-prefixed text but store the
plain passage), versioned chunk ids, deletes by metadata, and the collection metadata
where the embedding model is recorded. Chroma's default embedding function (which would
download a model) is never used: the collection is created with `embedding_function=None`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ingest.errors import StoreError
from ingest.models import Chunk

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
logging.getLogger("chromadb.telemetry.product.posthog").setLevel(logging.CRITICAL)

_BATCH = 1000


@dataclass
class Hit:
    """One passage returned by a search, with its distance turned into a similarity."""

    chunk_id: str
    text: str
    meta: dict[str, Any]
    score: float


def chunk_metadata(chunk: Chunk, content_hash: str) -> dict[str, Any]:
    """Flatten a chunk's metadata for Chroma (scalars and non-empty lists only, no None)."""
    m = chunk.meta
    meta: dict[str, Any] = {
        "doc_id": m.doc_id,
        "title": m.title,
        "source": m.source,
        "doc_type": m.doc_type,
        "fabrique": m.fabrique,
        "fabrique_title": m.fabrique_title,
        "visibility": m.visibility,
        "page": chunk.page,
        "section": chunk.section,
        "chunk_index": chunk.index,
        "content_hash": content_hash,
    }
    if m.year is not None:
        meta["year"] = int(m.year)
    if m.territories:
        meta["territories"] = list(m.territories)
    if m.partners:
        meta["partners"] = list(m.partners)
    return meta


def meta_lists(meta: dict[str, Any]) -> dict[str, Any]:
    """Give list fields back their empty default after a round trip through Chroma."""
    out = dict(meta)
    out.setdefault("territories", [])
    out.setdefault("partners", [])
    out.setdefault("year", None)
    return out


class Store:
    """A Chroma collection bound to one embedding model."""

    def __init__(self, client: Any, collection_name: str, model_id: str, dim: int) -> None:
        self.client = client
        self.model_id = model_id
        existing = None
        try:
            existing = client.get_collection(collection_name, embedding_function=None)
        except Exception:  # noqa: BLE001 - chromadb raises different types per version/mode
            existing = None
        if existing is not None:
            built_with = (existing.metadata or {}).get("embedding_model")
            if built_with and built_with != model_id:
                raise StoreError(
                    f"L'index « {collection_name} » a été construit avec le modèle {built_with} ; "
                    f"il ne peut pas être interrogé avec {model_id}. Utilisez le même modèle "
                    "(FP_EMBEDDINGS) ou un autre dossier d'index (--store)."
                )
            self.collection = existing
        else:
            self.collection = client.create_collection(
                collection_name,
                embedding_function=None,
                metadata={"embedding_model": model_id, "dim": dim, "hnsw:space": "cosine"},
            )

    def count(self) -> int:
        return int(self.collection.count())

    def upsert(self, chunks: list[Chunk], vectors: list[list[float]], content_hash: str) -> None:
        """Write a document's new chunks; ids carry the content hash so old ones survive."""
        for start in range(0, len(chunks), _BATCH):
            part = chunks[start : start + _BATCH]
            self.collection.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=vectors[start : start + _BATCH],
                documents=[c.text for c in part],
                metadatas=[chunk_metadata(c, content_hash) for c in part],
            )

    def delete_other_versions(self, doc_id: str, keep_hash: str) -> None:
        """Drop a document's chunks from earlier versions, after the new ones are written."""
        self.collection.delete(
            where={"$and": [{"doc_id": doc_id}, {"content_hash": {"$ne": keep_hash}}]}
        )

    def delete_document(self, doc_id: str) -> None:
        self.collection.delete(where={"doc_id": doc_id})

    def search(
        self, vector: list[float], k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """Nearest passages; cosine distance becomes similarity (1 - distance)."""
        n = self.count()
        if n == 0:
            return []
        res = self.collection.query(
            query_embeddings=[vector],
            n_results=min(k, n),
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(cid, doc or "", meta_lists(meta or {}), 1.0 - float(dist))
            for cid, doc, meta, dist in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
            )
        ]

    def get(self, where: dict[str, Any] | None = None, limit: int | None = None) -> list[Hit]:
        """Passages by metadata, without ranking (used by stats and drafting)."""
        res = self.collection.get(
            where=where or None, limit=limit, include=["documents", "metadatas"]
        )
        return [
            Hit(cid, doc or "", meta_lists(meta or {}), 0.0)
            for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
        ]


def make_client(store_dir: Path, chroma_url: str | None = None) -> Any:
    """An embedded persistent client, or an HTTP client when a server URL is configured."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"Serveur Chroma injoignable à {chroma_url} : {exc}") from exc
        return client
    store_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(store_dir / "chroma"), settings=chroma_settings)


def open_store(
    store_dir: Path,
    collection: str,
    model_id: str,
    dim: int,
    chroma_url: str | None = None,
) -> Store:
    """Open (or create) the passage collection, checking which model built it."""
    return Store(make_client(Path(store_dir), chroma_url), collection, model_id, dim)
