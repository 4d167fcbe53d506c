"""Answers measured on fabriques the assistant has not seen, thresholds calibrated elsewhere.

The gold questions were written from the sample corpus and the refusal rules tuned on them,
so figures on those questions flatter the product. This evaluation asks each fabrique's
gold questions twice:

- against the index **without** that fabrique's documents (excluded by a filter on both
  sides of the search): nothing left can answer, so the right answer is a refusal;
- against the full index: the right answer is an answer, whose first quote should hold an
  expected term (*lead*).

The two parameters that decide refusal (the evidence threshold and the cosine at which a
question's term counts as said in other words) are calibrated on the other twelve
fabriques' questions and applied to the held-out one (leave-one-fabrique-out); the figures
reported are the held-out ones. The same run gives the "dev" figures (calibrated and
reported on all questions) for comparison, and the refusal rate on a separate set of
unanswerable questions (`tests/gold/unanswerable.yaml`), which is never used to calibrate.

Each question's evidence is computed once per condition; a decision for any pair of
parameters is then a comparison of numbers, so the calibration grid is free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assistant.evaluation.gold import GoldQuestion, holds_term
from assistant.retriever import Filters, Retriever, answer_context, compare_context

THRESHOLDS = [round(0.20 + 0.01 * i, 2) for i in range(41)]  # 0.20 … 0.60
SUPPORTS = [round(0.80 + 0.005 * i, 3) for i in range(21)]  # 0.800 … 0.900
CLOSENESS = [round(0.82 + 0.01 * i, 2) for i in range(10)] + [1.0]  # 0.82 … 0.91, 1.0 = never


@dataclass
class Observation:
    """One question in one condition: what the refusal decision depends on."""

    qid: str
    fabrique: str
    should_answer: bool
    score: float
    hard_refusal: bool  # nothing quotable, or the asked quantity given nowhere
    name_absent: bool  # a name of the question no passage gives
    term_support: float  # the weakest support of a term not said in the passages' words (1 = all said)
    dense: float = 0.0  # cosine of the whole question to its best sentence
    lead_ok: bool = False  # first quote holds an expected term (answerable, full index)
    kind: str = ""

    def refused(self, threshold: float, support: float, close: float = 1.0) -> bool:
        return (self.hard_refusal or self.name_absent or self.score < threshold
                or (self.term_support < support and self.dense < close))


def observe(question: str, passages: list[Any], answerer: Any) -> dict[str, Any]:
    """The evidence numbers of one question (the answerer must check answerability)."""
    ev = answerer.evidence(question, passages)
    names = [s for s in ev.supports if s.element.kind in ("nom", "fabrique")]
    terms = [s.value for s in ev.supports if s.element.kind == "terme"]
    return {
        "score": ev.score,
        "hard_refusal": bool(ev.missing) or not ev.candidates,
        "name_absent": any(s.value < 1.0 for s in names),
        "term_support": min(terms, default=1.0),
        "dense": ev.dense,
        "ev": ev,
    }


def _lead_ok(answerer: Any, q: GoldQuestion, passages: list[Any], ev: Any) -> bool:
    if not ev.candidates:
        return False
    ans = answerer.compose(q.question, passages, ev)
    return bool(ans.citations) and holds_term(ans.citations[0].excerpt, q.expect_terms)


def collect(retriever: Retriever, answerer: Any, settings: Any, questions: list[GoldQuestion],
            fabrique_of: dict[str, str], progress: Callable[[int, int, str], None] | None = None
            ) -> list[Observation]:
    """Both conditions for every answerable question whose sources belong to one fabrique."""
    todo = [q for q in questions if q.answerable and q.expect_sources]
    obs: list[Observation] = []
    for i, q in enumerate(todo):
        if progress:
            progress(i, len(todo), q.id)
        fabs = {fabrique_of.get(s, "") for s in q.expect_sources} - {""}
        if len(fabs) != 1:
            continue
        fab = fabs.pop()
        base = q.to_filters() or Filters()
        for should_answer in (True, False):
            filters = Filters(**{**base.__dict__, "exclude_fabrique": None if should_answer else fab})
            passages = answer_context(retriever, q.question, filters, settings)
            o = observe(q.question, passages, answerer)
            lead = should_answer and _lead_ok(answerer, q, passages, o["ev"])
            obs.append(Observation(q.id, fab, should_answer, o["score"], o["hard_refusal"],
                                   o["name_absent"], o["term_support"], o["dense"], lead, q.kind))
    return obs


Params = tuple[float, float, float]  # evidence threshold, term support, question closeness


def _balanced(obs: list[Observation], *params: float) -> tuple[float, float, float]:
    pos = [o for o in obs if o.should_answer]
    neg = [o for o in obs if not o.should_answer]
    answered = sum(not o.refused(*params) for o in pos) / max(len(pos), 1)
    refused = sum(o.refused(*params) for o in neg) / max(len(neg), 1)
    return (answered + refused) / 2, answered, refused


MAX_FALSE_REFUSALS = 0.05  # the product's bar: at most 5 % of answerable questions refused


def calibrate(obs: list[Observation]) -> Params:
    """The parameters that refuse the most should-refuse questions while refusing at most 5 %
    of the should-answer ones (the product's bar); when none keeps that bar, those with the
    fewest false refusals. Ties go to the strictest parameters: among settings that cost no
    measured answer, the one with the widest margin for questions this set does not cover
    (a wrong answer costs more trust than a refusal)."""
    def key(p: Params) -> tuple[float, ...]:
        _, answered, refused = _balanced(obs, *p)
        within = 1.0 - answered <= MAX_FALSE_REFUSALS + 1e-9
        return (within, round(refused, 6) if within else round(answered, 6), p[0], p[1], p[2])

    return max(((t, s, c) for t in THRESHOLDS for s in SUPPORTS for c in CLOSENESS), key=key)


def figures(obs: list[Observation], params: Callable[[str], Params]) -> dict[str, Any]:
    """Refusal accuracy (should refuse), false refusals and lead (should answer)."""
    pos = [o for o in obs if o.should_answer]
    neg = [o for o in obs if not o.should_answer]
    refused_ok = sum(o.refused(*params(o.fabrique)) for o in neg)
    false_ref = [o.qid for o in pos if o.refused(*params(o.fabrique))]
    answered = [o for o in pos if not o.refused(*params(o.fabrique))]
    return {
        "questions": len(pos),
        "refusal_accuracy": round(refused_ok / max(len(neg), 1), 3),
        "false_refusal_rate": round(len(false_ref) / max(len(pos), 1), 3),
        "lead": round(sum(o.lead_ok for o in answered) / max(len(answered), 1), 3),
        "false_refusals": false_ref,
        "not_refused": [o.qid for o in neg if not o.refused(*params(o.fabrique))],
    }


_LOCAL = ("seminaire_local", "feuille_de_route")


def compare_figures(retriever: Retriever, answerer: Any, settings: Any,
                    questions: list[GoldQuestion]) -> dict[str, Any]:
    """Compare coverage: for the gold comparison questions (full index), the share of the
    territories whose own documents are expected that get a row or a citation."""
    from assistant.answering.extractive import compare_coverage

    meta = {str(r.meta.get("doc_id")): r.meta for r in retriever.registry.all() if r.status != "failed"}
    scores = {}
    for q in questions:
        if q.kind != "comparaison":
            continue
        expected = [t for s in q.expect_sources for t in (meta.get(s, {}).get("territories") or [])
                    if len(meta.get(s, {}).get("territories") or []) == 1
                    and meta.get(s, {}).get("doc_type") in _LOCAL]
        if not expected:
            continue
        passages = compare_context(retriever, q.question, q.to_filters(), settings)
        ans = answerer.answer(q.question, passages, mode="compare")
        scores[q.id] = round(compare_coverage(ans, expected), 3)
    return {"questions": len(scores),
            "coverage": round(sum(scores.values()) / max(len(scores), 1), 3), "by_question": scores}


def load_unanswerable(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [q for q in data if isinstance(q, dict) and q.get("question")]


def evaluate_holdout_answers(retriever: Retriever, answerer: Any, settings: Any,
                             questions: list[GoldQuestion], unanswerable: list[dict[str, Any]],
                             progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Held-out (leave-one-fabrique-out) and dev figures, and the unanswerable set's."""
    fabrique_of = {str(r.meta.get("doc_id")): str(r.meta.get("fabrique") or "")
                   for r in retriever.registry.all() if r.status != "failed"}
    obs = collect(retriever, answerer, settings, questions, fabrique_of, progress)
    folds = sorted({o.fabrique for o in obs})
    per_fold = {f: calibrate([o for o in obs if o.fabrique != f]) for f in folds}
    overall = calibrate(obs)
    held = figures(obs, lambda f: per_fold[f])
    dev = figures(obs, lambda f: overall)
    # the separate unanswerable set: full index, parameters calibrated on all gold questions
    refused, kept = 0, []
    by_kind: dict[str, list[int]] = {}
    for item in unanswerable:
        passages = answer_context(retriever, item["question"], None, settings)
        o = observe(item["question"], passages, answerer)
        ob = Observation(str(item.get("id")), "", False, o["score"], o["hard_refusal"], o["name_absent"],
                         o["term_support"], o["dense"])
        ok = ob.refused(*overall)
        refused += ok
        by_kind.setdefault(str(item.get("kind", "")), [0, 0])
        by_kind[str(item.get("kind", ""))][0] += ok
        by_kind[str(item.get("kind", ""))][1] += 1
        if not ok:
            kept.append(ob.qid)
    return {
        "held_out": held,
        "dev": dev,
        "compare": compare_figures(retriever, answerer, settings, questions),
        "calibrated": {
            "threshold": overall[0],
            "term_support": overall[1],
            "question_support": overall[2],
            "per_fold": {f: {"threshold": t, "term_support": s, "question_support": c}
                         for f, (t, s, c) in per_fold.items()},
        },
        "unanswerable": {
            "questions": len(unanswerable),
            "refusal_accuracy": round(refused / max(len(unanswerable), 1), 3),
            "by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())},
            "answered": kept,
        },
    }
