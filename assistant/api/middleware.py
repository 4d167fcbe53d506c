"""Two pure ASGI middlewares: a request-size guard and the one-line-per-request log.

Why pure ASGI (not `BaseHTTPMiddleware`): they must see the body as it arrives and the
response as it leaves, streamed answers included, without buffering either.

- `BodyLimitMiddleware`: a question is a few hundred bytes; a client sending megabytes of
  JSON is broken or hostile, and parsing it would cost memory before any check could run.
  A declared `Content-Length` over the limit is refused at once, and a body sent without one
  (chunked) is counted as it streams in and cut off at the limit. The upload route has its
  own, larger limit (files × size per file); its form reader enforces each file's size.
- `AccessLogMiddleware`: one line per request on `fp_assistant.api` — method, path, status,
  role, key name, duration — so an operator can see who uses what and what fails. The
  question itself only with `FP_LOG_QUESTIONS=true`: questions may name people.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.errors import RequestTooLarge, error_body, error_status
from assistant.config import Settings

logger = logging.getLogger("fp_assistant.api")

UPLOAD_PATH = "/api/documents"
# multipart headers, boundaries and the odd form field around the files themselves
UPLOAD_OVERHEAD = 64 * 1024


def size_text(n: int) -> str:
    """A byte count as the settings count it (FP_UPLOAD_MAX_MB: 1 Mo = 10⁶ octets): « 200 Ko », « 20 Mo »."""
    if n < 1_000_000:
        return f"{n / 1000:.0f} Ko"
    mb = n / 1_000_000
    return (f"{mb:.0f}" if mb == int(mb) else f"{mb:.1f}".replace(".", ",")) + " Mo"


def json_limit(settings: Settings) -> int:
    return settings.api_max_request_kb * 1024


def upload_limit(settings: Settings) -> int:
    return settings.upload_max_files * settings.upload_max_bytes + UPLOAD_OVERHEAD


def _is_upload(scope: Scope) -> bool:
    return scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == UPLOAD_PATH


def too_large_message(settings: Settings, upload: bool) -> str:
    if upload:
        return (f"Dépôt trop volumineux : au plus {settings.upload_max_files} fichier(s) de "
                f"{size_text(settings.upload_max_bytes)} chacun par requête.")
    return (f"Requête trop volumineuse : le corps d'une requête JSON est limité à "
            f"{settings.api_max_request_kb} Ko (réglage FP_API_MAX_REQUEST_KB).")


class BodyLimitMiddleware:
    """413 (French JSON) for a body over the limit, by `Content-Length` and while streaming."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = _is_upload(scope)
        limit = upload_limit(self.settings) if upload else json_limit(self.settings)
        message = too_large_message(self.settings, upload)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_json(send, scope, 413, message)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(message)
            return msg

        started = False

        async def watched_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, watched_send)
        except RequestTooLarge as exc:  # raised where no handler turned it into a response
            if started:
                raise
            await _send_json(send, scope, 413, str(exc.detail))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, scope: Scope, status: int, message: str) -> None:
    """A JSON error sent before the body is read; the server reads and drops what the client
    still sends, so the client gets the answer rather than a reset connection."""
    path = scope.get("path", "")
    body = json.dumps(error_body(path, status, message), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": error_status(path, status),
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class AccessLogMiddleware:
    """One log line per request; the routes leave the caller and the question in `scope["state"]`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def watched_send(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            self._log(scope, state, status, (time.perf_counter() - start) * 1000)

    def _log(self, scope: Scope, state: dict[str, Any], status: int, ms: float) -> None:
        path = scope.get("path", "")
        caller = state.get("caller")
        role = getattr(caller, "role", "-")
        key = getattr(caller, "name", "-")
        fields: dict[str, Any] = {"method": scope.get("method"), "path": path, "status": status,
                                  "role": role, "key": key, "duration_ms": round(ms, 1)}
        fmt, args = "%s %s %d role=%s key=%s %.0f ms", [fields["method"], path, status, role, key, ms]
        question = state.get("question")
        if self.settings.log_questions and question:
            fmt += " question=%r"
            args.append(question)
            fields["question"] = question
        level = logging.DEBUG if path == "/health" else logging.INFO  # probes would drown the log
        logger.log(level, fmt, *args, extra={"fp_request": fields})
