"""The OpenAI-compatible face: `/v1/models` and `/v1/chat/completions` over the same answers.

Why: many chat clients and libraries (Open WebUI, LibreChat, LangChain, the official `openai`
package…) only need a base URL and a key to talk to a model. Served this way, the assistant
drops into those tools as « a model » whose answers are the cited answers of `POST /api/ask`.

How a conversation is read: the last user message is the question; the earlier user and
assistant messages, in pairs, are the history the service uses to understand a follow-up
(« Et à Colmar ? »). System messages are ignored: in this assistant, instructions come from no
request and no document — both are data. The answer's text keeps its [n] markers and ends
with a Markdown « Sources : » list, so a client that shows only `content` still shows where
each claim comes from; the numbered sources themselves travel in an extra top-level field,
`citations`, and the whole answer in `fp_answer`. Errors use OpenAI's error envelope (with
French messages), so the client raises its usual exceptions (401 → AuthenticationError).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from assistant.api import schemas
from assistant.api.auth import CallerDep, ServiceDep
from assistant.api.errors import ApiError
from assistant.api.openwebui import (
    OPENWEBUI_EVENT_KEY,
    OPENWEBUI_SOURCES_KEY,
    openwebui_source_events,
    openwebui_sources,
)
from assistant.api.rest import check_question
from assistant.api.streaming import failure_message, logger, sse_event, sse_response, text_pieces
from assistant.service import Answer, AnswerStream, stream_correction

MODELS: dict[str, Literal["answer", "compare"]] = {
    "fp-assistant": "answer", "fp-assistant-compare": "compare",
}
OWNER = "anct"
CREATED = 1_764_547_200  # 2025-12-01: a fixed date, the models do not change with restarts
SOURCES_HEADING = "Sources :"
HISTORY_PAIRS = 10
CITATION_KEYS = ("n", "source", "title", "page", "excerpt", "fabrique", "territories", "doc_id",
                 "doc_type", "year", "section")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.OpenAIErrorOut, "description": "Requête refusée : conversation sans question, "
          "paramètre non pris en charge (`n`, `tools`…), question ou conversation trop longue "
          "(`context_length_exceeded`), corps invalide."},
    401: {"model": schemas.OpenAIErrorOut, "description": "Clé d'accès manquante, inconnue ou révoquée."},
    404: {"model": schemas.OpenAIErrorOut, "description": "Modèle inconnu."},
    503: {"model": schemas.OpenAIErrorOut, "description": "Index indisponible."},
}

router = APIRouter(prefix="/v1", tags=["Compatibilité OpenAI"])


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field("text", max_length=50)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls…: accepted, unused

    role: str = Field(..., max_length=50, description="« user », « assistant » ; « system » est ignoré.")
    content: str | list[ContentPart] | None = Field(None, description="Le texte du message.")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(False, description="Un dernier morceau, `choices: []`, porte `usage`.")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, user, seed…: accepted, without effect

    model: str = Field("fp-assistant", max_length=100,
                       description="« fp-assistant » (réponse citée) ou « fp-assistant-compare » "
                       "(comparaison territoire par territoire).")
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=200,
                                        description="La conversation ; le dernier message est la question.")
    stream: bool = Field(False, description="Réponse en flux de `chat.completion.chunk` (SSE) : le rôle "
                         "tout de suite, le texte au fil de son écriture, puis un dernier morceau portant "
                         "`citations`.")
    stream_options: StreamOptions | None = Field(None, description="`include_usage` : l'usage dans un "
                                                 "dernier morceau sans `choices`, comme OpenAI.")
    max_tokens: int | None = Field(None, ge=1, description="Longueur maximale de la réponse (en jetons "
                                   "d'environ 4 caractères) ; au-delà, coupée, `finish_reason` « length ».")
    max_completion_tokens: int | None = Field(None, ge=1, description="Synonyme récent de `max_tokens`.")
    stop: str | list[str] | None = Field(None, description="Texte(s) où couper la réponse.")
    n: int | None = Field(None, ge=1, description="Une seule réponse par requête : 1.")
    response_format: dict[str, Any] | None = Field(None, description="Seul `{\"type\": \"text\"}` est "
                                                   "possible : la réponse est un texte cité.")
    tools: list[Any] | None = Field(None, description="Non pris en charge (refusé s'il n'est pas vide).")
    functions: list[Any] | None = Field(None, description="Non pris en charge (refusé s'il n'est pas vide).")

    def limit_chars(self) -> int | None:
        """`max_tokens` in characters, with the same 4-characters-a-token count as `usage`."""
        tokens = self.max_completion_tokens or self.max_tokens
        return tokens * 4 if tokens else None

    def stops(self) -> list[str]:
        return [t for t in ([self.stop] if isinstance(self.stop, str) else self.stop or []) if t]

    def check_supported(self) -> None:
        """A parameter the assistant cannot honour is refused by name, never silently dropped:
        a client asking for three choices or JSON would otherwise misread what it gets."""
        if self.n is not None and self.n > 1:
            raise ApiError(400, f"n = {self.n} : une seule réponse est produite par requête (n = 1).",
                           code="unsupported_value", param="n")
        kind = str((self.response_format or {}).get("type", "text"))
        if kind != "text":
            raise ApiError(400, f"response_format « {kind} » non pris en charge : la réponse est un texte "
                           "cité (type « text »).", code="unsupported_value", param="response_format")
        for name in ("tools", "functions"):
            if getattr(self, name):
                raise ApiError(400, f"{name} : les appels d'outils ne sont pas pris en charge par "
                               "l'assistant, qui répond à partir des documents.",
                               code="unsupported_parameter", param=name)
        if len(self.stops()) > 4:
            raise ApiError(400, "stop : au plus 4 textes.", code="invalid_value", param="stop")


def _text(message: ChatMessage) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if p.type == "text" and p.text)


def strip_sources(text: str) -> str:
    """An earlier answer of ours, less its « Sources : » list (not part of what was said)."""
    return re.split(rf"\n\n{re.escape(SOURCES_HEADING)}\n", text, maxsplit=1)[0].strip()


def conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history): the last user message, and the (question, answer) pairs before it.

    System (and developer, tool) messages are left out: they are not the user's words and
    nothing in a request may instruct the assistant.
    """
    said = [(m.role, _text(m)) for m in messages if m.role in ("user", "assistant")]
    if not said or said[-1][0] != "user":
        raise ValueError("le dernier message de la conversation doit être celui de l'utilisateur "
                         "(role « user ») : c'est la question posée.")
    question = said[-1][1]
    if not question.strip():
        raise ValueError("la question (dernier message « user ») est vide.")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in said[:-1]:
        if role == "user":
            if pending is not None:
                history.append((pending, ""))
            pending = text
        else:
            if pending is not None:
                history.append((pending, strip_sources(text)))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return question, [(q, a) for q, a in history if q.strip()][-HISTORY_PAIRS:]


def _where(c: Any) -> str:
    return ", ".join(c.territories) or getattr(c, "fabrique_title", "") or c.fabrique


def sources_block(answer: Answer) -> str:
    """« \\n\\nSources :\\n- [1] Titre — p. 3 (Lorient) — fichier.pdf » (empty without citations;
    a refusal's text already lists its leads)."""
    if not answer.citations:
        return ""
    lines = [f"- [{c.n}] {c.title} — p. {c.page} ({_where(c)}) — {Path(c.source).name}"
             for c in answer.citations]
    return f"\n\n{SOURCES_HEADING}\n" + "\n".join(lines)


def citations_json(answer_json: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: c.get(k) for k in CITATION_KEYS} for c in answer_json["citations"]]


def _tokens(text: str) -> int:
    """A rough count (about four characters a token): clients only display it."""
    return max(1, round(len(text) / 4)) if text else 0


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": OWNER}


def _mode(model_id: str) -> Literal["answer", "compare"]:
    if model_id not in MODELS:
        raise ApiError(404, f"Modèle inconnu : « {model_id} ». Modèles disponibles : {', '.join(MODELS)}.",
                       code="model_not_found")
    return MODELS[model_id]


@router.get("/models", summary="Modèles disponibles", response_model=schemas.ModelListOut, responses=ERRORS)
def list_models(_caller: CallerDep) -> dict[str, Any]:
    """« fp-assistant » (réponses citées) et « fp-assistant-compare » (comparaisons)."""
    return {"object": "list", "data": [_model(m) for m in MODELS]}


@router.get("/models/{model_id}", summary="Un modèle", response_model=schemas.ModelOut, responses=ERRORS)
def get_model(model_id: str, _caller: CallerDep) -> dict[str, Any]:
    _mode(model_id)
    return _model(model_id)


class Cutter:
    """The text sent, cut where the client asked: at its first `stop` text, or past `max_tokens`.

    Why here and not in the answerer: these are the client's display limits, not a different
    answer; `fp_answer` and `citations` stay whole.
    """

    def __init__(self, limit: int | None, stops: list[str]) -> None:
        self.limit, self.stops = limit, stops
        self.sent = ""
        self.finish: str | None = None  # "stop" or "length" once cut

    def take(self, piece: str) -> str:
        """The part of `piece` to send (all of it until a limit is reached)."""
        if self.finish or not piece:
            return ""
        before = len(self.sent)
        text = self.sent + piece
        stop_at = min((i for i in (text.find(t, max(0, before - len(t) + 1)) for t in self.stops) if i >= 0),
                      default=-1)
        if stop_at >= 0:
            text, self.finish = text[:stop_at], "stop"
        if self.limit is not None and len(text) >= self.limit:
            text, self.finish = text[:self.limit], self.finish or "length"
        self.sent = text
        return text[before:] if len(text) > before else ""


@dataclass
class Envelope:
    """One response's id, date, model and prompt size, and OpenAI's shapes around a content:
    the `chat.completion` object, a `chat.completion.chunk` event, the usage-only last chunk.
    Answers and chat-client tasks are sent in the same shapes."""

    model: str
    prompt_tokens: int
    cid: str = field(default_factory=lambda: f"chatcmpl-{secrets.token_hex(12)}")
    created: int = field(default_factory=lambda: int(time.time()))

    def usage(self, content: str) -> dict[str, int]:
        completion = _tokens(content)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}

    def completion(self, content: str, finish: str, **extra: Any) -> JSONResponse:
        return JSONResponse({
            "id": self.cid, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": finish}],
            "usage": self.usage(content), "system_fingerprint": None, **extra,
        })

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_event(None, {"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "choices": [choice], **extra})

    def usage_chunk(self, usage: dict[str, int]) -> str:
        """The last chunk OpenAI sends with `stream_options.include_usage`: no choice, the usage."""
        return sse_event(None, {"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "choices": [], "usage": usage})


@router.post("/chat/completions", summary="Réponse à une conversation (protocole OpenAI)",
             response_model=None,
             responses={200: {"model": schemas.ChatCompletionOut, "content": {"text/event-stream": {
                 "schema": {"type": "string"}}},
                 "description": "Un objet `chat.completion`, ou avec `stream` des `chat.completion.chunk` "
                                "terminés par `data: [DONE]` ; le dernier porte `citations`."}, **ERRORS})
async def chat_completions(body: ChatRequest, request: Request, caller: CallerDep,
                           service: ServiceDep) -> Response:
    """Le dernier message « user » est la question, les échanges précédents servent à comprendre
    une relance ; les messages « system » sont ignorés. Le texte garde ses marqueurs [n] et se
    termine par la liste « Sources : » ; les citations sont aussi dans le champ `citations`.
    `max_tokens` et `stop` coupent le texte envoyé ; `n` > 1, `tools` et un `response_format`
    autre que texte sont refusés (400, `param` les nomme)."""
    mode = _mode(body.model)
    body.check_supported()
    question, history = conversation(body.messages)
    env = Envelope(body.model, _tokens("".join(_text(m) for m in body.messages)))
    cut = Cutter(body.limit_chars(), body.stops())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    # a chat client's background task (a title, tags…) quotes the whole chat: answered from the
    # prompt and the catalog, before the question-length check and without retrieval
    reply = await run_in_threadpool(service.chat_task, question, caller)
    if reply is not None:
        content = cut.take(reply)
        if not body.stream:
            return env.completion(content, cut.finish or "stop")
        return sse_response(_task_chunks(env, content, cut.finish or "stop", include_usage))
    check_question(request, question)
    if body.stream:
        return sse_response(_chunks(lambda: service.ask_stream(question, caller, mode=mode,
                                                               history=history or None),
                                    env, cut, include_usage))
    answer = await run_in_threadpool(service.ask, question, caller, mode=mode, history=history or None)
    full = answer.as_json()
    citations = citations_json(full)
    return env.completion(cut.take(answer.text + sources_block(answer)), cut.finish or "stop",
                          citations=citations, fp_answer=full,
                          **{OPENWEBUI_SOURCES_KEY: openwebui_sources(citations)})  # Open WebUI's chips


def _task_chunks(env: Envelope, content: str, finish: str, include_usage: bool) -> Iterator[str]:
    usage = env.usage(content)
    yield env.chunk({"role": "assistant", "content": ""})
    yield env.chunk({"content": content})
    yield env.chunk({}, finish, usage=usage)
    if include_usage:
        yield env.usage_chunk(usage)
    yield "data: [DONE]\n\n"


def closing(answer: Answer, shown: str) -> str:
    """What follows the streamed text so that the reader ends with the checked answer: the
    whole answer if nothing was shown (extractive back-end, a model that failed), else the
    check's correction (`stream_correction`); then the « Sources : » list."""
    if not shown.strip():
        return answer.text + sources_block(answer)
    return stream_correction(answer, shown) + sources_block(answer)


def _chunks(start: Callable[[], AnswerStream], env: Envelope, cut: Cutter,
            include_usage: bool) -> Iterator[str]:
    """`chat.completion.chunk` events: the role at once (before retrieval), the text as it is
    written, then what `closing` adds, then a last chunk with `finish_reason`, `citations` and
    `fp_answer`; with `include_usage`, one more chunk with `choices: []` and `usage`; then
    `data: [DONE]`.

    The model's pieces are forwarded as they come: the passages were numbered before
    generation and the final answer keeps those numbers, so the [n] a client has already
    shown are the ones of the « Sources » list.
    """
    yield env.chunk({"role": "assistant", "content": ""})
    shown: list[str] = []
    stream: AnswerStream | None = None
    try:
        stream = start()
        for piece in stream:
            shown.append(piece)
            for part in text_pieces(cut.take(piece)) if not cut.finish else []:
                if part:
                    yield env.chunk({"content": part})
        answer = stream.answer
    except GeneratorExit:  # the client left (see `closing_on_disconnect`): stop the model too
        if stream is not None:
            stream.close()
        raise
    except Exception as exc:  # noqa: BLE001 - the response has started: report it in the stream
        logger.error("flux OpenAI interrompu", exc_info=exc)
        yield sse_event(None, {"error": {"message": failure_message(exc), "type": "server_error",
                                         "param": None, "code": None}})
        yield "data: [DONE]\n\n"
        return
    for part in text_pieces(cut.take(closing(answer, "".join(shown)))):
        if part:
            yield env.chunk({"content": part})
    full = answer.as_json()
    usage = env.usage(cut.sent)
    citations = citations_json(full)
    for event in openwebui_source_events(citations):  # Open WebUI keeps sources sent as events
        yield env.chunk({}, **{OPENWEBUI_EVENT_KEY: event})
    yield env.chunk({}, cut.finish or "stop", citations=citations, fp_answer=full, usage=usage,
                    **{OPENWEBUI_SOURCES_KEY: openwebui_sources(citations)})
    if include_usage:
        yield env.usage_chunk(usage)
    yield "data: [DONE]\n\n"
