"""The one document model every loader produces and every later stage consumes.

Keeping it a plain dataclass (not a langchain Document) lets loaders stay free of any
framework and lets the chunker attach page and section without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DOC_TYPES = (
    "cahier_des_charges",
    "seminaire_local",
    "seminaire_intersites",
    "publication",
    "feuille_de_route",
    "note",
    "article",
    "autre",
)


@dataclass
class Page:
    """One page of text (PDF page; PPTX/ODP slide, numbered by slide; a whole DOCX/ODT/HTML/MD
    file is page 1).

    `blocks` keeps the structure the loader saw: each block is (kind, text) with kind in
    {"heading1".."heading6", "para", "list", "table"}. The chunker uses headings to know
    the section of every chunk; `text` is the cleaned full text of the page. `ocr` marks a
    page whose text was recognised from its image (`ingest.ocr`): it may hold misread words,
    so its passages and citations say so.
    """

    number: int
    text: str
    blocks: list[tuple[str, str]] = field(default_factory=list)
    ocr: bool = False


@dataclass
class LoadedDocument:
    """What a loader returns: pages plus whatever metadata the file itself carries."""

    path: str
    pages: list[Page]
    # metadata found inside the file (front matter, PDF/DOCX properties, HTML <title>)
    file_meta: dict[str, Any] = field(default_factory=dict)
    fmt: str = ""  # pdf | docx | odt | odp | pptx | html | md | txt
    # lines repeated at the top or bottom of the pages (removed from the text by cleaning):
    # a report's running header often names its fabrique or territory
    running: list[str] = field(default_factory=list)


@dataclass
class DocMeta:
    """Resolved document metadata (manifest > sidecar > front matter > properties > inference)."""

    doc_id: str
    title: str
    source: str
    doc_type: str = "autre"
    fabrique: str = ""
    fabrique_title: str = ""
    year: int | None = None  # the year the document dates itself
    fabrique_year: int | None = None  # its fabrique's edition (launch year), when known
    territories: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    visibility: str = "public"
    # per field, where its value came from (manifeste, fiche .meta.yaml, en-tête YAML,
    # propriétés du fichier, déduit du texte …); absent when the field is empty
    provenance: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # explicit sources that disagree
    problems: list[str] = field(default_factory=list)  # declared values that could not be used
    fabrique_named: str = ""  # the fabrique's name as this document writes it


@dataclass
class Chunk:
    """A passage ready for the store: text, its position, and the document's metadata."""

    chunk_id: str
    doc_id: str
    text: str
    page: int
    section: str
    index: int
    meta: DocMeta
    ocr: bool = False  # its page was read by OCR (`Page.ocr`)
