"""Turn one source file (PDF, DOCX, ODT, PPTX, ODP, HTML, Markdown, text) into a `LoadedDocument`.

The format is decided by the bytes, not the name: a ".docx" that is really a PDF is loaded
as a PDF (with a warning in the log), because users rename files and portals serve PDFs
under odd names; refusing such a file would only lose a document we can read. Every
problem a user can act on becomes an `IngestError` with a French reason naming the cause
(empty file, too large, password, scanned PDF, zip bomb, encoding...) and a short ascii
`code`; no parser exception escapes `load`.

Each format keeps the structure the chunker needs (`Page.blocks`: headings, paragraphs,
lists, table rows) and PDFs keep their physical page numbers. The output of `load` is
already cleaned by `ingest.clean.clean_pages` (running headers, hyphenation, ligatures),
as `Page.text` is documented to be the cleaned text; pass `clean=False` to see the raw
extraction.

Heavy parsers (pypdf, python-docx, trafilatura) are imported lazily so that importing this
module, e.g. from the CLI, stays cheap. OpenDocument and PowerPoint files are read by
`ingest.office` (slides keep their numbers as pages).
"""

from __future__ import annotations

import html as html_lib
import io
import logging
import math
import re
import statistics
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from ingest.clean import (
    blocks_from_text,
    clean_pages,
    heading_level_from_text,
    render_blocks,
    running_lines,
)
from ingest.declared import canonical_key
from ingest.errors import IngestError
from ingest.models import LoadedDocument, Page
from ingest.ocr import (
    INSTALL_HINT,
    USABLE_LETTERS,
    OcrOptions,
    needs_ocr,
    ocr_pdf_pages,
    tesseract_available,
)
from ingest.properties import JUNK_TITLE_RE, core_properties, split_keywords

log = logging.getLogger(__name__)

Block = tuple[str, str]

# Zip-bomb limits for DOCX, ODT, ODP, PPTX (checked on the zip directory, before anything
# is inflated).
MAX_ZIP_UNCOMPRESSED = 200_000_000  # total uncompressed bytes
MAX_ZIP_ENTRIES = 5000
MAX_ZIP_RATIO = 200  # an entry above ZIP_RATIO_MIN_BYTES inflating more than this is a bomb
ZIP_RATIO_MIN_BYTES = 10_000_000

HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
MD_EXTENSIONS = frozenset({".md", ".markdown", ".mdown", ".mkd"})
TXT_EXTENSIONS = frozenset({".txt", ".text"})

_FORMAT_LABEL = {"pdf": "PDF", "docx": "DOCX", "odt": "ODT", "odp": "ODP", "pptx": "PPTX", "html": "HTML",
                 "md": "Markdown", "txt": "texte"}
_EXT_FORMAT = {".pdf": "pdf", ".docx": "docx"} | dict.fromkeys(HTML_EXTENSIONS, "html")
_EXT_FORMAT |= dict.fromkeys(MD_EXTENSIONS, "md") | dict.fromkeys(TXT_EXTENSIONS, "txt")
_EXT_FORMAT |= {".odt": "odt", ".odp": "odp", ".pptx": "pptx"}
ZIP_FORMATS = frozenset({"docx", "odt", "odp", "pptx"})  # formats that are zip archives

SCANNED_REASON = "aucun texte extractible : PDF scanné ou image seule (un OCR serait nécessaire)"
SCANNED_NO_TESSERACT_REASON = SCANNED_REASON.removesuffix(")") + f" : {INSTALL_HINT})"
OCR_NOTHING_REASON = (
    "aucun texte reconnu : PDF scanné où l'OCR n'a lu aucun texte fiable "
    "(image sans texte, bruit, page trop floue ou écriture manuscrite)"
)
UNDECODABLE_REASON = (
    "aucun texte extractible : le PDF contient du texte mais il n'a pas pu être décodé "
    "(police sans table de caractères ou flux endommagé ; un OCR serait nécessaire)"
)


# =========================================================================== entry point


def load(
    path: str | Path,
    *,
    max_bytes: int = 50_000_000,
    max_pages: int = 2000,
    clean: bool = True,
    ocr: OcrOptions | None = None,
) -> LoadedDocument:
    """Load one file into pages of cleaned text plus the metadata the file itself carries.

    Raises `IngestError` (never anything else, MemoryError aside) when the file cannot be
    used; `err.code` tells the batch report what kind of problem it was. `ocr`: PDF pages
    without a text layer are read by OCR (`ingest.ocr`) within these limits; None (the
    default, as OCR is slow and needs Tesseract) refuses a scanned PDF as before.
    """
    p = Path(path)
    data = _read_bytes(p, max_bytes)
    fmt = detect_format(p, data)
    claimed = _EXT_FORMAT.get(p.suffix.lower())
    if claimed and claimed != fmt and {claimed, fmt} != {"md", "txt"}:
        log.warning("%s : extension %s mais contenu %s, lu comme %s", p, p.suffix, fmt.upper(), fmt.upper())
    try:
        if fmt == "pdf":
            pages, meta = _load_pdf(p, data, max_pages, ocr)
        elif fmt == "docx":
            pages, meta = _load_docx(p, data)
        elif fmt in ("odt", "odp", "pptx"):
            from ingest import office

            if fmt == "odt":
                pages, meta = office.load_odt(p, data)
            else:
                pages, meta = (office.load_odp if fmt == "odp" else office.load_pptx)(p, data, max_pages)
        elif fmt == "html":
            pages, meta = _load_html(p, data)
        else:
            pages, meta = _load_text(p, data)
    except IngestError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a parser bug or an exotic file must not stop the batch
        raise IngestError(
            p, f"{_FORMAT_LABEL[fmt]} illisible ou corrompu ({_detail(exc)})", "corrupt"
        ) from exc
    running = running_lines(pages) if fmt == "pdf" else []
    if clean and fmt in ("pptx", "odp"):
        # slide titles repeat by design (« Atelier 1 », « Atelier 2 ») and would pass for a
        # running header: each slide is cleaned on its own (footer placeholders are not read)
        pages = [cleaned for page in pages for cleaned in clean_pages([page])]
    elif clean:
        pages = clean_pages(pages)
    if not any(page.text.strip() for page in pages):
        raise IngestError(p, "aucun texte exploitable dans le fichier", "no_text")
    return LoadedDocument(path=str(p), pages=pages, file_meta=meta, fmt=fmt, running=running)


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """Read the whole file after checking it exists, is not empty and is not too large."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise IngestError(path, "c'est un dossier, pas un fichier", "not_a_file")
    except FileNotFoundError:
        raise IngestError(path, "fichier introuvable", "not_found") from None
    except PermissionError:
        raise IngestError(path, "lecture impossible (permission refusée)", "unreadable") from None
    if size == 0:
        raise IngestError(path, "fichier vide", "empty")
    if size > max_bytes:
        raise IngestError(
            path, f"fichier trop volumineux ({size_fr(size)}, limite {size_fr(max_bytes)})", "too_large"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(path, f"lecture impossible ({exc.strerror or exc})", "unreadable") from exc


def size_fr(n: int) -> str:
    """Human size in French units: Mo for anything real, ko/octets for test-sized limits."""
    if n >= 100_000:
        return f"{n / 1_000_000:.1f} Mo".replace(".", ",")
    if n >= 1000:
        return f"{n / 1000:.1f} ko".replace(".", ",")
    return f"{n} octets"


def _detail(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:200] if msg else type(exc).__name__


# =========================================================================== sniffing

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC = {
    b"\x89PNG": "image PNG",
    b"\xff\xd8\xff": "image JPEG",
    b"GIF8": "image GIF",
    b"II*\x00": "image TIFF",
    b"MM\x00*": "image TIFF",
}
_HTML_START_RE = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)


def detect_format(path: str | Path, data: bytes) -> str:
    """Real format of the bytes: "pdf" | "docx" | "odt" | "odp" | "pptx" | "html" | "md" | "txt".

    Magic bytes win over the extension (%PDF, a zip holding word/document.xml or
    ppt/presentation.xml or an OpenDocument `mimetype`, an HTML start tag); the extension
    only decides between Markdown and plain text, which have no signature. Raises
    `IngestError` for formats we do not read, naming what the file is when we can tell
    (old .doc, spreadsheet, image...), and for password-protected Office files.
    """
    p = Path(path)
    ext = p.suffix.lower()
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(p, data)
    if head.startswith(_OLE2_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise IngestError(p, "document Office protégé par mot de passe", "encrypted")
        if ext in (".ppt", ".pps", ".pot"):
            what = "PowerPoint 97-2003 ; enregistrez-le en .pptx ou en PDF"
        else:
            what = "Word 97-2003 ou autre format Office ancien ; enregistrez-le en .docx, en .odt ou en PDF"
        raise IngestError(p, f"format non pris en charge ({ext or 'sans extension'} : {what})", "unsupported")
    if head.startswith(b"{\\rtf"):
        raise IngestError(
            p,
            f"format non pris en charge ({ext or 'sans extension'} : RTF ; enregistrez-le en .docx)",
            "unsupported",
        )
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise IngestError(
                p,
                f"format non pris en charge ({ext or 'sans extension'} : {what}, un OCR serait nécessaire)",
                "unsupported",
            )
    if ext in HTML_EXTENSIONS or _HTML_START_RE.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "html"
    if ext in MD_EXTENSIONS:
        return "md"
    if ext in TXT_EXTENSIONS:
        return "txt"
    if ext == ".pdf":
        raise IngestError(
            p, "PDF illisible ou corrompu (en-tête %PDF absent : le contenu n'est pas un PDF)", "corrupt"
        )
    if _EXT_FORMAT.get(ext) in ZIP_FORMATS:
        label = _FORMAT_LABEL[_EXT_FORMAT[ext]]
        family = "OpenDocument" if ext in (".odt", ".odp") else "Office"
        reason = f"{label} illisible ou corrompu (ce n'est pas une archive ZIP {family})"
        raise IngestError(p, reason, "corrupt")
    raise IngestError(p, f"format non pris en charge ({ext or 'sans extension'})", "unsupported")


_ZIP_MARKER = {"docx": "word/document.xml", "pptx": "ppt/presentation.xml",
               "odt": "type OpenDocument texte (entrée mimetype)",
               "odp": "type OpenDocument présentation (entrée mimetype)"}


def _sniff_zip(path: Path, data: bytes) -> str:
    """What the archive holds decides, never its name: word/document.xml → DOCX,
    ppt/presentation.xml → PPTX, a `mimetype` entry naming an OpenDocument text or
    presentation → ODT / ODP. The bomb check happens here, before any reader inflates
    anything; spreadsheets and other archives are refused, saying what they are."""
    from ingest.office import odf_kind

    claimed = _EXT_FORMAT.get(path.suffix.lower())
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            entry = next((i for i in infos if i.filename == "mimetype" and i.file_size <= 256), None)
            mimetype = zf.read(entry).decode("ascii", "replace").strip() if entry is not None else ""
    except Exception as exc:  # BadZipFile, NotImplementedError (exotic versions), OSError...
        if claimed in ZIP_FORMATS:
            reason = f"{_FORMAT_LABEL[claimed]} illisible ou corrompu (archive ZIP invalide : {_detail(exc)})"
            raise IngestError(path, reason, "corrupt") from exc
        ext = path.suffix.lower() or "sans extension"
        raise IngestError(
            path, f"format non pris en charge ({ext} : archive ZIP illisible)", "unsupported"
        ) from exc
    check_zip_limits(path, infos)
    names = {info.filename for info in infos}
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    kind = odf_kind(mimetype)
    if kind:
        return kind
    ext = path.suffix.lower() or "sans extension"
    if "xl/workbook.xml" in names:
        what = "classeur Excel"
    elif mimetype.startswith("application/vnd.oasis.opendocument.spreadsheet"):
        what = "classeur OpenDocument"
    elif mimetype.startswith("application/vnd.oasis.opendocument.") or (
        "mimetype" in names and "content.xml" in names
    ):
        what = "document OpenDocument autre qu'un texte ou une présentation ; exportez-le en .odt ou en PDF"
    elif claimed in ZIP_FORMATS:  # a damaged Office file, not a format question
        raise IngestError(
            path, f"{_FORMAT_LABEL[claimed]} illisible ou corrompu (archive ZIP sans {_ZIP_MARKER[claimed]})",
            "corrupt",
        )
    else:
        what = "archive ZIP"
    raise IngestError(path, f"format non pris en charge ({ext} : {what})", "unsupported")


def check_zip_limits(path: str | Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse zips that would inflate into gigabytes or hold absurd numbers of entries.

    Sizes come from the zip directory, which is all we need: Python's zipfile stops
    inflating an entry at its declared size, so a lying directory cannot exceed it.
    """
    if len(infos) > MAX_ZIP_ENTRIES:
        raise IngestError(
            path,
            f"archive suspecte (bombe ZIP ?) : {len(infos)} fichiers internes, limite {MAX_ZIP_ENTRIES}",
            "zip_bomb",
        )
    total = sum(info.file_size for info in infos)
    if total > MAX_ZIP_UNCOMPRESSED:
        raise IngestError(
            path,
            f"archive suspecte (bombe ZIP ?) : {size_fr(total)} une fois décompressée, "
            f"limite {size_fr(MAX_ZIP_UNCOMPRESSED)}",
            "zip_bomb",
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise IngestError(
                path,
                f"archive suspecte (bombe ZIP ?) : {info.filename} passe de {size_fr(info.compress_size)} "
                f"à {size_fr(info.file_size)} (taux {ratio:.0f}:1)",
                "zip_bomb",
            )


# =========================================================================== PDF


def _load_pdf(
    path: Path, data: bytes, max_pages: int, ocr: OcrOptions | None = None
) -> tuple[list[Page], dict[str, Any]]:
    """PDF → one Page per physical page that has text, blocks from font sizes and layout;
    pages without a usable text layer read by OCR when `ocr` allows it (`Page.ocr`)."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    truncated = b"%%EOF" not in data[-2048:]
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise _pdf_corrupt(path, exc, truncated) from exc
    if encrypted:
        try:
            ok = reader.decrypt("")
        except DependencyError as exc:
            raise IngestError(
                path,
                "PDF chiffré en AES : le paquet Python « cryptography » est nécessaire pour le lire",
                "encrypted",
            ) from exc
        except Exception as exc:
            raise IngestError(
                path, f"PDF chiffré de façon non prise en charge ({_detail(exc)})", "encrypted"
            ) from exc
        if not ok:
            raise IngestError(path, "PDF protégé par mot de passe", "encrypted")
    try:
        n_pages = len(reader.pages)
    except Exception as exc:
        raise _pdf_corrupt(path, exc, truncated) from exc
    if n_pages == 0:
        raise IngestError(path, "PDF vide : il ne contient aucune page", "empty")
    if n_pages > max_pages:
        raise IngestError(
            path, f"PDF trop long : {n_pages} pages, limite {max_pages} pages", "too_many_pages"
        )

    meta = _pdf_meta(reader)
    meta["page_count"] = n_pages
    extracted: list[tuple[int, list[_Line], bool]] = []
    failed: list[int] = []
    for number in range(1, n_pages + 1):
        try:
            page = reader.pages[number - 1]
            lines = _page_lines(page)
            geometric = True
            if not lines:  # rotated text, odd fonts: fall back to pypdf's own text
                text = page.extract_text() or ""
                lines = [_plain_line(t, i) for i, t in enumerate(text.split("\n")) if t.strip()]
                geometric = False
        except Exception as exc:  # noqa: BLE001 - one broken page must not lose the others
            log.warning("%s : page %d illisible (%s)", path, number, _detail(exc))
            failed.append(number)
            continue
        if lines:
            extracted.append((number, lines, geometric))
    ocred: list[Page] = []
    attempted = False
    if ocr is not None and ocr.enabled:
        ocred, attempted = _ocr_scanned(path, data, reader, extracted, failed, ocr)
        read = {p.number for p in ocred}
        extracted = [e for e in extracted if e[0] not in read]  # OCR replaces a stamped number
    if not extracted and not ocred:
        if failed and len(failed) == n_pages:
            raise IngestError(path, "PDF illisible ou corrompu (aucune page lisible)", "corrupt")
        if attempted:
            raise IngestError(path, OCR_NOTHING_REASON, "no_text")
        why = _why_no_text(reader, n_pages)
        if why == "undecodable":
            raise IngestError(path, UNDECODABLE_REASON, "no_text")
        if why == "blank":
            raise IngestError(path, "aucun texte : le PDF ne contient que des pages blanches", "no_text")
        if why == "broken":
            raise IngestError(
                path, "PDF illisible ou corrompu (contenu des pages endommagé)", "corrupt"
            )
        missing = ocr is not None and ocr.enabled and not tesseract_available()
        raise IngestError(path, SCANNED_NO_TESSERACT_REASON if missing else SCANNED_REASON, "scanned")
    with_text = {n for n, _, _ in extracted} | {p.number for p in ocred}
    no_text = [n for n in range(1, n_pages + 1) if n not in with_text and n not in failed]
    if no_text:
        meta["pages_sans_texte"] = no_text  # image-only pages: worth an OCR
    if failed:
        meta["pages_illisibles"] = failed
    if ocred:
        meta["pages_ocr"] = [p.number for p in ocred]

    style = _DocStyle.measure([ln for _, lines, geo in extracted if geo for ln in lines])
    pages: list[Page] = []
    for number, lines, geometric in extracted:
        blocks = (
            _pdf_blocks(lines, style) if geometric else blocks_from_text("\n".join(ln.text for ln in lines))
        )
        if blocks:
            pages.append(Page(number, render_blocks(blocks), blocks))
    return sorted(pages + ocred, key=lambda page: page.number), meta


def _ocr_scanned(
    path: Path, data: bytes, reader: Any, extracted: list[tuple[int, list[_Line], bool]],
    failed: list[int], ocr: OcrOptions,
) -> tuple[list[Page], bool]:
    """OCR of the pages without a usable text layer → (pages read, whether OCR ran).

    A file with real text elsewhere keeps it whatever happens here (the OCR limits only log
    a warning then, as before OCR existed); a file with no usable text at all gets the OCR
    limits as errors, raised by `ingest.ocr.ocr_pdf_pages`.
    """
    letters = {n: sum(c.isalpha() for ln in lines for c in ln.text) for n, lines, _ in extracted}
    usable = any(k >= USABLE_LETTERS for k in letters.values())
    candidates = [
        n for n in range(1, len(reader.pages) + 1)
        if n not in failed and letters.get(n, 0) < USABLE_LETTERS
        and needs_ocr(reader.pages[n - 1], letters.get(n, 0))
    ]
    if not candidates:
        return [], False
    if not tesseract_available():
        if usable:
            log.warning("%s : pages %s sans texte non lues, OCR indisponible (%s)", path, candidates,
                        INSTALL_HINT)
        return [], False
    return ocr_pdf_pages(path, data, candidates, ocr, required=not usable), True


def _why_no_text(reader: Any, n_pages: int) -> str:
    """Why no page gave text: "undecodable", "broken", "blank" or "images" (first 20 pages).

    Separates a scanned PDF (anything drawn without text, scans or vector drawings: an
    OCR is the answer) from one whose text exists but cannot be decoded (fonts without a
    Unicode map) and from one whose pages are damaged or draw nothing at all.
    """
    broken, drawn = False, False
    for number in range(min(n_pages, 20)):
        try:
            contents = reader.pages[number].get_contents()
            data = contents.get_data() if contents is not None else b""
        except Exception:  # noqa: BLE001 - any failure here means a damaged stream
            broken = True
            continue
        drawn = drawn or bool(data.strip())
        if re.search(rb"(?:\)|>|\])\s*(?:Tj|TJ|'|\")", data):
            return "undecodable"
    if broken:
        return "broken"
    if not drawn:  # no content stream at all: blank pages, not a damaged file
        return "blank"
    return "images"


def _pdf_corrupt(path: Path, exc: Exception, truncated: bool) -> IngestError:
    detail = _detail(exc)
    if truncated:
        detail = f"fichier tronqué : marqueur de fin %%EOF absent ; {detail}"
    return IngestError(path, f"PDF illisible ou corrompu ({detail})", "corrupt")




# PDF info entries that describe the producing software, not the document
_PDF_INFO_TECHNICAL = frozenset({"/producer", "/creator", "/moddate", "/trapped", "/ptex.fullbanner"})
_PDF_INFO_HANDLED = frozenset({"/title", "/subject", "/keywords", "/author", "/creationdate"})
_MAX_META_VALUE = 2000  # characters kept of one custom property: metadata, not content
_MAX_META_KEYS = 100


def _pdf_meta(reader: Any) -> dict[str, Any]:
    """What the PDF declares about itself: the info dictionary, then the XMP packet.

    Info entries keep their own names, lower-cased (/Title → "title"); a prestataire's
    custom entries (/Fabrique, /Annee...) are kept too, as `ingest.declared` decides what
    they mean. XMP fields are kept under their prefixed names ("dc:title", "pdf:keywords")
    so that the two sources stay distinguishable. Each source fails on its own: a broken
    info dictionary or XMP packet loses its metadata, never the document.
    """
    meta: dict[str, Any] = {}
    try:
        info = reader.metadata or {}
        title = str(info.get("/Title") or "").strip()
        if title and not JUNK_TITLE_RE.search(title):
            meta["title"] = title
        subject = str(info.get("/Subject") or "").strip()
        if subject:
            meta["subject"] = subject
        keywords = split_keywords(str(info.get("/Keywords") or ""))
        if keywords:
            meta["keywords"] = keywords
        author = " ".join(str(info.get("/Author") or "").split())
        if author:
            meta["author"] = author
        m = re.match(r"(?:D:)?((?:19|20)\d\d)", str(info.get("/CreationDate") or ""))
        if m:
            meta["created_year"] = int(m.group(1))
        for key in list(info.keys())[:_MAX_META_KEYS]:
            lowered = str(key).lower()
            if lowered in _PDF_INFO_TECHNICAL or lowered in _PDF_INFO_HANDLED:
                continue
            value = info.get(key)
            value = value.get_object() if hasattr(value, "get_object") else value
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = " ".join(str(value).split())[:_MAX_META_VALUE]
                name = lowered.lstrip("/").strip()
                if text and name:
                    meta.setdefault(name, text)
    except Exception as exc:  # noqa: BLE001 - broken info dictionaries are common, harmless
        log.debug("métadonnées PDF illisibles : %s", _detail(exc))
    for key, value in _xmp_meta(reader).items():
        meta.setdefault(key, value)
    return meta


_RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_PDF_NS = "http://ns.adobe.com/pdf/1.3/"
_XMP_NS = "http://ns.adobe.com/xap/1.0/"
_PDFX_NS = "http://ns.adobe.com/pdfx/1.3/"  # Acrobat's « propriétés personnalisées »
_PDFX_ESCAPE_RE = re.compile("\u2182([0-9a-fA-F]{4})")
_XMP_FIELDS = {
    (_DC_NS, "title"): "dc:title",
    (_DC_NS, "subject"): "dc:subject",
    (_DC_NS, "description"): "dc:description",
    (_DC_NS, "date"): "dc:date",
    (_DC_NS, "type"): "dc:type",
    (_DC_NS, "coverage"): "dc:coverage",
    (_PDF_NS, "Keywords"): "pdf:keywords",
    (_XMP_NS, "CreateDate"): "created_year",
}


def _xmp_meta(reader: Any) -> dict[str, Any]:
    """dc:title, dc:subject, dc:description, dc:date, dc:type, dc:coverage, pdf:Keywords and
    custom (pdfx) properties of the XMP packet, from every rdf:Description.

    pypdf parses the packet with entity declarations refused and size limits; its own
    accessors only look at `rdf:about=""`, which many producers do not write, hence the
    walk over the parsed tree. Malformed XMP is common and never fails the document.
    """
    meta: dict[str, Any] = {}
    try:
        xmp = reader.xmp_metadata
        if xmp is None:
            return meta
        for desc in xmp.rdf_root.getElementsByTagNameNS(_RDF_NS, "Description"):
            nodes = [desc.attributes.item(i) for i in range(desc.attributes.length)]
            nodes += [c for c in desc.childNodes if c.nodeType == c.ELEMENT_NODE]
            for node in nodes[:_MAX_META_KEYS]:
                if node.namespaceURI == _PDFX_NS:
                    # pypdf writes characters not allowed in XML names as "ↂ" + 4 hex digits
                    name = _PDFX_ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), node.localName)
                    name = name.strip().lower()
                elif (node.namespaceURI, node.localName) in _XMP_FIELDS:
                    name = _XMP_FIELDS[(node.namespaceURI, node.localName)]
                else:
                    continue
                value = _xmp_value(node)
                if name == "created_year":
                    m = re.match(r"\s*((?:19|20)\d\d)", value if isinstance(value, str) else "")
                    if m:
                        meta.setdefault(name, int(m.group(1)))
                    continue
                if name == "dc:title" and isinstance(value, str) and JUNK_TITLE_RE.search(value):
                    continue
                if value and name:
                    meta.setdefault(name, value)
    except Exception as exc:  # noqa: BLE001 - malformed XMP: the info dictionary and text remain
        log.debug("métadonnées XMP illisibles : %s", _detail(exc))
    return meta


def _xmp_value(node: Any) -> str | list[str]:
    """A language alternative gives its x-default text, a bag or sequence its items."""

    def text_of(n: Any) -> str:
        if n.nodeType in (n.ATTRIBUTE_NODE, n.TEXT_NODE, n.CDATA_SECTION_NODE):
            return n.nodeValue or ""
        return "".join(text_of(c) for c in n.childNodes)

    def clip(text: str) -> str:
        return " ".join(text.split())[:_MAX_META_VALUE]

    if node.nodeType == node.ATTRIBUTE_NODE:
        return clip(node.nodeValue or "")
    alts = node.getElementsByTagNameNS(_RDF_NS, "Alt")
    if alts.length:
        items = list(alts[0].getElementsByTagNameNS(_RDF_NS, "li"))
        default = [li for li in items if li.getAttribute("xml:lang").lower() == "x-default"]
        for li in default + items:
            if clip(text_of(li)):
                return clip(text_of(li))
        return ""
    for container in ("Bag", "Seq"):
        found = node.getElementsByTagNameNS(_RDF_NS, container)
        if found.length:
            items = [clip(text_of(li)) for li in found[0].getElementsByTagNameNS(_RDF_NS, "li")]
            return [i for i in items if i][:_MAX_META_KEYS]
    return clip(text_of(node))




# --------------------------------------------------------------------------- PDF geometry


@dataclass
class _Seg:
    """A run of text on one baseline: x0..x1 horizontally, font size, bold or not."""

    x0: float
    x1: float
    y: float
    size: float
    bold: bool
    text: str


class _SegBox:
    """The horizontal extent and font size of a group of segments (a line or a table row)."""

    segs: list[_Seg]

    @property
    def x0(self) -> float:
        return min(s.x0 for s in self.segs)

    @property
    def x1(self) -> float:
        return max(s.x1 for s in self.segs)

    @property
    def size(self) -> float:
        return max(s.size for s in self.segs)


@dataclass
class _Line(_SegBox):
    """Segments sharing a baseline; several segments mean table cells (or columns)."""

    segs: list[_Seg]

    @property
    def y(self) -> float:
        return self.segs[0].y


    @property
    def bold(self) -> bool:
        return all(s.bold for s in self.segs)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segs)


@dataclass
class _RowGroup(_SegBox):
    """A table row whose cells wrap on several lines (drawn cell after cell, going back up)."""

    segs: list[_Seg] = field(default_factory=list)

    @property
    def y_top(self) -> float:
        return max(s.y for s in self.segs)

    @property
    def y_bottom(self) -> float:
        return min(s.y for s in self.segs)


    def cells(self) -> list[list[_Seg]]:
        """Segments clustered into cells by horizontal overlap, each read top to bottom."""
        cells: list[list[_Seg]] = []
        right = -math.inf
        for seg in sorted(self.segs, key=lambda s: s.x0):
            if cells and seg.x0 < right - 1.0:
                cells[-1].append(seg)
                right = max(right, seg.x1)
            else:
                cells.append([seg])
                right = seg.x1
        return [sorted(c, key=lambda s: -s.y) for c in cells]


def _plain_line(text: str, index: int) -> _Line:
    return _Line([_Seg(0.0, float(len(text)), -12.0 * index, 0.0, False, text)])


def _font_width_fn(font_dict: Any, cache: dict[int, Any]) -> Callable[[str], float] | None:
    """A text-width function (in 1/1000 em) for a font, or None if pypdf cannot tell.

    pypdf's visitor gives where a text run starts but not where it ends; the end is what
    separates table cells and columns from ordinary word spacing. Widths are keyed by
    character code, so the font's code→unicode map is inverted to measure decoded text
    (for the CID fonts fpdf2 and Word embed, codes and unicode differ entirely).
    """
    key = id(font_dict)
    if key not in cache:
        fn = None
        try:
            from pypdf.generic._font import Font  # private API, hence the estimate fallback

            font = Font.from_font_resource(font_dict)
            widths = dict(font.character_widths)
            default = float(widths.get("default", 500) or 500)
            to_code = {u: c for c, u in font.character_map.items() if isinstance(u, str) and len(u) == 1}
            space = float(font.space_width or default / 2)

            def fn(text: str) -> float:
                total = 0.0
                for ch in text:
                    code = to_code.get(ch, ch)
                    w = widths.get(code)
                    total += float(w) if w else (space if ch == " " else default)
                return total

        except Exception:  # noqa: BLE001 - any font pypdf cannot parse: estimate instead
            fn = None
        cache[key] = (font_dict, fn)  # keep the dict alive so its id stays unique
    return cache[key][1]


def _page_lines(page: Any) -> list[_Line]:
    """Text runs of a page with position, size and weight, assembled into lines.

    Runs come in content-stream order, which for generated PDFs (Word, InDesign, LaTeX,
    fpdf2) is reading order, including column after column; positions are only used to
    split lines, find cell gaps and paragraph spacing.
    """
    runs: list[tuple[_Seg, bool, bool]] = []  # (run, space before, space after)
    fonts: dict[int, Any] = {}

    def visit(text: str, cm: list[float], tm: list[float], font_dict: Any, font_size: float) -> None:
        if not text or not text.strip():
            return
        a, b, c, d, e, f = _mult(tm, cm)
        if a <= 0 or abs(b) > 0.2 * abs(a) or abs(c) > 0.2 * abs(d):
            return  # rotated or mirrored text (watermarks, margin notes)
        size = abs(font_size * d) or abs(font_size) or 1.0
        hscale = abs(font_size * a) or size
        name = str((font_dict or {}).get("/BaseFont", "")) if font_dict is not None else ""
        bold = bool(re.search(r"bold|black|heavy|semibold|demi", name, re.I))
        width_fn = _font_width_fn(font_dict, fonts) if font_dict is not None else None
        for k, part in enumerate(text.split("\n")):
            if not part.strip():
                continue
            # pypdf prefixes a space it inferred from the gap; the run still starts at e
            lead_space, trail_space = part[:1].isspace(), part[-1:].isspace()
            part = part.strip()
            width = None
            if width_fn is not None:
                try:
                    width = width_fn(part) * hscale / 1000
                except Exception:  # noqa: BLE001 - fall back to the estimate below
                    width = None
            if not width or width <= 0:
                width = 0.5 * hscale * len(part)
            y = f - k * size * 1.2
            runs.append((_Seg(e, e + width, y, size, bold, part), lead_space, trail_space))

    page.extract_text(extraction_mode="plain", visitor_text=visit)
    return _runs_to_lines(runs)


def _runs_to_lines(runs: list[tuple[_Seg, bool, bool]]) -> list[_Line]:
    """Assemble runs into lines; a wide gap on a line starts a new segment (a cell).

    pypdf does not advance its text matrix after a text-showing operator, so a run drawn
    right after another one in the same text object (a bold word inside a sentence)
    reports the start of its predecessor: a run that starts *inside* the current line on
    the same baseline is such a stale position and continues the line where it ends.
    """
    lines: list[_Line] = []
    trailing = False  # the previous run ended with a space
    for run, lead_space, trail_space in runs:
        space_before = lead_space or trailing
        trailing = trail_space
        cur = lines[-1] if lines else None
        same_baseline = cur is not None and abs(run.y - cur.y) <= 0.4 * max(run.size, cur.size)
        if cur is not None and same_baseline and cur.x0 - 0.5 <= run.x0 < cur.x1 - 0.5 * run.size:
            width = run.x1 - run.x0
            last = cur.segs[-1]
            run.x0, run.x1 = last.x1, last.x1 + width
            gap = 0.3 * run.size if space_before else 0.0
        elif cur is not None and same_baseline and run.x0 >= cur.x1 - 0.5 * run.size:
            last = cur.segs[-1]
            gap = run.x0 - last.x1
        else:
            lines.append(_Line([run]))
            continue
        if gap > 0.8 * max(run.size, last.size):
            cur.segs.append(run)
        else:
            glue = " " if space_before or gap >= 0.12 * run.size else ""
            last.text = last.text + glue + run.text
            last.x1 = max(last.x1, run.x1)
            last.bold = last.bold and run.bold
            last.size = max(last.size, run.size)
    return [ln for ln in lines if ln.text]


def _mult(m: list[float], n: list[float]) -> tuple[float, float, float, float, float, float]:
    """Product of two PDF matrices (a b c d e f), text matrix first."""
    return (
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    )


@dataclass
class _DocStyle:
    """Document-wide typography: body size and the sizes used by headings.

    Measured over the whole document so that "heading2" means the same font size on
    every page, even on a page that has no heading1.
    """

    body_size: float = 0.0
    heading_sizes: list[float] = field(default_factory=list)

    @classmethod
    def measure(cls, lines: list[_Line]) -> _DocStyle:
        weights: Counter[float] = Counter()
        for ln in lines:
            for s in ln.segs:
                weights[round(s.size * 2) / 2] += len(s.text)
        if not weights:
            return cls()
        body = weights.most_common(1)[0][0]
        sizes = sorted(
            {round(ln.size * 2) / 2 for ln in lines if ln.size >= body * 1.12 and len(ln.text) <= 150},
            reverse=True,
        )
        return cls(body, sizes)

    def level(self, line: _Line) -> int | None:
        """Heading level from font size alone (None for body-size text)."""
        if self.body_size <= 0 or len(line.segs) > 1 or len(line.text) > 150:
            return None
        size = round(line.size * 2) / 2
        if size in self.heading_sizes:
            return min(6, self.heading_sizes.index(size) + 1)
        return None

    def bold_level(self) -> int:
        """Level of headings set at body size: just below the smallest heading size."""
        return min(6, len(self.heading_sizes) + 1)


# Bullet glyphs may be glued to the text; dashes, asterisks and "1)" need a space after.
_BULLET_RE = re.compile(r"^(?:[•◦▪▫‣⁃●○■□➢►✓·]\s*|[-–—*]\s+|\d{1,2}\)\s+|[a-z]\)\s+)(\S.*)$")
_SENTENCE_END = tuple(".!?:;»)…")


def _median_pitch(lines: list[_Line], size: float) -> float:
    """Usual distance between consecutive baselines of body text on this page."""
    deltas = [
        a.y - b.y
        for a, b in zip(lines, lines[1:], strict=False)
        if abs(a.size - size) < 0.5 and abs(b.size - size) < 0.5 and 0 < a.y - b.y < 3 * size
    ]
    return statistics.median(deltas) if deltas else 1.25 * size


def _assemble_rows(lines: list[_Line]) -> list[_Line | _RowGroup]:
    """Regroup table rows whose cells wrap: the stream goes back up for each next cell.

    When a line starts above the previous one, to the right of the last few lines and
    within their height, those lines and it are cells of one row. Only the last 12 lines
    are considered, so a real second column (which goes back up much further) is not
    mistaken for a cell; short column stubs that are, come back out in `_pdf_blocks`.
    """
    out: list[_Line | _RowGroup] = []
    group: _RowGroup | None = None
    for ln in lines:
        size = ln.size
        if group is not None:
            if ln.x0 > group.x0 + size and group.y_bottom - 3 * size <= ln.y <= group.y_top + 3 * size:
                group.segs.extend(ln.segs)
                continue
            group = None
        prev = out[-1] if out else None
        prev_y = prev.y if isinstance(prev, _Line) else None
        if prev_y is not None and ln.y > prev_y + 0.5 * size:
            start = None
            top, bottom = -math.inf, math.inf
            for i in range(len(out) - 1, max(-1, len(out) - 13), -1):
                item = out[i]
                if not isinstance(item, _Line) or item.x1 > ln.x0 + 0.5 * size:
                    break
                if abs(item.size - size) > 0.2 * size:  # a heading above: cells share a size
                    break
                top, bottom = max(top, item.y), min(bottom, item.y)
                if bottom - 3 * size <= ln.y <= top + 3 * size:
                    start = i
            if start is not None:
                group = _RowGroup([s for item in out[start:] if isinstance(item, _Line) for s in item.segs])
                group.segs.extend(ln.segs)
                del out[start:]
                out.append(group)
                continue
        out.append(ln)
    return out


def _is_prose_columns(cells: list[list[_Seg]]) -> bool:
    """Two side-by-side cells full of long lines are text columns, not a table."""
    if len(cells) != 2:
        return False
    return all(len(c) >= 3 and statistics.mean(len(s.text) for s in c) >= 30 for c in cells)


@dataclass
class _Row:
    """A table row candidate: its cells, where they start, and the row as a single line."""

    cells: list[str]
    xs: list[float]  # left edge of every cell
    y_top: float
    y_bottom: float
    line: _Line  # used when the "row" turns out to be a lone line with a wide gap
    source: _Line | None = None  # the multi-segment line it came from (None: wrapped cells)


def _as_row(item: _Line | _RowGroup) -> _Row:
    if isinstance(item, _RowGroup):
        cells = item.cells()
        texts = [" ".join(s.text for s in c) for c in cells]
        seg = _Seg(item.x0, item.x1, item.y_top, item.size, False, " ".join(texts))
        xs = [min(s.x0 for s in c) for c in cells]
        return _Row(texts, xs, item.y_top, item.y_bottom, _Line([seg]))
    texts = [s.text for s in item.segs]
    seg = _Seg(item.x0, item.x1, item.y, item.size, item.bold, " ".join(texts))
    return _Row(texts, [s.x0 for s in item.segs], item.y, item.y, _Line([seg]), item)


def _is_table(rows: list[_Row]) -> bool:
    """Rows form a table if cells wrap (drawn cell by cell) or their columns line up.

    The alignment test keeps loosely justified prose, whose wide word gaps can look like
    cell gaps, from turning into a "table": words do not start at the same x line after line.
    """
    if len(rows) < 2:
        return False
    if any(r.source is None for r in rows):
        return True
    candidates = {x for r in rows for x in r.xs[1:]}
    best = max((sum(any(abs(x - c) <= 2.5 for x in r.xs[1:]) for r in rows) for c in candidates), default=0)
    return best >= max(2, math.ceil(0.6 * len(rows)))


def _untangle_interleaved_columns(items: list[_Line | _Row]) -> list[_Line | _Row]:
    """Some producers draw two columns line by line (left, right, left...): read left first.

    Detected as a run of at least 6 consecutive two-cell "rows" whose cells are long prose
    (mean 30+ characters) starting at the same two x positions.
    """
    out: list[_Line | _Row] = []
    i = 0
    while i < len(items):
        j = i
        run: list[_Line] = []
        while j < len(items):
            item = items[j]
            if not (isinstance(item, _Row) and item.source is not None and len(item.source.segs) == 2):
                break
            run.append(item.source)
            j += 1
        if len(run) >= 6:
            lefts = [ln.segs[0].x0 for ln in run]
            rights = [ln.segs[1].x0 for ln in run]
            prose = statistics.mean(len(s.text) for ln in run for s in ln.segs) >= 30
            if prose and max(lefts) - min(lefts) <= 3 and max(rights) - min(rights) <= 3:
                out.extend(_Line([ln.segs[0]]) for ln in run)
                out.extend(_Line([ln.segs[1]]) for ln in run)
                i = j
                continue
        if j > i:
            out.extend(items[i:j])
            i = j
        else:
            out.append(items[i])
            i += 1
    return out


def _pdf_blocks(lines: list[_Line], style: _DocStyle) -> list[Block]:
    """Classify a page's lines into heading / para / list / table blocks.

    Raw line breaks are kept inside blocks ("\\n"): `clean_block` needs them to join
    hyphenated words before rejoining the lines.
    """
    items: list[_Line | _Row] = []
    for item in _assemble_rows(lines):
        if isinstance(item, _RowGroup):
            cells = item.cells()
            if _is_prose_columns(cells):
                items.extend(_Line([s]) for cell in cells for s in cell)
            else:
                items.append(_as_row(item))
        elif len(item.segs) > 1:
            items.append(_as_row(item))
        else:
            items.append(item)
    items = _untangle_interleaved_columns(items)
    return _BlockBuilder(items, style).build()


class _BlockBuilder:
    """Walks a page's lines and rows once, filling one block at a time."""

    def __init__(self, items: list[_Line | _Row], style: _DocStyle) -> None:
        self.items = items
        self.style = style
        lines = [it for it in items if isinstance(it, _Line)]
        self.size = style.body_size or (statistics.median([ln.size for ln in lines]) if lines else 10.0)
        self.pitch = _median_pitch(lines, self.size)
        widths = sorted(ln.x1 - ln.x0 for ln in lines if abs(ln.size - self.size) < 0.5)
        self.full_width = widths[int(0.8 * (len(widths) - 1))] if widths else 0.0
        # Lines set apart from their neighbours: only those can be headings without a
        # heading font size. A bold first line that runs on into normal text ("**Lead.**
        # rest of the paragraph") has no gap after it and stays in its paragraph.
        self.standalone: set[int] = set()
        for i, ln in enumerate(lines):
            before = i == 0 or self._gap(lines[i - 1], ln) or lines[i - 1].text.endswith(_SENTENCE_END)
            after = i == len(lines) - 1 or self._gap(ln, lines[i + 1])
            if before and after and not ln.text.endswith("-"):
                self.standalone.add(id(ln))
        self.blocks: list[Block] = []
        self.kind = ""
        self.buf: list[str] = []
        self.prev: _Line | None = None
        self.rows: list[_Row] = []

    def build(self) -> list[Block]:
        for item in self.items:
            if isinstance(item, _Row):
                if self.rows and item.y_top < self.rows[-1].y_bottom - 3 * self.pitch:
                    self._flush_rows()  # far below the table: a footer, not a row
                self.rows.append(item)
            else:
                self._flush_rows()
                self._add_line(item)
        self._flush_rows()
        self._flush()
        return self.blocks

    def _flush(self) -> None:
        if self.buf:
            self.blocks.append((self.kind, "\n".join(self.buf)))
        self.kind, self.buf = "", []

    def _flush_rows(self) -> None:
        if _is_table(self.rows):
            self._flush()
            self.blocks.append(("table", "\n".join(" | ".join(r.cells) for r in self.rows)))
            self.prev = None
        else:  # lines with a wide gap (running header, loose justification)
            for row in self.rows:
                self._add_line(row.line)
        self.rows = []

    def _gap(self, a: _Line, b: _Line) -> bool:
        """Vertical or typographic discontinuity between consecutive lines."""
        return (
            b.y > a.y + 0.5 * self.size
            or a.y - b.y > 1.35 * self.pitch
            or abs(a.size - b.size) > 0.1 * self.size
        )

    def _list_breaks(self, a: _Line, b: _Line) -> bool:
        """True when b is not the continuation of list item a (possibly in the next column)."""
        if b.y > a.y + 0.5 * self.size:
            return a.text.endswith(_SENTENCE_END) or not b.text[:1].islower()
        return self._gap(a, b)

    def _breaks(self, a: _Line, b: _Line) -> bool:
        """True when b starts a new paragraph after a."""
        ends = a.text.endswith(_SENTENCE_END)
        if b.y > a.y + 0.5 * self.size:  # back up: next column; a sentence may continue there
            return ends or not b.text[:1].islower()
        if self._gap(a, b):
            return True
        if ends and b.x0 > a.x0 + 0.8 * self.size:  # first-line indent
            return True
        return ends and self.full_width > 0 and (a.x1 - a.x0) < 0.7 * self.full_width

    def _level(self, ln: _Line) -> int | None:
        """Heading level: by font size; else a lone bold, numbered or capitalised line.

        Body-size headings rank below every larger heading size of the document; in a
        document with a single font size their numbering ("2.1") gives the level.
        """
        level = self.style.level(ln)
        if level is not None or id(ln) not in self.standalone:
            return level
        guess = heading_level_from_text(ln.text) if abs(ln.size - self.size) < 0.5 else None
        if not guess and not (ln.bold and _looks_like_heading(ln.text)):
            return None
        if self.style.heading_sizes:
            return self.style.bold_level()
        return guess or 1

    def _add_line(self, ln: _Line) -> None:
        level = self._level(ln)
        bullet = _BULLET_RE.match(ln.text)
        prev = self.prev
        if level is not None:
            if self.kind == f"heading{level}" and prev is not None and 0 < prev.y - ln.y <= 1.8 * ln.size:
                self.buf.append(ln.text)  # heading on two lines
            else:
                self._flush()
                self.kind, self.buf = f"heading{level}", [ln.text]
        elif bullet:
            self._flush()
            self.kind, self.buf = "list", [bullet.group(1)]
        elif self.kind == "list" and prev is not None and not self._list_breaks(prev, ln):
            self.buf.append(ln.text)
        elif self.kind == "para" and prev is not None and not self._breaks(prev, ln):
            self.buf.append(ln.text)
        else:
            self._flush()
            self.kind, self.buf = "para", [ln.text]
        self.prev = ln


def _looks_like_heading(text: str) -> bool:
    return len(text) <= 120 and not text.endswith((".", ",", ";", ":")) and text[:1].isalnum()


# =========================================================================== DOCX


def _load_docx(path: Path, data: bytes) -> tuple[list[Page], dict[str, Any]]:
    """DOCX → one page, body paragraphs and tables in document order."""
    import docx
    from docx.oxml.ns import qn

    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []

    def walk(parent: Any) -> None:
        for child in parent.iterchildren():
            if child.tag == qn("w:p"):
                block = _docx_paragraph(child, document)
                if block:
                    blocks.append(block)
            elif child.tag == qn("w:tbl"):
                rows = _docx_table_rows(child, qn)
                if rows:
                    blocks.append(("table", "\n".join(rows)))
            elif child.tag in (qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")):
                content = child.find(qn("w:sdtContent")) if child.tag == qn("w:sdt") else child
                if content is not None:
                    walk(content)

    walk(document.element.body)
    meta = _docx_meta(document)
    if not blocks:
        raise IngestError(path, "aucun texte extractible dans le document DOCX", "no_text")
    return [Page(1, render_blocks(blocks), blocks)], meta


_HEADING_STYLE_RE = re.compile(r"^(?:heading|titre|überschrift|título)\s*(\d)", re.I)


def _docx_paragraph(p_elm: Any, document: Any) -> Block | None:
    """Heading N / Title styles → headingN, list styles or numbering → list, else para."""
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    para = Paragraph(p_elm, document)
    text = para.text.strip()
    if not text:
        return None
    try:
        style = para.style
        name = (style.name or "") if style is not None else ""
        style_id = (style.style_id or "") if style is not None else ""
    except Exception:  # noqa: BLE001 - a paragraph pointing to a missing style
        name = style_id = ""
    m = _HEADING_STYLE_RE.match(name) or _HEADING_STYLE_RE.match(style_id)
    if m:
        return (f"heading{min(6, max(1, int(m.group(1))))}", text)
    if name.lower() in ("title", "titre"):
        return ("heading1", text)
    outline = p_elm.find(f"{qn('w:pPr')}/{qn('w:outlineLvl')}")
    if outline is not None:
        try:
            level = int(outline.get(qn("w:val"), "9"))
        except ValueError:
            level = 9
        if level < 9:
            return (f"heading{min(6, level + 1)}", text)
    lowered = name.lower()
    if (
        lowered.startswith("list")
        or "liste" in lowered
        or p_elm.find(f"{qn('w:pPr')}/{qn('w:numPr')}") is not None
    ):
        return ("list", text)
    return ("para", text)


def _docx_table_rows(tbl: Any, qn: Any) -> list[str]:
    """Rows as "cell | cell | cell", header row included; merged cells counted once."""
    rows: list[str] = []
    for tr in tbl.iterchildren(qn("w:tr")):
        cells: list[str] = []
        for tc in tr.iterchildren(qn("w:tc")):
            vmerge = tc.find(f"{qn('w:tcPr')}/{qn('w:vMerge')}")
            if vmerge is not None and vmerge.get(qn("w:val")) in (None, "continue"):
                cells.append("")  # continuation of a vertically merged cell
                continue
            paragraphs = ["".join(t.text or "" for t in p.iter(qn("w:t"))) for p in tc.iter(qn("w:p"))]
            cells.append(" ".join(s.strip() for s in paragraphs if s.strip()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


# what python-docx's own template writes in dc:description: not the author's words
_DOCX_BOILERPLATE = frozenset({"generated by python-docx"})
_CUSTOM_PROPS_PART = "/docProps/custom.xml"
_CUSTOM_PROPS_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/custom-properties}"
_DTD_RE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.I)
_VT_INTEGERS = frozenset({"i1", "i2", "i4", "i8", "int", "ui1", "ui2", "ui4", "ui8", "uint"})


def _docx_meta(document: Any) -> dict[str, Any]:
    """Core properties (title, subject, keywords, category, comments, creation year) and the
    custom properties of docProps/custom.xml, under their own names, lower-cased.

    Word calls dc:description « Commentaires »; it is kept as "description". Each property
    is read on its own: one malformed value (a date Word never wrote) loses only itself.
    """
    meta: dict[str, Any] = {}
    for name, value in core_properties(document, "DOCX"):
        if name == "created_year":
            meta[name] = value
        elif name == "keywords":
            keywords = split_keywords(value or "")
            if keywords:
                meta[name] = keywords
        elif (value or "").strip() and value.strip().lower() not in _DOCX_BOILERPLATE:
            meta[name] = value.strip()
    for name, value in _docx_custom_properties(document).items():
        meta.setdefault(name, value)
    return meta


def _docx_custom_properties(document: Any) -> dict[str, Any]:
    """docProps/custom.xml (Fichier > Propriétés > Personnalisation), e.g. fabrique, annee.

    python-docx keeps that part as raw bytes; it is parsed here with entities never
    resolved, no DTD, no network and lxml's size limits, like the parser python-docx uses
    for the body, and any DOCTYPE is refused outright: a properties part has no use for one,
    and XXE or "billion laughs" would hide there. Anything odd loses the custom properties
    only.
    """
    import lxml.etree

    meta: dict[str, Any] = {}
    try:
        part = next(
            (p for p in document.part.package.iter_parts() if str(p.partname) == _CUSTOM_PROPS_PART), None
        )
        if part is None:
            return meta
        blob = part.blob
        if _DTD_RE.search(blob):
            log.debug("propriétés personnalisées DOCX ignorées : DOCTYPE ou entité déclarée")
            return meta
        parser = lxml.etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
        )
        root = lxml.etree.fromstring(blob, parser)
        for prop in list(root.iterchildren(f"{_CUSTOM_PROPS_NS}property"))[:_MAX_META_KEYS]:
            name = " ".join((prop.get("name") or "").split()).lower()
            holder = next((c for c in prop.iterchildren() if isinstance(c.tag, str)), None)
            if not name or holder is None:
                continue
            value = _vt_value(holder)
            if value not in (None, "", []):
                meta.setdefault(name, value)
    except Exception as exc:  # noqa: BLE001 - malformed custom.xml: metadata is optional
        log.debug("propriétés personnalisées DOCX illisibles : %s", _detail(exc))
    return meta


def _vt_value(element: Any) -> Any:
    """One docPropsVTypes value: text, number, boolean, date (ISO text) or a vector of texts."""
    import lxml.etree

    kind = lxml.etree.QName(element).localname
    if kind == "vector":
        items = [
            " ".join(c.text.split())[:_MAX_META_VALUE]
            for c in element.iter()
            if c is not element and isinstance(c.tag, str) and c.text and c.text.strip()
        ]
        return items[:_MAX_META_KEYS]
    text = " ".join((element.text or "").split())[:_MAX_META_VALUE]
    if kind in _VT_INTEGERS and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind in ("r4", "r8", "decimal") and re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        return float(text)
    if kind == "bool":
        return text.lower() in ("true", "1")
    return text


# =========================================================================== HTML


def _load_html(path: Path, data: bytes) -> tuple[list[Page], dict[str, Any]]:
    """HTML → the main article only (trafilatura), as one page, plus <title>/<meta>.

    trafilatura drops navigation, menus, breadcrumbs, cookie banners, sidebars, footers
    and scripts; its Markdown output keeps headings, lists and tables, which the Markdown
    parser below turns into blocks. Default settings first (they keep short sections),
    recall-oriented settings only if the default finds nothing.
    """
    import lxml.etree
    import lxml.html
    import trafilatura

    options = dict(
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        deduplicate=False,
    )
    text = trafilatura.extract(data, **options)
    if not text or not text.strip():
        text = trafilatura.extract(data, favor_recall=True, **options)
    try:
        root = lxml.html.document_fromstring(data)
    except (ValueError, lxml.etree.ParserError):
        root = None
    meta = _html_meta(root) if root is not None else {}
    blocks = parse_markdown(text or "")
    # On a page without an article trafilatura falls back to whatever text there is,
    # typically the menu: text found only in links and navigation is not content.
    chrome = " \n ".join(
        " ".join(el.text_content().split())
        for el in (root.iter() if root is not None else [])
        if isinstance(el.tag, str)
        and (el.tag in ("a", "nav", "header", "footer", "aside", "button") or el.get("role") == "navigation")
    )
    lines = [ln.strip() for _, t in blocks for ln in t.split("\n") if ln.strip()]
    if not lines or all(ln in chrome for ln in lines):
        raise IngestError(path, "aucun texte principal extractible de la page HTML", "no_text")
    return [Page(1, render_blocks(blocks), blocks)], meta


def _html_meta(root: Any) -> dict[str, Any]:
    """<title>, description, keywords, language and a publication year from <meta>, plus
    every <meta> that declares metadata, under its own name lower-cased: Dublin Core
    (dc.*, dcterms.*), og:title/description/type, and names `ingest.declared` recognises
    in French or English (annee, territoires, type...). A name repeated (one dc.subject per
    keyword is the Dublin Core habit) gives the list of its values.
    """
    meta: dict[str, Any] = {}
    title = " ".join(" ".join(root.xpath("//head/title//text()")).split())
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for m in root.xpath("//meta[@content]"):
        key = (m.get("name") or m.get("property") or "").strip().lower()
        content = " ".join(m.get("content", "").split())
        if key and key not in values:
            values[key] = content
        if key and content and content not in repeated.setdefault(key, []):
            repeated[key].append(content)
    # the order of `ingest.declared`: own name, then Dublin Core, then Open Graph
    title = title or values.get("dc.title") or values.get("dcterms.title") or values.get("og:title", "")
    if title:
        meta["title"] = title
    description = (
        values.get("description")
        or values.get("dc.description")
        or values.get("dcterms.description")
        or values.get("og:description")
    )
    if description:
        meta["description"] = description
    keywords = split_keywords(values.get("keywords", ""))
    if keywords:
        meta["keywords"] = keywords
    lang = root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang")
    if lang:
        meta["lang"] = lang.strip()
    # Fields of our own document model published as <meta> (the resource centre does it):
    # explicit metadata of the file, like Markdown front matter.
    for key in ("doc_id", "doc_type", "fabrique", "fabrique_title", "visibility"):
        if values.get(key):
            meta[key] = values[key]
    for key in ("territories", "partners"):
        items = [v.strip() for v in re.split(r"[;|]", values.get(key, "")) if v.strip()]
        if items:
            meta[key] = items
    if re.fullmatch(r"(?:19|20)\d\d", values.get("year", "")):
        meta["year"] = int(values["year"])
    for key in ("article:published_time", "dc.date", "dcterms.date", "date", "dc.date.issued"):
        m = re.match(r"\s*((?:19|20)\d\d)", values.get(key, ""))
        if m:
            meta["created_year"] = int(m.group(1))
            break
    for key, contents in repeated.items():
        declared = (
            key.startswith(("dc.", "dc:", "dcterms.", "dcterms:"))
            or key in ("og:title", "og:description", "og:type")
            or canonical_key(key) is not None
        )
        if declared and contents:
            meta.setdefault(key, contents[0] if len(contents) == 1 else contents[:_MAX_META_KEYS])
    return meta


# =========================================================================== Markdown / text


def _load_text(path: Path, data: bytes) -> tuple[list[Page], dict[str, Any]]:
    """Markdown or plain text → one page; YAML front matter → file_meta.

    Plain text goes through the Markdown parser too: it degrades to paragraphs split on
    blank lines, and "- " lists or "#" titles in a .txt are read as what they look like.
    """
    try:
        text = decode_text(data)
    except ValueError as exc:
        raise IngestError(path, f"encodage illisible ({exc})", "encoding") from exc
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta, body = split_front_matter(path, text)
    blocks = parse_markdown(body)
    if not blocks:
        # "outside the header" only means something when there is a header
        where = " (en dehors de l'en-tête)" if _FRONT_MATTER_RE.match(text) else ""
        raise IngestError(path, f"aucun texte dans le fichier{where}", "no_text")
    return [Page(1, render_blocks(blocks), blocks)], meta


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Decode text files as French offices write them.

    Order: BOM (UTF-8, UTF-16, UTF-32), strict UTF-8, UTF-16 without BOM (NUL bytes in
    alternate positions), then Windows-1252 / Latin-1 if the result looks like text (few
    control characters). Raises ValueError, worded in French, when nothing fits.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"marque {encoding.upper()} présente mais contenu invalide à l'octet {exc.start}"
                ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        sample = data[:4096]
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) / 2
        for encoding, nuls in (("utf-16-le", odd), ("utf-16-be", even)):
            if nuls > 0.3 * half:
                try:
                    text = data.decode(encoding)
                except UnicodeDecodeError:
                    continue
                if _looks_like_text(text):
                    return text
        raise ValueError("octets nuls : fichier binaire ou encodage inconnu")
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            return text
    raise ValueError("ni UTF-8, ni UTF-16, ni Windows-1252/Latin-1")


def _looks_like_text(text: str) -> bool:
    if not text:
        return False
    controls = sum(1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f") or 0x7F <= ord(c) <= 0x9F)
    printable = sum(1 for c in text if c.isprintable() or c in "\t\n\r\f")
    return controls <= 0.01 * len(text) and printable >= 0.95 * len(text)


_FRONT_MATTER_RE = re.compile(r"\A\ufeff?---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


def split_front_matter(path: str | Path, text: str) -> tuple[dict[str, Any], str]:
    """Split a leading YAML block (--- … ---) from the body; invalid YAML is an error.

    The front matter carries the document's declared metadata (doc_id, fabrique, year...),
    so a typo there must stop the file rather than silently index it without metadata.
    Dates become ISO strings so that the metadata stays JSON/Chroma friendly.
    """
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        return {}, text.removeprefix("\ufeff")
    raw = m.group(1) or ""
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" à la ligne {mark.line + 2}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise IngestError(
            path, f"en-tête YAML (front matter) invalide{where} : {problem}", "front_matter"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise IngestError(
            path,
            "en-tête YAML (front matter) invalide : attendu des paires clé: valeur, "
            f"trouvé {type(data).__name__}",
            "front_matter",
        )
    return _json_friendly(data), text[m.end() :]


def _json_friendly(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_friendly(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_friendly(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_HR_RE = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_MD_LIST_RE = re.compile(r"^(\s*)(?:[-*+•]|\d{1,3}[.)])[ \t]+(.*)$")
_TABLE_SEP_RE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str) -> list[Block]:
    """Markdown (or plain text) → blocks: # headings, - lists, | tables |, paragraphs.

    Covers what the corpus and trafilatura produce (ATX/setext headings, bullet and
    numbered lists with continuation lines, pipe tables, fenced code, quotes); inline
    markup is reduced to its text. Paragraph lines stay separate ("\\n") for `clean`.
    """
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    lines = text.split("\n")
    blocks: list[Block] = []
    kind, buf = "", []  # current paragraph or list item

    def flush() -> None:
        nonlocal kind, buf
        if buf:
            blocks.append((kind, "\n".join(buf)))
        kind, buf = "", []

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        if _FENCE_RE.match(line):
            flush()
            fence = _FENCE_RE.match(line).group(1)  # type: ignore[union-attr]
            code: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                code.append(lines[i].rstrip())
                i += 1
            i += 1
            if any(c.strip() for c in code):
                blocks.append(("para", "\n".join(c for c in code if c.strip())))
            continue
        atx = _ATX_RE.match(line)
        if atx:
            flush()
            title = _inline(atx.group(2) or "")
            if title:
                blocks.append((f"heading{len(atx.group(1))}", title))
            i += 1
            continue
        if kind == "para" and len(buf) == 1 and _SETEXT_RE.match(line) and not _HR_RE.match(buf[0]):
            level = 1 if stripped.startswith("=") else 2
            blocks.append((f"heading{level}", buf[0]))
            kind, buf = "", []
            i += 1
            continue
        if _HR_RE.match(line):
            flush()
            i += 1
            continue
        if "|" in stripped and (
            stripped.startswith("|") or (i + 1 < len(lines) and _TABLE_SEP_RE.match(lines[i + 1]))
        ):
            flush()
            rows: list[str] = []
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                if not _TABLE_SEP_RE.match(lines[i]):
                    cells = _split_row(lines[i])
                    if any(cells):
                        rows.append(" | ".join(cells))
                i += 1
            if rows:
                blocks.append(("table", "\n".join(rows)))
            continue
        item = _MD_LIST_RE.match(line)
        if item and item.group(2).strip():
            flush()
            kind, buf = "list", [_inline(item.group(2))]
            i += 1
            continue
        if stripped.startswith(">"):
            stripped = stripped.lstrip("> ").strip()
            if not stripped:
                flush()
                i += 1
                continue
        if kind == "list":
            buf.append(_inline(stripped))  # continuation (indented or lazy) of the item
        else:
            if kind != "para":
                flush()
                kind = "para"
            buf.append(_inline(stripped))
        i += 1
    flush()
    return [(k, t) for k, t in blocks if t.strip()]


def _split_row(line: str) -> list[str]:
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [_inline(c.strip()) for c in re.split(r"(?<!\\)\|", s)]


_INLINE_SUBS = (
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images → alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links → text
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*\*|__)(\S.*?\S|\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(\S[^*]*?)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(\S[^_]*?)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"</?[A-Za-z][^>]*>"), " "),  # inline HTML tags (<br>, <span>)
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),
)


def _inline(text: str) -> str:
    """Inline Markdown reduced to its visible text (emphasis, links, code, escapes)."""
    for pattern, repl in _INLINE_SUBS:
        text = pattern.sub(repl, text)
    return html_lib.unescape(text).strip()
