"""Rules for the properties a file declares about itself, shared by every reader.

`ingest.loaders` (PDF, DOCX, HTML) and `ingest.office` (ODT, ODP, PPTX) read different
containers but must judge their properties alike: a title an office suite wrote by itself
(« Microsoft Word - rapport.docx », « Présentation PowerPoint ») is no title, and keywords
carrying `key=value` items reach `ingest.declared` whole.
"""

from __future__ import annotations

import re

# titles the software wrote, not the author
JUNK_TITLE_RE = re.compile(
    r"^(?:microsoft (?:word|powerpoint) - |untitled|sans titre|présentation powerpoint"
    r"|powerpoint presentation)|\.(?:docx?|pptx?|odt|odp|indd|pdf)$",
    re.I,
)


def split_keywords(raw: str) -> list[str]:
    """Keywords split on ; , and new lines, except inside `key=value` or `key: value` items.

    « fabrique=x; territoires=Arras, Lens » must reach `ingest.declared` with Lens still
    attached to its key; a segment holding = or : is therefore kept whole.
    """
    out: list[str] = []
    for segment in re.split(r"[;\n]", raw):
        if "=" in segment or ":" in segment:
            out.append(" ".join(segment.split()))
        else:
            out.extend(k.strip() for k in segment.split(","))
    return [k for k in out if k]
