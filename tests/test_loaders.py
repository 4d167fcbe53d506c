"""Loaders and cleaning: every format, the structure kept, and every refusal in French.

Fast by design: documents are generated on the fly in tmp_path (tests/fixtures.py); no
embedding model, no index.
"""

from __future__ import annotations

from pathlib import Path

import fixtures as fx  # tests/fixtures.py (pytest puts tests/ on sys.path)
import pytest

from ingest import loaders
from ingest.clean import clean_pages, dehyphenate, normalize_chars, render_blocks
from ingest.errors import IngestError
from ingest.loaders import load
from ingest.models import LoadedDocument, Page

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def report_pdf(tmp_path: Path) -> Path:
    return fx.report_pdf(tmp_path / "compte-rendu.pdf")


@pytest.fixture
def report_docx(tmp_path: Path) -> Path:
    return fx.report_docx(tmp_path / "feuille-de-route.docx")


def all_text(doc: LoadedDocument) -> str:
    return "\n".join(p.text for p in doc.pages)


def refused(path: Path, **kw) -> IngestError:
    """Load `path`, expecting a refusal; the message must name the file."""
    with pytest.raises(IngestError) as info:
        load(path, **kw)
    err = info.value
    assert str(path) in str(err), "the message names the file"
    assert err.reason and err.code.isascii()
    return err


# --------------------------------------------------------------------------- PDF


def test_pdf_pages_headers_hyphenation_and_headings(report_pdf: Path) -> None:
    doc = load(report_pdf)
    assert doc.fmt == "pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    for number, marker in fx.PAGE_MARKERS.items():
        page = doc.pages[number - 1]
        assert marker in page.text, f"page {number} keeps its own text"
        assert all(marker not in p.text for p in doc.pages if p is not page)
    text = all_text(doc)
    assert fx.RUNNING_HEADER not in text, "running header removed"
    assert "page 2 / 3" not in text and "Fabrique vieillissement" not in text, "footer removed"
    assert "transition démographique" in text and "transi-" not in text
    assert "Saint-Nazaire" in text, "a real compound keeps its hyphen"
    headings = [(k, t) for p in doc.pages for k, t in p.blocks if k.startswith("heading")]
    assert ("heading1", "1. Contexte du séminaire") in headings
    assert ("heading1", "3. Programme d'actions") in headings
    assert doc.file_meta["title"] == "Compte rendu d'essai"
    assert doc.file_meta["keywords"] == ["vieillissement", "Bagnolet"]
    assert doc.file_meta["created_year"] == 2019
    assert doc.file_meta["page_count"] == 3


def test_pdf_lists_and_table_rows(report_pdf: Path) -> None:
    doc = load(report_pdf)
    assert ("list", "repérer les personnes isolées") in doc.pages[1].blocks
    tables = [t for k, t in doc.pages[2].blocks if k == "table"]
    assert tables, doc.pages[2].blocks
    rows = tables[0].split("\n")
    assert rows[0] == "Action | Porteur | Calendrier"
    assert rows[1] == "Visites de convivialité à domicile pour les aînés isolés du quartier | CCAS | 2019"
    assert rows[2] == "Ateliers numériques | Médiathèque | 2020"


def test_pdf_text_and_blocks_agree(report_pdf: Path) -> None:
    for page in load(report_pdf).pages:
        assert page.text == render_blocks(page.blocks)
        assert all(text in page.text for _, text in page.blocks)


@pytest.mark.parametrize(
    ("interleaved", "sentences"),
    [(False, 14), (False, 4), (True, 14)],
    ids=["column-after-column", "short-balanced-columns", "line-by-line"],
)
def test_pdf_two_columns_read_left_then_right(tmp_path: Path, interleaved: bool, sentences: int) -> None:
    path = fx.two_column_pdf(tmp_path / "deux-colonnes.pdf", interleaved=interleaved, sentences=sentences)
    doc = load(path)
    text = all_text(doc)
    positions = [text.find(f"Gauche{i} ") for i in range(1, 15) if f"Gauche{i} " in text]
    right = [text.find(f"Droite{i} ") for i in range(1, 15) if f"Droite{i} " in text]
    assert len(positions) == len(right) == sentences
    assert all(k == "para" or k.startswith("heading") for k, _ in doc.pages[0].blocks), "no fake table"
    assert positions == sorted(positions) and right == sorted(right)
    assert max(positions) < min(right), "the whole left column comes before the right one"
    assert ("heading1", "Synthèse en deux colonnes") in doc.pages[0].blocks


def test_pdf_encrypted_with_empty_user_password_loads(tmp_path: Path, report_pdf: Path) -> None:
    path = fx.encrypted_pdf(
        tmp_path / "protege-ecriture.pdf", report_pdf, user_password="", owner_password="x"
    )
    doc = load(path)
    assert fx.PAGE_MARKERS[2] in doc.pages[1].text


def test_pdf_too_many_pages(report_pdf: Path) -> None:
    err = refused(report_pdf, max_pages=2)
    assert err.code == "too_many_pages"
    assert "3 pages" in err.reason and "limite 2" in err.reason


# --------------------------------------------------------------------------- DOCX


def test_docx_headings_list_table_in_order(report_docx: Path) -> None:
    doc = load(report_docx)
    assert doc.fmt == "docx" and [p.number for p in doc.pages] == [1]
    blocks = doc.pages[0].blocks
    assert blocks[0] == ("heading1", "Feuille de route de Jonzac")
    assert ("heading2", "Enjeux") in blocks
    assert ("list", "repérer les personnes isolées") in blocks
    kinds = [k for k, _ in blocks]
    table_at = kinds.index("table")
    assert blocks[table_at - 1] == ("heading2", "Programme d'actions"), "table stays in place"
    assert blocks[table_at + 1][1] == "Le bilan sera présenté en conseil municipal."
    assert blocks[table_at][1].split("\n") == [
        "Action | Porteur | Calendrier",
        "Visites de convivialité | CCAS | 2019",
        "Bancs | Voirie | 2020",
    ]
    assert doc.file_meta == {
        "title": "Feuille de route — Jonzac",
        "subject": "senior-petite-ville",
        "keywords": ["seniors", "Jonzac", "mobilité"],
        "created_year": 2022,
    }


# --------------------------------------------------------------------------- HTML


def test_html_keeps_the_article_only(tmp_path: Path) -> None:
    doc = load(fx.article_html(tmp_path / "synthese.html"))
    assert doc.fmt == "html" and [p.number for p in doc.pages] == [1]
    text = all_text(doc)
    for noise in fx.SITE_NOISE:
        assert noise not in text, noise
    assert "visites de convivialité" in text and "rôle de l'intercommunalité" in text
    blocks = doc.pages[0].blocks
    assert ("heading1", "Synthèse des séminaires intersites") in blocks
    assert ("heading2", "Les enseignements") in blocks
    assert ("list", "Mobiliser les bailleurs sociaux") in blocks
    assert ("table", "Action | Porteur\nVisites de convivialité | CCAS") in blocks
    assert doc.file_meta["title"] == "Synthèse intersites — Centre de ressources"
    assert doc.file_meta["description"] == "Synthèse des séminaires intersites"
    assert doc.file_meta["keywords"] == ["vieillissement", "seniors"]
    assert doc.file_meta["year"] == 2018


def test_html_without_main_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vide.html"
    path.write_text(
        "<html><head><title>x</title><script>var a=1;</script></head><body><nav>Menu</nav></body></html>"
    )
    err = refused(path)
    assert err.code == "no_text" and "aucun texte" in err.reason


# --------------------------------------------------------------------------- Markdown / text


def test_markdown_front_matter_and_blocks(tmp_path: Path) -> None:
    doc = load(fx.front_matter_md(tmp_path / "cr-bagnolet-1.md"))
    assert doc.fmt == "md"
    assert doc.file_meta["doc_id"] == "vieillissement-cr-bagnolet-1"
    assert doc.file_meta["year"] == 2018
    assert doc.file_meta["date"] == "2018-05-12", "dates become ISO strings"
    assert doc.file_meta["territories"] == ["Bagnolet"]
    blocks = doc.pages[0].blocks
    assert ("heading1", "Compte rendu") in blocks
    assert ("heading2", "Les constats") in blocks
    assert ("heading3", "Suite") in blocks
    assert (
        "para",
        "Les aînés de Bagnolet vivent souvent seuls, et les visites de convivialité sont appréciées.",
    ) in blocks
    assert ("list", "second point qui continue") in blocks
    assert ("table", "Action | Porteur\nVisites | CCAS") in blocks
    assert "pagebreak" not in all_text(doc) and "doc_id" not in all_text(doc)


def test_markdown_invalid_front_matter_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "casse.md"
    path.write_text('---\ntitle: "non fermé\nyear: 2018\n---\n# Titre\n', encoding="utf-8")
    err = refused(path)
    assert err.code == "front_matter"
    assert "en-tête YAML (front matter) invalide" in err.reason


def test_text_latin1_and_utf16(tmp_path: Path) -> None:
    for path in (fx.latin1_txt(tmp_path / "latin1.txt"), fx.utf16_txt(tmp_path / "utf16.txt")):
        doc = load(path)
        assert doc.fmt == "txt"
        assert doc.pages[0].text == fx.FRENCH_TEXT, path.name


def test_text_undecodable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binaire.txt"
    path.write_bytes(bytes(range(256)) * 8)
    err = refused(path)
    assert err.code == "encoding" and err.reason.startswith("encodage illisible")


# --------------------------------------------------------------------------- refusals


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "vide.pdf"
    path.write_bytes(b"")
    err = refused(path)
    assert err.code == "empty" and err.reason == "fichier vide"


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "gros.md"
    path.write_text("# Gros\n" + "texte " * 400_000, encoding="utf-8")
    err = refused(path, max_bytes=1_000_000)
    assert err.code == "too_large"
    assert err.reason == "fichier trop volumineux (2,4 Mo, limite 1,0 Mo)"


def test_truncated_pdf(tmp_path: Path, report_pdf: Path) -> None:
    data = report_pdf.read_bytes()
    path = tmp_path / "tronque.pdf"
    path.write_bytes(data[: len(data) // 2])
    err = refused(path)
    assert err.code == "corrupt"
    assert err.reason.startswith("PDF illisible ou corrompu (")
    assert "tronqué" in err.reason


def test_garbage_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "faux.pdf"
    path.write_bytes(b"ceci n'est pas un PDF\x00\x01\x02" * 50)
    err = refused(path)
    assert err.code == "corrupt" and err.reason.startswith("PDF illisible ou corrompu")


def test_broken_pdf_body(tmp_path: Path) -> None:
    path = tmp_path / "casse.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    err = refused(path)
    assert err.code == "corrupt" and err.reason.startswith("PDF illisible ou corrompu")


def test_pdf_with_password(tmp_path: Path, report_pdf: Path) -> None:
    path = fx.encrypted_pdf(tmp_path / "secret.pdf", report_pdf, user_password="secret")
    err = refused(path)
    assert err.code == "encrypted" and err.reason == "PDF protégé par mot de passe"


def test_scanned_pdf(tmp_path: Path) -> None:
    err = refused(fx.image_only_pdf(tmp_path / "scan.pdf"))
    assert err.code == "scanned"
    assert err.reason == "aucun texte extractible : PDF scanné ou image seule (un OCR serait nécessaire)"


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.xyz"
    path.write_text("du texte", encoding="utf-8")
    err = refused(path)
    assert err.code == "unsupported" and err.reason == "format non pris en charge (.xyz)"


def test_fake_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "tableur.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    err = refused(path)
    assert err.code == "unsupported" and err.reason.startswith("format non pris en charge (.xlsx")


def test_docx_that_is_really_a_pdf_is_read_as_pdf(tmp_path: Path, report_pdf: Path) -> None:
    path = tmp_path / "renomme.docx"
    path.write_bytes(report_pdf.read_bytes())
    doc = load(path)
    assert doc.fmt == "pdf" and len(doc.pages) == 3


def test_pdf_that_is_really_a_docx_is_read_as_docx(tmp_path: Path) -> None:
    path = tmp_path / "renomme.pdf"
    path.write_bytes(fx.docx_bytes())
    doc = load(path)
    assert doc.fmt == "docx" and "renommé en PDF" in doc.pages[0].text


def test_zip_bomb_docx(tmp_path: Path) -> None:
    path = fx.zip_bomb_docx(tmp_path / "bombe.docx")
    assert path.stat().st_size < 100_000, "small on disk"
    err = refused(path)
    assert err.code == "zip_bomb" and err.reason.startswith("archive suspecte (bombe ZIP ?)")


def test_zip_total_size_and_entry_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders, "MAX_ZIP_UNCOMPRESSED", 1_000_000)
    err = refused(fx.zip_bomb_docx(tmp_path / "gonfle.docx", size=2_000_000))
    assert err.code == "zip_bomb" and "une fois décompressée" in err.reason
    monkeypatch.setattr(loaders, "MAX_ZIP_ENTRIES", 50)
    err = refused(fx.many_entries_docx(tmp_path / "entrees.docx", 60))
    assert err.code == "zip_bomb" and "fichiers internes" in err.reason


def test_missing_file(tmp_path: Path) -> None:
    err = refused(tmp_path / "absent.pdf")
    assert err.code == "not_found"


# --------------------------------------------------------------------------- clean


def test_dehyphenate_joins_cuts_and_keeps_compounds() -> None:
    assert dehyphenate(["la transi-", "tion est lente"]) == ["la transition est lente"]
    assert dehyphenate(["habitants de Saint-", "Nazaire"]) == ["habitants de Saint-Nazaire"]
    assert dehyphenate(["c'est peut-", "être vrai"]) == ["c'est peut-être vrai"]
    assert dehyphenate(["celle-", "ci"]) == ["celle-ci"]
    assert dehyphenate(["en 2019-", "2020"]) == ["en 2019-2020"]
    assert dehyphenate(["la co-", "construction"], {"co-construction"}) == ["la co-construction"]
    assert dehyphenate(["une transi\u00ad", "tion"]) == ["une transition"]
    assert dehyphenate(["sur l'", "héritage industriel"]) == ["sur l'héritage industriel"]


def test_normalize_chars() -> None:
    assert normalize_chars("ﬁnancement eﬀort") == "financement effort"
    assert normalize_chars("«\u00a0œuvre\u202f» …") == "« œuvre » …"
    assert normalize_chars("trans\u00adition\u200b") == "transition"


def test_clean_pages_headers_on_pages_without_blocks_and_idempotent() -> None:
    words = ["alpha", "bravo", "charlie", "delta"]
    pages = [
        Page(
            n,
            f"Rapport annuel 2019\nLe thème {w} occupe la page, avec une transi-\ntion {w}.\nPage {n} sur 4",
            [],
        )
        for n, w in enumerate(words, start=1)
    ]
    cleaned = clean_pages(pages)
    assert [p.number for p in cleaned] == [1, 2, 3, 4]
    for page, w in zip(cleaned, words, strict=True):
        assert page.text == f"Le thème {w} occupe la page, avec une transition {w}."
        assert page.blocks == [("para", page.text)]
    assert clean_pages(cleaned) == cleaned


def test_clean_word_cut_across_a_page_break() -> None:
    pages = [
        Page(1, "", [("list", "Déplacements : développer le covoitu-")]),
        Page(2, "", [("para", "rage organisé et les aires multimodales."), ("heading2", "Suite")]),
    ]
    cleaned = clean_pages(pages)
    assert cleaned[0].blocks == [("list", "Déplacements : développer le covoiturage")]
    assert cleaned[1].blocks == [("para", "organisé et les aires multimodales."), ("heading2", "Suite")]


def test_clean_single_page_keeps_its_lines() -> None:
    page = Page(1, "", [("heading1", "Titre"), ("para", "Une ligne\nqui continue."), ("para", "2019")])
    assert clean_pages([page])[0].blocks == [
        ("heading1", "Titre"),
        ("para", "Une ligne qui continue."),
        ("para", "2019"),
    ]
