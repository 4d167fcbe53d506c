"""Measure retrieval and answers on the gold question set, hybrid against dense-only.

A quality claim is only as good as its measurement: every figure the README quotes comes
from `fp-assistant eval`, run on the sample corpus, with the dense-only baseline computed in
the same run so the benefit of the lexical side is visible, not assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.retriever import Filters, Passage, Retriever, other_fusion
from ingest.metadata import fold


@dataclass
class GoldQuestion:
    id: str
    question: str
    kind: str
    expect_sources: list[str] = field(default_factory=list)
    expect_terms: list[str] = field(default_factory=list)
    expect_page: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.kind != "hors_corpus"

    def to_filters(self) -> Filters | None:
        if not self.filters:
            return None
        lo, hi = Filters.parse_year(str(self.filters["year"])) if self.filters.get("year") else (None, None)
        return Filters(
            fabrique=self.filters.get("fabrique"),
            territory=self.filters.get("territory"),
            year_from=lo,
            year_to=hi,
            doc_type=self.filters.get("type"),
        )


def load_gold(path: Path) -> list[GoldQuestion]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [
        GoldQuestion(
            id=str(q["id"]),
            question=q["question"],
            kind=q.get("kind", "factuel"),
            expect_sources=list(q.get("expect_sources") or []),
            expect_terms=list(q.get("expect_terms") or []),
            expect_page=q.get("expect_page"),
            filters=dict(q.get("filters") or {}),
        )
        for q in data
    ]


def holds_term(text: str, terms: list[str]) -> bool:
    """Whether a passage or excerpt contains one of the expected terms (accent/case folded)."""
    folded = " ".join(fold(text).split())
    return any(" ".join(fold(t).split()) in folded for t in terms)


def is_expected(p: Passage, q: GoldQuestion) -> bool:
    """An expected source, named by its doc_id or by its path under the corpus (pages that
    declare no identifier, as public pages don't)."""
    return p.meta.get("doc_id") in q.expect_sources or any(
        s and p.source.replace("\\", "/").endswith(s) for s in q.expect_sources)


def _first_hit(passages: list[Passage], q: GoldQuestion) -> Passage | None:
    return next((p for p in passages if is_expected(p, q)), None)


def retrieval_metrics(
    questions: list[GoldQuestion], search: Callable[[str, int, Filters | None], list[Passage]]
) -> dict[str, Any]:
    """recall@5, recall@10, MRR@10 and page accuracy over the answerable questions."""
    answerable = [q for q in questions if q.answerable and q.expect_sources]
    r5 = r10 = rr = 0.0
    pages_ok = pages_n = 0
    misses = []
    times = []
    for q in answerable:
        t = time.perf_counter()
        passages = search(q.question, 10, q.to_filters())
        times.append(time.perf_counter() - t)
        rank = next((i + 1 for i, p in enumerate(passages) if is_expected(p, q)), None)
        if rank:
            rr += 1 / rank
            r10 += 1
            r5 += rank <= 5
        else:
            misses.append(q.id)
        if q.expect_page:
            pages_n += 1
            hit = _first_hit(passages[:5], q)
            pages_ok += bool(hit and hit.page == q.expect_page)
    n = max(len(answerable), 1)
    times.sort()
    return {
        "questions": len(answerable),
        "recall@5": round(r5 / n, 3),
        "recall@10": round(r10 / n, 3),
        "mrr": round(rr / n, 3),
        "page_accuracy": round(pages_ok / pages_n, 3) if pages_n else None,
        "search_p50_s": round(times[len(times) // 2], 3) if times else None,
        "misses": misses,
    }


def evaluate(retriever: Retriever, questions: list[GoldQuestion], answer_fn: Callable | None = None,
             context_fn: Callable | None = None) -> dict:
    """Hybrid (configured fusion), dense-only and, for the record, the other fusion's
    retrieval figures, plus answer figures when an answerer is given."""
    other = other_fusion(retriever.fusion)
    report: dict[str, Any] = {
        "gold": len(questions),
        "fusion": retriever.fusion,
        "hybrid": retrieval_metrics(questions, lambda q, k, f: retriever.search(q, k=k, filters=f)),
        "dense": retrieval_metrics(questions, lambda q, k, f: retriever.dense(q, k=k, filters=f)),
        other: retrieval_metrics(questions, lambda q, k, f: retriever.search(q, k=k, filters=f,
                                                                           fusion=other)),
    }
    if answer_fn is not None:
        report["answers"] = answer_metrics(questions, answer_fn, context_fn)
    return report


def answer_metrics(questions: list[GoldQuestion], answer_fn: Callable,
                   context_fn: Callable | None = None) -> dict[str, Any]:
    """Answer figures beside retrieval alone, on the same questions: the share of answerable
    questions whose first passage (`top1`) or first three (`top3`) hold an expected term, and
    whose answer's first citation (`lead`) or any citation (`cite`) does (a refusal holds
    none); citation validity on the answered ones, refusal accuracy on the unanswerable ones.

    `answer_fn(question, passages)` returns an object with `grounded` and `citations` (each
    with `doc_id` and `excerpt`); `context_fn(question)` the passages it reads.
    """
    valid = answered = refused_ok = unanswerable = false_refusals = 0
    top1 = top3 = lead = cite = 0
    invalid_ids = []
    for q in questions:
        passages = context_fn(q) if context_fn else []
        ans = answer_fn(q, passages)
        if not q.answerable:
            unanswerable += 1
            refused_ok += not ans.grounded
            continue
        held = [holds_term(p.text, q.expect_terms) for p in passages[:3]]
        top1 += bool(held[:1]) and held[0]
        top3 += any(held)
        quoted = [holds_term(c.excerpt, q.expect_terms) for c in ans.citations] if ans.grounded else []
        lead += bool(quoted[:1]) and quoted[0]
        cite += any(quoted)
        if not ans.grounded:
            false_refusals += 1
            continue
        answered += 1
        ok = any(
            c.doc_id in q.expect_sources and holds_term(c.excerpt, q.expect_terms) for c in ans.citations
        ) or any(holds_term(c.excerpt, q.expect_terms) for c in ans.citations[:1])
        valid += ok
        if not ok:
            invalid_ids.append(q.id)
    n_answerable = sum(1 for q in questions if q.answerable)
    n = max(n_answerable, 1)
    return {
        "top1": round(top1 / n, 3),
        "top3": round(top3 / n, 3),
        "lead": round(lead / n, 3),
        "cite": round(cite / n, 3),
        "citation_validity": round(valid / answered, 3) if answered else None,
        "refusal_accuracy": round(refused_ok / unanswerable, 3) if unanswerable else None,
        "false_refusal_rate": round(false_refusals / n_answerable, 3) if n_answerable else None,
        "answered": answered,
        "invalid": invalid_ids,
    }


def sweep_threshold(
    questions: list[GoldQuestion], evidence_fn: Callable[[GoldQuestion], float]
) -> dict[str, Any]:
    """Calibrate the refusal threshold: the value that best separates answerable questions
    from unanswerable ones (balanced accuracy), with the whole curve for the record."""
    scores = [(evidence_fn(q), q.answerable) for q in questions]
    pos = [s for s, a in scores if a]
    neg = [s for s, a in scores if not a]
    curve = []
    for i in range(0, 101):
        t = i / 100
        refusal_acc = sum(s < t for s in neg) / len(neg) if neg else 1.0
        answer_rate = sum(s >= t for s in pos) / len(pos) if pos else 1.0
        curve.append({
            "threshold": t,
            "refusal_accuracy": round(refusal_acc, 3),
            "answered": round(answer_rate, 3),
            "balanced": round((refusal_acc + answer_rate) / 2, 3),
        })
    # ties: the highest threshold, so off-topic questions the gold set does not cover are
    # refused with the largest margin that costs no answerable question
    best = max(curve, key=lambda r: (r["balanced"], r["refusal_accuracy"], r["threshold"]))
    return {"best": best, "curve": curve,
            "answerable_scores": sorted(round(s, 3) for s in pos),
            "unanswerable_scores": sorted(round(s, 3) for s in neg)}


def run_gold(retriever: Retriever, answerer: Any, settings: Any, questions: list[GoldQuestion],
             k: int | None = None, sweep: bool = False) -> dict[str, Any]:
    """`fp-assistant eval`'s report: search metrics (hybrid, dense only, the other fusion),
    answer metrics when an answerer is given, and the refusal threshold sweep on request."""
    from assistant.retriever import answer_context

    def context(q: GoldQuestion) -> list[Passage]:
        return answer_context(retriever, q.question, q.to_filters(), settings, k)

    def answer_fn(q: GoldQuestion, passages: list[Passage]) -> Any:
        return answerer.answer(q.question, passages)

    report = evaluate(retriever, questions, answer_fn if answerer else None, context)
    report["other_fusion"] = other_fusion(report["fusion"])
    if sweep and answerer:
        report["threshold"] = sweep_threshold(
            questions, lambda q: answerer.evidence(q.question, context(q)).score)
        report["threshold"]["configured"] = answerer.models.answerable.threshold
    return report
