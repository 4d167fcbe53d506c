"""Which back-end answers: chosen by `FP_LLM`, built once per configuration.

Kept apart from both back-ends so that `llm` may build on `extractive` (it reuses its
evidence gate and compare table) without `extractive` ever importing `llm`: no circle, and
the default deployment never loads the OpenAI client.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.embeddings import Embeddings

from assistant.answering.extractive import Answer, Answerer, ExtractiveAnswerer, History, Mode
from assistant.config import Settings, get_settings
from assistant.retriever import Passage

_ANSWERERS: dict[tuple[Any, ...], Answerer] = {}
_LOCK = threading.Lock()


def get_answerer(settings: Settings | None = None, embeddings: Embeddings | None = None) -> Answerer:
    """The back-end the settings name, built once per configuration."""
    s = settings or get_settings()
    key = (s.llm, s.openai_base_url, s.llm_model, s.llm_temperature, s.embeddings, s.decisions,
           s.reranker, id(embeddings) if embeddings else None)
    with _LOCK:
        if key not in _ANSWERERS:
            if s.llm == "openai":
                from assistant.answering.llm import OpenAIAnswerer

                _ANSWERERS[key] = OpenAIAnswerer(s, embeddings)
            else:
                _ANSWERERS[key] = ExtractiveAnswerer(s, embeddings)
        return _ANSWERERS[key]


def forget_answerers() -> None:
    """Drop the built back-ends (their decisions were refitted: the next one reads the new weights)."""
    with _LOCK:
        _ANSWERERS.clear()


def answer(question: str, passages: list[Passage], *, mode: Mode = "answer",
           history: History | None = None, settings: Settings | None = None) -> Answer:
    """Answer with the configured back-end (see `get_answerer`)."""
    return get_answerer(settings).answer(question, passages, mode=mode, history=history)
