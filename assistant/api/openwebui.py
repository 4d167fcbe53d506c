"""Our citations in the shape Open WebUI reads, so its numbered chips open our numbered sources.

Why: Open WebUI, connected to this API as an OpenAI model, shows a model's sources as chips
under the answer and turns each « [n] » of the text into a link to the n-th one — but only
from its own `sources` structure; our `citations` field (kept for every other client) means
nothing to it. Sending the same citations once more in that structure, under the key its
middleware forwards, makes our [1], [2]… open the right passage, page and document.

Recorded shapes (open-webui/open-webui, read at the commits named; ideas taken, no code):

- backend/open_webui/utils/middleware.py @000032ed1cfec98667bbf62795b0f8e0c76025b5,
  `process_chat_response`: streamed, a chunk whose `choices[0].delta` is empty is forwarded
  whole to the browser as a `chat:completion` event (`stream_body_handler`: `if delta: … else:
  await event_emitter({"type": "chat:completion", "data": data})`); not streamed, the whole
  response body is forwarded as one `chat:completion` event when its message content is not
  empty. (The same file's own retrieval sends its sources as `{"sources": [...]}` through the
  same event; the newest version, read through the index, keeps both paths.)
  A streamed chunk carrying an `event` key has that event emitted as is (`if "event" in data
  and not request.state.direct: await event_emitter(data["event"])`), for connections an
  administrator set up (not a user's « direct » one).
- src/lib/components/chat/Chat.svelte @002b16df89715ad3e5d5ae9f39f5e5764f064d61,
  `chatCompletionEventHandler`: `const { …, sources, … } = data; if (sources) message.sources =
  sources` (later versions: only while the message has none) — so the key is `sources`, on the
  chunk with the empty delta (stream) or on the completion object (non-stream);
  `chatEventHandler`: an event `{"type": "source" | "citation", "data": <one source>}` is pushed
  onto `message.sources`.
- backend/open_webui/socket/main.py @0117646cc52996a46f8521469d6e4b2f116f7664, `get_event_emitter`:
  every event goes to the browser; newer versions (seen through the index) also append the data
  of a `source`/`citation` event to the message's stored `sources`, and their browser no longer
  saves the whole chat after an answer — so there, sources that arrive only as the `sources`
  key are shown but not kept, while `source` events are both shown and kept.
- src/lib/components/chat/Messages/Citations.svelte @023b1e735af30443f236ccb9ea7ce67e41891fb1:
  each `source` holds parallel lists `document` and `metadata`; every (document, metadata)
  pair is grouped under `metadata.source ?? source.id`, labelled `metadata.name` (else
  `source.name`), and « [n] » opens the n-th group (`showSourceModal`: `citations[n - 1]`).
- src/lib/components/chat/Messages/ContentRenderer.svelte @023b1e735af30443f236ccb9ea7ce67e41891fb1,
  `getSourceIds`: the chip of « [n] » is the n-th distinct label (`metadata.name`, else an
  http(s) `metadata.source`, else `source.name`).
- src/lib/components/chat/Messages/Citations/CitationModal.svelte @023b1e735af30443f236ccb9ea7ce67e41891fb1:
  `metadata.page` is shown plus one (a 0-based page); `metadata.file_id` would link to Open
  WebUI's own file store and `metadata.source_url` (http) to a page — neither is ours to set.

Hence one source per citation, in citation order, each with one document (the excerpt), a
label and a group id unique to its number: the n-th group and the n-th chip are our [n]. A
stream sends them twice, in this order: one `source` event per citation (each in a chunk with
an empty delta, `openwebui_source_events`), then the `sources` list on the last chunk; a
browser that already holds the events keeps them (newer versions), an older one replaces them
with the same list. A response that is not streamed has only the `sources` key (its `event`
keys are not read).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

OPENWEBUI_SOURCES_KEY = "sources"  # top-level key of the last stream chunk and of the completion object
OPENWEBUI_EVENT_KEY = "event"  # top-level key of a stream chunk whose value Open WebUI emits as an event


def _label(c: dict[str, Any]) -> str:
    title = str(c.get("title") or PurePath(str(c.get("source") or "")).name or "Document")
    page = c.get("page")
    return f"{title} — p. {page}" if page not in (None, "") else title


def openwebui_sources(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open WebUI's `sources` for our citation dicts (keys n, source, title, page, excerpt,
    fabrique, territories, doc_id, doc_type, year, section), in citation order.

    Labels are made unique (a second passage of the same page gets « [n] ») because Open WebUI
    numbers chips by distinct label; a file is named by its name only, never its server path.
    """
    out: list[dict[str, Any]] = []
    labels: set[str] = set()
    for i, c in enumerate(citations, start=1):
        n = c.get("n") or i
        file = PurePath(str(c.get("source") or "")).name
        doc = str(c.get("doc_id") or file or n)
        label = _label(c)
        if label in labels:
            label = f"{label} [{n}]"
        labels.add(label)
        meta: dict[str, Any] = {
            "source": f"{doc}#{n}",  # the group of « [n] »: one per citation, never merged
            "name": label,
            "n": n,
            "doc_id": c.get("doc_id"),
            "title": c.get("title"),
            "file": file,
            "fabrique": c.get("fabrique"),
            "territories": list(c.get("territories") or []),
            "doc_type": c.get("doc_type"),
            "year": c.get("year"),
            "section": c.get("section"),
        }
        page = c.get("page")
        if isinstance(page, int) and not isinstance(page, bool) and page >= 1:
            meta["page"] = page - 1  # Open WebUI shows page + 1
        out.append({
            "source": {"id": doc, "name": str(c.get("title") or file or doc)},
            "document": [str(c.get("excerpt") or "")],
            "metadata": [meta],
        })
    return out


def openwebui_source_events(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Open WebUI `source` event per citation, in citation order: each goes, under
    `OPENWEBUI_EVENT_KEY`, in its own stream chunk (empty delta) before the last chunk."""
    return [{"type": "source", "data": source} for source in openwebui_sources(citations)]
