"""Wire the components the settings choose: embeddings, store, registry, ingestor.

The one place that knows which implementation backs each concern, so the CLI, the app
and the tests all open the index the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.config import Settings
from ingest.embeddings import get_embeddings
from ingest.pipeline import Ingestor, Limits
from ingest.registry import Registry, connect
from ingest.store import Store, open_store

SAMPLE_MANIFEST = Path(__file__).resolve().parent.parent / "corpus" / "manifest.yaml"


def _open_store(settings: Settings) -> Store:
    """The collection for the configured model, embedded or on the configured server."""
    emb = get_embeddings(settings.embeddings)
    return open_store(settings.store, settings.collection, emb.model_id, emb.dim, settings.chroma_url)


def open_index(settings: Settings) -> tuple[Store, Registry]:
    return _open_store(settings), Registry(connect(settings.store))


def make_ingestor(settings: Settings, store: Store | None = None, embeddings: Any = None) -> Ingestor:
    """The ingestor the settings describe; a caller that already holds the store and the model
    (the service) passes them instead of opening them again."""
    return Ingestor(
        settings.store,
        store if store is not None else _open_store(settings),
        embeddings if embeddings is not None else get_embeddings(settings.embeddings),
        Limits(settings.max_bytes, settings.max_pages, settings.chunk_size, settings.chunk_overlap,
               ocr=settings.ocr, ocr_max_pages=settings.ocr_max_pages,
               ocr_page_timeout=settings.ocr_page_timeout),
        manifest_fallback=SAMPLE_MANIFEST,
        lock_timeout=settings.lock_timeout,
    )
