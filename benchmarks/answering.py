"""What the answer benchmarks share: the configured index opened with its retriever and the
configured answerer, the way `fp-assistant ask` opens them (model loaded once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.answering.backends import get_answerer
from assistant.answering.extractive import Answerer
from assistant.config import Settings, get_settings
from assistant.index import open_index
from assistant.retriever import Retriever
from ingest.embeddings import get_embeddings


def open_answering(store: str | None) -> tuple[Settings, Retriever, Answerer, Any]:
    """Settings (with `store` if given), retriever, answerer, and the vector store."""
    settings = get_settings()
    if store:
        settings = settings.model_copy(update={"store": Path(store)})
    emb = get_embeddings(settings.embeddings)
    vectors, registry = open_index(settings)
    retriever = Retriever(vectors, registry, emb, settings.audience)
    return settings, retriever, get_answerer(settings, emb), vectors
