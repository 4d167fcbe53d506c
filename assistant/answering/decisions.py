"""The answer layer's two decisions, each a small logistic model fitted on data.

Retrieval already ranks the passages well on text nobody here wrote; what an answer adds is
two judgements, and both used to be hand rules written against one author's corpus:

- **which passage leads**: "holds the answer" is not "is the most similar". One of the top
  three passages holds it far more often than the first alone, so the lead is the passage the
  `lead` model scores highest among the first `TOP_K`;
- **whether the evidence answers at all**: the `answerable` model, whose threshold is set
  where it refuses at most 2 % of the answerable questions it was fitted on (the curve of that
  choice is in docs/mesures.md); between it and `confident`, the answer shows its evidence but
  says it found no sure answer.

Every feature is something a reader can check by eye (retrieval rank and score, the question's
words and names found in the passage, the kind of answer asked for and given) and costs no
model call: the passages' cosines come from retrieval itself, so an answer embeds nothing
beyond the question.

The weights live in `decisions.json` beside this module, written by `fit` from the rows in
`decisions.rows.jsonl` (`fp-assistant eval --fit`); `fp-assistant eval --holdout` refits them
fold by fold (a fabrique or a writing register left out) and reports only held-out figures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from assistant.answering.answertype import expectation
from assistant.answering.frtext import content_stems, coverage, fold, key_stems, words
from assistant.retriever import Passage
from ingest.linear import LinearModel

TOP_K = 5  # passages the lead is chosen among (the search's first ones)
WEIGHTS = Path(__file__).with_name("decisions.json")
ROWS = Path(__file__).with_name("decisions.rows.jsonl")

# what earned its place in the held-out ablation (docs/mesures.md); the fused score, the cosine gap to
# the best passage, the names found per passage and a missing answer type changed nothing on either fold
PASSAGE_FEATURES = ("inv_rank", "overlap", "type_fit")
# likewise: the share of the question's words found and the best BM25 score were dropped (no gain)
QUESTION_FEATURES = ("best_cos", "best_overlap", "names_found", "type_missing", "fused_top", "lead_p")
MAX_FALSE_REFUSALS = 0.02  # answerable questions the refusal may cost, at most (see docs/mesures.md)
SURE_PRECISION = 0.9  # above `confident`, at least this share of the fitted questions were answerable


def _context(p: Passage) -> str:
    m = p.meta
    return " ".join(str(x) for x in (m.get("title"), m.get("section"), m.get("fabrique_title"),
                                     " ".join(str(t) for t in m.get("territories") or [])) if x)


def _local_idf(qstems: list[str], bags: Sequence[set[str]]) -> dict[str, float]:
    """A question word most passages share is the topic; a rare one is the focus."""
    n = len(bags)
    return {s: math.log((n + 1) / (sum(s in b for b in bags) + 0.5)) for s in qstems}


def passage_features(question: str, passages: Sequence[Passage], k: int = TOP_K) -> list[dict[str, float]]:
    """One row of features per passage among the first `k` (in the given order)."""
    head = list(passages[:k])
    if not head:
        return []
    qstems = content_stems(question)
    keys = key_stems(question)
    expect = expectation(question)
    bags = [set(content_stems(f"{p.text} {_context(p)}", generic=True)) for p in head]
    idf = _local_idf(qstems, [set(content_stems(p.text, generic=True)) for p in passages] or bags)
    rows = []
    for i, (p, bag) in enumerate(zip(head, bags, strict=True)):
        # the asked quantity, in a passage about what the question names (its years and places)
        fits = expect is not None and expect.anchored(p.text, _context(p)) and expect.fits(p.text)
        rows.append({
            "inv_rank": 1.0 / (i + 1),
            "overlap": coverage(qstems, bag, keys, idf),
            "type_fit": float(fits),
            "cos": p.score,  # read by the refusal (best_cos), not by the lead
        })
    return rows


def question_features(question: str, passages: Sequence[Passage],
                      rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """What the refusal reads: how close and how complete the best evidence is (and, added by
    `decide`, the lead model's best probability)."""
    text = _flat(" ".join(f"{p.text} {_context(p)}" for p in passages))
    expect = expectation(question)
    head = passages[:TOP_K]
    return {
        "best_cos": max((r["cos"] for r in rows), default=0.0),
        "best_overlap": max((r["overlap"] for r in rows), default=0.0),
        "names_found": sum(n in text for n in found) / len(found) if (found := question_names(question))
        else 1.0,
        "type_missing": float(expect is not None and not any(r["type_fit"] for r in rows)),
        # retrieval's own confidence, before it is ranked: relative fusion keeps a weak best match low
        "fused_top": max((p.fused for p in head), default=0.0),
    }


_CONNECTORS = frozenset("de du des d la le l".split())


def _flat(text: str) -> str:
    """Folded words separated by single spaces, padded: « Saint-Péray » and « saint péray » meet."""
    return f" {' '.join(fold(w) for w in words(text))} "


def question_names(question: str) -> dict[str, str]:
    """The names and numbers a question gives, as whole phrases (« Régions de France », « Cœur de
    Savoie », « 2023 »), folded → as written: a capitalised word after the first, with the
    capitalised words and connectors that follow it; each must be found whole in the passages."""
    ws = words(question)
    out: dict[str, str] = {}
    i = 1
    while i < len(ws):
        w = ws[i]
        if any(c.isdigit() for c in w) and len(w) >= 2:
            out[_flat(w)] = w
        elif w[:1].isupper():
            j = i + 1
            while j < len(ws) and (ws[j][:1].isupper() or (
                    fold(ws[j]) in _CONNECTORS and j + 1 < len(ws) and ws[j + 1][:1].isupper())):
                j += 1 if ws[j][:1].isupper() else 2
            written = re.search(r"[\s'’-]+".join(map(re.escape, ws[i:j])), question)
            out[_flat(" ".join(ws[i:j]))] = written.group(0) if written else " ".join(ws[i:j])
            i = j
            continue
        i += 1
    return out


def absent_names(question: str, passages: Sequence[Passage]) -> list[str]:
    """The question's names and numbers that no passage gives (as the question writes them):
    what a refusal says is missing."""
    text = _flat(" ".join(f"{p.text} {_context(p)}" for p in passages))
    return [written for flat, written in question_names(question).items() if flat not in text]


@dataclass
class Logistic(LinearModel):
    """A decision's model (`ingest.linear`); `threshold` is where a yes starts."""

    confident: float = 0.0  # the answerable model: below it, an answer says it is not sure


@dataclass
class Models:
    lead: Logistic
    answerable: Logistic
    meta: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"lead": self.lead.as_json(), "answerable": self.answerable.as_json(), "meta": self.meta}


@lru_cache(maxsize=4)
def load_models(path: str = str(WEIGHTS)) -> Models:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return Models(Logistic.from_json(data["lead"]), Logistic.from_json(data["answerable"]),
                  data.get("meta", {}))


@dataclass
class Judged:
    """The decisions on one question's passages: lead order and whether to answer."""

    order: list[int]  # indexes into the passages, best evidence first (the first `TOP_K` only)
    lead_probs: list[float]
    answerable: float  # P(the passages answer)
    features: dict[str, float]
    refuse: bool
    sure: bool = True


def with_lead(question: dict[str, float], lead: Logistic,
              rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The question's features with the lead model's best probability among its passages."""
    return {**question, "lead_p": max((lead.prob(r) for r in rows), default=0.0)}


def decide(models: Models, rows: Sequence[dict[str, float]], question: dict[str, float]) -> Judged:
    """Both decisions, from features computed now (`judge`) or stored (the held-out evaluation)."""
    probs = [models.lead.prob(r) for r in rows]
    q = with_lead(question, models.lead, rows)
    p = models.answerable.prob(q)
    order = sorted(range(len(rows)), key=lambda i: (-probs[i], i))
    return Judged(order, probs, p, q, refuse=not rows or p < models.answerable.threshold,
                  sure=p >= models.answerable.confident)


def judge(question: str, passages: Sequence[Passage], models: Models | None = None) -> Judged:
    rows = passage_features(question, passages)
    return decide(models or load_models(), rows, question_features(question, passages, rows))


# --------------------------------------------------------------------------- fitting


def fit_logistic(xs: Sequence[dict[str, float]], ys: Sequence[bool], features: Sequence[str],
                 c: float = 1.0) -> Logistic:
    """An L2-regularised logistic regression (scikit-learn), standardised features."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r[f] for f in features] for r in xs], dtype=float)
    y = np.array(ys, dtype=int)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=1000).fit((x - mean) / scale, y)
    return Logistic(tuple(features), [round(float(w), 5) for w in model.coef_[0]],
                    round(float(model.intercept_[0]), 5), [round(float(m), 5) for m in mean],
                    [round(float(s), 5) for s in scale])


def refusal_threshold(model: Logistic, xs: Sequence[dict[str, float]], ys: Sequence[bool],
                      max_false: float = MAX_FALSE_REFUSALS) -> float:
    """The highest threshold that refuses at most `max_false` of the answerable rows:
    among settings that keep the bar, the one that refuses the most of the others."""
    pos = sorted(model.prob(x) for x, y in zip(xs, ys, strict=True) if y)
    if not pos:
        return 0.5
    allowed = int(max_false * len(pos))
    return round(max(0.0, pos[allowed] - 1e-6), 6)


def confident_threshold(model: Logistic, xs: Sequence[dict[str, float]], ys: Sequence[bool],
                        precision: float = SURE_PRECISION) -> float:
    """The lowest probability above which at least `precision` of the fitted rows were
    answerable: under it an answer still shows its evidence, but says it is not a sure one."""
    ranked = sorted(((model.prob(x), y) for x, y in zip(xs, ys, strict=True)), key=lambda t: -t[0])
    confident, hits = 1.0, 0
    for i, (p, y) in enumerate(ranked, start=1):
        hits += y
        if hits / i >= precision:
            confident = p
    return round(confident, 6)
