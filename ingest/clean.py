"""Clean extracted pages so that the chunker and the embedder see prose, not PDF artefacts.

PDF extraction leaves running headers/footers ("Compte rendu — Bagnolet", "page 3 / 7") on
every page, words cut at line ends ("transi-" / "tion"), ligature glyphs ("ﬁ"), non-breaking
and zero-width spaces, and one line per printed line. Left in, they pollute every chunk, break
lexical matching on the cut words and repeat the same footer in hundreds of embeddings.

Everything here works on `Page.blocks` (the structure the loader saw) and then re-renders
`Page.text` from the blocks, so both always say the same thing. The functions are pure and
idempotent: cleaning an already cleaned page changes nothing, so the pipeline may call
`clean_pages` again on the output of `ingest.loaders.load` without harm. They are safe on
DOCX/HTML/Markdown pages too (single page: no header detection; text normalisation only).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from ingest.models import Page

Block = tuple[str, str]

# --------------------------------------------------------------------------- characters

# Compatibility characters NFKC would rewrite but that carry meaning in French text.
_KEEP_CHARS = frozenset("«»œŒæÆ…²³°ºª")
_DROP_CHARS = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-"})
# C0/C1 control characters other than tab and newline never belong in prose.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES_RE = re.compile(r"[ \t\f\v]+")


def normalize_chars(text: str) -> str:
    """Fold ligatures and odd spaces, drop soft hyphens and invisible characters.

    NFKC turns "ﬁ" into "fi" and every exotic space (no-break, narrow no-break, thin) into a
    plain space, which is what search needs; a few characters NFKC would also rewrite but
    that matter in French ("…", "²", "«»" are kept as they are) are protected.
    Soft hyphens are dropped here: at a line end they are handled earlier by `dehyphenate`.
    """
    text = unicodedata.normalize("NFC", text)
    if any(unicodedata.decomposition(c).startswith("<") for c in text):
        text = "".join(
            c
            if c in _KEEP_CHARS or not unicodedata.decomposition(c).startswith("<")
            else unicodedata.normalize("NFKC", c)
            for c in text
        )
        text = unicodedata.normalize("NFC", text)
    text = text.translate(_DROP_CHARS).translate(_HYPHENS)
    return _CONTROL_RE.sub(" ", text)


def collapse_spaces(line: str) -> str:
    """One space between words (PDF justification leaves runs of them), no edge spaces."""
    return _SPACES_RE.sub(" ", line).strip()


# --------------------------------------------------------------------------- hyphenation

# First parts of real French compounds: a break after them keeps its hyphen ("peut-être").
# Only words that are (almost) never a first syllable of a solid word: "pro", "pré",
# "entre", "inter", "sur"... are left out because "pro-gramme", "entre-prises" are cuts.
_COMPOUND_FIRST = frozenset(
    """peut vis c'est est grand grande grands grandes petit petite petits petites après
    avant arrière sous non quasi semi demi vice médico ci là celui celle ceux celles rez
    chef chefs nord sud ouest centre
    """.split()
)
# Second parts that only exist after a hyphen ("celle-ci", "dit-il", "lui-même").
_COMPOUND_SECOND = frozenset(
    """ci là même mêmes t il ils elle elles on je tu nous vous moi toi lui y en à ce
    dessus dessous delà dedans dehors être
    """.split()
)
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_HYPHEN_END_RE = re.compile(r"([^\W\d_]+(?:['’][^\W\d_]+)?)-$")
_LEADING_WORD_RE = re.compile(r"^([^\W\d_]+)")


def vocabulary(texts: Iterable[str]) -> set[str]:
    """Lower-cased words (hyphenated compounds included) seen anywhere in the document.

    Used by `dehyphenate`: if "transition" appears unbroken elsewhere, "transi-/tion" is a
    cut; if "co-construction" appears elsewhere, "co-/construction" keeps its hyphen.
    """
    vocab: set[str] = set()
    for text in texts:
        vocab.update(w.lower() for w in _WORD_RE.findall(text))
    return vocab


def _keep_hyphen(first: str, second: str, vocab: set[str]) -> bool:
    """Decide whether "first-" at a line end followed by "second" is a real compound."""
    f, s = first.lower(), second.lower()
    if f"{f}-{s}" in vocab:
        return True
    if f + s in vocab:
        return False
    if second[:1].isupper():  # Saint-Nazaire, Jean-Pierre, franco-Allemand
        return True
    f_last = re.split(r"['’]", f)[-1]
    return f in _COMPOUND_FIRST or f_last in _COMPOUND_FIRST or s in _COMPOUND_SECOND


def dehyphenate(lines: list[str], vocab: set[str] | None = None) -> list[str]:
    """Join words cut at a line end, keeping real compounds ("Saint-Nazaire", "peut-être").

    A soft hyphen (U+00AD) at a line end is always a cut. A plain hyphen after a letter,
    with a letter starting the next line, is a cut unless `_keep_hyphen` says otherwise.
    A number range ("2019-" / "2020") and an elision ("l'" / "héritage") are glued back
    without a space. The joined word goes onto the first line, so line count may shrink.
    """
    vocab = vocab or set()
    out: list[str] = []
    for raw in lines:
        line = raw.strip()
        if out and line:
            prev = out[-1].rstrip()
            if prev.endswith("\u00ad"):
                out[-1] = prev[:-1] + line
                continue
            if re.search(r"\d[-\u2010\u2013]$", prev) and line[:1].isdigit():
                out[-1] = prev + line  # a range cut after its dash: "2019-" / "2020"
                continue
            if re.search(r"\b[^\W\d_]{1,5}['’]$", prev) and line[:1].isalpha():
                out[-1] = prev + line  # an elision cut after its apostrophe: "l'" / "héritage"
                continue
            m = _HYPHEN_END_RE.search(prev.replace("\u2010", "-"))
            nxt = _LEADING_WORD_RE.match(line)
            if m and nxt:
                first, second = m.group(1), nxt.group(1)
                if _keep_hyphen(first, second, vocab):
                    out[-1] = prev + line
                else:
                    out[-1] = prev[:-1] + line
                continue
        out.append(line)
    return out


# --------------------------------------------------------------------------- blocks


def render_blocks(blocks: list[Block]) -> str:
    """The page text as the chunker and the embedder should see it.

    Blocks are separated by a blank line; consecutive list items stay on consecutive lines
    with a "- " marker so that a list still reads as a list; table rows keep one row a line.
    Every block's text appears verbatim in the result.
    """
    parts: list[str] = []
    for i, (kind, text) in enumerate(blocks):
        if kind == "list":
            item = f"- {text}"
            if i > 0 and blocks[i - 1][0] == "list":
                parts[-1] += "\n" + item
            else:
                parts.append(item)
        else:
            parts.append(text)
    return "\n\n".join(parts)


_BULLET_RE = re.compile(r"^\s*(?:[•◦▪▫‣⁃●○■□➢►✓*·–—-]|\d{1,2}[.)]|[a-z][)])\s+(\S.*)$")
_NUMBERED_HEADING_RE = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?\s+\S")
_SENTENCE_END = tuple(".!?:;»)…")


def heading_level_from_text(line: str) -> int | None:
    """Guess a heading level for a lone short line when no font information is available.

    "2.1 Les enjeux" → 2, "LES ENJEUX" → 1; anything ending like a sentence, long, or
    lower-case is not a heading. Deliberately conservative: a missed heading only costs a
    section label, a false one splits a paragraph.
    """
    s = line.strip()
    if not s or len(s) > 100 or s.endswith((".", ",", ";", ":")):
        return None
    m = _NUMBERED_HEADING_RE.match(s)
    if m and len(s.split()) <= 14 and not re.match(r"^\d{1,2}\.\d{1,2}\.\d{2,4}", s):
        rest = s[m.end() - 1 :]
        if rest[:1].isupper():
            return min(6, m.group(1).count(".") + 1)
    letters = [c for c in s if c.isalpha()]
    if len(letters) >= 4 and sum(c.isupper() for c in letters) >= 0.9 * len(letters):
        return 1
    return None


def blocks_from_text(text: str) -> list[Block]:
    """Rebuild blocks from plain text (a page that came with no structure).

    Blank lines separate paragraphs; a bullet starts a list item; a lone short numbered or
    all-caps line is a heading; a short line ending a sentence ends a paragraph (PDF text
    often has no blank lines at all).
    """
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", text):
        lines = [ln.rstrip() for ln in chunk.split("\n") if ln.strip()]
        if not lines:
            continue
        width = max(len(ln) for ln in lines)
        cur_kind = ""
        cur: list[str] = []

        def flush() -> None:
            nonlocal cur_kind, cur
            if cur:
                blocks.append((cur_kind, "\n".join(cur)))
            cur_kind, cur = "", []

        for i, ln in enumerate(lines):
            after_break = i == 0 or lines[i - 1].endswith(_SENTENCE_END) or not cur
            before_break = (
                i == len(lines) - 1 or lines[i + 1][:1].isupper() or bool(_BULLET_RE.match(lines[i + 1]))
            )
            bullet = _BULLET_RE.match(ln)
            level = heading_level_from_text(ln) if after_break and before_break else None
            if level:
                flush()
                blocks.append((f"heading{level}", ln.strip()))
            elif bullet:
                flush()
                cur_kind, cur = "list", [bullet.group(1)]
            else:
                if not cur:
                    cur_kind = "para"
                cur.append(ln)
                if cur_kind == "para" and ln.endswith(_SENTENCE_END) and len(ln) < 0.7 * width:
                    flush()
        flush()
    return blocks


# --------------------------------------------------------------------------- headers/footers

_ZONE = 3  # lines looked at, at the top and at the bottom of every page


def _line_key(line: str) -> str:
    """Compare running lines modulo page numbers, case and spacing ("Page 3 / 7")."""
    key = re.sub(r"\d+", "#", normalize_chars(line).lower()).replace(" | ", " ")
    return re.sub(r"\s+", " ", key).strip()


def _page_lines(page: Page) -> list[str]:
    if page.blocks:
        return [ln for _, text in page.blocks for ln in text.split("\n") if ln.strip()]
    return [ln for ln in page.text.split("\n") if ln.strip()]


def find_running_lines(pages: list[Page]) -> set[str]:
    """Keys (see `_line_key`) of lines repeated at the top or bottom of many pages.

    A line counts when it sits in the first or last three lines of at least 40 % of the
    pages (and of at least two): 40 % rather than a majority so that headers alternating
    between odd and even pages are caught too. Needs two pages or more: on a single page
    nothing distinguishes a header from a first sentence.
    """
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for page in pages:
        lines = _page_lines(page)
        zone = lines[:_ZONE] + lines[-_ZONE:]
        counts.update({_line_key(ln) for ln in zone if _line_key(ln)})
    threshold = max(2, math.ceil(0.4 * len(pages)))
    return {key for key, n in counts.items() if n >= threshold}


def running_lines(pages: list[Page]) -> list[str]:
    """The running headers/footers as first printed (what `clean_pages` removes), page
    numbers aside: a report's header often names its fabrique or its territory."""
    prepared = [p if p.blocks else Page(p.number, p.text, blocks_from_text(p.text)) for p in pages]
    running = find_running_lines(prepared)
    seen: dict[str, str] = {}
    for page in prepared:
        for line in _page_lines(page):
            key = _line_key(line)
            if key in running and key not in seen and re.search(r"[^\W\d_]{3}", line):
                seen[key] = collapse_spaces(normalize_chars(line)).strip()
    return list(seen.values())


def _strip_running(blocks: list[Block], running: set[str]) -> list[Block]:
    """Remove running lines contiguous with the top or bottom edge of the page."""
    if not running:
        return blocks
    rows = [text.split("\n") for _, text in blocks]
    flat = [(b, i) for b, lines in enumerate(rows) for i, ln in enumerate(lines) if ln.strip()]
    drop: set[tuple[int, int]] = set()
    for order in (flat, flat[::-1]):
        for b, i in order[:_ZONE]:
            if _line_key(rows[b][i]) not in running:
                break
            drop.add((b, i))
    out: list[Block] = []
    for b, (kind, _) in enumerate(blocks):
        kept = [ln for i, ln in enumerate(rows[b]) if (b, i) not in drop]
        if any(ln.strip() for ln in kept):
            out.append((kind, "\n".join(kept)))
    return out


# --------------------------------------------------------------------------- page cleaning

_CUT_END_RE = re.compile(r"[^\W\d_][-\u2010\u00ad]$")


def _rejoin_across_pages(pages: list[Page]) -> list[Page]:
    """Bring back to page n the end of a word cut at the bottom of page n.

    "covoitu-" ending page 1 and "rage organisé..." starting page 2 would otherwise leave
    two non-words; the fragment ("rage") moves to page 1, where the word starts, so that
    `dehyphenate` can join it. Only the fragment moves: page attribution stays right.
    """
    out = [Page(p.number, p.text, list(p.blocks), p.ocr) for p in pages]
    for cur, nxt in zip(out, out[1:], strict=False):
        if nxt.number != cur.number + 1 or not cur.blocks or not nxt.blocks:
            continue
        (kind, text), (nkind, ntext) = cur.blocks[-1], nxt.blocks[0]
        if kind not in ("para", "list") or nkind not in ("para", "list"):
            continue
        if not _CUT_END_RE.search(text.rstrip()) or not ntext.lstrip()[:1].islower():
            continue
        fragment, _, rest = ntext.lstrip().partition(" ")
        if "\n" in fragment:
            fragment, _, rest = ntext.lstrip().partition("\n")
        cur.blocks[-1] = (kind, text.rstrip() + "\n" + fragment)
        nxt.blocks = ([(nkind, rest.lstrip())] if rest.strip() else []) + nxt.blocks[1:]
    return out


def clean_block(kind: str, text: str, vocab: set[str] | None = None) -> str:
    """Clean one block: characters, cut words, then one line per paragraph.

    Paragraphs, list items and headings become a single line (the printed line breaks mean
    nothing); a table keeps one row per line.
    """
    lines = [collapse_spaces(ln) for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    if kind == "table":
        return "\n".join(collapse_spaces(normalize_chars(ln)) for ln in lines)
    lines = dehyphenate(lines, vocab)
    return collapse_spaces(normalize_chars(" ".join(lines)))


def clean_pages(pages: list[Page]) -> list[Page]:
    """Clean every page; pages left without any text are dropped (numbers are kept).

    Steps: running headers/footers out (multi-page documents), words cut across a page
    break made whole, then per block the character normalisation, end-of-line
    hyphenation and line rejoining of `clean_block`; `text` is
    re-rendered from the cleaned blocks. Pages that came without blocks get blocks rebuilt
    by `blocks_from_text` first, so that every cleaned page has both. A page keeps its
    `ocr` flag: OCR text gets the same cleaning as any other text.
    """
    prepared = [
        Page(p.number, p.text, list(p.blocks) if p.blocks else blocks_from_text(p.text), p.ocr)
        for p in pages
    ]
    running = find_running_lines(prepared)
    prepared = [Page(p.number, p.text, _strip_running(p.blocks, running), p.ocr) for p in prepared]
    prepared = _rejoin_across_pages(prepared)
    vocab = vocabulary(ln for p in prepared for _, text in p.blocks for ln in text.split("\n"))
    out: list[Page] = []
    for page in prepared:
        cleaned = [(kind, clean_block(kind, text, vocab)) for kind, text in page.blocks]
        cleaned = [(kind, text) for kind, text in cleaned if text]
        if cleaned:
            out.append(Page(page.number, render_blocks(cleaned), cleaned, page.ocr))
    return out
