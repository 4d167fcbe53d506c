"""Open WebUI's background tasks (title, tags, follow-ups…), answered from the chat and the catalog.

Why: after each answer, Open WebUI asks the chat's own model for a title, tags and follow-up
suggestions, by sending one user message that starts « ### Task: » and quotes the chat. Sent
to this assistant as a question, such a prompt was refused 413 when long (the question-length
limit) or cost a full retrieval of 4–9 s for a reply nobody reads as an answer. What these tasks
need is already in the prompt (the questions, and our answers' « Sources : » lists) and in the
catalog of the index (which fabrique and territories each document belongs to), so they are
answered here, in French, with no retrieval and no embedding — in microseconds.

Recorded shapes (open-webui/open-webui, read at the commits named; ideas taken, no code):

- backend/open_webui/routers/tasks.py @074d48839d00c84107a99e43e2d36a9413e027a5 — each task
  (`generate_title`, `generate_chat_tags`, `generate_follow_ups`, `generate_queries`,
  `generate_autocompletion`, `generate_emoji`) posts to the chat model
  `{"model", "messages": [{"role": "user", "content": <template filled>}], "stream": false,
  "metadata": {..., "task": ...}}` (title and emoji add `max_completion_tokens`).
- backend/open_webui/config.py @00b1c6bcaa3c473e7faeb8254751b9411f2c0b91 — the default
  templates start « ### Task: » and name the JSON expected back: `{ "title": "…" }`,
  `{ "tags": ["…"] }`, `{ "follow_ups": ["…?"] }`, `{ "queries": ["…"] }`, autocomplete
  `{ "text": "…" }` (its `<type>` and `<text>` follow the history); the chat is quoted between
  `<chat_history>` and `</chat_history>` (`{{MESSAGES:END:2}}` for a title, `:6` otherwise).
  The emoji template is the exception: « Your task is to reflect the speaker's likely facial
  expression through a fitting emoji… », and its reply is the emoji itself.
- backend/open_webui/utils/misc.py @0117faac27c8e99c68d1fc8b4ad0fbceae8d6581,
  `get_messages_content`: the history is one « ROLE: content » line per message (role upper
  case), joined by newlines; a message's own newlines stay as they are.
- backend/open_webui/utils/middleware.py @000032ed1cfec98667bbf62795b0f8e0c76025b5,
  `background_tasks_handler`: the reply's `choices[0].message.content` is cut from its first
  « { » to its last « } » and read with `json.loads(...).get("title" | "tags" | "follow_ups")`;
  anything else is dropped silently. So a reply is always one JSON object of the expected key.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from assistant.answering.frtext import fold

KINDS = ("title", "tags", "follow_ups", "queries", "autocomplete", "emoji", "other")
CATALOG_KINDS = frozenset({"tags", "follow_ups", "autocomplete"})  # the ones that read the index's catalog

# What each known task expects back: the JSON key Open WebUI reads (the emoji task reads text)
_KEYS = {"title": "title", "tags": "tags", "follow_ups": "follow_ups", "queries": "queries",
         "autocomplete": "text"}
_KIND_OF_KEY = {key: kind for kind, key in _KEYS.items()}

_TASK = re.compile(r"^\s*###\s*task\s*:", re.IGNORECASE)
_EMOJI = re.compile(r"^\s*your task is to reflect the speaker'?s likely facial expression", re.IGNORECASE)
_FIRST_KEY = re.compile(r"\{\s*\\?\"(\w+)\\?\"\s*:\s*(\[|\{|\"|-?\d|true|false|null)?")
_HISTORY = re.compile(r"<chat_history>\s*\n?(.*)\n?\s*</chat_history>", re.DOTALL)
_ROLE = re.compile(r"^(USER|ASSISTANT|SYSTEM|TOOL|DEVELOPER): ?(.*)$")
# Our answers end with « Sources : » then « - [1] Titre — p. 3 (Lorient) — fichier.pdf »
# (assistant/api/openai_compat.py, `sources_block`); the title may itself hold « — ».
SOURCES_HEADING = "Sources :"
_SOURCE_LINE = re.compile(
    r"^\s*-\s*\[(?P<n>\d+)\]\s+(?P<title>.+) — p\. (?P<page>\S+) \((?P<where>.*)\) — (?P<file>[^—]+?)\s*$")
_OPENERS = re.compile(  # how questions begin, not what they are about: left out of a title
    r"^(?:(?:bonjour|salut)\s*[,!]?\s*)?"
    r"(?:(?:est[- ]ce que|qu'est[- ]ce que|qu'est[- ]ce qu'|est[- ]ce qu')\s*"
    r"|(?:peux|pourrais|pouvez|pourriez)[- ](?:tu|vous)\s+(?:me\s+|m'|nous\s+)?"
    r"|(?:dis|dites)[- ]moi\s+(?:si\s+|comment\s+|quels?\s+|quelles?\s+)?"
    r"|(?:je (?:cherche|voudrais|souhaite|veux)|j'aimerais)\s+(?:savoir\s+|connaitre\s+|connaître\s+)?"
    r"(?:si\s+|comment\s+)?"
    r"|(?:quel(?:le)?s? (?:sont|est|étaient|était|etaient|etait) (?:les |le |la |l'))"
    r"|(?:qui (?:sont|est) (?:les |le |la |l'))"
    r")",
    re.IGNORECASE,
)
TITLE_MAX = 60
TAG_MAX = 60
TAGS = 5
FOLLOW_UPS = 5
EMOJI = "🙂"  # the facial expression of someone reading cited passages


@dataclass(frozen=True)
class Doc:
    """What a task needs of one document the caller may see (from its registry row)."""

    title: str
    file: str
    fabrique: str
    fabrique_title: str
    territories: tuple[str, ...]
    doc_type: str


def catalog_docs(records: Iterable[Any]) -> list[Doc]:
    """The indexed documents among `records` (rows the caller may see: the service filters them
    by audience), as `Doc`s. A failed row has no metadata and gives nothing."""
    out = []
    for r in records:
        if getattr(r, "status", "") == "failed":
            continue
        m = getattr(r, "meta", None) or {}
        fid = str(m.get("fabrique") or "")
        out.append(Doc(title=str(m.get("title") or ""), file=PurePath(str(getattr(r, "path", "") or "")).name,
                       fabrique=fid, fabrique_title=str(m.get("fabrique_title") or fid),
                       territories=tuple(str(t) for t in m.get("territories") or [] if t),
                       doc_type=str(m.get("doc_type") or "")))
    return out


# ---------------------------------------------------------------------------------- reading the prompt

def task_kind(text: str) -> str | None:
    """Which Open WebUI task `text` is (one of `KINDS`), or None for an ordinary question.

    Cheap enough to run before every question: a prefix test, then (for a task only) the first
    JSON key of the prompt's instructions names the task — so a template an administrator
    rewrote is still recognised by what it asks back; an unknown task is « other ».
    """
    if not text:
        return None
    if _EMOJI.match(text):
        return "emoji"
    if not _TASK.match(text):
        return None
    key = _expected_key(text)[0]
    if key in _KIND_OF_KEY:
        return _KIND_OF_KEY[key]
    head = fold(_instructions(text)[:400])
    for word, kind in (("follow-up", "follow_ups"), ("follow up", "follow_ups"), ("tags", "tags"),
                       ("title", "title"), ("queries", "queries"), ("autocomplet", "autocomplete")):
        if word in head:
            return kind
    return "other"


def _instructions(text: str) -> str:
    """The prompt less the quoted chat (where a user's own JSON must not be read as the format)."""
    cut = text.find("<chat_history>")
    return text if cut < 0 else text[:cut]


def _expected_key(text: str) -> tuple[str | None, str | None]:
    """The first JSON key the instructions show, and how its value starts (« [ », « " »…)."""
    m = _FIRST_KEY.search(_instructions(text))
    return (m.group(1), m.group(2)) if m else (None, None)


def chat_history(text: str) -> list[tuple[str, str]]:
    """(role, content) of each message quoted between <chat_history> tags, roles lower case.

    Open WebUI writes one « ROLE: content » line per message; a line without a role prefix
    continues the message above (answers span many lines).
    """
    m = _HISTORY.search(text)
    if not m:
        return []
    messages: list[list[str]] = []
    for line in m.group(1).split("\n"):
        role = _ROLE.match(line)
        if role:
            messages.append([role.group(1).lower(), role.group(2)])
        elif messages:
            messages[-1][1] += "\n" + line
    return [(role, content.strip()) for role, content in messages]


def _questions(history: Sequence[tuple[str, str]]) -> list[str]:
    return [c for role, c in history if role == "user" and c and c != "None"]


@dataclass
class _Cited:
    """One line of an answer's « Sources : » list."""

    title: str
    file: str
    where: list[str]


def cited_sources(answer: str) -> list[_Cited]:
    """The numbered sources listed at the end of one of our answers."""
    cut = answer.rfind("\n" + SOURCES_HEADING)
    if cut < 0 and not answer.startswith(SOURCES_HEADING):
        return []
    out = []
    for line in answer[cut + 1:].split("\n")[1:]:
        m = _SOURCE_LINE.match(line)
        if m:
            where = [w.strip() for w in m.group("where").split(", ") if w.strip()]
            out.append(_Cited(m.group("title").strip(), m.group("file").strip(), where))
    return out


# ---------------------------------------------------------------------------------- the catalog

class _Catalog:
    """The documents a caller may see, with the lookups the tasks make."""

    def __init__(self, docs: Sequence[Doc]) -> None:
        self.docs = list(docs)
        self.titles = {d.fabrique: d.fabrique_title for d in self.docs if d.fabrique}
        self.territories = sorted({t for d in self.docs for t in d.territories}, key=fold)
        self._territory_keys = {fold(t): t for t in self.territories}
        self._fabrique_keys = {fold(title): fid for fid, title in self.titles.items()}

    def documents_of(self, cited: _Cited) -> list[Doc]:
        """The document a source line names: by title and file name, else by title, else by a
        file name only one document has (`cahier-des-charges.pdf` is in every fabrique)."""
        for match in ((lambda d: d.title == cited.title and d.file == cited.file),
                      (lambda d: d.title == cited.title)):
            found = [d for d in self.docs if match(d)]
            if found:
                return found[:1]
        by_file = [d for d in self.docs if d.file == cited.file]
        return by_file if len(by_file) == 1 else []

    def territory(self, name: str) -> str | None:
        return self._territory_keys.get(fold(name.strip()))

    def fabrique(self, name: str) -> str | None:
        return self._fabrique_keys.get(fold(name.strip()))

    def named_in(self, text: str) -> list[str]:
        """Territories this caller may see whose name the text contains (as whole words)."""
        folded = f" {_plain(text)} "
        return [t for t in self.territories if f" {_plain(t)} " in folded]

    def territories_of(self, fabrique: str) -> list[str]:
        """A fabrique's territories, those with most documents of their own first."""
        count: Counter[str] = Counter()
        for d in self.docs:
            if d.fabrique == fabrique:
                count.update({t: (1.0 if len(d.territories) == 1 else 0.1) for t in d.territories})
        return sorted(count, key=lambda t: (-count[t], fold(t)))

    def has(self, territory: str, doc_type: str) -> bool:
        """Does a document of this type speak of this territory alone (its roadmap, its seminar)?"""
        return any(d.doc_type == doc_type and d.territories == (territory,) for d in self.docs)

    def has_publication(self, fabrique: str) -> bool:
        return any(d.doc_type == "publication" and d.fabrique == fabrique for d in self.docs)

    def roadmaps(self) -> list[str]:
        return sorted({t for d in self.docs if d.doc_type == "feuille_de_route" for t in d.territories},
                      key=fold)


def _plain(text: str) -> str:
    return " ".join(re.findall(r"[0-9a-z]+", fold(text)))


@dataclass
class _Focus:
    """What a chat is about, as far as the catalog can tell: fabriques and territories, weighted."""

    fabriques: Counter[str]
    territories: Counter[str]
    asked: list[str]  # territories the last question names


def _focus(history: Sequence[tuple[str, str]], catalog: _Catalog, last_only: bool = False) -> _Focus:
    """Fabriques and territories of the cited documents (a document of many territories counts
    little for each), plus the known territories the questions name, the last one most."""
    fabriques: Counter[str] = Counter()
    territories: Counter[str] = Counter()
    answers = [c for role, c in history if role == "assistant"]
    if last_only and answers and cited_sources(answers[-1]):
        answers = answers[-1:]
    for answer in answers:
        for cited in cited_sources(answer):
            docs = catalog.documents_of(cited)
            for d in docs:
                if d.fabrique:
                    fabriques[d.fabrique] += 1
                for t in d.territories:
                    territories[t] += 1 / len(d.territories)
            if not docs:  # not in this caller's catalog: only names it may see count
                names = [catalog.territory(w) for w in cited.where]
                known = [t for t in names if t]
                for t in known:
                    territories[t] += 1 / len(cited.where)
                for w in cited.where:
                    fid = catalog.fabrique(w)
                    if fid:
                        fabriques[fid] += 1
    questions = _questions(history)
    asked = catalog.named_in(questions[-1]) if questions else []
    for q in questions:
        for t in catalog.named_in(q):
            territories[t] += 1
    for t in asked:
        territories[t] += 2
    if not fabriques:  # nothing cited: the fabriques of the territories asked about
        for d in catalog.docs:
            if d.fabrique and set(asked) & set(d.territories):
                fabriques[d.fabrique] += 1
    return _Focus(fabriques, territories, asked)


def short_title(title: str, limit: int = TAG_MAX) -> str:
    """A fabrique's title short enough for a tag: before « : », without « Fabrique Prospective
    sur le … », cut at a word (« … ») past `limit` characters."""
    text = re.sub(r"^Fabrique [Pp]rospective (?:sur |de |du |des )?(?:les |la |le |l')?", "", title.strip())
    text = text.split(" : ")[0].strip().rstrip(" ?")
    text = text[:1].upper() + text[1:]
    return _cut(text, limit)


_DANGLING = frozenset("à au aux d' de des du dans en et l' la le les ou par pour sur un une".split())


def _cut(text: str, limit: int) -> str:
    """`text` cut at a word past `limit` characters, never on « de », « dans une »…, with « … »."""
    if len(text) <= limit:
        return text
    words = text[:limit + 1].split(" ")[:-1] or [text[:limit]]
    while len(words) > 1 and (fold(words[-1]) in _DANGLING or fold(words[-1]).endswith("'")):
        words.pop()
    return " ".join(words).rstrip(" ,;:—-–") + "…"


# ---------------------------------------------------------------------------------- replies

def task_reply(kind: str, text: str, records: Iterable[Any] = ()) -> str:
    """The reply to a task prompt of `kind` (from `task_kind`): the JSON Open WebUI parses (the
    emoji task: the emoji). `records` are the registry rows the caller may see."""
    history = chat_history(text)
    if kind == "emoji":
        return EMOJI
    if kind == "title":
        return _json({"title": title_of(history)})
    if kind == "queries":
        questions = _questions(history)
        return _json({"queries": questions[-1:]})
    catalog = _Catalog(catalog_docs(records)) if kind in CATALOG_KINDS else _Catalog([])
    if kind == "tags":
        return _json({"tags": tags_of(history, catalog)})
    if kind == "follow_ups":
        return _json({"follow_ups": follow_ups_of(history, catalog)})
    if kind == "autocomplete":
        return _json({"text": completion_of(text, catalog)})
    key, start = _expected_key(text)
    if not key:
        return "{}"
    empty: Any = {"[": [], "{": {}, '"': ""}.get(start or "", "")
    return _json({key: empty})


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def title_of(history: Sequence[tuple[str, str]]) -> str:
    """The last question, as a title: its opening words (« Quels sont les… », « Peux-tu… ») and
    final punctuation left out, cut at a word past `TITLE_MAX` characters."""
    questions = _questions(history)
    if not questions:
        return "Question sur les Fabriques Prospectives"
    text = " ".join(questions[-1].split())
    for _ in range(2):  # « Bonjour, peux-tu me dire… »
        text = _OPENERS.sub("", text, count=1).strip()
    text = text.rstrip(" ?!.…:;") or " ".join(questions[-1].split()).rstrip(" ?!.…:;")
    return _cut(text[:1].upper() + text[1:], TITLE_MAX)


def tags_of(history: Sequence[tuple[str, str]], catalog: _Catalog) -> list[str]:
    """The cited fabriques (their titles, shortened) then the territories the chat is about:
    named in the questions or cited on their own. Only names of documents the caller may see."""
    focus = _focus(history, catalog)
    tags = [short_title(catalog.titles[f]) for f, _ in focus.fabriques.most_common(2)]
    strong = [t for t, w in focus.territories.most_common() if w >= 0.5]
    tags += strong[:TAGS - len(tags)]
    return list(dict.fromkeys(tags))[:TAGS]


def follow_ups_of(history: Sequence[tuple[str, str]], catalog: _Catalog) -> list[str]:
    """Questions the corpus can answer next, about what the last answer cited: the roadmap of
    the territory asked about, the same question for the fabrique's other territories (« Et à
    Colmar ? », which the assistant rewrites with the chat), its partners, the fabrique's
    lessons, the local seminar of another territory of the chat, the difference between two of
    them; else the corpus's roadmaps. Only what documents the caller may see can answer."""
    focus = _focus(history, catalog, last_only=True)
    questions = _questions(history)
    last = fold(questions[-1]) if questions else ""
    ranked = [t for t, w in focus.territories.most_common() if w >= 0.5]
    here = (focus.asked or ranked or [None])[0]
    out: list[str] = []
    if here and catalog.has(here, "feuille_de_route") and "feuille de route" not in last:
        out.append(f"Que prévoit la feuille de route de {here} ?")
    seen = set(focus.asked) | set(ranked)
    others: list[str] = []
    for fid, _ in focus.fabriques.most_common():
        others += [t for t in catalog.territories_of(fid) if t not in seen and t not in others]
    out += [f"Et à {t} ?" for t in others[:2]]
    if here and "partenaire" not in last:
        out.append(f"Quels partenaires sont associés à la démarche à {here} ?")
    for fid, _ in focus.fabriques.most_common(1):
        if catalog.has_publication(fid) and "enseignement" not in last:
            name = short_title(catalog.titles[fid], 80)
            out.append(f"Quels enseignements retenir de la fabrique « {name} » ?")
    elsewhere = [t for t in ranked if t != here]
    out += [f"Que retenir du séminaire local de {t} ?" for t in elsewhere[:1]
            if catalog.has(t, "seminaire_local") and "seminaire" not in last]
    if here and elsewhere and "difference" not in last:
        out.append(f"Quelles différences entre {here} et {elsewhere[0]} ?")
    for t in catalog.roadmaps():
        if len(out) >= 3:
            break
        if t != here:
            out.append(f"Que prévoit la feuille de route de {t} ?")
    return list(dict.fromkeys(out))[:FOLLOW_UPS]


def completion_of(text: str, catalog: _Catalog) -> str:
    """The rest of a territory or fabrique name the text ends with (« … à Col » → « mar »), when
    only one name this caller may see starts that way; else nothing."""
    m = re.search(r"<text>(.*)</text>", text, re.DOTALL)
    typed = m.group(1) if m else ""
    if not typed or typed != typed.rstrip():
        return ""
    names = list(catalog.territories) + list(catalog.titles.values())
    words = typed.split(" ")
    for k in (3, 2, 1):
        tail = " ".join(words[-k:])
        if len(words) < k or len(tail) < 3:
            continue
        rests = {n[len(tail):] for n in names
                 if len(n) > len(tail) and fold(n[:len(tail)]) == fold(tail)}
        if len(rests) == 1:
            return rests.pop()
    return ""
