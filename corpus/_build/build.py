"""Render the Markdown sources of the sample corpus to PDF/DOCX/HTML/MD and write the manifest.

Usage (from the repo root):
    python corpus/_build/build.py [--only FABRIQUE_ID] [--check] [--prune]
                                  [--src DIR] [--out DIR] [--gold DIR] [--facts FILE]

Why a build at all: the ingest pipeline has to cope with real-world noise (running headers and
footers, hyphenated line ends, two-column layouts, web-page chrome), so the sample corpus is
written once in Markdown (`corpus/_sources/`, contract in SOURCES.md) and rendered into those
messy formats here. The output must be byte-for-byte reproducible so that rendered files can be
committed and re-running the build never produces a spurious diff.
"""

from __future__ import annotations

import argparse
import html
import io
import logging
import os
import re
import sys
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml
from docx import Document
from docx.shared import Mm, Pt
from docx.table import Table
from fpdf import FPDF
from fpdf.fonts import FontFace
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_sources import (  # noqa: E402  (sibling module of a script, not a package)
    DOC_TYPES,
    EXTENSIONS,
    FORMATS,
    Block,
    Fabrique,
    Issues,
    SourceDoc,
    load_sources,
    plain,
    split_bold,
    validate_documents,
)

ROOT = Path(__file__).resolve().parents[2]
# fpdf2 logs missing glyphs itself; they are reported as build warnings instead (render_pdf).
logging.getLogger("fpdf").setLevel(logging.ERROR)
FONT_DIR = Path(os.environ.get("FP_FONT_DIR", "/usr/share/fonts/truetype/dejavu"))
FONT_FILES = {
    ("serif", ""): "DejaVuSerif.ttf",
    ("serif", "B"): "DejaVuSerif-Bold.ttf",
    ("sans", ""): "DejaVuSans.ttf",
    ("sans", "B"): "DejaVuSans-Bold.ttf",
}
SOFT_HYPHEN = "\u00ad"
SITE_NAME = "Centre de ressources des Fabriques Prospectives"
FOOTER_LINE = "Fabriques Prospectives — ANCT"
AUTHOR = "Fabriques Prospectives — ANCT (document d'illustration)"
GOLD_KINDS = ("factuel", "comparaison", "enseignement", "filtre", "paraphrase", "page", "hors_corpus")
FILTER_KEYS = ("fabrique", "year", "territory", "type")

# Layout (mm / pt). Body 10.5 pt serif: the usual size of an administrative report.
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 20.0, 22.0, 20.0
BODY_PT, NOTICE_PT, TABLE_PT = 10.5, 8.5, 8.5
HEADING_PT = {1: 16.0, 2: 13.0, 3: 11.5}
HYPHENATE_MIN_LEN = 7


def fixed_date(year: int) -> datetime:
    """Creation/modification date written into every file.

    Derived from the document year (not "now") so that builds are reproducible and the
    embedded date stays plausible for a loader that reads file properties.
    """
    return datetime(max(year, 1980), 6, 1, 9, 0, 0, tzinfo=UTC)


# =========================================================================== hyphenation


class Hyphenator:
    """Insert soft hyphens (U+00AD) into long French words.

    fpdf2 breaks lines at soft hyphens and prints a visible "-" there, which gives the PDFs
    the hyphenated line ends a loader has to re-join. Capitalised words (place names,
    acronyms) and URLs are left alone, as a typesetter would.
    """

    _WORD = re.compile(r"[^\W\d_]+")

    def __init__(self) -> None:
        try:
            import pyphen
        except ImportError as exc:  # pragma: no cover - environment problem
            raise SystemExit(
                "pyphen manquant / missing: `pip install pyphen` (césure française des PDF)"
            ) from exc
        self._dic = pyphen.Pyphen(lang="fr_FR", left=3, right=3)
        self._cache: dict[str, str] = {}

    def word(self, w: str) -> str:
        """Hyphenation points of one word as soft hyphens (memoised: words repeat a lot)."""
        if len(w) < HYPHENATE_MIN_LEN or not w[0].islower():
            return w
        if w not in self._cache:
            self._cache[w] = self._dic.inserted(w, hyphen=SOFT_HYPHEN)
        return self._cache[w]

    def __call__(self, text: str) -> str:
        def token(m: re.Match[str]) -> str:
            tok = m.group(0)
            if "://" in tok or "@" in tok or tok.startswith("www."):
                return tok
            return self._WORD.sub(lambda w: self.word(w.group(0)), tok)

        return re.sub(r"\S+", token, text)


# =========================================================================== PDF


def font_paths() -> dict[tuple[str, str], Path]:
    """The TTF files to embed; a clear error when DejaVu is not installed."""
    paths = {key: FONT_DIR / name for key, name in FONT_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SystemExit(
            "Polices DejaVu introuvables / DejaVu fonts not found:\n  "
            + "\n  ".join(missing)
            + "\nInstaller `fonts-dejavu-core` ou définir FP_FONT_DIR=<dossier des .ttf>."
        )
    return paths


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """Shorten `text` at a word boundary (with an ellipsis) so it fits `width` mm."""
    if pdf.get_string_width(text) <= width:
        return text
    words = text.split()
    while words and pdf.get_string_width(" ".join(words) + " …") > width:
        words.pop()
    return (" ".join(words) + " …") if words else "…"


class CorpusPDF(FPDF):
    """A4 page with a running header (title | fabrique) and footer (programme | page)."""

    def __init__(self, running_title: str, running_fabrique: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.running_title = running_title
        self.running_fabrique = running_fabrique

    def header(self) -> None:
        self.set_font("sans", "", 7.5)
        self.set_text_color(95, 95, 95)
        half = self.epw / 2
        self.set_xy(self.l_margin, 11)
        self.cell(half - 3, 4, _fit(self, self.running_title, half - 3), align="L")
        self.cell(half + 3, 4, _fit(self, self.running_fabrique, half + 3), align="R")
        self.set_draw_color(160, 160, 160)
        self.set_line_width(0.2)
        self.line(self.l_margin, 16, self.w - self.r_margin, 16)
        self.set_text_color(0, 0, 0)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        self.set_draw_color(160, 160, 160)
        self.set_line_width(0.2)
        self.line(self.l_margin, self.h - 15, self.w - self.r_margin, self.h - 15)
        self.set_y(-14)
        self.set_font("sans", "", 7.5)
        self.set_text_color(95, 95, 95)
        left = f"{FOOTER_LINE} — {self.running_fabrique}"
        self.cell(self.epw * 0.8, 4, _fit(self, left, self.epw * 0.8 - 2), align="L")
        self.cell(self.epw * 0.2, 4, f"page {self.page_no()} / {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _write_rich(pdf: FPDF, par: Any, text: str, hyph: Hyphenator, family: str = "serif") -> None:
    """Write `**bold**`-marked text into an fpdf2 paragraph, switching fonts per segment."""
    for segment, bold in split_bold(text):
        pdf.set_font(family, "B" if bold else "", BODY_PT)
        par.write(hyph(segment))
    pdf.set_font(family, "", BODY_PT)


def _render_flow(pdf: FPDF, blocks: list[Block], ncols: int, hyph: Hyphenator) -> None:
    """Render headings, paragraphs and lists as one fpdf2 text region (1 or 2 columns).

    Text regions handle page breaks themselves (calling header()/footer()), justify, and
    break at soft hyphens; two-column regions are balanced so a following full-width table
    starts below both columns.
    """
    if not blocks:
        return
    with pdf.text_columns(
        ncols=ncols,
        gutter=7,
        balance=ncols > 1,
        text_align="JUSTIFY",
        line_height=1.25,
        skip_leading_spaces=True,
    ) as cols:
        for b in blocks:
            if b.kind == "heading":
                pdf.set_font("sans", "B", HEADING_PT[b.level])
                top = {1: 0.0, 2: 4.0, 3: 2.5}[b.level]
                with cols.paragraph(
                    text_align="LEFT", top_margin=top, bottom_margin=2.0, line_height=1.15
                ) as par:
                    par.write(plain(b.text))
            elif b.kind == "notice":
                pdf.set_font("sans", "", NOTICE_PT)
                pdf.set_text_color(90, 90, 90)
                with cols.paragraph(text_align="LEFT", bottom_margin=4.0) as par:
                    par.write(b.text)
                pdf.set_text_color(0, 0, 0)
            elif b.kind == "para":
                with cols.paragraph(bottom_margin=2.2) as par:
                    _write_rich(pdf, par, b.text, hyph)
            elif b.kind == "list":
                for k, item in enumerate(b.items):
                    pdf.set_font("serif", "", BODY_PT)
                    last = k == len(b.items) - 1
                    with cols.paragraph(
                        indent=5,
                        bullet_string="•",
                        bullet_r_margin=2,
                        bottom_margin=2.2 if last else 0.8,
                    ) as par:
                        _write_rich(pdf, par, item, hyph)


def _col_widths(pdf: FPDF, rows: list[list[str]], total: float, pad: float) -> tuple[float, ...]:
    """Column widths (mm): at least the longest word of each column, the rest by content length.

    Without the floor fpdf2 cuts words letter by letter ("Calendri/er"), which no real table
    does and which would garble the extracted text for no benefit.
    """
    ncols = len(rows[0])
    floors, weights = [], []
    for j in range(ncols):
        widest = 0.0
        for i, row in enumerate(rows):
            pdf.set_font("sans", "B" if i == 0 else "", TABLE_PT)
            widest = max([widest, *(pdf.get_string_width(w) for w in plain(row[j]).split())])
        floors.append(widest + 2 * pad + 0.6)
        weights.append(max(sum(len(plain(r[j])) for r in rows) / len(rows), 4.0))
    pdf.set_font("sans", "", TABLE_PT)
    if sum(floors) >= total:  # cannot honour every floor: share proportionally to floors
        return tuple(total * f / sum(floors) for f in floors)
    widths = [0.0] * ncols
    free = list(range(ncols))
    room = total
    while True:  # give each column its share; pin those whose share is below their floor
        share = {j: room * weights[j] / sum(weights[k] for k in free) for j in free}
        pinned = [j for j in free if share[j] < floors[j]]
        if not pinned:
            for j in free:
                widths[j] = share[j]
            return tuple(widths)
        for j in pinned:
            widths[j] = floors[j]
            room -= floors[j]
            free.remove(j)


def _render_table(pdf: FPDF, rows: list[list[str]]) -> None:
    """A real fpdf2 table over the full text width; the heading row repeats after a page break."""
    pad = 1.4
    widths = _col_widths(pdf, rows, pdf.epw, pad)
    pdf.set_font("sans", "", TABLE_PT)
    pdf.set_x(pdf.l_margin)
    pdf.ln(1.5)
    with pdf.table(
        col_widths=widths,
        width=pdf.epw,
        text_align="LEFT",
        line_height=pdf.font_size * 1.35,
        padding=(1.0, pad),
        headings_style=FontFace(emphasis="BOLD", fill_color=(228, 232, 238)),
        first_row_as_headings=True,
        repeat_headings=1,
    ) as table:
        for row in rows:
            cells = table.row()
            for cell in row:
                cells.cell(plain(cell))
    pdf.ln(3.5)


def render_pdf(doc: SourceDoc, fab: Fabrique | None, ncols: int, hyph: Hyphenator, issues: Issues) -> bytes:
    """One document as an A4 PDF (one or two columns); glyphs missing from DejaVu are reported."""
    fonts = font_paths()
    fab_title = fab.title if fab else doc.folder
    pdf = CorpusPDF(running_title=doc.title, running_fabrique=fab_title)
    for (family, style), path in fonts.items():
        pdf.add_font(family, style, str(path))
    pdf.set_margins(MARGIN_X, MARGIN_TOP, MARGIN_X)
    pdf.set_auto_page_break(True, margin=MARGIN_BOTTOM)
    pdf.set_title(doc.title)
    pdf.set_subject(str(doc.meta.get("fabrique", doc.folder)))
    pdf.set_keywords(_keywords(doc))
    pdf.set_author(AUTHOR)
    pdf.set_creator("fp-assistant corpus/_build/build.py")
    pdf.set_producer("fpdf2")
    pdf.set_lang("fr-FR")
    pdf.set_creation_date(fixed_date(doc.year))
    pdf.alias_nb_pages()
    pdf.set_font("serif", "", BODY_PT)
    pdf.add_page()

    flow: list[Block] = []

    def flush() -> None:
        _render_flow(pdf, flow, ncols, hyph)
        flow.clear()

    for k, b in enumerate(doc.blocks):
        if b.kind == "pagebreak":
            flush()
            at_top = pdf.y <= pdf.t_margin + 0.5
            if not at_top and k < len(doc.blocks) - 1:
                pdf.add_page()
        elif b.kind == "table":
            flush()
            _render_table(pdf, b.rows)
        elif ncols > 1 and (b.kind == "notice" or (b.kind == "heading" and b.level == 1)):
            flush()  # title block spans both columns, as in a printed two-column report
            _render_flow(pdf, [b], 1, hyph)
        else:
            flow.append(b)
    flush()
    data = bytes(pdf.output())
    for font in pdf.fonts.values():
        missing = sorted(set(getattr(font, "missing_glyphs", []) or []))
        if missing:
            chars = " ".join(f"{chr(c)!r}(U+{c:04X})" for c in missing[:10])
            issues.warn(doc.path, f"caractères absents de la police {font.name} (rendus vides) : {chars}")
    return data


def _keywords(doc: SourceDoc) -> str:
    """Keywords property: fabrique, year, type and territories (searchable file metadata)."""
    parts = [
        str(doc.meta.get("fabrique", "")),
        str(doc.meta.get("year", "")),
        str(doc.meta.get("doc_type", "")),
    ]
    parts += [str(t) for t in doc.meta.get("territories") or []]
    return ", ".join(p for p in parts if p)


# =========================================================================== DOCX


def render_docx(doc: SourceDoc, fab: Fabrique | None) -> bytes:
    """One document as DOCX with real Heading/List Bullet styles and tables."""
    d = Document()
    section = d.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin = section.right_margin = Mm(22)
    d.styles["Normal"].font.size = Pt(11)
    section.header.paragraphs[0].text = doc.title
    section.footer.paragraphs[0].text = f"{FOOTER_LINE} — {fab.title if fab else doc.folder}"

    when = fixed_date(doc.year).replace(tzinfo=None)
    cp = d.core_properties
    cp.title = doc.title
    cp.subject = str(doc.meta.get("fabrique", doc.folder))
    cp.keywords = _keywords(doc)
    cp.category = str(doc.meta.get("doc_type", ""))
    cp.author = AUTHOR
    cp.last_modified_by = AUTHOR
    cp.comments = "Document d'illustration — contenu fictif"
    cp.identifier = doc.doc_id
    cp.language = "fr-FR"
    cp.revision = 1
    cp.created = when
    cp.modified = when
    cp.last_printed = when

    def rich(par: Any, text: str) -> None:
        for segment, bold in split_bold(text):
            par.add_run(segment).bold = bold or None

    for b in doc.blocks:
        if b.kind == "notice":
            d.add_paragraph().add_run(b.text).italic = True
        elif b.kind == "heading":
            d.add_heading(plain(b.text), level=b.level)
        elif b.kind == "para":
            rich(d.add_paragraph(), b.text)
        elif b.kind == "list":
            for item in b.items:
                rich(d.add_paragraph(style="List Bullet"), item)
        elif b.kind == "table":
            table = d.add_table(rows=len(b.rows), cols=len(b.rows[0]))
            table.style = "Table Grid"
            for i, row in enumerate(b.rows):
                for j, text in enumerate(row):
                    cell_par = table.cell(i, j).paragraphs[0]
                    run = cell_par.add_run(plain(text))
                    run.bold = True if i == 0 else None
        # pagebreak: PDF only (SOURCES.md)
    buf = io.BytesIO()
    d.save(buf)
    return normalize_zip(buf.getvalue(), when.timetuple()[:6])


def normalize_zip(data: bytes, date_time: tuple[int, ...]) -> bytes:
    """Re-zip with fixed timestamps/attributes and a stable entry order.

    python-docx stamps every zip entry with the current time, which alone makes two builds
    differ; `[Content_Types].xml` stays first as Office expects.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(src.namelist(), key=lambda n: (n != "[Content_Types].xml", n))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=date_time)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name), compresslevel=9)
    return out.getvalue()


# =========================================================================== HTML

_MENU = (
    ("/", "Accueil"),
    ("/fabriques/", "Les Fabriques"),
    ("/territoires/", "Territoires accompagnés"),
    ("/ressources/", "Ressources"),
    ("/methode/", "La méthode"),
    ("/actualites/", "Actualités"),
    ("/contact/", "Contact"),
)
_FOOTER_LINKS = (
    ("/mentions-legales/", "Mentions légales"),
    ("/accessibilite/", "Accessibilité : partiellement conforme"),
    ("/donnees-personnelles/", "Données personnelles"),
    ("/cookies/", "Gestion des cookies"),
    ("/plan-du-site/", "Plan du site"),
    ("/contact/", "Nous contacter"),
)
_SCRIPT = """\
(function () {
  var banner = document.getElementById("cookie-banner");
  function close(choice) {
    try { window.localStorage.setItem("fp-cookies", choice); } catch (e) {}
    banner.hidden = true;
  }
  if (window.localStorage && window.localStorage.getItem("fp-cookies")) { banner.hidden = true; }
  document.getElementById("cookie-accept").addEventListener("click", function () { close("ok"); });
  document.getElementById("cookie-refuse").addEventListener("click", function () { close("non"); });
  window.dataLayer = window.dataLayer || [];
  window.dataLayer.push({ event: "page_view", rubrique: "ressources" });
})();"""


def _slug(text: str) -> str:
    """URL slug of a label ("quartiers prioritaires" -> "quartiers-prioritaires")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _inline_html(text: str) -> str:
    """Escape text and turn `**x**` into <strong>."""
    return "".join(
        f"<strong>{html.escape(s, quote=False)}</strong>" if bold else html.escape(s, quote=False)
        for s, bold in split_bold(text)
    )


def render_html(doc: SourceDoc, fab: Fabrique | None, siblings: list[SourceDoc]) -> bytes:
    """One document inside a fictional resource-centre page (menus, banner, sidebar, footer).

    Everything outside <article> is deliberate noise that the HTML loader must drop.
    """
    e = html.escape
    fab_id = doc.folder
    fab_title = fab.title if fab else fab_id
    meta = doc.meta
    first_para = next((plain(b.text) for b in doc.blocks if b.kind == "para"), doc.title)
    description = first_para if len(first_para) <= 200 else first_para[:197].rsplit(" ", 1)[0] + "…"
    metas = {
        "description": description,
        "keywords": _keywords(doc),
        "author": AUTHOR,
        "doc_id": doc.doc_id,
        "doc_type": str(meta.get("doc_type", "")),
        "fabrique": fab_id,
        "fabrique_title": fab_title,
        "year": str(meta.get("year", "")),
        "territories": "; ".join(meta.get("territories") or []),
        "partners": "; ".join(meta.get("partners") or []),
        "visibility": str(meta.get("visibility", "")),
    }
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="fr">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(doc.title)}</title>",
    ]
    out += [f'<meta name="{k}" content="{e(v)}">' for k, v in metas.items()]
    out += [
        f'<meta property="og:title" content="{e(doc.title)}">',
        f'<meta property="og:site_name" content="{e(SITE_NAME)}">',
        '<link rel="stylesheet" href="/static/css/centre-ressources.css">',
        "</head>",
        "<body>",
        '<a class="lien-evitement" href="#contenu">Aller au contenu</a>',
        '<div id="cookie-banner" class="bandeau-cookies" role="dialog" aria-label="Gestion des cookies">',
        "  <p>Ce site utilise des cookies de mesure d'audience pour améliorer votre navigation. "
        "Vous pouvez accepter, refuser ou personnaliser ces traceurs.</p>",
        '  <button type="button" id="cookie-accept">Tout accepter</button>',
        '  <button type="button" id="cookie-refuse">Tout refuser</button>',
        '  <a href="/cookies/">Personnaliser</a>',
        "</div>",
        '<header class="entete-site">',
        f'  <div class="logo"><a href="/">{e(SITE_NAME)}</a>',
        '    <span class="signature">Agence nationale de la cohésion des territoires'
        " — site d'illustration</span></div>",
        '  <form class="recherche" role="search" action="/recherche/">',
        '    <label for="q">Rechercher</label> <input id="q" name="q" type="search">',
        '    <button type="submit">OK</button></form>',
        '  <nav class="menu-principal" aria-label="Menu principal">',
        "    <ul>",
    ]
    out += [f'      <li><a href="{href}">{e(label)}</a></li>' for href, label in _MENU]
    out += [
        "    </ul>",
        "  </nav>",
        "</header>",
        '<nav class="fil-ariane" aria-label="Fil d\'Ariane">',
        "  <ol>",
        '    <li><a href="/">Accueil</a></li>',
        '    <li><a href="/fabriques/">Les Fabriques</a></li>',
        f'    <li><a href="/fabriques/{e(fab_id)}/">{e(fab_title)}</a></li>',
        f'    <li aria-current="page">{e(doc.title)}</li>',
        "  </ol>",
        "</nav>",
        '<div class="mise-en-page">',
        '<main id="contenu">',
        f'<p class="infos-publication">Publié en {e(str(meta.get("year", "")))} · '
        f"Rubrique : {e(str(meta.get('doc_type', '')).replace('_', ' '))}</p>",
        '<article class="ressource">',
    ]
    out += _article_body(doc.blocks)
    out += [
        "</article>",
        '<div class="partage">Partager : <a href="#">LinkedIn</a> · <a href="#">Courriel</a> · '
        '<a href="#" onclick="window.print()">Imprimer</a></div>',
        "</main>",
        '<aside class="barre-laterale">',
        "  <h2>Articles liés</h2>",
        "  <ul>",
    ]
    related = [s for s in siblings if s.doc_id != doc.doc_id][:5]
    out += [
        f'    <li><a href="/ressources/{e(s.folder)}/{e(s.doc_id)}/">{e(s.title)}</a></li>' for s in related
    ] or ['    <li><a href="/ressources/">Toutes les ressources</a></li>']
    out += ["  </ul>", "  <h2>Thématiques</h2>", '  <ul class="etiquettes">']
    out += [f'    <li><a href="/themes/{_slug(k)}/">{e(k)}</a></li>' for k in (fab.keywords if fab else [])]
    out += [
        "  </ul>",
        '  <div class="encart-lettre">Recevez la lettre d\'information du centre de ressources. '
        '<a href="/lettre/">S\'abonner</a></div>',
        "</aside>",
        "</div>",
        '<footer class="pied-de-page">',
        "  <ul>",
    ]
    out += [f'    <li><a href="{href}">{e(label)}</a></li>' for href, label in _FOOTER_LINKS]
    out += [
        "  </ul>",
        f"  <p>© {e(str(meta.get('year', '')))} {e(SITE_NAME)} — site fictif d'illustration. "
        "Sauf mention contraire, contenus sous Licence Ouverte 2.0.</p>",
        "</footer>",
        "<script>",
        _SCRIPT,
        "</script>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out).encode("utf-8")


def _article_body(blocks: list[Block]) -> list[str]:
    """The document itself as h1/h2/h3, p, ul and table elements."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "notice":
            out.append(f'<p class="avertissement">{html.escape(b.text, quote=False)}</p>')
        elif b.kind == "heading":
            out.append(f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>")
        elif b.kind == "para":
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "list":
            out.append("<ul>")
            out += [f"  <li>{_inline_html(i)}</li>" for i in b.items]
            out.append("</ul>")
        elif b.kind == "table":
            out.append("<table>")
            out.append(
                "  <thead><tr>" + "".join(f"<th>{_inline_html(c)}</th>" for c in b.rows[0]) + "</tr></thead>"
            )
            out.append("  <tbody>")
            for row in b.rows[1:]:
                out.append("    <tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>")
            out.append("  </tbody>")
            out.append("</table>")
    return out


# =========================================================================== build


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomic write, skipped when the bytes are identical (keeps mtimes and git quiet)."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def render(
    doc: SourceDoc, fab: Fabrique | None, siblings: list[SourceDoc], hyph: Hyphenator, issues: Issues
) -> bytes:
    """Dispatch on the front-matter format."""
    if doc.fmt == "pdf":
        return render_pdf(doc, fab, 1, hyph, issues)
    if doc.fmt == "pdf2col":
        return render_pdf(doc, fab, 2, hyph, issues)
    if doc.fmt == "docx":
        return render_docx(doc, fab)
    if doc.fmt == "html":
        return render_html(doc, fab, siblings)
    if doc.fmt == "md":
        return doc.raw
    raise ValueError(f"format inconnu {doc.fmt!r}")


def pdf_page_count(path: Path) -> int:
    """Pages of a rendered PDF (read back, so `--only` builds still know untouched files)."""
    return len(PdfReader(path).pages)


def build_manifest(
    fabriques: dict[str, Fabrique], docs: list[SourceDoc], out: Path
) -> tuple[str, dict[str, int]]:
    """manifest.yaml text (sorted by fabrique then doc_id) and the page count per doc_id."""
    pages: dict[str, int] = {}
    entries = []
    for doc in sorted(docs, key=lambda d: (d.folder, d.doc_id)):
        if doc.fmt not in FORMATS:
            continue  # no output to point at; the invalid format is reported as an error
        target = out / doc.rel_output()
        if doc.fmt in ("pdf", "pdf2col"):
            n = pdf_page_count(target) if target.is_file() else 0
        else:
            n = 1 if target.is_file() else 0
        pages[doc.doc_id] = n
        m = doc.meta
        entries.append(
            {
                "doc_id": doc.doc_id,
                "path": doc.rel_output(),
                "title": doc.title,
                "doc_type": m.get("doc_type"),
                "fabrique": m.get("fabrique", doc.folder),
                "year": m.get("year"),
                "territories": list(m.get("territories") or []),
                "partners": list(m.get("partners") or []),
                "visibility": m.get("visibility"),
                "format": doc.fmt,
                "pages": n,
            }
        )
    data = {
        "fabriques": [fabriques[k].manifest_entry() for k in sorted(fabriques)],
        "documents": entries,
    }
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100)
    header = (
        "# Généré par corpus/_build/build.py à partir de corpus/_sources/ — ne pas éditer.\n"
        "# Generated by corpus/_build/build.py from corpus/_sources/ — do not edit.\n"
    )
    return header + text, pages


def expected_outputs(docs: list[SourceDoc]) -> set[str]:
    """Relative paths the current sources produce (anything else in a fabrique dir is stale)."""
    return {d.rel_output() for d in docs if d.fmt in FORMATS}


def find_orphans(out: Path, docs: list[SourceDoc]) -> list[Path]:
    """Rendered-looking files in corpus/<fabrique>/ that no source produces any more.

    They appear when a source is renamed or changes format; left alone they would be
    ingested as extra documents missing from the manifest.
    """
    wanted = expected_outputs(docs)
    orphans = []
    if not out.is_dir():
        return orphans
    for sub in sorted(out.iterdir()):
        if not sub.is_dir() or sub.name.startswith(("_", ".")):
            continue
        for f in sorted(sub.iterdir()):
            if f.suffix.lstrip(".") in set(EXTENSIONS.values()) and f"{sub.name}/{f.name}" not in wanted:
                orphans.append(f)
    return orphans


@dataclass
class BuildResult:
    """What a run produced, for the summary and the exit code."""

    fabriques: dict[str, Fabrique]
    docs: list[SourceDoc]
    pages: dict[str, int]
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def build(src: Path, out: Path, only: str | None, prune: bool, issues: Issues) -> BuildResult:
    """Load, validate, render and write the manifest."""
    fabriques, docs = load_sources(src, issues)
    validate_documents(fabriques, docs, issues)
    if only is not None and only not in {d.folder for d in docs} | set(fabriques):
        raise SystemExit(f"--only {only!r} : fabrique inconnue dans {src}")
    hyph = Hyphenator()
    result = BuildResult(fabriques, docs, {})
    by_folder: dict[str, list[SourceDoc]] = {}
    for d in docs:
        by_folder.setdefault(d.folder, []).append(d)
    outputs = Counter(d.rel_output() for d in docs)
    for doc in docs:
        if doc.fmt not in FORMATS:
            continue  # reported by validate_documents
        target = out / doc.rel_output()
        if outputs[doc.rel_output()] > 1:
            issues.error(doc.path, f"sortie {doc.rel_output()} produite par plusieurs sources")
            continue
        if only is not None and doc.folder != only and target.is_file():
            continue
        siblings = sorted(by_folder[doc.folder], key=lambda s: s.doc_id)
        try:
            data = render(doc, fabriques.get(doc.folder), siblings, hyph, issues)
        except Exception as exc:  # noqa: BLE001 - report every broken document, keep going
            issues.error(doc.path, f"rendu {doc.fmt} impossible : {type(exc).__name__}: {exc}")
            continue
        (result.written if write_if_changed(target, data) else result.unchanged).append(doc.rel_output())
    for orphan in find_orphans(out, docs):
        if prune:
            orphan.unlink()
            print(f"supprimé / pruned: {orphan}")
        else:
            issues.error(
                orphan, "fichier rendu orphelin (aucune source ne le produit) : relancer avec --prune"
            )
    manifest, result.pages = build_manifest(fabriques, docs, out)
    write_if_changed(out / "manifest.yaml", manifest.encode("utf-8"))
    return result


# =========================================================================== extraction


class _ArticleText(HTMLParser):
    """Visible text of <article> (what an HTML loader should keep), one block per line."""

    _BLOCKS = {"p", "h1", "h2", "h3", "h4", "li", "tr", "table", "ul", "ol", "div", "br"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.skip = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self.depth += 1
        elif tag in ("script", "style"):
            self.skip += 1
        elif self.depth and tag in self._BLOCKS:
            self.parts.append("\n")
        elif self.depth and tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.depth -= 1
        elif tag in ("script", "style"):
            self.skip -= 1
        elif self.depth and tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skip:
            self.parts.append(data)


def extract_pages(path: Path, fmt: str) -> list[str]:
    """Text of a rendered file, per page (a non-PDF file is one page), as a loader would see it."""
    if fmt in ("pdf", "pdf2col"):
        return [page.extract_text() or "" for page in PdfReader(path).pages]
    if fmt == "docx":
        lines = []
        for item in Document(str(path)).iter_inner_content():
            if isinstance(item, Table):
                lines += [" | ".join(c.text for c in row.cells) for row in item.rows]
            else:
                lines.append(item.text)
        return ["\n".join(lines)]
    if fmt == "html":
        parser = _ArticleText()
        parser.feed(path.read_text(encoding="utf-8"))
        return [re.sub(r"\n\s*\n+", "\n", "".join(parser.parts)).strip()]
    if fmt == "md":
        text = path.read_text(encoding="utf-8")
        body = text.split("\n---", 1)[1].split("\n", 1)[1] if text.startswith("---") else text
        body = re.sub(r"^#{1,6}\s+", "", body, flags=re.M)
        return [plain(body)]
    raise ValueError(fmt)


_EOL_HYPHEN = re.compile(r"-[ \t]*\r?\n[ \t]*")


def normalize(text: str) -> str:
    """Case-folded, whitespace-collapsed text (NFC; soft hyphens dropped)."""
    text = unicodedata.normalize("NFC", text).replace(SOFT_HYPHEN, "")
    return re.sub(r"\s+", " ", text).strip().casefold()


def searchable(text: str) -> tuple[str, str]:
    """Two normalised readings of extracted text: hyphenated line ends joined, and kept.

    Joining is right for "vieillis-\\nsement" but wrong for a compound split at its own
    hyphen ("Saint-\\nNazaire"); a term matches if it is in either reading.
    """
    return normalize(_EOL_HYPHEN.sub("", text)), normalize(_EOL_HYPHEN.sub("-", text))


# Apostrophes, quotes, dashes and narrow/non-breaking spaces folded to ASCII look-alikes.
_TYPO = str.maketrans("’‘ʼ«»“”–—\u202f\xa0", '\'\'\'""""--  ')


def _loose(text: str) -> str:
    """Typography-insensitive form, only used to suggest why a term did not match."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPO)
    return re.sub(r'\s*"\s*', '"', re.sub(r"\s+", " ", text))


# =========================================================================== check


@dataclass
class Extracted:
    """Extracted text of one rendered document, raw per page and searchable."""

    pages: list[str]
    full: tuple[str, str]
    page_search: list[tuple[str, str]]

    def contains(self, term: str) -> bool:
        """Whether the normalised term occurs anywhere in the document."""
        t = normalize(term)
        return any(t in s for s in self.full)

    def pages_with(self, term: str) -> list[int]:
        """1-based pages containing the term."""
        t = normalize(term)
        return [k + 1 for k, s in enumerate(self.page_search) if any(t in v for v in s)]


def extract_all(docs: list[SourceDoc], out: Path, issues: Issues) -> dict[str, Extracted]:
    """Extract every rendered document once (the gold checks query them repeatedly)."""
    texts: dict[str, Extracted] = {}
    for doc in docs:
        target = out / doc.rel_output()
        if doc.fmt not in FORMATS:
            continue
        if not target.is_file():
            issues.error(target, "sortie manquante (rendu échoué ?)")
            continue
        try:
            pages = extract_pages(target, doc.fmt)
        except Exception as exc:  # noqa: BLE001 - a file we cannot read back is a finding
            issues.error(target, f"extraction impossible : {type(exc).__name__}: {exc}")
            continue
        texts[doc.doc_id] = Extracted(pages, searchable("\n".join(pages)), [searchable(p) for p in pages])
    return texts


def check_gold(
    gold_dir: Path,
    fabriques: dict[str, Fabrique],
    docs: list[SourceDoc],
    texts: dict[str, Extracted],
    issues: Issues,
) -> Counter[str]:
    """Validate tests/gold/*.yaml against the sources and the rendered text."""
    kinds: Counter[str] = Counter()
    if not gold_dir.is_dir():
        issues.warn(gold_dir, "dossier des questions gold absent : rien à vérifier")
        return kinds
    by_id = {d.doc_id: d for d in docs}
    seen: dict[str, str] = {}
    for path in sorted(gold_dir.glob("*.yaml")):
        if path.stem not in fabriques and path.name != "questions.yaml":
            issues.warn(path, "le nom du fichier ne correspond à aucune fabrique")
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            issues.error(path, f"YAML illisible : {' '.join(str(exc).split())}")
            continue
        if entries is None:
            issues.warn(path, "fichier vide")
            continue
        if not isinstance(entries, list):
            issues.error(path, "le fichier doit contenir une liste YAML de questions")
            continue
        for k, q in enumerate(entries):
            if not isinstance(q, dict):
                issues.error(path, f"entrée n°{k + 1} : pas un dictionnaire")
                continue
            qid = q.get("id")
            where = f"{path} [{qid or f'entrée n°{k + 1}'}]"
            if not isinstance(qid, str) or not qid:
                issues.error(where, "id manquant")
            elif qid in seen:
                issues.error(where, f"id en double (déjà dans {seen[qid]})")
            else:
                seen[qid] = str(path)
            kinds[str(q.get("kind"))] += 1
            _check_question(q, where, fabriques, by_id, texts, issues)
    return kinds


def _check_question(
    q: dict[str, Any],
    where: str,
    fabriques: dict[str, Fabrique],
    by_id: dict[str, SourceDoc],
    texts: dict[str, Extracted],
    issues: Issues,
) -> None:
    """Schema, source ids, terms, page and filters of one gold question."""
    unknown = sorted(
        set(q) - {"id", "question", "kind", "expect_sources", "expect_terms", "expect_page", "filters"}
    )
    if unknown:
        issues.warn(where, f"champs inattendus {unknown}")
    if not isinstance(q.get("question"), str) or not q["question"].strip():
        issues.error(where, "question manquante ou vide")
    kind = q.get("kind")
    if kind not in GOLD_KINDS:
        issues.error(where, f"kind {kind!r} invalide (attendu : {' | '.join(GOLD_KINDS)})")
    sources, terms = q.get("expect_sources"), q.get("expect_terms")
    if not (isinstance(sources, list) and all(isinstance(s, str) for s in sources)):
        issues.error(where, "expect_sources doit être une liste de doc_id")
        sources = []
    if not (isinstance(terms, list) and all(isinstance(t, str) for t in terms)):
        issues.error(where, "expect_terms doit être une liste de chaînes")
        terms = []
    if kind == "hors_corpus":
        if sources or terms:
            issues.error(where, "hors_corpus : expect_sources et expect_terms doivent être []")
        return
    if not sources:
        issues.error(where, "expect_sources vide (seules les questions hors_corpus n'ont pas de source)")
    if not terms:
        issues.warn(where, "expect_terms vide : rien ne vérifie la réponse")
    missing = [s for s in sources if s not in by_id]
    for s in missing:
        issues.error(where, f"expect_sources : doc_id {s!r} inexistant")
    known = [s for s in sources if s in texts]
    if known:
        for term in terms:
            if not any(texts[s].contains(term) for s in known):
                issues.error(
                    where,
                    f"terme {term!r} absent du texte extrait de {known}{_term_hint(term, known, texts)}",
                )
    page = q.get("expect_page")
    if page is not None:
        _check_page(page, terms, known, where, by_id, texts, issues)
    elif kind == "page":
        issues.warn(where, "kind page sans expect_page")
    filters = q.get("filters")
    if filters is not None:
        _check_filters(filters, sources, where, fabriques, by_id, issues)


def _term_hint(term: str, known: list[str], texts: dict[str, Extracted]) -> str:
    """Explain a missing term: typography mismatch, or the documents where it does occur."""
    loose_term = _loose(normalize(term))
    for s in known:
        if any(loose_term in _loose(v) for v in texts[s].full):
            return f" — présent à la typographie près (apostrophe/guillemets/tiret/espace) dans {s}"
    elsewhere = sorted(d for d, t in texts.items() if t.contains(term))
    if elsewhere:
        shown = ", ".join(elsewhere[:6]) + (" …" if len(elsewhere) > 6 else "")
        return f" — mais présent dans : {shown}"
    return " — introuvable dans tout le corpus"


def _check_page(
    page: Any,
    terms: list[str],
    known: list[str],
    where: str,
    by_id: dict[str, SourceDoc],
    texts: dict[str, Extracted],
    issues: Issues,
) -> None:
    """expect_page must be a page of an expected PDF source where every term occurs."""
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        issues.error(where, f"expect_page {page!r} doit être un entier ≥ 1")
        return
    pdfs = [s for s in known if by_id[s].fmt in ("pdf", "pdf2col")]
    if not pdfs:
        issues.error(where, f"expect_page donné mais aucune source attendue n'est un PDF ({known})")
        return
    for term in terms:
        if any(page in texts[s].pages_with(term) for s in pdfs):
            continue
        found = {s: texts[s].pages_with(term) for s in pdfs}
        sizes = {s: len(texts[s].pages) for s in pdfs}
        issues.error(
            where,
            f"expect_page {page} : terme {term!r} absent de cette page ; pages où il figure : "
            + ", ".join(f"{s} → {found[s] or 'aucune'} (sur {sizes[s]})" for s in pdfs),
        )


def _check_filters(
    filters: Any,
    sources: list[str],
    where: str,
    fabriques: dict[str, Fabrique],
    by_id: dict[str, SourceDoc],
    issues: Issues,
) -> None:
    """Filter values must exist and must not exclude the expected sources."""
    if not isinstance(filters, dict):
        issues.error(where, "filters doit être un dictionnaire")
        return
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        issues.error(where, f"filters : clés inconnues {unknown} (attendu : {', '.join(FILTER_KEYS)})")
    fab = filters.get("fabrique")
    if fab is not None and fab not in fabriques:
        issues.error(where, f"filters.fabrique {fab!r} inconnue")
    year = filters.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
        issues.error(where, f"filters.year {year!r} doit être un entier")
    dtype = filters.get("type")
    if dtype is not None and dtype not in DOC_TYPES:
        issues.error(where, f"filters.type {dtype!r} invalide")
    terr = filters.get("territory")
    if terr is not None:
        pool = [fabriques[fab]] if fab in fabriques else list(fabriques.values())
        if not any(terr == t.name for f in pool for t in f.territories):
            issues.error(where, f"filters.territory {terr!r} n'est le nom canonique d'aucun territoire")
    for s in sources:
        doc = by_id.get(s)
        if doc is None:
            continue
        m = doc.meta
        if fab is not None and m.get("fabrique") != fab:
            issues.error(where, f"filters.fabrique={fab} exclut la source {s} (fabrique {m.get('fabrique')})")
        if year is not None and m.get("year") != year:
            issues.error(where, f"filters.year={year} exclut la source {s} (year {m.get('year')})")
        if dtype is not None and m.get("doc_type") != dtype:
            issues.error(where, f"filters.type={dtype} exclut la source {s} (doc_type {m.get('doc_type')})")
        if terr is not None and terr not in (m.get("territories") or []):
            msg = f"filters.territory={terr} exclut la source {s} (territories {m.get('territories')})"
            (issues.warn if not m.get("territories") else issues.error)(where, msg)


def check_pdf_pages(docs: list[SourceDoc], texts: dict[str, Extracted], issues: Issues) -> None:
    """Warn when text after a page break does not start on the page the author counted.

    Authors place `<!-- pagebreak -->` to know the page of each fact (expect_page). If a
    section overflows onto an extra page, every later section shifts; an overflow of the
    last section shifts nothing and is not reported.
    """
    for doc in docs:
        if doc.fmt not in ("pdf", "pdf2col") or doc.doc_id not in texts:
            continue
        ext = texts[doc.doc_id]
        segment = 0
        for k, b in enumerate(doc.blocks):
            if b.kind == "pagebreak":
                segment += 1
                continue
            if segment == 0 or doc.blocks[k - 1].kind != "pagebreak":
                continue
            key = " ".join(_block_text(b).split()[:6])
            found = ext.pages_with(key) if key else []
            if found and segment + 1 not in found:
                issues.warn(
                    f"{doc.path}:{b.line}",
                    f"après le saut de page n°{segment}, {key[:40]!r} est en page {found[0]} et non "
                    f"{segment + 1} (une section précédente déborde : les pages suivantes sont décalées)",
                )
                break


def _block_text(b: Block) -> str:
    """Plain text a block starts with (to locate it in the extracted pages)."""
    if b.kind == "list":
        return plain(b.items[0]) if b.items else ""
    if b.kind == "table":
        return plain(b.rows[0][0]) if b.rows else ""
    return plain(b.text)


# =========================================================================== summary


def summarize(result: BuildResult, texts: dict[str, Extracted], kinds: Counter[str]) -> list[str]:
    """Bilingual summary of the corpus (counts, pages, formats, hyphenation, gold)."""
    docs = [d for d in result.docs if d.fmt in FORMATS]
    pdfs = [d for d in docs if d.fmt in ("pdf", "pdf2col")]
    pdf_pages = sum(result.pages.get(d.doc_id, 0) for d in pdfs)
    other = len(docs) - len(pdfs)
    lines = [
        "== Vérification du corpus / corpus check ==",
        f"Fabriques : {len(result.fabriques)}",
        f"Documents : {len(docs)}",
        f"Pages PDF / PDF pages : {pdf_pages}",
        f"Pages totales / total pages (DOCX, HTML, MD = 1 chacun / each) : {pdf_pages + other}",
    ]
    share = 100.0 * len(pdfs) / len(docs) if docs else 0.0
    fmts = Counter(d.fmt for d in docs)
    lines.append(
        f"Part PDF (pdf + pdf2col) / PDF share : {len(pdfs)}/{len(docs)} = {share:.0f} % — formats : "
        + ", ".join(f"{f} {fmts[f]}" for f in FORMATS if fmts[f])
    )
    for fmt in ("pdf", "pdf2col"):
        chars = [len(p) for d in pdfs if d.fmt == fmt and d.doc_id in texts for p in texts[d.doc_id].pages]
        if chars:
            lines.append(
                f"Caractères par page / chars per page ({fmt}) : moyenne {sum(chars) // len(chars)}, "
                f"max {max(chars)} ({len(chars)} pages)"
            )
    breaks = 0
    hyph_docs = 0
    for d in pdfs:
        if d.doc_id not in texts:
            continue
        n = len(re.findall(r"[^\W\d_]-\n[^\W\d_]", "\n".join(texts[d.doc_id].pages)))
        breaks += n
        hyph_docs += n > 0
    lines.append(
        f"Césures en fin de ligne / hyphenated line ends : {breaks} dans / in {hyph_docs}/{len(pdfs)} PDF"
    )
    lines.append("Par fabrique / per fabrique :")
    folders = sorted({d.folder for d in docs} | set(result.fabriques))
    for folder in folders:
        fdocs = [d for d in docs if d.folder == folder]
        types = Counter(str(d.meta.get("doc_type")) for d in fdocs)
        ffmts = Counter(d.fmt for d in fdocs)
        pages = sum(result.pages.get(d.doc_id, 0) for d in fdocs)
        lines.append(f"  {folder} : {len(fdocs)} documents, {pages} pages")
        lines.append("      types : " + (", ".join(f"{t} {types[t]}" for t in sorted(types)) or "—"))
        lines.append("      formats : " + (", ".join(f"{f} {ffmts[f]}" for f in FORMATS if ffmts[f]) or "—"))
    if kinds:
        lines.append(
            f"Questions gold / gold questions : {sum(kinds.values())} — "
            + ", ".join(f"{k} {kinds[k]}" for k in sorted(kinds))
        )
    return lines


# =========================================================================== CLI


def _rel(path: Path) -> Path:
    """Shorter paths in messages when run from the repo root."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (paths default to the repository layout)."""
    p = argparse.ArgumentParser(
        description="Rend corpus/_sources en PDF/DOCX/HTML/MD et écrit corpus/manifest.yaml."
    )
    p.add_argument(
        "--only",
        metavar="FABRIQUE_ID",
        help="ne rendre que cette fabrique (les autres seulement si leur sortie manque)",
    )
    p.add_argument(
        "--check", action="store_true", help="valider le corpus et les questions gold après le build"
    )
    p.add_argument(
        "--prune", action="store_true", help="supprimer les fichiers rendus qu'aucune source ne produit plus"
    )
    env = os.environ.get
    p.add_argument(
        "--src",
        type=Path,
        default=Path(env("FP_CORPUS_SRC", ROOT / "corpus" / "_sources")),
        help="dossier des sources Markdown (env FP_CORPUS_SRC ; défaut corpus/_sources)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(env("FP_CORPUS_OUT", ROOT / "corpus")),
        help="dossier de sortie, reçoit aussi manifest.yaml (env FP_CORPUS_OUT ; défaut corpus)",
    )
    p.add_argument(
        "--gold",
        type=Path,
        default=Path(env("FP_GOLD_DIR", ROOT / "tests" / "gold")),
        help="questions gold vérifiées par --check (env FP_GOLD_DIR ; défaut tests/gold)",
    )
    p.add_argument(
        "--facts", type=Path, help="fp_facts.yaml : vérifier id et année des fabriques (optionnel)"
    )
    return p.parse_args(argv)


def check_facts(facts_path: Path, fabriques: dict[str, Fabrique], issues: Issues) -> None:
    """Optional cross-check of `_fabrique.yaml` ids/years against the public facts file.

    Partners and prestataire are not compared: the facts file paraphrases them in English.
    """
    data = yaml.safe_load(facts_path.read_text(encoding="utf-8")) or {}
    facts = {f.get("id"): f for f in data.get("fabriques", []) if isinstance(f, dict)}
    for fid, fab in sorted(fabriques.items()):
        fact = facts.get(fid)
        if fact is None:
            issues.error(fab.path, f"id {fid!r} absent de {facts_path}")
        elif fact.get("year") != fab.year:
            issues.error(fab.path, f"year {fab.year} ≠ {fact.get('year')} dans {facts_path}")


def _print_list(title: str, items: list[str]) -> None:
    """Print one numbered section of problems (nothing when empty)."""
    if items:
        print(f"\n{title} ({len(items)}) :")
        for item in items:
            print(f"  - {item}")


def main(argv: list[str] | None = None) -> int:
    """Build, optionally check, print problems; exit 1 on any error."""
    args = parse_args(argv)
    src, out, gold = _rel(args.src), _rel(args.out), _rel(args.gold)
    issues = Issues()
    result = build(src, out, args.only, args.prune, issues)
    print(
        f"build : {len(result.written)} fichier(s) écrit(s) / written, "
        f"{len(result.unchanged)} inchangé(s) / unchanged, manifest : {out / 'manifest.yaml'}"
    )
    summary: list[str] = []
    if args.check:
        if args.facts:
            check_facts(args.facts, result.fabriques, issues)
        texts = extract_all(result.docs, out, issues)
        check_pdf_pages(result.docs, texts, issues)
        kinds = check_gold(gold, result.fabriques, result.docs, texts, issues)
        summary = summarize(result, texts, kinds)
    _print_list("AVERTISSEMENTS / WARNINGS", issues.warnings)
    _print_list("ERREURS / ERRORS", issues.errors)
    if summary:
        print("\n" + "\n".join(summary))
    status = "ÉCHEC / FAILED" if issues.errors else "OK"
    print(
        f"\n{status} : {len(issues.errors)} erreur(s) / error(s), "
        f"{len(issues.warnings)} avertissement(s) / warning(s)"
    )
    return 1 if issues.errors else 0


if __name__ == "__main__":
    sys.exit(main())
