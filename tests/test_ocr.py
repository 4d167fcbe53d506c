"""OCR of scanned PDFs (ingest/ocr.py): accuracy, mixed PDFs, limits, fallbacks, the OCR flag.

The scans are made here: known French text drawn with DejaVu Sans at a 300 dpi scale and
saved as image-only PDFs, so the word accuracy of Tesseract's French model is measured
against the exact text. Everything but the last test runs without the embedding model;
the last one (slow) ingests a mixed PDF with the CLI and checks that `ask --json` cites the
scanned page with `"ocr": true`.
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from ingest import ocr as ocr_mod
from ingest.chunker import chunk_document
from ingest.errors import IngestError
from ingest.loaders import SCANNED_REASON, load
from ingest.models import DocMeta
from ingest.ocr import OcrOptions, OcrTimeout, tesseract_available, text_from_data, word_accuracy
from ingest.store import chunk_metadata

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(),
    reason="Tesseract ou son modèle français absent (apt install tesseract-ocr tesseract-ocr-fra)",
)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

TITLE = "SÉMINAIRE LOCAL DE BAGNÈRES"
BODY = (
    "Le séminaire local de Bagnères s'est tenu le jeudi 14 mars à la salle des fêtes. Une "
    "quarantaine de participants, élus, habitants, soignants et responsables associatifs, ont "
    "travaillé sur la mobilité des aînés dans les villages de la vallée. Beaucoup de personnes "
    "âgées renoncent à leurs rendez-vous médicaux ou au marché faute de transport, et "
    "l'isolement progresse pendant l'hiver. Les participants ont proposé un réseau de "
    "chauffeurs bénévoles coordonné par le centre communal d'action sociale, ainsi qu'une "
    "navette à la demande qui desservirait les hameaux deux fois par semaine. Une épicière a "
    "rappelé que le marché reste un lieu de rencontre essentiel pour les personnes seules. Le "
    "groupe a décidé d'expérimenter ce service pendant un an, puis d'en mesurer les effets sur "
    "la santé et le lien social des aînés. Prochaine étape : réunir les communes voisines, le "
    "département et la région avant l'été, afin de partager le financement du projet."
)
REFERENCE = f"{TITLE}\n{BODY}"
PAGE1_TEXT = (
    "Ordre du jour de la réunion intercommunale : rénovation de la piscine de Lourdes, "
    "calendrier des travaux et tarifs d'accès pour les scolaires."
)


# --------------------------------------------------------------------------- making scans


def text_image(title: str, body: str, width: int = 2480, height: int = 3508):
    """An A4 page at 300 dpi (2480 x 3508 px): a bold-ish title, then the body at ~10 pt."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 44)
    big = ImageFont.truetype(FONT, 60)
    margin, y = 220, 260
    draw.text((margin, y), title, font=big, fill=0)
    y += 140
    line = ""
    for word in body.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) > width - 2 * margin:
            draw.text((margin, y), line, font=font, fill=0)
            y += 72
            line = word
        else:
            line = trial
    draw.text((margin, y), line, font=font, fill=0)
    return img


def image_pdf(path: Path, images: list, resolution: float = 300.0) -> Path:
    """Image-only PDF with Pillow: one page per image, no text layer at all."""
    images[0].save(path, "PDF", resolution=resolution, save_all=True, append_images=images[1:])
    return path


def mixed_pdf(path: Path, scanned: list, text: str = PAGE1_TEXT) -> Path:
    """Page 1 typed (fpdf2, a real text layer), then one image-only page per scanned image."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2020, 1, 1))
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 7, text)
    for img in scanned:
        buf = io.BytesIO()
        img.convert("1").save(buf, format="PNG")
        pdf.add_page()
        pdf.image(buf, x=0, y=0, w=210, h=297)
    pdf.output(str(path))
    return path


def tiny_pages(n: int) -> list:
    from PIL import Image

    return [Image.new("L", (8, 8), 200) for _ in range(n)]


@pytest.fixture(scope="module")
def scan_image():
    return text_image(TITLE, BODY)


@pytest.fixture
def never_ocr(monkeypatch):
    """Fail the test if any page reaches the renderer or Tesseract."""

    def boom(*args, **kwargs):
        raise AssertionError("OCR must not run")

    monkeypatch.setattr(ocr_mod, "ocr_page", boom)
    monkeypatch.setattr(ocr_mod, "render_page", boom)


# --------------------------------------------------------------------------- reading


@needs_tesseract
def test_scanned_page_is_read_accurately(tmp_path, scan_image):
    """~150 French words with accents, one scanned page: word accuracy ≥ 0.95, flagged OCR."""
    path = image_pdf(tmp_path / "scan.pdf", [scan_image])
    calls: list[tuple[int, int, str]] = []
    t0 = time.perf_counter()
    doc = load(path, ocr=OcrOptions(progress=lambda *a: calls.append(a)))
    seconds = time.perf_counter() - t0
    text = "\n".join(p.text for p in doc.pages)
    accuracy = word_accuracy(REFERENCE, text)
    words = len(re.findall(r"[^\W_]+", REFERENCE))
    print(f"\nOCR : {words} mots de référence, exactitude par mot {accuracy:.3f}, {seconds:.1f} s la page")
    assert accuracy >= 0.95, text
    assert [p.number for p in doc.pages] == [1] and doc.pages[0].ocr
    assert doc.pages[0].blocks[0] == ("heading1", TITLE)  # OCR text gets the same structure rules
    assert "mobilité des aînés" in text and "centre communal d'action sociale" in text
    assert doc.file_meta["pages_ocr"] == [1] and "pages_sans_texte" not in doc.file_meta
    assert calls == [(0, 1, str(path)), (1, 1, str(path))]


@needs_tesseract
def test_mixed_pdf_keeps_its_text_and_reads_only_the_scanned_page(tmp_path, scan_image, monkeypatch):
    path = mixed_pdf(tmp_path / "mixte.pdf", [scan_image])
    without = load(path)  # no OCR: the typed page alone, as before
    assert [p.number for p in without.pages] == [1] and without.file_meta["pages_sans_texte"] == [2]
    seen: list[int] = []
    real = ocr_mod.ocr_page

    def spy(pdf, index, *args, **kwargs):
        seen.append(index)
        return real(pdf, index, *args, **kwargs)

    monkeypatch.setattr(ocr_mod, "ocr_page", spy)
    doc = load(path, ocr=OcrOptions())
    assert seen == [1]  # 0-based: page 2 only
    assert [(p.number, p.ocr) for p in doc.pages] == [(1, False), (2, True)]
    assert doc.pages[0].text == without.pages[0].text == PAGE1_TEXT
    assert word_accuracy(REFERENCE, doc.pages[1].text) >= 0.95
    assert doc.file_meta["pages_ocr"] == [2] and "pages_sans_texte" not in doc.file_meta

    # the flag follows the page into the passages and the store's metadata (only when true)
    meta = DocMeta(doc_id="mixte", title="Mixte", source=str(path))
    chunks = chunk_document(doc, meta, "0" * 64, 400, 50)
    assert {(c.page, c.ocr) for c in chunks} == {(1, False), (2, True)}
    for c in chunks:
        assert chunk_metadata(c, "0" * 64).get("ocr") is (True if c.page == 2 else None)


def test_text_from_data_drops_unsure_lines_and_pages():
    """Tesseract's word table → text: unsure lines out; under 5 sure words, nothing at all."""

    def table(lines: list[tuple[int, int, list[tuple[str, float]]]]) -> dict:
        data: dict[str, list] = {"text": [], "conf": [], "block_num": [], "par_num": [], "line_num": []}
        for n, (block, par, words) in enumerate(lines, 1):
            for word, conf in words:
                for key, value in zip(data, (word, conf, block, par, n), strict=True):
                    data[key].append(value)
        return data

    sure = [("Les", 96.0), ("élus", 95.0), ("veulent", 93.0), ("une", 97.0), ("navette.", 91.0)]
    noise = [("Fe", 12.0), ("LE", 40.0), ("=", 30.0)]
    text = text_from_data(table([(1, 1, sure), (1, 1, noise), (2, 1, [("Merci", 90.0)])]))
    assert text == "Les élus veulent une navette.\n\nMerci"
    assert text_from_data(table([(1, 1, sure[:4]), (1, 1, noise)])) == ""
    assert text_from_data(table([(1, 1, noise * 5)])) == ""


# --------------------------------------------------------------------------- limits


def test_page_limit_is_checked_before_any_ocr(tmp_path, never_ocr, monkeypatch):
    """300 scanned pages, limit 50: refused at once, naming the setting; nothing rendered."""
    monkeypatch.setattr("ingest.loaders.tesseract_available", lambda: True)
    path = image_pdf(tmp_path / "long.pdf", tiny_pages(300), resolution=72)
    t0 = time.perf_counter()
    with pytest.raises(IngestError) as info:
        load(path, ocr=OcrOptions())
    assert time.perf_counter() - t0 < 30
    assert info.value.reason == (
        "PDF scanné trop long pour l'OCR : 300 pages à reconnaître, limite 50 (réglage FP_OCR_MAX_PAGES)"
    )
    assert info.value.code == "ocr_too_many_pages" and str(path) in info.value.message

    two = image_pdf(tmp_path / "deux.pdf", tiny_pages(2), resolution=72)
    with pytest.raises(IngestError, match="2 pages à reconnaître, limite 1 "):
        load(two, ocr=OcrOptions(max_pages=1))


@needs_tesseract
def test_slow_page_stops_tesseract_with_a_french_error(tmp_path, scan_image):
    path = image_pdf(tmp_path / "lent.pdf", [scan_image])
    with pytest.raises(IngestError) as info:
        load(path, ocr=OcrOptions(page_timeout=0.01))
    assert info.value.reason == (
        "reconnaissance du texte (OCR) trop lente à la page 1 : plus de 0,01 s (FP_OCR_PAGE_TIMEOUT)"
    )
    assert info.value.code == "ocr_timeout"


def test_timeout_error_names_the_page(tmp_path, monkeypatch):
    """The mapping alone (no Tesseract): page 7 of 7 too slow → its number and the setting."""
    monkeypatch.setattr("ingest.loaders.tesseract_available", lambda: True)

    def fake(pdf, index, dpi, timeout):
        if index == 6:
            raise OcrTimeout(timeout)
        return "Une page lue sans peine par la reconnaissance de texte."

    monkeypatch.setattr(ocr_mod, "ocr_page", fake)
    path = image_pdf(tmp_path / "sept.pdf", tiny_pages(7), resolution=72)
    with pytest.raises(IngestError) as info:
        load(path, ocr=OcrOptions())
    assert info.value.reason == (
        "reconnaissance du texte (OCR) trop lente à la page 7 : plus de 60 s (FP_OCR_PAGE_TIMEOUT)"
    )


def test_limits_never_cost_a_mixed_pdf_its_text(tmp_path, monkeypatch):
    """A PDF with real text elsewhere keeps it: past a limit, its scanned pages are skipped."""
    monkeypatch.setattr("ingest.loaders.tesseract_available", lambda: True)
    def too_slow(pdf, index, dpi, timeout):
        raise OcrTimeout(timeout)

    monkeypatch.setattr(ocr_mod, "ocr_page", too_slow)
    path = mixed_pdf(tmp_path / "mixte.pdf", tiny_pages(3))
    for options in (OcrOptions(), OcrOptions(max_pages=2)):  # every page too slow; too many pages
        doc = load(path, ocr=options)
        assert [(p.number, p.ocr) for p in doc.pages] == [(1, False)]
        assert doc.file_meta["pages_sans_texte"] == [2, 3, 4]


# --------------------------------------------------------------------------- fallbacks


def test_ocr_disabled_gives_the_old_refusal(tmp_path, scan_image, never_ocr):
    path = image_pdf(tmp_path / "scan.pdf", [scan_image])
    for options in (None, OcrOptions(enabled=False)):
        with pytest.raises(IngestError) as info:
            load(path, ocr=options)
        assert info.value.reason == SCANNED_REASON and info.value.code == "scanned"


def test_setting_fp_ocr_false(monkeypatch):
    from assistant.config import Settings

    monkeypatch.setenv("FP_OCR", "false")
    monkeypatch.setenv("FP_OCR_MAX_PAGES", "12")
    monkeypatch.setenv("FP_OCR_PAGE_TIMEOUT", "7.5")
    s = Settings(_env_file=None)
    assert (s.ocr, s.ocr_max_pages, s.ocr_page_timeout) == (False, 12, 7.5)


def test_tesseract_absent_says_what_to_install(tmp_path, scan_image, never_ocr, monkeypatch):
    monkeypatch.setattr("ingest.loaders.tesseract_available", lambda: False)
    with pytest.raises(IngestError) as info:
        load(image_pdf(tmp_path / "scan.pdf", [scan_image]), ocr=OcrOptions())
    assert info.value.reason == (
        "aucun texte extractible : PDF scanné ou image seule "
        "(un OCR serait nécessaire : installez tesseract-ocr et tesseract-ocr-fra)"
    )
    assert info.value.code == "scanned"
    # a mixed PDF is still indexed with its typed page, as before OCR existed
    doc = load(mixed_pdf(tmp_path / "mixte.pdf", [scan_image]), ocr=OcrOptions())
    assert [(p.number, p.ocr) for p in doc.pages] == [(1, False)]


# --------------------------------------------------------------------------- citations


def test_citations_say_the_text_was_recognised_by_ocr():
    from assistant.answering.citations import Citation
    from assistant.answering.extractive import Answer
    from assistant.drafting.draft import SourceRef
    from assistant.drafting.export import _source_line
    from assistant.retriever import Passage

    meta = {"doc_id": "scan", "title": "Séminaire", "source": "scan.pdf", "page": 2, "ocr": True}
    passage = Passage(1, "scan::0", "La navette desservirait les hameaux.", 0.9, meta)
    cited = Citation.from_passage(1, passage, passage.text)
    plain = Citation.from_passage(2, Passage(2, "x::0", "Texte.", 0.5, {**meta, "ocr": None}), "Texte.")
    assert cited.ocr is True and plain.ocr is False
    rows = Answer("La navette [1] [2].", True, [cited, plain]).as_json()["citations"]
    assert [c["ocr"] for c in rows] == [True, False]
    assert passage.as_json()["ocr"] is True
    assert "p. 2 (texte reconnu par OCR) — scan.pdf" in _source_line(
        SourceRef.from_passage(1, passage, passage.text))


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
@needs_tesseract
def test_scanned_pdf_is_found_and_cited_with_its_page(tmp_path, env_store, e5, capsys, monkeypatch,
                                                     scan_image):
    """CLI ingest of a mixed PDF (typed page 1, scanned page 2): the OCR progress shows,
    `search` finds the scanned passage on page 2 and `ask --json` cites it with "ocr": true."""
    from assistant.cli import main
    from assistant.config import get_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    mixed_pdf(docs / "seminaire-bagneres.pdf", [scan_image])
    (docs / "piscine.md").write_text(
        "# Piscine de Lourdes\n\nLa piscine intercommunale rouvrira après deux ans de travaux ; "
        "les scolaires y auront des créneaux réservés le matin.\n", encoding="utf-8")

    assert main(["ingest", str(docs), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["added"] == 2 and not report["failed"]
    assert "OCR p. 1/1" in err  # the CLI's bar names the OCR page being read

    query = "chauffeurs bénévoles pour conduire les personnes âgées"
    assert main(["search", query, "--json", "--k", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["source"].endswith("seminaire-bagneres.pdf") and rows[0]["page"] == 2
    assert rows[0]["ocr"] is True

    question = "Que propose le séminaire local de Bagnères pour la mobilité des aînés ?"
    assert main(["ask", question, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["grounded"], answer
    scanned = [c for c in answer["citations"] if c["source"].endswith("seminaire-bagneres.pdf")]
    # the scanned page is cited with its page and « ocr »; the typed page 1, if quoted too, is not OCR
    assert any(c["page"] == 2 and c["ocr"] is True for c in scanned), scanned
    assert all(c["ocr"] is (c["page"] == 2) for c in scanned), scanned
    assert main(["ask", question]) == 0
    assert "p. 2 (texte reconnu par OCR)" in capsys.readouterr().out

    # FP_OCR=false: a new scan is refused as before OCR existed, the index is untouched
    image_pdf(docs / "scan-seul.pdf", [scan_image])
    monkeypatch.setenv("FP_OCR", "false")
    get_settings.cache_clear()
    assert main(["ingest", str(docs / "scan-seul.pdf"), "--json", "--quiet"]) == 1
    failed = json.loads(capsys.readouterr().out)["failed"]
    assert failed[0]["error"].endswith(SCANNED_REASON)
