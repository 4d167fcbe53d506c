"""Generators of small test documents, written on the fly (no binary fixture committed).

Each function writes one file at `path` and returns the path. They reproduce the noise the
loaders must cope with (running headers and footers, hyphenated line ends, two columns,
web-page chrome, legacy encodings) and the broken inputs they must refuse cleanly.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

# Page markers: one sentence known to sit on each page of the report PDF.
PAGE_MARKERS = {
    1: "Le marqueur alpha figure sur la première page.",
    2: "Le marqueur bravo figure sur la deuxième page.",
    3: "Le marqueur charlie figure sur la troisième page.",
}
RUNNING_HEADER = "Compte rendu d'essai — Bagnolet"


def _pdf(**kw):
    """An A4 fpdf2 document with DejaVu (needed for French accents and «»)."""
    from fpdf import FPDF

    class Doc(FPDF):
        header_text = kw.get("header", "")
        footer_text = kw.get("footer", "")

        def header(self) -> None:
            if self.header_text:
                self.set_font("dv", "", 8)
                self.cell(0, 5, self.header_text, new_x="LMARGIN", new_y="NEXT")
                self.ln(4)

        def footer(self) -> None:
            if self.footer_text:
                self.set_y(-15)
                self.set_font("dv", "", 8)
                self.cell(0, 5, self.footer_text.format(page=self.page_no()), align="C")

    pdf = Doc(format="A4")
    pdf.add_font("dv", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("dv", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_creation_date(datetime(2019, 6, 1))
    pdf.alias_nb_pages()
    return pdf


def report_pdf(path: Path) -> Path:
    """Three pages: running header and numbered footer, headings, a word cut at a line end
    ("transi-" / "tion"), a real compound cut ("Saint-" / "Nazaire"), a list and a table."""
    pdf = _pdf(header=RUNNING_HEADER, footer="Fabrique vieillissement — page {page} / {{nb}}")
    pdf.set_title("Compte rendu d'essai")
    pdf.set_keywords("vieillissement, Bagnolet")
    body = (
        "Les élus ont présenté la démarche engagée avec les bailleurs sociaux et les "
        "associations de quartier pour accompagner le vieillissement de la population. "
    )
    # page 1: heading, paragraph with explicit line ends (hyphenated words)
    pdf.add_page()
    pdf.set_font("dv", "B", 16)
    pdf.multi_cell(0, 9, "1. Contexte du séminaire")
    pdf.ln(2)
    pdf.set_font("dv", "", 11)
    pdf.multi_cell(
        0,
        6,
        "La commune prépare la transi-\n"
        "tion démographique de ses quartiers avec les habitants de\n"
        "Saint-\n"
        "Nazaire et de Bagnolet. " + PAGE_MARKERS[1],
    )
    pdf.ln(3)
    pdf.multi_cell(0, 6, body * 3)
    # page 2: heading, list
    pdf.add_page()
    pdf.set_font("dv", "B", 16)
    pdf.multi_cell(0, 9, "2. Enjeux retenus")
    pdf.ln(2)
    pdf.set_font("dv", "", 11)
    pdf.multi_cell(0, 6, PAGE_MARKERS[2])
    pdf.ln(3)
    pdf.multi_cell(0, 6, "• repérer les personnes isolées\n• adapter les logements sociaux")
    pdf.ln(3)
    pdf.multi_cell(0, 6, body * 2)
    # page 3: heading, table
    pdf.add_page()
    pdf.set_font("dv", "B", 16)
    pdf.multi_cell(0, 9, "3. Programme d'actions")
    pdf.ln(2)
    pdf.set_font("dv", "", 11)
    pdf.multi_cell(0, 6, PAGE_MARKERS[3])
    pdf.ln(3)
    with pdf.table(col_widths=(90, 40, 40)) as table:
        for row in (
            ("Action", "Porteur", "Calendrier"),
            ("Visites de convivialité à domicile pour les aînés isolés du quartier", "CCAS", "2019"),
            ("Ateliers numériques", "Médiathèque", "2020"),
        ):
            cells = table.row()
            for text in row:
                cells.cell(text)
    pdf.output(str(path))
    return path


LEFT = [f"Gauche{i} la colonne de gauche raconte la démarche locale engagée." for i in range(1, 15)]
RIGHT = [f"Droite{i} la colonne de droite décrit les actions prévues ensuite." for i in range(1, 15)]


def two_column_pdf(path: Path, *, interleaved: bool = False, sentences: int = 14) -> Path:
    """One page in two columns.

    Default: fpdf2 text columns (drawn column after column, as most producers do).
    `interleaved`: each printed line drawn left then right, as some producers do; the
    loader must still read the whole left column first. Few `sentences` make short
    balanced columns, which look like one big table row with two wrapped cells.
    """
    pdf = _pdf()
    pdf.add_page()
    pdf.set_font("dv", "B", 16)
    pdf.multi_cell(0, 9, "Synthèse en deux colonnes")
    pdf.ln(2)
    pdf.set_font("dv", "", 10)
    if interleaved:
        y = pdf.get_y()
        for left, right in zip(LEFT[:sentences], RIGHT[:sentences], strict=True):
            for x, text in ((pdf.l_margin, left), (pdf.l_margin + 95, right)):
                words = text.split()
                while pdf.get_string_width(" ".join(words)) > 82:  # keep a real gutter
                    words.pop()
                pdf.set_xy(x, y)
                pdf.cell(85, 6, " ".join(words))
            y += 6
    else:
        with pdf.text_columns(ncols=2, gutter=8, balance=True) as cols:
            cols.write(" ".join(LEFT[:sentences]) + "\n")
            cols.write(" ".join(RIGHT[:sentences]))
    pdf.output(str(path))
    return path


def image_only_pdf(path: Path) -> Path:
    """A "scanned" page: graphics, no text at all."""
    pdf = _pdf()
    pdf.add_page()
    pdf.set_fill_color(120, 120, 120)
    pdf.rect(30, 40, 150, 200, style="F")
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path, source: Path, *, user_password: str, owner_password: str | None = None) -> Path:
    """`source` re-written with RC4 encryption (pure-Python in pypdf, no extra package)."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(source))
    writer.encrypt(user_password, owner_password)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def report_docx(path: Path) -> Path:
    """Headings, a paragraph, a bullet list, a table (header row), a closing paragraph."""
    from docx import Document

    doc = Document()
    doc.add_heading("Feuille de route de Jonzac", level=1)
    doc.add_paragraph("Document d'illustration : la commune prépare ses actions pour les aînés.")
    doc.add_heading("Enjeux", level=2)
    doc.add_paragraph("repérer les personnes isolées", style="List Bullet")
    doc.add_paragraph("adapter les logements", style="List Bullet")
    doc.add_heading("Programme d'actions", level=2)
    rows = (
        ("Action", "Porteur", "Calendrier"),
        ("Visites de convivialité", "CCAS", "2019"),
        ("Bancs", "Voirie", "2020"),
    )
    table = doc.add_table(rows=len(rows), cols=3)
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            table.cell(i, j).text = text
    doc.add_paragraph("Le bilan sera présenté en conseil municipal.")
    props = doc.core_properties
    props.title = "Feuille de route — Jonzac"
    props.subject = "senior-petite-ville"
    props.keywords = "seniors, Jonzac; mobilité"
    props.created = datetime(2022, 3, 1)
    doc.save(str(path))
    return path


SITE_NOISE = ("NAVNOISE", "MENUNOISE", "COOKIENOISE", "SCRIPTNOISE", "ASIDENOISE", "FOOTERNOISE")


def article_html(path: Path) -> Path:
    """An article inside a site page full of chrome; every noise string is marked."""
    path.write_text(
        """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>Synthèse intersites — Centre de ressources</title>
<meta name="description" content="Synthèse des séminaires intersites">
<meta name="keywords" content="vieillissement, seniors">
<meta name="year" content="2018">
<script>window.tracker = "SCRIPTNOISE";</script></head>
<body>
<div id="cookie-banner" class="bandeau-cookies">Ce site utilise des cookies COOKIENOISE.
<button>Tout accepter</button></div>
<header><nav class="menu-principal"><ul><li><a href="/">Accueil NAVNOISE</a></li>
<li><a href="/fabriques/">Les Fabriques MENUNOISE</a></li>
<li><a href="/contact/">Contact</a></li></ul></nav></header>
<main><article>
<h1>Synthèse des séminaires intersites</h1>
<p>Les participants ont souligné l'importance des <strong>visites de convivialité</strong> pour rompre
l'isolement des aînés dans les quartiers prioritaires, avec les bailleurs et les centres sociaux.</p>
<h2>Les enseignements</h2>
<ul><li>Renforcer la coopération entre communes voisines</li><li>Mobiliser les bailleurs sociaux</li></ul>
<table><thead><tr><th>Action</th><th>Porteur</th></tr></thead>
<tbody><tr><td>Visites de convivialité</td><td>CCAS</td></tr></tbody></table>
<p>Un second paragraphe détaille la gouvernance partagée du projet et le rôle de l'intercommunalité
dans le suivi des actions engagées par les communes.</p>
</article>
<aside class="barre-laterale"><h2>Articles liés ASIDENOISE</h2>
<ul><li><a href="/a">Autre</a></li></ul></aside>
</main>
<footer class="pied-de-page"><p>© 2018 Centre de ressources FOOTERNOISE — Mentions légales</p></footer>
<script>console.log("SCRIPTNOISE")</script>
</body></html>
""",
        encoding="utf-8",
    )
    return path


def front_matter_md(path: Path) -> Path:
    path.write_text(
        """---
doc_id: vieillissement-cr-bagnolet-1
title: "Compte rendu du séminaire local n°1 — Bagnolet"
doc_type: seminaire_local
year: 2018
date: 2018-05-12
territories: [Bagnolet]
---
Document d'illustration — contenu fictif

# Compte rendu

## Les constats
Les aînés de Bagnolet vivent souvent seuls,
et les **visites de convivialité** sont appréciées.

- premier point
- second point
  qui continue

| Action | Porteur |
|---|---|
| Visites | CCAS |

<!-- pagebreak -->
### Suite
Fin du document.
""",
        encoding="utf-8",
    )
    return path


FRENCH_TEXT = "Les élus de Bagnolet ont étudié l'habitat des aînés : « où vieillir ? » Œuvre commune, déjà."


def latin1_txt(path: Path) -> Path:
    path.write_bytes(FRENCH_TEXT.encode("cp1252"))
    return path


def utf16_txt(path: Path) -> Path:
    path.write_bytes(FRENCH_TEXT.encode("utf-16"))
    return path


def zip_bomb_docx(path: Path, size: int = 20_000_000) -> Path:
    """A "docx" whose document.xml inflates from a few kB to `size` bytes of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                fh.write(chunk)
    return path


def many_entries_docx(path: Path, entries: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", "<w:document/>")
        for i in range(entries):
            zf.writestr(f"word/media/f{i}.xml", "x")
    return path


def docx_bytes() -> bytes:
    """A minimal valid DOCX, in memory."""
    from docx import Document

    doc = Document()
    doc.add_paragraph("Un paragraphe de document Word renommé en PDF.")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
