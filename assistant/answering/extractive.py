"""Answer a question from retrieved passages, in French, evidence first, with a [n] per quote.

One abstract `Answerer` and back-ends chosen by settings (`FP_LLM`), PrivateGPT-style:
`extractive` (default) quotes the passages themselves, so it runs offline with no model to
host and can never state what the documents do not say; `openai` (assistant/answering/llm.py)
asks any OpenAI-compatible endpoint to write the answer.

Evidence first: on text nobody here wrote, the raw search results held the answer more often
than any sentence picked out of them (the sentence that restates the question is not the one
that answers it; the answer usually comes a sentence or two later). So the answer quotes whole
passages, in the order the `lead` decision gives among retrieval's best, with the sentence
that best matches the question in bold; it never quotes less than the passage it leads with.
Whether to answer at all is the `answerable` decision. Both are small fitted models
(`assistant.answering.decisions`), scored on held-out folds by `fp-assistant eval --holdout`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from langchain_core.embeddings import Embeddings

from assistant.answering.answertype import expectation
from assistant.answering.citations import Citation
from assistant.answering.decisions import Models, absent_names, judge, load_models, passage_features
from assistant.answering.followup import rewrite_rules
from assistant.answering.frtext import (
    content_stems,
    coverage,
    fold,
    key_stems,
    looks_like_instruction,
    split_units,
)
from assistant.config import Settings, get_settings
from assistant.retriever import FABRIQUE_WIDE, Passage, own_territory, same_territory

Mode = Literal["answer", "compare"]
History = Sequence[tuple[str, str]]

REFUSAL = "Je n'ai pas trouvé de réponse dans le corpus."
LEAD_ANSWER = "D'après les documents du corpus :"
LEAD_UNSURE = ("Je n'ai pas trouvé de réponse sûre dans le corpus ; voici les passages qui s'approchent "
               "le plus de la question :")
LEAD_COMPARE = "Voici ce que disent les documents du corpus, territoire par territoire :"
LEADS_TITLE = "Pistes les plus proches :"
NATIONAL_ROW = "Niveau national / fabrique"
QUOTES = 3  # passages an answer quotes
WITHHELD = "[…]"  # what stands in a quote for a sentence that speaks to the assistant


@dataclass
class Lead:
    """A place to look when there is no answer: the closest passages, for the user to judge."""

    title: str
    source: str
    page: int
    excerpt: str
    doc_id: str = ""
    fabrique: str = ""
    territories: list[str] = field(default_factory=list)
    score: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """What the user reads (`text`, French, [n] markers) and everything needed to check it."""

    text: str
    grounded: bool
    citations: list[Citation] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)
    mode: str = "answer"
    question: str = ""  # the question actually answered (after follow-up rewriting)
    evidence: float | None = None
    backend: str = "extractive"
    notes: list[str] = field(default_factory=list)
    sure: bool = True  # False: the evidence is shown, but it may not answer the question

    @property
    def refused(self) -> bool:
        return self.text.startswith(REFUSAL)

    def as_json(self) -> dict[str, Any]:
        """Public JSON: answer, grounded, citations (+ mode, rows, leads, evidence…)."""
        keys = ("n", "source", "title", "page", "fabrique", "territories", "doc_type", "excerpt",
                "doc_id", "year", "section", "ocr")
        return {
            "answer": self.text,
            "grounded": self.grounded,
            "citations": [{k: getattr(c, k) for k in keys} for c in self.citations],
            "mode": self.mode,
            "rows": self.rows,
            "leads": [lead.as_json() for lead in self.leads],
            "question": self.question,
            "evidence": None if self.evidence is None else round(self.evidence, 4),
            "backend": self.backend,
            "notes": self.notes,
            "sure": self.sure,
        }


class AnswerStream:
    """Text pieces as they come; `.answer` is the final, cleaned Answer once consumed.

    The streamed pieces are the raw text (a UI shows them as they arrive, then replaces them
    with `answer.text`, whose citations are renumbered and checked).
    """

    def __init__(self, pieces: Iterator[str], finish: Callable[[str], Answer]) -> None:
        self._pieces = pieces
        self._finish = finish
        self._parts: list[str] = []
        self._answer: Answer | None = None
        self._started = False

    def __iter__(self) -> Iterator[str]:
        if self._started:
            return
        self._started = True
        for piece in self._pieces:
            if piece:
                self._parts.append(piece)
                yield piece
        self._answer = self._finish("".join(self._parts))

    def close(self) -> None:
        """Stop the writing (the reader has left): closes the model's stream, which stops it."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None
        return self._answer


# --------------------------------------------------------------------------- evidence


@dataclass
class Evidence:
    """The two decisions on one question's passages, and what a refusal says is missing."""

    score: float  # P(the passages answer the question), the `answerable` model
    refuse: bool
    order: list[int] = field(default_factory=list)  # passages, best evidence first (retrieval's head)
    probs: list[float] = field(default_factory=list)  # P(holds the answer) of each of those
    missing: str = ""  # the sentence a refusal adds: what the question asks and no passage gives
    sure: bool = True  # the `answerable` probability reaches the model's `confident` level


def assess(question: str, passages: Sequence[Passage], models: Models | None = None) -> Evidence:
    if not passages or not question.strip():
        return Evidence(0.0, True)
    j = judge(question, passages, models)
    missing = ""
    if j.refuse:
        absent = absent_names(question, passages)
        expect = expectation(question)
        if absent:
            missing = f"Aucun des passages trouvés ne mentionne {' ni '.join(f'« {a} »' for a in absent)}."
        elif expect is not None and j.features["type_missing"]:
            missing = f"La question demande {expect.label} ; aucun des passages trouvés n'en donne."
    return Evidence(round(j.answerable, 4), j.refuse, j.order, j.lead_probs, missing, j.sure)


# --------------------------------------------------------------------------- quoting


def _units(text: str) -> list[str]:
    """The passage's sentences and list items, with what speaks to the assistant withheld
    (text inside a document is data, never an instruction to repeat)."""
    return [WITHHELD if looks_like_instruction(u.text) else u.text for u in split_units(text)]


def best_sentence(question: str, units: Sequence[str]) -> int:
    """The sentence that shares most of the question's words (its focus weighing most)."""
    qstems, keys = content_stems(question), key_stems(question)
    scores = [coverage(qstems, set(content_stems(u, generic=True)), keys) if u != WITHHELD else -1.0
              for u in units]
    return max(range(len(units)), key=lambda i: (scores[i], -i)) if units else -1


def quote(question: str, passage: Passage, *, bold: bool = True, limit: int = 0) -> str:
    """The passage as one paragraph, its best-matching sentence in bold; with `limit`, the
    shortest window around that sentence (and the one after it, where the answer often is)
    that fits."""
    units = _units(passage.text)
    best = best_sentence(question, units)
    if limit and best >= 0:
        lo, hi = best, min(best + 2, len(units))
        while lo > 0 and len(" ".join(units[lo - 1:hi])) <= limit:
            lo -= 1
        units, best = units[lo:hi], best - lo
    parts = [f"**{u}**" if bold and i == best and u != WITHHELD else u for i, u in enumerate(units)]
    text = re.sub(r"\s+", " ", " ".join(parts)).strip()
    if not limit:
        return text
    if len(text.replace("**", "")) > limit:  # one sentence longer than the room: cut at a word, no bold
        plain = re.sub(r"\s+", " ", " ".join(units)).strip()
        text = plain[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return text.replace("|", "/")


def _title(p: Passage) -> str:
    return str(p.meta.get("title") or "").strip() or p.source.rsplit("/", 1)[-1] or "sans titre"


def fabrique_label(p: Passage) -> str:
    """A fabrique is shown by its title, never by its identifier: with no title known, the
    document's own title says where the passage comes from."""
    ftitle = str(p.meta.get("fabrique_title") or "").strip()
    if not ftitle or not p.meta.get("fabrique"):  # never a title left over from another fabrique
        return f"Document : {_title(p)}"
    return ftitle if fold(ftitle).startswith("fabrique") else f"Fabrique « {ftitle} »"


def passage_label(p: Passage) -> str:
    """Its territory when it has one, else its fabrique, else the document's own title."""
    terrs = p.meta.get("territories") or []
    return str(terrs[0]) if len(terrs) == 1 else fabrique_label(p)


def _citation(n: int, p: Passage, question: str) -> Citation:
    return Citation.from_passage(n, p, quote(question, p, bold=False))


def make_leads(evidence: Evidence, passages: Sequence[Passage], k: int = 3,
               question: str = "") -> list[Lead]:
    """The k closest passages (one per document page), best evidence first."""
    order = evidence.order + [i for i in range(len(passages)) if i not in evidence.order]
    leads: list[Lead] = []
    seen: set[tuple[str, int]] = set()
    for i in order:
        p = passages[i]
        key = (str(p.meta.get("doc_id") or p.source), p.page)
        if key in seen:
            continue
        seen.add(key)
        leads.append(Lead(
            title=_title(p), source=p.source, page=p.page, excerpt=quote(question, p, bold=False, limit=220),
            doc_id=str(p.meta.get("doc_id", "")), fabrique=str(p.meta.get("fabrique", "")),
            territories=list(p.meta.get("territories") or []),
            score=round(evidence.probs[i], 4) if i < len(evidence.probs) else 0.0))
        if len(leads) == k:
            break
    return leads


def refusal(question: str, passages: Sequence[Passage], evidence: Evidence, *, mode: str = "answer",
            backend: str = "extractive", notes: list[str] | None = None) -> Answer:
    """"Je n'ai pas trouvé…", what is missing when it can be named, and the closest leads."""
    leads = make_leads(evidence, passages, question=question)
    lines = [REFUSAL] + ([evidence.missing] if evidence.missing else [])
    if leads:
        lines += ["", LEADS_TITLE]
        lines += [f"- {lead.title}, p. {lead.page} — « {lead.excerpt} »" for lead in leads]
    return Answer("\n".join(lines), False, [], [], leads, mode, question, evidence.score, backend,
                  notes or [])


def compose(question: str, passages: Sequence[Passage], ev: Evidence, backend: str = "extractive") -> Answer:
    """The best evidence first: up to `QUOTES` passages, each under where it comes from."""
    picks: list[int] = []
    seen: set[str] = set()
    for i in ev.order:
        text = " ".join(passages[i].text.split())
        if text in seen:
            continue
        seen.add(text)
        picks.append(i)
        if len(picks) == QUOTES:
            break
    lines = [LEAD_ANSWER if ev.sure else LEAD_UNSURE]
    citations = []
    for n, i in enumerate(picks, start=1):
        p = passages[i]
        head = passage_label(p)
        where = f"p. {p.page}" if head.startswith("Document :") else f"{_title(p)}, p. {p.page}"
        lines += ["", f"**{head}** — {where}", f"> {quote(question, p)} [{n}]"]
        citations.append(_citation(n, p, question))
    return Answer("\n".join(lines), bool(citations), citations, [], [], "answer", question, ev.score, backend,
                  sure=ev.sure)


# --------------------------------------------------------------------------- comparison


def compare(question: str, passages: Sequence[Passage], ev: Evidence, *, backend: str = "extractive",
            cell: int = 380, models: Models | None = None) -> Answer:
    """One row per territory whose own documents were read, then the fabrique's view.

    A row tells an elected official « this territory did that », so it is keyed by the territory
    a document belongs to (its seminar report, its roadmap), never by a place a sentence names.
    Each row quotes its territory's passage the `lead` decision scores highest, with the
    sentence after its best match; rows come best evidence first. Syntheses, publications and
    terms of reference make the fabrique's row, last.
    """
    if not passages:
        return refusal(question, passages, ev, mode="compare", backend=backend)
    models = models or load_models()
    probs = [models.lead.prob(r) for r in passage_features(question, passages, k=len(passages))]
    groups: dict[str, list[int]] = {}
    names: list[str] = []
    for i in sorted(range(len(passages)), key=lambda i: -probs[i]):
        p = passages[i]
        terr = own_territory(p.meta)
        if terr is None:
            key = fabrique_label(p)
        else:
            key = next((n for n in names if n == terr or same_territory(n, terr)), terr)
            if key not in names:
                names.append(key)
        groups.setdefault(key, []).append(i)
    wide = [k for k in groups if k not in names]
    if len(wide) == 1 and passages[groups[wide[0]][0]].meta.get("fabrique_title"):
        groups[NATIONAL_ROW] = groups.pop(wide[0])
        wide = [NATIONAL_ROW]
    lines = [LEAD_COMPARE, "", "| Territoire | Approche | Autres extraits | Sources |", "|---|---|---|---|"]
    order: list[int] = []  # passage index of each citation number
    rows = []
    for label in names + wide:
        members = groups[label][:3]
        for i in members:
            if i not in order:
                order.append(i)
        nums = [order.index(i) + 1 for i in members]
        approach = f"{quote(question, passages[members[0]], limit=cell)} [{nums[0]}]"
        others = [f"{quote(question, passages[i], bold=False, limit=cell // 2)} [{n}]"
                  for i, n in zip(members[1:], nums[1:], strict=True)]
        lines.append(f"| {label} | {approach} | {' ; '.join(others) or '—'} | "
                     f"{' '.join(f'[{n}]' for n in nums)} |")
        rows.append({"territory": label, "approach": approach, "actions": others, "citations": nums})
    citations = [_citation(n, passages[i], question) for n, i in enumerate(order, start=1)]
    return Answer("\n".join(lines), True, citations, rows, [], "compare", question, ev.score, backend,
                  sure=ev.sure)


def compare_coverage(answer: Answer, expected_territories: Sequence[str]) -> float:
    """Share of the expected territories a comparison covers (0..1): a row of theirs, or one of
    their own documents (report, roadmap) cited. Names are matched as places because the gold
    and the index spell them differently."""
    expected = [t for t in dict.fromkeys(str(t).strip() for t in expected_territories) if t]
    if not expected:
        return 1.0
    present = [str(r.get("territory") or "") for r in answer.rows]
    present += [str(c.territories[0]) for c in answer.citations
                if len(c.territories) == 1 and c.doc_type not in FABRIQUE_WIDE]
    present = [n for n in dict.fromkeys(present) if n]
    return sum(any(t == n or same_territory(t, n) for n in present) for t in expected) / len(expected)


def is_refusal_text(text: str) -> bool:
    """Did a model say it found nothing (in any of the ways it tends to)?"""
    f = fold(text)
    return bool(re.search(r"je n'ai (pas|rien) trouve|pas de reponse dans le corpus|"
                          r"ne (permettent|permet) pas de repondre", f))


# --------------------------------------------------------------------------- back-ends


class Answerer(ABC):
    """One interface for every back-end; which one runs is a setting (`FP_LLM`)."""

    name = "abstract"

    def __init__(self, settings: Settings | None = None, embeddings: Embeddings | None = None) -> None:
        self.settings = settings or get_settings()
        self.models = load_models(self.settings.decisions) if self.settings.decisions else load_models()

    def evidence(self, question: str, passages: Sequence[Passage]) -> Evidence:
        return assess(question, passages, self.models)

    def too_weak(self, ev: Evidence) -> bool:
        return ev.refuse

    def rewrite(self, question: str, history: History | None,
                known_territories: Sequence[str] | None = None) -> str:
        """The standalone question to retrieve and answer for (follow-ups resolved)."""
        return rewrite_rules(question, history, known_territories)

    @abstractmethod
    def answer(self, question: str, passages: list[Passage], *, mode: Mode = "answer",
               history: History | None = None) -> Answer:
        """A complete answer (or a refusal with leads)."""

    @abstractmethod
    def stream(self, question: str, passages: list[Passage], *, mode: Mode = "answer",
               history: History | None = None) -> AnswerStream:
        """The same answer as text pieces; `.answer` afterwards is the cleaned Answer."""


class ExtractiveAnswerer(Answerer):
    """Quotes the passages that hold the best evidence, each with its [n].

    The only words not taken from a source are the fixed connective phrases (lead line,
    headings), so nothing can be invented; the price is a less fluent answer.
    """

    name = "extractive"

    def answer(self, question: str, passages: list[Passage], *, mode: Mode = "answer",
               history: History | None = None) -> Answer:
        q = self.rewrite(question, history) if history else question
        ev = self.evidence(q, passages)
        if self.too_weak(ev):
            return refusal(q, passages, ev, mode=mode, backend=self.name)
        if mode == "compare":
            return compare(q, passages, ev, backend=self.name, models=self.models)
        return compose(q, passages, ev, self.name)

    def stream(self, question: str, passages: list[Passage], *, mode: Mode = "answer",
               history: History | None = None) -> AnswerStream:
        result = self.answer(question, passages, mode=mode, history=history)
        pieces = iter(re.findall(r"[^\n]*\n|[^\n]+$", result.text))
        return AnswerStream(pieces, lambda _text: result)
