"""Which route a filtered dense search should take at scale, measured on an index built by scale.py.

Usage (after `python benchmarks/scale.py --sizes 1000000 --modes server --workdir W --keep`):
    python benchmarks/filter_routes.py --workdir W --size 1000000 --queries 40

Issue #17 asks to measure the options before choosing one. On the kept server collection
(random unit vectors regenerated here from scale.py's seeds, so exact neighbours are known):

* HNSW `ef_search` (Chroma's default 100): dense latency and recall@10 against an exact
  search, unfiltered and through the over-fetch route;
* per filter (audience alone, a fabrique, a year range, a frequent and a rare territory, a
  fabrique and a type): its share of the collection, the route `Store.search_filtered`
  takes, and the dense latency and recall@10 of each route: Chroma filters first (`where`),
  over-fetch without a filter then keep what passes (the product's route for broad
  filters), and Chroma searching only the ids the local labels say pass (`query(ids=…)`);
  then the product's whole hybrid search with that filter;
* "one collection per audience": what the audience filter alone costs over no filter is
  what a public-only collection would save.

The collection is left as found (`ef_search` put back to its value before the run).
Results go to benchmarks/results/filter-routes-<size>.json and .md (the table the README shows).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))

import scale  # noqa: E402  (benchmarks/scale.py: the corpus, seeds and server helpers)


def chunk_id(j: int) -> str:
    """The id scale.py gave the j-th passage, without generating its text."""
    doc_id = f"syn-{j // scale.PER_DOC:07d}"
    sha = hashlib.sha256(doc_id.encode()).hexdigest()
    return f"{doc_id}::{sha[:12]}::{j % scale.PER_DOC:05d}"


def all_vectors(size: int, batch: int) -> Any:
    """The passage vectors scale.py inserted: one seeded draw per batch, in insertion order."""
    import numpy as np

    parts = [scale.unit_vectors(min(batch, size - b), scale.SEED + b) for b in range(0, size, batch)]
    return np.concatenate(parts)


def timed(fn: Any, items: list[Any]) -> tuple[dict[str, float], list[Any]]:
    for x in items[:3]:
        fn(x)
    times, outs = [], []
    for x in items:
        t = time.perf_counter()
        outs.append(fn(x))
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"p50": round(statistics.median(times), 1), "p95": round(p95, 1)}, outs


def recall(found: list[list[str]], exact: list[list[str]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return round(hits / max(1, sum(len(e) for e in exact)), 3)


def _cell(row: dict[str, Any], key: str) -> str:
    t = row.get(f"dense_{key}") or row.get(key)
    if not t:
        return "—"
    rec = row.get(f"recall_{key}")
    return f"{t['p50']} / {t['p95']}" + (f" ({rec:.2f})" if rec is not None else "")


def render(results: dict[str, Any]) -> str:
    """The measurement as the README shows it."""
    n = f"{results['size']:,}".replace(",", " ")
    lines = [
        f"Routes de la recherche dense filtrée, {n} passages sur un serveur Chroma, "
        f"{results['queries']} requêtes, k={results['k']}, vecteurs aléatoires ; p50 / p95 en ms "
        "(rappel@10 contre une recherche exacte) ; mesuré le " + results["date"] + " :",
        "",
        "| filtre | part | route choisie | dense, route choisie | Chroma filtre d'abord | ids listés "
        "(liste : p50 / p95) | sur-extraction | hybride complet |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["filters"]:
        listing = r.get("liste_ids")
        ids = _cell(r, "ids") + (f" (liste {listing['p50']} / {listing['p95']})" if listing else "")
        share = f"{r['share']:.1%}" if r.get("share") else "—"
        lines.append(
            f"| {r['filtre']} | {share} | {r['route_produit']} | {_cell(r, 'produit')} | "
            f"{_cell(r, 'chroma_filtre')} | {ids} | {_cell(r, 'surextraction')} | "
            f"{r['hybride_produit']['p50']} / {r['hybride_produit']['p95']} |"
        )
    lines += ["", f"`ef_search` (défaut de Chroma : {results.get('ef_default', 100)}), même collection :", "",
              "| ef_search | dense sans filtre p50 / p95 (rappel@10) "
              "| sur-extraction, une fabrique (rappel@10) |",
              "|---|---|---|"]
    for r in results["ef"]:
        lines.append(f"| {r['ef_search']} | {r['dense']['p50']} / {r['dense']['p95']} ({r['recall']:.2f}) | "
                     f"{r['overfetch_fabrique']['p50']} / {r['overfetch_fabrique']['p95']} "
                     f"({r['overfetch_recall']:.2f}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--ef", default="10,50,100,200", help="valeurs d'ef_search essayées")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import numpy as np

    from assistant.retriever import Filters, Retriever, _documents, _label_counts, _label_sets
    from ingest import store as store_module
    from ingest.lexical import _filter_sql
    from ingest.registry import Registry, connect
    from ingest.store import open_store

    base = Path(args.workdir) / str(args.size)
    index = base / "index"
    proc, url = scale.start_server(base / "server")

    def restart() -> Any:
        """A changed `ef_search` reaches searches only once the server reloads the index
        (measured: same recall and latency before the restart)."""
        nonlocal proc, url
        proc.terminate()
        proc.wait(timeout=60)
        proc, url = scale.start_server(base / "server")
        return open_store(index, scale.COLLECTION, scale.MODEL_ID, scale.DIM, url)

    try:
        store = open_store(index, scale.COLLECTION, scale.MODEL_ID, scale.DIM, url)
        assert store.count() == args.size, f"collection incomplète : {store.count()} / {args.size}"
        batch = store.batch
        vectors = all_vectors(args.size, batch)
        probe = [0, args.size // 2, args.size - 1]
        got = store.collection.get(ids=[chunk_id(j) for j in probe], include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        for j in probe:  # the regenerated vectors are the stored ones, or every recall is meaningless
            assert np.allclose(by_id[chunk_id(j)], vectors[j], atol=1e-5), f"vecteur {j} différent"
        ids = np.array([chunk_id(j) for j in range(args.size)])
        row_of = {cid: j for j, cid in enumerate(ids)}

        registry = Registry(connect(index))
        fake = scale.FakeQueryEmbeddings()
        queries = scale.synth_queries(args.queries)
        qv = {q: fake.embed_query(q) for q in queries}
        public = Retriever(store, registry, fake, "public", reranker="", per_doc=2)
        interne = Retriever(store, registry, fake, "interne", reranker="", per_doc=2)
        k = 10

        def exact(q: str, mask: Any | None) -> list[str]:
            sims = vectors @ np.asarray(qv[q], dtype=np.float32)
            if mask is not None:
                sims = np.where(mask, sims, -np.inf)
            top = np.argpartition(-sims, k)[:k]
            return [str(ids[j]) for j in top if np.isfinite(sims[j])]

        def passing_ids(retriever: Retriever, filters: Filters | None) -> list[str]:
            clauses, fargs = _filter_sql(**retriever.lexical_filters(filters))
            sql = "SELECT c.chunk_id FROM lexical_chunks c" + (" WHERE " + " AND ".join(clauses)
                                                                 if clauses else "")
            return [r[0] for r in registry.conn.execute(sql, fargs)]

        results: dict[str, Any] = {"size": args.size, "queries": args.queries, "k": k,
                                   "date": time.strftime("%Y-%m-%d %H:%M"), "ef": [], "filters": []}

        # --- ef_search ---------------------------------------------------------------------
        config = store.collection.configuration_json or {}
        ef_before = int(((config.get("hnsw") or {}).get("ef_search")) or 100)
        results["ef_default"] = ef_before
        exact_all = {q: exact(q, None) for q in queries}
        fab_filter = Filters(fabrique=scale.FABRIQUES[0])
        fab_pass = set(passing_ids(public, fab_filter))
        fab_mask = np.array([cid in fab_pass for cid in ids])
        exact_fab = {q: exact(q, fab_mask) for q in queries}
        fab_share = public.filter_share(fab_filter) or 0.0
        def measure_ef(store: Any, ef: int) -> dict[str, Any]:
            def dense(q: str) -> list[str]:
                return [h.chunk_id for h in store.search(qv[q], k)]

            def overfetch(q: str) -> list[str]:
                return [h.chunk_id for h in store.search_filtered(
                    qv[q], k, public.where(fab_filter), fab_share, passing=fab_passing)]

            t_dense, found = timed(dense, queries)
            t_over, found_f = timed(overfetch, queries)
            return {"ef_search": ef, "dense": t_dense,
                    "recall": recall(found, [exact_all[q] for q in queries]), "overfetch_fabrique": t_over,
                    "overfetch_recall": recall(found_f, [exact_fab[q] for q in queries])}

        def fab_passing(c: list[str]) -> set[str]:
            return public.lexical.passing(c, **public.lexical_filters(fab_filter))

        try:
            for ef in [int(x) for x in args.ef.split(",") if x]:
                store.collection.modify(configuration={"hnsw": {"ef_search": ef}})
                store = restart()
                row = measure_ef(store, ef)
                results["ef"].append(row)
                print(json.dumps(row), flush=True)
        finally:
            store.collection.modify(configuration={"hnsw": {"ef_search": ef_before}})
            store = restart()
        public.store = interne.store = store

        # --- filters and routes --------------------------------------------------------------
        def measure_filter(label: str, retriever: Retriever, filters: Filters | None) -> dict[str, Any]:
            where = retriever.where(filters)
            share = retriever.filter_share(filters)
            row: dict[str, Any] = {"filtre": label, "share": round(share, 4) if share else None}
            ok: set[str] = set()
            mask = None
            if where is not None:
                ok = set(passing_ids(retriever, filters))
                mask = np.array([cid in ok for cid in ids])
                row["passages"] = len(ok)
            truth = [exact(q, mask) for q in queries]
            lex = retriever.lexical_filters(filters)

            def product(q: str) -> list[str]:
                return [h.chunk_id for h in retriever._dense(qv[q], k, filters)]

            def chroma_filter(q: str) -> list[str]:
                return [h.chunk_id for h in store.search(qv[q], k, where)]

            def by_ids(q: str) -> list[str]:
                res = store.collection.query(query_embeddings=[qv[q]], n_results=k, ids=allowed,
                                             include=["distances"])
                return list(res["ids"][0])

            def over(q: str) -> list[str]:
                n = min(store_module.MAX_OVERFETCH, int(k / (share or 1) * store_module.OVERFETCH_MARGIN) + k)
                res = store.collection.query(query_embeddings=[qv[q]], n_results=n, include=["distances"])
                got_ids = res["ids"][0]
                keep = retriever.lexical.passing(got_ids, **lex)
                return [c for c in got_ids if c in keep][:k]

            row["route_produit"] = (
                "sans filtre" if where is None
                else "sur-extraction" if share and share >= store_module.BROAD_SHARE
                else "ids listés")
            t, found = timed(product, queries)
            row["dense_produit"], row["recall_produit"] = t, recall(found, truth)
            if where is not None:
                t, found = timed(chroma_filter, queries)
                row["dense_chroma_filtre"], row["recall_chroma_filtre"] = t, recall(found, truth)
                if len(ok) <= store_module.MAX_ALLOWED_IDS:
                    def listing(_q: str) -> list[str]:  # what the narrow route lists
                        sets = _label_sets(registry)
                        keys = retriever._passing_label_sets(filters, sets)
                        return retriever.lexical.chunk_ids(_documents(sets, keys), **lex)

                    t, _ = timed(listing, queries[:10])
                    row["liste_ids"] = t
                    allowed = sorted(ok, key=row_of.__getitem__)
                    t, found = timed(by_ids, queries)
                    row["dense_ids"], row["recall_ids"] = t, recall(found, truth)
                if share:
                    t, found = timed(over, queries)
                    row["dense_surextraction"], row["recall_surextraction"] = t, recall(found, truth)
            t, _ = timed(lambda q: retriever.search(q, k=k, filters=filters), queries)
            row["hybride_produit"] = t
            return row

        counts: dict[str, int] = {}
        for (_fab, _kind, _year, vis, terrs), n in _label_counts(registry).items():
            if vis == "public":
                for t in terrs:
                    counts[t] = counts.get(t, 0) + n
        ranked = sorted(counts, key=lambda t: counts[t])
        rare = next(t for t in ranked if counts[t] >= 2 * k)
        cases = [
            ("aucun (interne)", interne, None),
            ("audience public seule", public, None),
            ("public + une fabrique", public, fab_filter),
            ("public + années 2019-2020", public, Filters(year_from=2019, year_to=2020)),
            (f"public + territoire fréquent ({ranked[-1]})", public, Filters(territory=ranked[-1])),
            (f"public + territoire rare ({rare})", public, Filters(territory=rare)),
            ("public + une fabrique + un type", public,
             Filters(fabrique=scale.FABRIQUES[0], doc_type=scale.DOC_TYPES[0])),
        ]
        for label, retriever, filters in cases:
            row = measure_filter(label, retriever, filters)
            results["filters"].append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out = Path(args.out or scale.RESULTS / f"filter-routes-{args.size}.json")
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(render(results), encoding="utf-8")
    print(render(results))
    print(f"écrit : {out} et {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
