"""Rules for the properties a file declares about itself, shared by every reader.

`ingest.loaders` (PDF, DOCX, HTML) and `ingest.office` (ODT, ODP, PPTX) read different
containers but must judge their properties alike: a title an office suite wrote by itself
(« Microsoft Word - rapport.docx », « Présentation PowerPoint ») is no title, and keywords
carrying `key=value` items reach `ingest.declared` whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

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


# (name under which ingest.declared reads it, attribute of python-docx/python-pptx core props)
_CORE_PROPERTIES = (
    ("title", "title"),
    ("subject", "subject"),
    ("keywords", "keywords"),
    ("category", "category"),
    ("description", "comments"),  # Word and PowerPoint call dc:description « Commentaires »
    ("created_year", "created"),
)


def core_properties(owner: Any, fmt: str) -> Iterator[tuple[str, Any]]:
    """The core properties (docProps/core.xml) of a python-docx Document or python-pptx
    Presentation, as (name, raw value); the creation date becomes its year.

    Both libraries expose the same OPC object. Each property is read on its own: a malformed
    core.xml, or one malformed value (a date the suite never wrote), loses only itself.
    """
    try:
        props = owner.core_properties
    except Exception as exc:  # noqa: BLE001 - malformed core.xml: metadata is optional
        log.debug("propriétés %s illisibles : %s", fmt, type(exc).__name__)
        return
    for name, attr in _CORE_PROPERTIES:
        try:
            value = getattr(props, attr)
        except Exception as exc:  # noqa: BLE001 - one broken property, the others remain
            log.debug("propriété %s %s illisible : %s", fmt, attr, type(exc).__name__)
            continue
        if name == "created_year":
            if value is not None:
                yield name, value.year
        else:
            yield name, value
