"""Read the text of scanned PDF pages with Tesseract's French model (OCR).

Why: many documents of the Fabriques reach the resource centre as scans (signed minutes,
a photocopied seminar report, a PDF printed to paper and back). Their pages carry an image
and no text layer, so without OCR they were refused and their content was lost to search.

How: pypdfium2 renders the page to a grey image (any page, scanned or vector, and without
ghostscript or poppler on the machine), pytesseract runs Tesseract on it with the `fra`
model, which knows French words and accents. Only pages without a usable text layer are
read this way; the loader keeps the real text of every other page (`ingest.loaders`).

What comes out is plain text with line and paragraph breaks, turned into blocks by
`ingest.clean.blocks_from_text`, exactly like a PDF page that came without structure, and
cleaned with every other page by `clean_pages` (hyphenation, running headers, ligatures).
Each page read here has `Page.ocr = True`, a flag that reaches the passages' metadata and
the citations (« texte reconnu par OCR »), because OCR text may hold misread words.

Garbage is never indexed: Tesseract finds "words" in photos and noise, but reads them with
a low confidence. Lines read with a low mean confidence are dropped, and a page needs a few
words read with confidence (`MIN_WORDS`) to count as text at all.

OCR is slow (seconds per page), hence the limits checked before any page is read (pages
per file) and while reading (seconds per page, Tesseract's own timeout), and a progress
callback per page. The heavy imports (pytesseract, pypdfium2, Pillow) happen on first use.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import statistics
import threading
from collections.abc import Callable, ItemsView, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.clean import blocks_from_text, render_blocks
from ingest.errors import IngestError
from ingest.models import Page

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

LANG = "fra"
DEFAULT_DPI = 300  # Tesseract's models are trained on text of about 10 pt scanned at 300 dpi
MAX_SIDE_PX = 7000  # an A3 page at 300 dpi is 4961 px: a huge page box is rendered smaller
MIN_LINE_CONF = 50.0  # mean word confidence (0-100) under which a line is noise, not text
MIN_WORD_CONF = 70.0  # a word read at least this sure counts toward MIN_WORDS
MIN_WORDS = 5  # fewer confident words than this on a page: nothing readable was found
USABLE_LETTERS = 10  # a text layer with fewer letters (a stamped page number) is not usable
INSTALL_HINT = "installez tesseract-ocr et tesseract-ocr-fra"

# `(page_done, page_total, file)`: called before the first page (0) and after each page
PageProgress = Callable[[int, int, str], None]

_PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe; Tesseract runs outside the lock
_SENTENCE_END = tuple(".!?:;»)…")
_WORD_RE = re.compile(r"[^\W\d_]{2,}")


class _TesseractEnv(Mapping[str, str]):
    """The environment Tesseract runs in: this process's, read when Tesseract starts, plus
    OMP_THREAD_LIMIT=1 unless the operator set it. Tesseract's OpenMP threads make it 2 to
    2.5 times slower per page on a small shared machine (measured on 2 cores: 0.20 → 0.47
    page/s); setting the variable for the Tesseract process only leaves torch and every other
    child process of the assistant as they were."""

    def _env(self) -> dict[str, str]:
        return {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}

    def __getitem__(self, key: str) -> str:
        return self._env()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env())

    def __len__(self) -> int:
        return len(self._env())

    def items(self) -> ItemsView[str, str]:
        return self._env().items()


def _pytesseract() -> Any:
    """pytesseract, set to start Tesseract in `_TesseractEnv` (pytesseract 0.3.13 passes its
    module-level `environ` to every Tesseract process it starts; the version is pinned)."""
    import pytesseract

    pytesseract.pytesseract.environ = _TesseractEnv()
    return pytesseract


class OcrTimeout(Exception):
    """Tesseract did not finish one page within the allowed seconds (it was stopped)."""


@dataclass(frozen=True)
class OcrOptions:
    """What the loader may spend on OCR for one file, and whom to tell about each page."""

    enabled: bool = True
    max_pages: int = 50
    page_timeout: float = 60.0
    dpi: int = DEFAULT_DPI
    progress: PageProgress | None = None


@functools.lru_cache(maxsize=1)
def tesseract_available() -> bool:
    """Whether the `tesseract` binary runs and has the French model (`fra`); cached, as the
    answer only changes when someone installs a package (restart the process then)."""
    try:
        import pytesseract
    except ImportError:
        return False
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return False
    try:
        return LANG in pytesseract.get_languages(config="")
    except Exception:  # noqa: BLE001 - TesseractNotFoundError, a broken install: no OCR
        return False


def ocr_page(pdf: bytes | Any, index: int, dpi: int = DEFAULT_DPI, timeout: float = 60.0) -> str:
    """Text of page `index` (0-based) of a PDF (bytes or an open `pypdfium2.PdfDocument`).

    "" when nothing was read with confidence (a photo, noise, a blank scan). Raises
    `OcrTimeout` past `timeout` seconds of Tesseract, other exceptions when the page cannot
    be rendered or Tesseract fails.
    """
    return ocr_image(render_page(pdf, index, dpi), timeout)


def render_page(pdf: bytes | Any, index: int, dpi: int = DEFAULT_DPI) -> Image:
    """Page `index` as a greyscale image at `dpi` (capped at MAX_SIDE_PX on its longer side)."""
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        own = isinstance(pdf, bytes | bytearray)
        doc = pdfium.PdfDocument(bytes(pdf)) if own else pdf
        try:
            page = doc[index]
            try:
                width, height = page.get_size()
                scale = min(dpi / 72.0, MAX_SIDE_PX / max(width, height, 1.0))
                bitmap = page.render(scale=scale, grayscale=True)
                image = bitmap.to_pil().copy()  # the PIL view shares the bitmap's buffer
                bitmap.close()
                return image
            finally:
                page.close()
        finally:
            if own:
                doc.close()


def ocr_image(image: Image, timeout: float = 60.0) -> str:
    """Tesseract (French) on one image → confident text, "" if none (see module docstring)."""
    pytesseract = _pytesseract()
    try:
        data = pytesseract.image_to_data(
            image, lang=LANG, timeout=timeout, output_type=pytesseract.Output.DICT
        )
    except RuntimeError as exc:  # pytesseract's way of saying it killed a slow Tesseract
        if "timeout" in str(exc).lower():
            raise OcrTimeout(f"plus de {timeout:g} s") from exc
        raise
    return text_from_data(data)


def text_from_data(data: dict[str, list[Any]]) -> str:
    """Rebuild text from Tesseract's word table, dropping what was not read with confidence.

    Lines keep their order; a new paragraph (blank line) starts at a new Tesseract block, or
    at a new Tesseract paragraph when the previous line ends a sentence (Tesseract also
    splits paragraphs in the middle of a sentence). Returns "" when fewer than MIN_WORDS
    words were read with confidence: the page holds no text worth indexing.
    """
    lines: dict[tuple[int, int, int], list[tuple[str, float]]] = {}
    for i, word in enumerate(data.get("text", [])):
        word = str(word or "").strip()
        if not word:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).append((word, float(data["conf"][i])))
    out: list[str] = []
    confident = 0
    previous: tuple[int, int] | None = None
    for (block, par, _line), words in lines.items():
        if statistics.fmean(c for _, c in words) < MIN_LINE_CONF:
            continue
        confident += sum(1 for w, c in words if c >= MIN_WORD_CONF and _WORD_RE.search(w))
        if previous is not None and (
            block != previous[0] or (par != previous[1] and out[-1].endswith(_SENTENCE_END))
        ):
            out.append("")
        out.append(" ".join(w for w, _ in words))
        previous = (block, par)
    return "\n".join(out) if confident >= MIN_WORDS else ""


def needs_ocr(page: Any, letters: int) -> bool:
    """Whether a pypdf page lacks a usable text layer and should be read by OCR.

    No text at all: yes if the page draws anything (an empty page costs no OCR). A few
    letters only (`letters` < USABLE_LETTERS, e.g. a page number stamped on a scan): yes if
    the page draws an image, so that a title page or a divider page in a text PDF is left alone.
    """
    try:
        if letters == 0:
            contents = page.get_contents()
            return contents is not None and bool(contents.get_data().strip())
        if letters >= USABLE_LETTERS:
            return False
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else {}
        xobjects = resources.get("/XObject")
        xobjects = xobjects.get_object() if xobjects is not None else {}
        return any(x.get_object().get("/Subtype") == "/Image" for x in xobjects.values())
    except Exception:  # noqa: BLE001 - a page pypdf cannot inspect is damaged, not scanned
        return False


def ocr_pdf_pages(
    path: str | Path, data: bytes, numbers: list[int], options: OcrOptions, *, required: bool
) -> list[Page]:
    """OCR the pages `numbers` (1-based) of a PDF → one `Page(ocr=True)` per page with text.

    `required`: no other page of the file has text, so OCR is the file's only chance and
    its limits are errors (`IngestError`, French, naming the setting to change); otherwise
    the file keeps its real text and a page that cannot be read is only logged. The page
    limit is checked before anything is rendered. Assumes `tesseract_available()`.
    """
    path = Path(path)
    total = len(numbers)
    if total > options.max_pages:
        message = (
            f"PDF scanné trop long pour l'OCR : {total} pages à reconnaître, "
            f"limite {options.max_pages} (réglage FP_OCR_MAX_PAGES)"
        )
        if required:
            raise IngestError(path, message, "ocr_too_many_pages")
        log.warning("%s : %s ; pages %s non lues", path, message, _span(numbers))
        return []
    import pypdfium2 as pdfium

    try:
        with _PDFIUM_LOCK:
            doc = pdfium.PdfDocument(data)
    except Exception as exc:  # noqa: BLE001 - pypdf read it, pdfium may still refuse it
        if required:
            raise IngestError(
                path, f"PDF scanné illisible pour l'OCR ({type(exc).__name__} : {exc})"[:300], "corrupt"
            ) from exc
        log.warning("%s : pages %s non lues par l'OCR (%s)", path, _span(numbers), exc)
        return []
    timeout = f"{options.page_timeout:g}".replace(".", ",")
    pages: list[Page] = []
    try:
        for done, number in enumerate(numbers):
            if options.progress:
                options.progress(done, total, str(path))
            try:
                text = ocr_page(doc, number - 1, options.dpi, options.page_timeout)
            except OcrTimeout as exc:
                message = (
                    f"reconnaissance du texte (OCR) trop lente à la page {number} : "
                    f"plus de {timeout} s (FP_OCR_PAGE_TIMEOUT)"
                )
                if required:
                    raise IngestError(path, message, "ocr_timeout") from exc
                log.warning("%s : %s ; page ignorée", path, message)
                continue
            except Exception as exc:  # noqa: BLE001 - a render or Tesseract failure on one page
                message = (
                    f"reconnaissance du texte (OCR) impossible à la page {number} ({type(exc).__name__})"
                )
                if required:
                    raise IngestError(path, message, "ocr_failed") from exc
                log.warning("%s : %s : %s", path, message, exc)
                continue
            blocks = blocks_from_text(text)
            if blocks:
                pages.append(Page(number, render_blocks(blocks), blocks, ocr=True))
        if options.progress:
            options.progress(total, total, str(path))
    finally:
        with _PDFIUM_LOCK:
            doc.close()
    return pages


def _span(numbers: list[int]) -> str:
    return f"{numbers[0]} à {numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


def word_accuracy(reference: str, hypothesis: str) -> float:
    """1 - word-level edit distance / reference words, case and punctuation folded: the one
    measure of OCR quality the tests and `benchmarks/ingest.py` report."""
    ref = re.findall(r"[^\W_]+", reference.lower())
    hyp = re.findall(r"[^\W_]+", hypothesis.lower())
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return 1 - prev[-1] / max(len(ref), 1)
