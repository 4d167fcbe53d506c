"""Answers measured on what the decisions were not fitted on, beside retrieval alone.

Each question is asked once per condition and its passages' features are kept, so refitting
the two decisions (`assistant.answering.decisions`) for every fold costs no search:

- gold questions (`tests/gold/questions.yaml`), against the full index (the right answer is
  an answer) and against the index without their fabrique (nothing left can answer: the right
  answer is a refusal); their hors-corpus questions against the full index;
- the register set (`tests/gold/registers.yaml`): questions on documents written as public
  pages are (ANCT pages, interviews, partners' articles, regional press, communiqués,
  newsletters), answerable or not;
- the unanswerable set (`tests/gold/unanswerable.yaml`): never fitted on, only measured.

Folds: leave one fabrique out (fit on the other fabriques' questions, measure on its own) and
leave one writing register out (the sample's own reports are one register, each public-page
register another). Every answer figure stands beside the retrieval-alone baselines on the
same questions: the share whose first passage holds an expected term (`top1`) and whose first
three do (`top3`). The answer is never to do worse than showing the search results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.answering.decisions import (
    MAX_FALSE_REFUSALS,
    PASSAGE_FEATURES,
    QUESTION_FEATURES,
    ROWS,
    SURE_PRECISION,
    TOP_K,
    WEIGHTS,
    Models,
    confident_threshold,
    decide,
    fit_logistic,
    passage_features,
    question_features,
    refusal_threshold,
    with_lead,
)
from assistant.answering.extractive import QUOTES
from assistant.evaluation.gold import GoldQuestion, holds_term
from assistant.retriever import Filters, Retriever, answer_context, compare_context

OWN_REGISTER = "rapports"  # the sample's own documents: terms of reference, reports, roadmaps
# Pages written as public pages are (tests/gold/registers.yaml) declare no fabrique: the label read
# from their text may be missing or wrong, so leaving a fabrique out by its label would leave its
# pages in, and a question meant to be refused could still be answered. That condition reads only
# the sample's own documents.
PAGES_DIR = "pages-publiques/"


@dataclass
class Row:
    """One question in one condition: its passages' features and what the right answer is."""

    qid: str
    source: str  # "gold", "registers", "unanswerable"
    fabrique: str
    register: str
    should_answer: bool
    passages: list[dict[str, float]] = field(default_factory=list)  # the first TOP_K
    holds: list[bool] = field(default_factory=list)  # each of those holds an expected term
    question: dict[str, float] = field(default_factory=dict)  # question features but lead_p

    @property
    def top1(self) -> bool:
        return bool(self.holds[:1]) and self.holds[0]

    @property
    def top3(self) -> bool:
        return any(self.holds[:QUOTES])


def load_questions(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [q for q in data if isinstance(q, dict) and q.get("question")]


def _row(qid: str, source: str, fabrique: str, register: str, should_answer: bool, question: str,
         passages: Sequence[Any], terms: Sequence[str]) -> Row:
    feats = passage_features(question, passages)
    qf = question_features(question, passages, feats)
    holds = [holds_term(p.text, list(terms)) for p in passages[:TOP_K]] if terms else []
    return Row(qid, source, fabrique, register, should_answer, feats, holds, qf)


def collect(retriever: Retriever, settings: Any, gold: Sequence[GoldQuestion],
            registers: Sequence[dict[str, Any]], unanswerable: Sequence[dict[str, Any]],
            progress: Callable[[int, int, str], None] | None = None) -> list[Row]:
    """Every question in every condition (see the module's docstring)."""
    fabrique_of = {str(r.meta.get("doc_id")): str(r.meta.get("fabrique") or "")
                   for r in retriever.registry.all() if r.status != "failed"}
    todo: list[tuple[str, Any]] = [("gold", q) for q in gold]
    todo += [("registers", q) for q in registers] + [("unanswerable", q) for q in unanswerable]
    rows: list[Row] = []
    for i, (source, q) in enumerate(todo):
        if progress:
            progress(i, len(todo), str(q.id if source == "gold" else q.get("id")))
        if source == "gold":
            fabs = {fabrique_of.get(s, "") for s in q.expect_sources} - {""}
            base = q.to_filters() or Filters()
            if not q.answerable:
                passages = answer_context(retriever, q.question, q.to_filters(), settings)
                rows.append(_row(q.id, source, "", OWN_REGISTER, False, q.question, passages, []))
                continue
            if len(fabs) != 1:
                continue
            fab = fabs.pop()
            for should_answer in (True, False):
                filters = Filters(**{**base.__dict__, "exclude_fabrique": None if should_answer else fab})
                passages = answer_context(retriever, q.question, filters, settings)
                if not should_answer:
                    passages = [p for p in passages if PAGES_DIR not in p.source]
                rows.append(_row(q.id, source, fab, OWN_REGISTER, should_answer, q.question, passages,
                                 q.expect_terms if should_answer else []))
            continue
        answerable = str(q.get("kind")) != "hors_corpus" and bool(q.get("expect_terms"))
        passages = answer_context(retriever, q["question"], None, settings)
        rows.append(_row(str(q.get("id")), source, str(q.get("fabrique") or ""),
                         str(q.get("register") or source), answerable, q["question"], passages,
                         q.get("expect_terms") or []))
    return rows


# --------------------------------------------------------------------------- fitting


def fit_models(rows: Sequence[Row], max_false: float = MAX_FALSE_REFUSALS,
               sure: float = SURE_PRECISION) -> Models:
    """The lead model on the answerable rows' passages, then the refusal model on every row,
    with the lead model's best probability as one of its features; its refusal threshold refuses
    at most `max_false` of the answerable rows, its `confident` level keeps `sure` of them."""
    trainable = [r for r in rows if r.source != "unanswerable"]
    xs = [f for r in trainable if r.should_answer and r.holds for f in r.passages]
    ys = [h for r in trainable if r.should_answer and r.holds for h in r.holds]
    lead = fit_logistic(xs, ys, PASSAGE_FEATURES)
    qx = [with_lead(r.question, lead, r.passages) for r in trainable]
    qy = [r.should_answer for r in trainable]
    answerable = fit_logistic(qx, qy, QUESTION_FEATURES)
    answerable.threshold = refusal_threshold(answerable, qx, qy, max_false)
    answerable.confident = confident_threshold(answerable, qx, qy, sure)
    return Models(lead, answerable, {"rows": len(trainable), "passages": len(xs)})


@dataclass
class Outcome:
    """What the answer layer does with one row, under given models."""

    refused: bool
    lead: bool  # the first quote holds an expected term (False when refused)
    cite: bool  # one of the quotes does
    hedged: bool = False  # answered, but saying it is not a sure answer


def outcome(r: Row, models: Models, *, use_lead: bool = True, use_refusal: bool = True) -> Outcome:
    """What the answerer would do with this row's stored features (`decide`, as `judge` does)."""
    j = decide(models, r.passages, r.question)
    refused = use_refusal and j.refuse
    order = j.order if use_lead else list(range(len(r.passages)))
    quoted = [r.holds[i] for i in order[:QUOTES] if i < len(r.holds)]
    return Outcome(refused, not refused and bool(quoted) and quoted[0], not refused and any(quoted),
                   use_refusal and not refused and not j.sure)


def figures(rows: Sequence[Row], decide: Callable[[Row], Outcome]) -> dict[str, Any]:
    """Answer figures beside the retrieval-alone baselines, on the same questions."""
    pos = [r for r in rows if r.should_answer]
    neg = [r for r in rows if not r.should_answer]
    outs = {id(r): decide(r) for r in rows}
    answered = [r for r in pos if not outs[id(r)].refused]
    n = max(len(pos), 1)
    return {
        "answerable": len(pos),
        "unanswerable": len(neg),
        "top1": round(sum(r.top1 for r in pos) / n, 3),
        "top3": round(sum(r.top3 for r in pos) / n, 3),
        "lead": round(sum(outs[id(r)].lead for r in pos) / n, 3),
        "lead_answered": round(sum(outs[id(r)].lead for r in answered) / max(len(answered), 1), 3),
        "cite": round(sum(outs[id(r)].cite for r in pos) / n, 3),
        "false_refusal_rate": round(sum(outs[id(r)].refused for r in pos) / n, 3),
        "refusal_accuracy": round(sum(outs[id(r)].refused for r in neg) / max(len(neg), 1), 3)
        if neg else None,
        # refused, or answered with « pas de réponse sûre »: the user is told
        "flagged": round(sum(outs[id(r)].refused or outs[id(r)].hedged for r in neg) / max(len(neg), 1), 3)
        if neg else None,
        "hedged": round(sum(outs[id(r)].hedged for r in pos) / n, 3),
        "false_refusals": [r.qid for r in pos if outs[id(r)].refused],
        "not_refused": [r.qid for r in neg if not outs[id(r)].refused],
    }


def held_out(rows: Sequence[Row], key: Callable[[Row], str], *, max_false: float = MAX_FALSE_REFUSALS,
             sure: float = SURE_PRECISION, **switches: bool) -> dict[str, Any]:
    """Fit on every fold but one, decide on that one; figures pooled and per fold."""
    folds = sorted({key(r) for r in rows if r.source != "unanswerable" and key(r)})
    if len(folds) < 2:
        return {}  # one fold: nothing to fit on when it is left out
    models = {f: fit_models([r for r in rows if key(r) != f], max_false, sure) for f in folds}
    scored = [r for r in rows if key(r) in models]

    def decide(r: Row) -> Outcome:
        return outcome(r, models[key(r)], **switches)

    per = {f: {k: v for k, v in figures([r for r in scored if key(r) == f], decide).items()
               if k in ("answerable", "top1", "lead", "top3", "cite", "false_refusal_rate",
                        "refusal_accuracy", "hedged", "flagged")} for f in folds}
    return {**figures(scored, decide), "folds": per}


ABLATIONS = {
    "complet": {},
    "sans le modèle de tête (ordre de la recherche)": {"use_lead": False},
    "sans refus": {"use_refusal": False},
}


def _drop(rows: Sequence[Row], feature: str) -> list[Row]:
    """The same rows with one feature held constant (it then carries no information)."""
    out = []
    for r in rows:
        passages = [{**f, feature: 0.0} if feature in f else f for f in r.passages]
        question = {**r.question, feature: 0.0} if feature in r.question else r.question
        out.append(Row(r.qid, r.source, r.fabrique, r.register, r.should_answer, passages, r.holds, question))
    return out


def evaluate(rows: Sequence[Row], models: Models) -> dict[str, Any]:
    """Held-out figures (leave one fabrique out, leave one register out), the ablations, the
    unanswerable set (models fitted on everything else) and the figures on what was fitted."""
    by_fabrique = [r for r in rows if r.source == "gold" and r.fabrique]
    report: dict[str, Any] = {
        "leave_one_fabrique_out": held_out(by_fabrique, lambda r: r.fabrique),
        "leave_one_register_out": held_out([r for r in rows if r.source != "unanswerable"],
                                           lambda r: r.register),
    }
    report["ablation"] = {
        name: {k: held_out(by_fabrique, lambda r: r.fabrique, **sw)[k]
               for k in ("lead", "cite", "false_refusal_rate", "refusal_accuracy")}
        for name, sw in ABLATIONS.items()
    }
    for feature in (*PASSAGE_FEATURES, *QUESTION_FEATURES[:-1]):
        reduced = _drop(by_fabrique, feature)
        report["ablation"][f"sans {feature}"] = {
            k: held_out(reduced, lambda r: r.fabrique)[k]
            for k in ("lead", "cite", "false_refusal_rate", "refusal_accuracy")}
    # the two operating points, measured: refusals allowed at fitting, precision of a « sure » answer
    keys = ("lead", "cite", "false_refusal_rate", "refusal_accuracy", "hedged", "flagged")
    by_register = [r for r in rows if r.source != "unanswerable"]
    points = [(m, SURE_PRECISION) for m in (0.0, 0.02, 0.03, 0.05)]
    points += [(MAX_FALSE_REFUSALS, p) for p in (0.85, 0.95)]
    report["operating_points"] = {}
    for m, p in points:
        fab = held_out(by_fabrique, lambda r: r.fabrique, max_false=m, sure=p)
        reg = held_out(by_register, lambda r: r.register, max_false=m, sure=p)
        report["operating_points"][f"max_false={m} sure={p}"] = {
            "fabrique": {k: fab[k] for k in keys}, "register": {k: reg.get(k) for k in keys}}
    unans = [r for r in rows if r.source == "unanswerable"]
    if unans:
        report["unanswerable"] = figures(unans, lambda r: outcome(r, models))
    report["fitted_on"] = figures([r for r in rows if r.source != "unanswerable"],
                                  lambda r: outcome(r, models))
    return report


def save_rows(rows: Iterable[Row], path: Path = ROWS) -> None:
    path.write_text("".join(json.dumps(asdict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in rows),
                    encoding="utf-8")


def load_rows(path: Path = ROWS) -> list[Row]:
    return [Row(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def save_models(models: Models, path: Path = WEIGHTS) -> None:
    path.write_text(json.dumps(models.as_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def refit(rows: Sequence[Row]) -> Models:
    """Fit both decisions on every row but the unanswerable set's, write the weights and the rows
    beside assistant/answering/decisions.py, and make the next answerer read them."""
    from assistant.answering.backends import forget_answerers
    from assistant.answering.decisions import load_models

    kept = [r for r in rows if r.source != "unanswerable"]
    models = fit_models(kept)
    save_rows(kept)
    save_models(models)
    load_models.cache_clear()
    forget_answerers()
    return models


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
