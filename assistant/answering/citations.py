"""Citation integrity, for every back-end: a [n] in an answer always points to a real source.

A model (or a bug) can write "[7]" with five sources, cite nothing, or cite source 4 but
not 2. Users act on these references (an elected official quotes a document in a council
meeting), so the text they read is rewritten here: markers that match no source are removed,
the sources actually cited are renumbered 1, 2, 3… in order of first use, uncited sources
are not listed, and each citation carries the sentence(s) of its passage that support the
claim, so a reader can check it without opening the PDF.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.answering.frtext import (
    content_stems,
    coverage,
    fold,
    looks_like_instruction,
    split_units,
    words,
)
from assistant.retriever import Passage

if TYPE_CHECKING:
    from assistant.answering.extractive import Answer

# "[3]", "[1, 2]", "[1;2]", "[Source 2]", "[source : 1, 3]" (years like [2021] are not markers)
_SRC = r"(?:sources?\s*:?\s*(?:n°\s*)?)?"
MARKER = re.compile(rf"\[\s*{_SRC}(\d{{1,3}}(?:\s*[,;]\s*{_SRC}\d{{1,3}})*)\s*\]", re.I)
_TRAILING_MARKER = re.compile(MARKER.pattern + r"$", re.I)
_CLAIM_END = re.compile(r"(?<=[.!?…])\s+|\n|\|")


@dataclass
class Citation:
    """One listed source: where it is (title, page, fabrique…) and what it says (excerpt)."""

    n: int
    source: str
    title: str
    page: int
    fabrique: str
    territories: list[str]
    doc_type: str
    excerpt: str
    doc_id: str
    year: int | None = None
    section: str = ""
    fabrique_title: str = ""
    support: float = 1.0  # lexical coverage of the cited claim(s) by the excerpt, 0..1
    ocr: bool = False  # the page was a scan read by OCR: a word may be misread, check the file

    @classmethod
    def from_passage(cls, n: int, passage: Passage, excerpt: str, support: float = 1.0) -> Citation:
        m = passage.meta
        return cls(
            n=n,
            source=passage.source,
            title=str(m.get("title", "")),
            page=passage.page,
            fabrique=str(m.get("fabrique", "")),
            territories=list(m.get("territories") or []),
            doc_type=str(m.get("doc_type", "")),
            excerpt=excerpt,
            doc_id=str(m.get("doc_id", "")),
            year=m.get("year"),
            section=str(m.get("section", "")),
            fabrique_title=str(m.get("fabrique_title", "")),
            support=round(support, 3),
            ocr=bool(m.get("ocr", False)),
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Cited:
    """The cleaned text and the citations it uses (numbered as in the text)."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)  # marker numbers that matched no source
    mapping: dict[int, int] = field(default_factory=dict)  # number in the input -> number in text

    @property
    def grounded(self) -> bool:
        return bool(self.citations)


def _numbers(group: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", group)]


def claim_before(text: str, pos: int) -> str:
    """The sentence a marker at `pos` vouches for: back to the previous boundary or marker.

    Works for both "… le centre [2]." and "… le centre. [2]", and for runs "[1] [2]".
    """
    head = text[:pos].rstrip()
    while (m := _TRAILING_MARKER.search(head)) is not None:
        head = head[: m.start()].rstrip()
    body = head.rstrip(".!?…»”\"') ")  # "… chaque maire compte. »" ends at the quote, not inside
    boundary = 0
    for m in _CLAIM_END.finditer(body):
        boundary = m.end()
    for m in MARKER.finditer(body):
        boundary = max(boundary, m.end())
    claim = MARKER.sub("", head[boundary:]).strip()
    return re.sub(r"^(?:[-*•]\s+)+|\*\*", "", claim).strip(" |;")


def best_excerpt(claim: str, passage: Passage) -> tuple[str, float]:
    """The passage sentence that best supports `claim`, with its lexical support (0..1).

    A claim quoted verbatim (the extractive back-end) is its own excerpt; otherwise the
    sentence covering most of the claim's content words wins, shorter ones on ties.
    """
    units = [
        u for u in split_units(passage.text) if len(words(u.text)) >= 3 and not looks_like_instruction(u.text)
    ] or [u for u in split_units(passage.text) if not looks_like_instruction(u.text)]
    if not units:
        return "", 0.0
    if claim and claim in passage.text and not looks_like_instruction(claim):
        for u in units:
            if u.text == claim or claim in u.text:
                return u.text, 1.0
        return claim, 1.0
    stems = content_stems(claim, generic=True)
    scored = []
    for u in units:
        ustems = set(content_stems(u.text, generic=True))
        scored.append((coverage(stems, ustems), -len(u.text), u.text))
    cov, _, text = max(scored)
    return text, cov


def clean_citations(text: str, passages: list[Passage], *, max_excerpts: int = 2,
                    keep_numbers: bool = False, first: int = 1) -> Cited:
    """Remove invented markers, renumber the used sources 1..k, attach supporting excerpts.

    `text` numbers sources as the prompt did: [n] is `passages[n - 1]`. The returned text
    uses the new numbering, written as "[1]" or "[1][2]" (merged and deduplicated). With
    `keep_numbers` the prompt's numbers stay (a streamed answer has already shown them to
    its reader, who can no longer see them change): only invented markers go. `first` is the
    prompt's first source number (numbers before it were given to other sources, a card's).
    """
    order: dict[int, int] = {}  # passage index -> new number
    claims: dict[int, list[str]] = {}
    removed: list[int] = []
    pieces: list[str] = []
    last = 0
    for m in MARKER.finditer(text):
        valid: list[int] = []
        for k in _numbers(m.group(1)):
            if first <= k < first + len(passages):
                if k - first not in valid:
                    valid.append(k - first)
            else:
                removed.append(k)
        before = text[last:m.start()]
        if not valid:  # drop the marker and the space before it, nothing else
            after = text[m.end():m.end() + 1]
            keep_space = bool(after) and not after.isspace() and after not in ".,;:!?)"
            pieces.append(before.rstrip(" \t") + (" " if keep_space and before[-1:].isspace() else ""))
            last = m.end()
            continue
        claim = claim_before(text, m.start())
        new = []
        for idx in valid:
            order.setdefault(idx, idx + first if keep_numbers else len(order) + 1)
            if claim:
                claims.setdefault(idx, []).append(claim)
            new.append(order[idx])
        pieces.append(before + "".join(f"[{n}]" for n in new))
        last = m.end()
    pieces.append(text[last:])
    out = "".join(pieces)
    out = re.sub(r"(\[\d+\])(\s*\1)+", r"\1", out).strip()  # "[1] [1]" -> "[1]"

    citations: list[Citation] = []
    for idx, n in sorted(order.items(), key=lambda kv: kv[1]):
        passage = passages[idx]
        found: dict[str, float] = {}
        for claim in claims.get(idx, []):
            excerpt, support = best_excerpt(claim, passage)
            found[excerpt] = max(support, found.get(excerpt, 0.0))
        ranked = sorted(found.items(), key=lambda kv: -kv[1])
        # the best supporting sentence, plus others only if they really support a claim
        chosen = [t for i, (t, sup) in enumerate(ranked) if i == 0 or sup >= 0.3][:max_excerpts]
        if not chosen:
            units = [u for u in split_units(passage.text) if not looks_like_instruction(u.text)]
            chosen = [units[0].text if units else ""]
        support = ranked[0][1] if ranked else 0.0
        citations.append(Citation.from_passage(n, passage, " […] ".join(chosen), support))
    mapping = {idx + first: n for idx, n in order.items()}
    return Cited(out, citations, removed, mapping)


def renumber(text: str, mapping: dict[int, int]) -> str:
    """Rewrite markers with a `Cited.mapping` (numbers not in it are dropped)."""

    def sub(m: re.Match[str]) -> str:
        return "".join(f"[{mapping[k]}]" for k in _numbers(m.group(1)) if k in mapping)

    return MARKER.sub(sub, text).strip()


def strip_markers(text: str) -> str:
    """The text without any [n] (for display of a refusal, or to compare sentences)."""
    return re.sub(r"[ \t]+(?=[.,)])", "", MARKER.sub("", text)).strip()


def stream_correction(answer: Answer, shown: str) -> str:
    """What a reader who saw `shown` (the model's streamed words) must still read so that the
    checked `answer` is what they end with.

    Why a correction and not a replacement: a streaming client keeps every piece it received.
    The numbers already agree (the stream keeps the prompt's numbering); what the check can
    still change is said after the text: a refusal (the model wrote nothing it could cite),
    markers dropped because no source carries them, and the answer's notes.
    """
    if answer.refused and fold(answer.text[:40]) not in fold(shown):
        return "\n\n" + answer.text
    tail = ""
    valid = {c.n for c in answer.citations}
    dropped = sorted({k for m in MARKER.finditer(shown) for k in _numbers(m.group(1))} - valid)
    if dropped:
        names = ", ".join(f"[{n}]" for n in dropped)
        tail += f"\n\n*Correction : {names} ne renvoie à aucune source fournie ; à ignorer.*"
    for note in answer.notes:
        tail += f"\n\n*{note}*"
    return tail
