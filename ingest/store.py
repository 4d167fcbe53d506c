"""The vector store: one Chroma collection of passages, embedded or on a Chroma server.

We talk to chromadb directly rather than through langchain-chroma because ingest needs
what that wrapper hides: precomputed vectors (we embed a title-prefixed text but store the
plain passage), versioned chunk ids, deletes by metadata, and the collection metadata
where the embedding model is recorded. Chroma's default embedding function (which would
download a model) is never used: the collection is created with `embedding_function=None`.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ingest.errors import StoreError
from ingest.models import Chunk

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
logging.getLogger("chromadb.telemetry.product.posthog").setLevel(logging.CRITICAL)

_BATCH = 1000  # upper bound; a server may accept less (Store.batch)


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
    if chunk.ocr:  # only when true: passages of text PDFs keep the metadata they always had
        meta["ocr"] = True
    return meta


def meta_lists(meta: dict[str, Any]) -> dict[str, Any]:
    """Give list fields back their empty default after a round trip through Chroma."""
    out = dict(meta)
    out.setdefault("territories", [])
    out.setdefault("partners", [])
    out.setdefault("year", None)
    return out


class Store:
    """A Chroma collection bound to one embedding model.

    `remote` only changes advice in error messages: on a Chroma server the collection is
    shared by name, so another `--store` folder does not give another index.
    """

    def __init__(
        self, client: Any, collection_name: str, model_id: str, dim: int, remote: bool = False
    ) -> None:
        self.client = client
        self.model_id = model_id
        # a server refuses a write larger than its max batch size: stay under it
        try:
            self.batch = max(1, min(_BATCH, int(client.get_max_batch_size())))
        except Exception:  # noqa: BLE001 - older clients have no pre-flight check
            self.batch = _BATCH
        existing = self._existing(client, collection_name)
        if existing is not None:
            built_with = (existing.metadata or {}).get("embedding_model")
            if built_with and built_with != model_id:
                other = (
                    "une autre collection (FP_COLLECTION) avec son propre dossier FP_STORE"
                    if remote
                    else "un autre dossier d'index (--store)"
                )
                raise StoreError(
                    f"L'index « {collection_name} » a été construit avec le modèle {built_with} ; "
                    f"il ne peut pas être interrogé avec {model_id}. Utilisez le même modèle "
                    f"(FP_EMBEDDINGS) ou {other}."
                )
            self.collection = existing
        else:
            self.collection = client.create_collection(
                collection_name,
                embedding_function=None,
                metadata={"embedding_model": model_id, "dim": dim, "hnsw:space": "cosine"},
            )

    @staticmethod
    def _existing(client: Any, collection_name: str) -> Any:
        try:
            return client.get_collection(collection_name, embedding_function=None)
        except Exception:  # noqa: BLE001 - chromadb raises different types per version/mode
            return None

    def count(self) -> int:
        return int(self.collection.count())

    def upsert(self, chunks: list[Chunk], vectors: list[list[float]], content_hash: str) -> None:
        """Write a document's new chunks; ids carry the content hash so old ones survive."""
        for start in range(0, len(chunks), self.batch):
            part = chunks[start : start + self.batch]
            self.collection.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=vectors[start : start + self.batch],
                documents=[c.text for c in part],
                metadatas=[chunk_metadata(c, content_hash) for c in part],
            )

    def relabel(self, chunks: list[Chunk], content_hash: str) -> None:
        """New metadata on passages already written, their vectors untouched."""
        for start in range(0, len(chunks), self.batch):
            part = chunks[start : start + self.batch]
            self.collection.update(
                ids=[c.chunk_id for c in part],
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
        """Nearest passages; cosine distance becomes similarity (1 - distance).

        No `count()` first: chromadb (pinned 1.5.9) returns fewer results when the collection
        holds fewer than `k`, and on a server that call was a second round trip per search.
        """
        if k <= 0:
            return []
        res = self.collection.query(
            query_embeddings=[vector],
            n_results=k,
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        return _hits(res)

    def search_filtered(
        self, vector: list[float], k: int, where: dict[str, Any] | None, share: float | None,
        passing: Callable[[list[str]], set[str]] | None = None,
        allowed: Callable[[], list[str]] | None = None,
    ) -> list[Hit]:
        """Nearest passages within a filter, by the cheapest of three routes.

        Chroma applies a `where` before the vector search (a metadata scan that grows with
        the collection: 1.1 to 3.7 s at 1 000 000 passages, against 5 ms unfiltered). When the
        filter keeps a good share of the passages (`share`, estimated by the caller from the
        registry), the unfiltered nearest `k / share` (with a margin) almost surely hold `k`
        that pass it: their ids come back without labels (fetching a thousand labels from
        Chroma costs more than the search), `passing` tells which pass (the caller's local
        copy of the labels), and only the `k` kept are read, their labels checked again.
        When the filter is narrow, `allowed` (the caller's list of the passages its labels
        say pass) lets Chroma search those ids only, which skips its metadata scan (1 000 000
        passages, a filter keeping 0.7 %: 129 ms against 1.1 s, benchmarks/filter_routes.py).
        Whenever a route falls short, the filtered query runs as before: a filtered search
        never returns a passage outside the filter and never fewer than exist within it.
        """
        if where and allowed is not None and share is not None and share < BROAD_SHARE:
            return self._search_ids(vector, k, where, allowed)
        if not where or share is None or share < BROAD_SHARE or passing is None:
            return self.search(vector, k, where)
        n = min(MAX_OVERFETCH, math.ceil(k / share * OVERFETCH_MARGIN) + k)
        res = self.collection.query(query_embeddings=[vector], n_results=n, where=None, include=["distances"])
        ids = res["ids"][0]
        ok = passing(ids)
        kept = [(cid, 1.0 - float(dist)) for cid, dist in zip(ids, res["distances"][0], strict=True)
                if cid in ok][:k]
        if len(kept) < k:
            return self.search(vector, k, where)
        got = self.collection.get(ids=[cid for cid, _ in kept], include=["documents", "metadatas"])
        rows = {cid: (doc, meta_lists(meta or {}))
                for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}
        hits = [Hit(cid, rows[cid][0] or "", rows[cid][1], score) for cid, score in kept if cid in rows]
        if len(hits) < k or not all(matches(h.meta, where) for h in hits):
            return self.search(vector, k, where)  # labels changed meanwhile: Chroma decides
        return hits

    def _search_ids(
        self, vector: list[float], k: int, where: dict[str, Any], allowed: Callable[[], list[str]]
    ) -> list[Hit]:
        """Search only the passages the caller's labels say pass; Chroma's filter otherwise."""
        ids = allowed()
        if not ids or len(ids) > MAX_ALLOWED_IDS:
            return self.search(vector, k, where)
        hits = _hits(self.collection.query(query_embeddings=[vector], n_results=min(k, len(ids)), ids=ids,
                                           include=["documents", "metadatas", "distances"]))
        if len(hits) < min(k, len(ids)) or not all(matches(h.meta, where) for h in hits):
            return self.search(vector, k, where)  # labels changed meanwhile: Chroma decides
        return hits

    def get(self, where: dict[str, Any] | None = None, limit: int | None = None) -> list[Hit]:
        """Passages by metadata, without ranking (used by stats and drafting)."""
        res = self.collection.get(
            where=where or None, limit=limit, include=["documents", "metadatas"]
        )
        return [
            Hit(cid, doc or "", meta_lists(meta or {}), 0.0)
            for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
        ]


def _hits(res: dict[str, Any]) -> list[Hit]:
    """One query's results; cosine distance becomes similarity (1 - distance)."""
    return [
        Hit(cid, doc or "", meta_lists(meta or {}), 1.0 - float(dist))
        for cid, doc, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        )
    ]


# filtered search (Store.search_filtered): post-filter from this share of matching passages up
BROAD_SHARE = 0.02
OVERFETCH_MARGIN = 2.0
MAX_OVERFETCH = 2000  # beyond, the filtered query is cheaper than fetching this many passages
MAX_ALLOWED_IDS = 50_000  # a narrow filter's ids sent to Chroma (≤ BROAD_SHARE of 2.5M passages)


def matches(meta: dict[str, Any], where: dict[str, Any]) -> bool:
    """Does a passage's metadata pass a Chroma `where` (the subset the retriever writes:
    $and, $or, equality, $ne, $gte, $lte, $contains on a list)? Evaluated here exactly as
    Chroma does, so post-filtering and Chroma's own filter keep the same passages."""
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(meta, c) for c in cond):
                return False
        elif isinstance(cond, dict):
            value = meta.get(key)
            for op, want in cond.items():
                if op == "$ne":
                    ok = value != want
                elif op == "$eq":
                    ok = value == want
                elif op in ("$gte", "$lte", "$gt", "$lt"):
                    ok = isinstance(value, int | float) and not isinstance(value, bool) and (
                        value >= want if op == "$gte" else value <= want if op == "$lte"
                        else value > want if op == "$gt" else value < want)
                elif op == "$contains":
                    ok = isinstance(value, list | tuple) and want in value
                elif op == "$in":
                    ok = value in want
                else:
                    raise ValueError(f"filtre non pris en charge : {op}")
                if not ok:
                    return False
        elif meta.get(key) != cond:
            return False
    return True


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
            raise StoreError(
                f"Serveur Chroma injoignable à {chroma_url} : démarrez-le (chroma run --path "
                f"DOSSIER --host {url.hostname or '127.0.0.1'} --port {url.port or 8000}) ou videz "
                f"FP_CHROMA_URL pour utiliser la base embarquée. Détail : {exc}"
            ) from exc
        return client
    store_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(store_dir / "chroma"), settings=chroma_settings)


def _registry_claims(store_dir: Path) -> int:
    """Documents the local registry says are indexed (0 if there is no registry yet).

    Read-only and schema-tolerant: the store must not create or lock the registry file.
    """
    path = Path(store_dir) / "index.sqlite3"
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            row = conn.execute(
                "SELECT count(*) FROM documents WHERE status != 'failed' AND chunks > 0"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0])


def open_store(
    store_dir: Path,
    collection: str,
    model_id: str,
    dim: int,
    chroma_url: str | None = None,
) -> Store:
    """Open (or create) the passage collection, checking which model built it.

    The registry stays in `store_dir` even when passages live on a Chroma server. If that
    registry lists indexed documents but the collection does not exist where we look (an
    index built embedded then opened with FP_CHROMA_URL, a server started on an empty
    folder, a deleted `chroma/` folder), ingest would skip every "unchanged" file and
    search would find nothing, silently. We refuse instead, before creating anything.
    """
    client = make_client(Path(store_dir), chroma_url)
    claims = _registry_claims(Path(store_dir))
    if claims and Store._existing(client, collection) is None:
        where = f"sur le serveur Chroma {chroma_url}" if chroma_url else f"dans {Path(store_dir) / 'chroma'}"
        raise StoreError(
            f"Le registre de {store_dir} recense {claims} documents indexés, mais la collection "
            f"« {collection} » n'existe pas {where} : ce registre décrit un autre stockage "
            "(base embarquée ou autre serveur). Utilisez un dossier d'index propre à ce stockage "
            "(FP_STORE, par exemple data/index-server pour un serveur) ou supprimez "
            f"{store_dir} pour tout réindexer."
        )
    return Store(client, collection, model_id, dim, remote=bool(chroma_url))
