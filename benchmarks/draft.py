"""Time of one full offline roadmap draft, once the model and the index are loaded.

Usage: python benchmarks/draft.py [--store DIR] [--territory NAME] [--all] [--repeat N]
Goal: one full draft (all sections, extractive back-end) ≤ 10 s on 2 CPU cores.

"Cold" is the first draft of a process for a fabrique: the 7 section queries and the theme are
embedded (8 query embeddings, the bulk of the cost). "Warm" is a later draft: those vectors are
memoised per process, so only the pool is read and scored. The index must exist (build it
with `fp-assistant ingest corpus --store DIR`); `--build` builds it in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent
# `python benchmarks/draft.py` puts benchmarks/ first on the path, where ingest.py would shadow
# the `ingest` package: look up modules from the repository root instead.
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="index folder (default: FP_STORE or data/index)")
    ap.add_argument("--territory", default="Grand Angoulême", help="territory to draft")
    ap.add_argument("--all", action="store_true", help="also draft every territory with seminar reports")
    ap.add_argument("--repeat", type=int, default=3, help="warm drafts to time")
    ap.add_argument("--build", action="store_true", help="index corpus/ in a temporary folder first")
    args = ap.parse_args()

    from assistant.config import get_settings
    from assistant.drafting import draft as draft_mod

    settings = get_settings()
    tmp = None
    if args.build:
        tmp = tempfile.TemporaryDirectory()
        settings = settings.model_copy(update={"store": Path(tmp.name) / "index"})
        from assistant.index import make_ingestor

        t0 = time.perf_counter()
        make_ingestor(settings).run([REPO / "corpus"])
        print(f"index built in {time.perf_counter() - t0:.0f} s")
    elif args.store:
        settings = settings.model_copy(update={"store": Path(args.store)})

    t0 = time.perf_counter()
    from assistant.service import Service

    service = Service(settings)
    retriever = service.retriever(service.local_caller())
    retriever.embeddings.embed_query("chargement du modèle")
    load = time.perf_counter() - t0
    docs = len(retriever.registry.all())
    if not docs:
        print(f"index vide : {settings.store} — lancez `fp-assistant ingest corpus --store {settings.store}`",
              file=sys.stderr)
        return 2

    draft_mod._QUERY_VECTORS.clear()
    t0 = time.perf_counter()
    rm = draft_mod.draft_roadmap(retriever, args.territory)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        draft_mod.draft_roadmap(retriever, args.territory)
        warm.append(time.perf_counter() - t0)
    print(f"index {settings.store}: {docs} documents; model + index load {load:.1f} s")
    print(f"draft '{rm.territory}': {len(rm.sections)} sections, {len(rm.actions)} actions, "
          f"{len(rm.sources)} sources")
    print(f"one full draft, cold (8 query embeddings): {cold:6.2f} s   goal <= 10 s")
    print(f"one full draft, warm (median of {len(warm)}):  {statistics.median(warm):6.2f} s")
    if args.all:
        import yaml

        manifest = yaml.safe_load((REPO / "corpus" / "manifest.yaml").read_text(encoding="utf-8"))
        names = sorted({t for d in manifest["documents"] if d["doc_type"] == "seminaire_local"
                        for t in d["territories"]})
        draft_mod._QUERY_VECTORS.clear()
        times = []
        for name in names:
            t0 = time.perf_counter()
            draft_mod.draft_roadmap(retriever, name)
            times.append(time.perf_counter() - t0)
        print(f"{len(names)} territories: total {sum(times):.1f} s, median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s (cold vectors at the start)")
    print("command: python benchmarks/draft.py " + " ".join(sys.argv[1:]))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
