"""Server-Sent Events for answers and uploads, without blocking the event loop.

Why these shapes: an answer written by an LLM takes seconds, an upload's indexing minutes;
a client that sees the text arrive, or the files indexed one by one, knows the service is
working. The service's calls are synchronous (a model, SQLite, Chroma), so every generator
here is a plain one, stepped in the thread pool (`iterate_in_threadpool`), so eight clients
streaming at once never stall the server, and closed when its client leaves.
Work that reports progress through a callback (uploads) runs in its own thread and hands
its events over a queue.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from assistant.access import AccessDenied
from assistant.service import AnswerStream, StoreError

logger = logging.getLogger("fp_assistant.api")

T = TypeVar("T")
Progress = Callable[[int, int, str], None]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
STREAM_FAILED = "La réponse n'a pas pu être terminée : le moteur de réponse a échoué en cours de route."


def sse_event(event: str | None, data: Any) -> str:
    """One event: `event: <name>` (omitted for OpenAI chunks) and its JSON on one `data:` line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def sse_response(events: Iterable[str]) -> StreamingResponse:
    return StreamingResponse(closing_on_disconnect(events), media_type="text/event-stream",
                             headers=dict(SSE_HEADERS))


async def closing_on_disconnect(events: Iterable[str]) -> AsyncIterator[str]:
    """Step the synchronous `events` in the thread pool, and close them when the client goes.

    Why: Starlette stops reading a stream whose client has left but leaves its generator
    suspended until garbage collection. A model writing an answer behind it then goes on
    generating for nobody, and on a one-slot server (llama.cpp) the next user waits for it.
    Closing the generator closes the HTTP stream to the model, which stops.
    """
    iterator = iter(events)
    try:
        async for event in iterate_in_threadpool(iterator):
            yield event
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):  # the client left: this runs while cancelled
                await anyio.to_thread.run_sync(close)


def wants_stream(flag: bool, accept: str | None) -> bool:
    """`stream: true` in the body, or a client that only accepts an event stream."""
    return flag or "text/event-stream" in (accept or "")


def text_pieces(piece: str) -> list[str]:
    """A long piece cut at line ends (the extractive back-end gives its whole text at once)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", piece) or [piece]


def failure_message(exc: BaseException) -> str:
    """What a stream tells its client when the work fails after the response has started."""
    if isinstance(exc, AccessDenied):
        return exc.message
    if isinstance(exc, StoreError | ValueError):
        text = str(exc)
        return text[:1].upper() + text[1:]
    return STREAM_FAILED


def answer_events(stream: AnswerStream) -> Iterator[str]:
    """`piece` events as the text comes, then `answer` (the final JSON, citations included),
    then `done`. A failure mid-way sends `error` {"detail": …} instead."""
    try:
        for piece in stream:
            for part in text_pieces(piece):
                yield sse_event("piece", {"text": part})
        final = stream.answer.as_json()
    except Exception as exc:  # noqa: BLE001 - the response has started: report it in the stream
        logger.error("flux de réponse interrompu", exc_info=exc)
        yield sse_event("error", {"detail": failure_message(exc)})
        return
    yield sse_event("answer", final)
    yield sse_event("done", {})


def progress_events(work: Callable[[Progress], T], result_events: Callable[[T], list[str]]) -> Iterator[str]:
    """Run `work(progress)` in a thread; yield `progress` {done, total, file} as it reports,
    then the events `result_events` makes of its result (or `error` {"detail": …}).

    If the client goes away the work still finishes (an ingest is not left half done).
    """
    events: queue.Queue[str | None] = queue.Queue()

    def progress(done: int, total: int, path: str) -> None:
        name = Path(path).name if path else ""
        events.put(sse_event("progress", {"done": done, "total": total, "file": name}))

    def run() -> None:
        try:
            for event in result_events(work(progress)):
                events.put(event)
        except Exception as exc:  # noqa: BLE001 - reported to the client, logged here
            logger.error("tâche en flux interrompue", exc_info=exc)
            events.put(sse_event("error", {"detail": failure_message(exc)}))
        finally:
            events.put(None)

    threading.Thread(target=run, name="fp-api-progress", daemon=True).start()
    while (event := events.get()) is not None:
        yield event
