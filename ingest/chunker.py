"""Cut a document into passages of about `size` characters that a citation can point to.

A passage never spans two PDF pages (so its page number is exact) and starts a new section
at each heading (so it knows its section); inside a section, langchain's recursive splitter
cuts at paragraph, line, then sentence boundaries, with overlap so an idea cut in two still
appears whole in one of the halves.
"""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.models import Chunk, DocMeta, LoadedDocument, Page

_MIN_SECTION = 200  # a section shorter than this is merged into the next one on the page


def _sections(page: Page, current: str) -> tuple[list[tuple[str, str]], str]:
    """Group a page's blocks into (section title, text) runs; returns the last title too."""
    blocks = page.blocks or [("para", p) for p in page.text.split("\n\n") if p.strip()]
    runs: list[tuple[str, list[str]]] = [(current, [])]
    for kind, text in blocks:
        text = text.strip()
        if not text:
            continue
        if kind.startswith("heading"):
            current = text[:200]
            title, parts = runs[-1]
            if len("\n".join(parts)) < _MIN_SECTION:
                # too short to stand alone: keep it as the lead of the new section
                runs[-1] = (current, [*parts, text])
            else:
                runs.append((current, [text]))
        else:
            runs[-1][1].append(text)
    out = [(title, "\n".join(parts)) for title, parts in runs if "".join(parts).strip()]
    return out, current


def chunk_document(
    loaded: LoadedDocument, meta: DocMeta, content_hash: str, size: int = 1000, overlap: int = 150
) -> list[Chunk]:
    """Passages with document, page and section; ids carry the content hash (versioning)."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(overlap, size // 2),
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    chunks: list[Chunk] = []
    section = ""
    for page in loaded.pages:
        runs, section = _sections(page, section)
        for title, text in runs:
            for piece in splitter.split_text(text):
                piece = piece.strip()
                if len(piece) < 20 and chunks and chunks[-1].page == page.number:
                    continue  # a stray fragment (page number, lone bullet) is noise
                chunks.append(
                    Chunk(
                        chunk_id=f"{meta.doc_id}::{content_hash[:12]}::{len(chunks):05d}",
                        doc_id=meta.doc_id,
                        text=piece,
                        page=page.number,
                        section=title,
                        index=len(chunks),
                        meta=meta,
                        ocr=page.ocr,
                    )
                )
    return chunks
