"""Latency of a hybrid search and of a full extractive answer on an indexed corpus.

Usage: python benchmarks/query.py [--store data/index] [--gold tests/gold/questions.yaml] [--n 40]
Goals on 2 cores: search p50 ≤ 0.3 s, answer p50 ≤ 1 s (model and index loaded beforehand).
A full answer is timed from the question: its own retrieval (`answer_context`, more passages
than a search list) plus the answer. Each question is asked once: no vector cache helps.
A comparison (the gold set's comparison questions) is timed the same way, from its own
retrieval (`compare_context`, which also reads each territory's own reports).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]

from assistant.evaluation.gold import load_gold
from assistant.retriever import answer_context, compare_context
from benchmarks.answering import open_answering


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None)
    ap.add_argument("--gold", default="tests/gold/questions.yaml")
    ap.add_argument("--n", type=int, default=40, help="questions timed")
    args = ap.parse_args()
    settings, retriever, answerer, store = open_answering(args.store)
    gold = load_gold(Path(args.gold))
    questions = [q.question for q in gold][: args.n]
    comparisons = [q.question for q in gold if q.kind == "comparaison"]
    retriever.search("échauffement", k=8)  # first call pays one-off costs
    search_t, answer_t = [], []
    for q in questions:
        t = time.perf_counter()
        retriever.search(q, k=8)
        search_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        answerer.answer(q, answer_context(retriever, q, None, settings))
        answer_t.append(time.perf_counter() - t)
    compare_t = []
    for q in comparisons:
        t = time.perf_counter()
        answerer.answer(q, compare_context(retriever, q, None, settings), mode="compare")
        compare_t.append(time.perf_counter() - t)
    print(f"{len(questions)} questions, index {settings.store} ({store.count()} passages)")
    print(f"search        p50 {statistics.median(search_t):.3f} s  p95 {pct(search_t, 0.95):.3f} s")
    print(f"answer (full) p50 {statistics.median(answer_t):.3f} s  p95 {pct(answer_t, 0.95):.3f} s")
    if compare_t:
        print(f"compare ({len(compare_t)})  p50 {statistics.median(compare_t):.3f} s  "
              f"p95 {pct(compare_t, 0.95):.3f} s")


if __name__ == "__main__":
    main()
