"""Write a drafted feuille de route as Markdown or as a Word document (python-docx).

Prestataires and ANCT teams edit roadmaps in Word, so the DOCX is the deliverable: a title
page saying plainly that this is a generated draft to be reviewed, one heading per section,
the action programme as a real Word table (header row repeated on each page), and the
numbered sources with page and excerpt so every [n] of the text can be checked on paper.
Markdown carries the same content for the terminal, the app and version control.
"""

from __future__ import annotations

from pathlib import Path

from assistant.drafting.draft import ACTION_HEADERS, ActionRow, DraftSection, Roadmap, SourceRef

DRAFT_NOTICE = "Projet de feuille de route — généré par fp-assistant, à relire"
READING_NOTE = (
    "Chaque phrase et chaque action renvoient à leur source [n] (liste en fin de document, avec "
    "l'extrait cité) ; « à compléter » signale ce que le corpus ne dit pas ; « Pistes inspirées "
    "de … » signale des idées venant d'autres territoires, à adapter."
)


def _date_fr(iso: str) -> str:
    months = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
              "octobre", "novembre", "décembre")
    try:
        y, m, d = (int(x) for x in iso.split("-"))
        return f"{d} {months[m - 1]} {y}"
    except (ValueError, IndexError):
        return iso


def _own_theme(roadmap: Roadmap) -> bool:
    """Was a theme asked for (by default it is the fabrique's title, already shown)?"""
    return bool(roadmap.theme) and roadmap.theme != roadmap.fabrique_title


def _where(s: SourceRef) -> str:
    """The territory of a local document; nothing for fabrique-wide ones (their title says it)."""
    return s.territories[0] if len(s.territories) == 1 else ""


def _ocr(s: SourceRef) -> str:
    """A scanned page read by OCR says so: its quoted words may be misread."""
    return " (texte reconnu par OCR)" if s.ocr else ""


def _source_line(s: SourceRef) -> str:
    """« [3] Titre, p. 2 — fichier — « extrait » » (the same in both formats)."""
    where = _where(s)
    meta = f" ({where})" if where else ""
    return f"[{s.n}] {s.title}{meta}, p. {s.page}{_ocr(s)} — {s.source} — « {s.excerpt} »"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _md_table(actions: list[ActionRow]) -> list[str]:
    out = ["| " + " | ".join(ACTION_HEADERS) + " |", "|" + "---|" * len(ACTION_HEADERS)]
    out += ["| " + " | ".join(_md_cell(c) for c in a.cells()) + " |" for a in actions]
    return out


def to_markdown(roadmap: Roadmap) -> str:
    """The draft as Markdown: title block, one `##` per section, the action table, sources."""
    lines = [
        f"# Feuille de route — {roadmap.territory}",
        "",
        f"*{DRAFT_NOTICE}.*",
        "",
        f"- Territoire : {roadmap.territory}",
        f"- Fabrique : {roadmap.fabrique_title or roadmap.fabrique or 'à compléter'}",
        *([f"- Thème : {roadmap.theme}"] if _own_theme(roadmap) else []),
        f"- Date : {_date_fr(roadmap.created)}",
        "",
        f"> {READING_NOTE}",
        "",
    ]
    for section in roadmap.sections:
        lines += [f"## {section.title}", ""]
        if section.id == "sources":
            if roadmap.sources:
                lines += [f"{_source_line(s)}  " for s in roadmap.sources]
            else:
                lines.append(section.text)
            lines.append("")
            continue
        if section.text:
            lines += [section.text, ""]
        if section.id == "actions" and roadmap.actions:
            lines += [*_md_table(roadmap.actions), ""]
    return "\n".join(lines).rstrip() + "\n"


def _repeat_header(row: object) -> None:
    """Mark a table row as a header repeated at the top of each page (w:tblHeader)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tr_pr = row._tr.get_or_add_trPr()  # type: ignore[attr-defined]
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


def _add_section(doc: object, section: DraftSection) -> None:
    for para in section.text.split("\n\n"):
        if para.strip():
            doc.add_paragraph(para.strip())  # type: ignore[attr-defined]


def to_docx(roadmap: Roadmap, path: str | Path) -> Path:
    """Write the draft as a .docx: title page, headings, action table, numbered sources."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
    from docx.shared import Cm, Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(10.5)
    doc.core_properties.title = f"Feuille de route — {roadmap.territory}"
    doc.core_properties.subject = roadmap.fabrique_title or roadmap.fabrique
    doc.core_properties.author = "fp-assistant"
    doc.core_properties.comments = DRAFT_NOTICE

    # title page
    for _ in range(6):
        doc.add_paragraph()
    title = doc.add_heading(f"Feuille de route — {roadmap.territory}", level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    lines = [(f"Territoire : {roadmap.territory}", False),
             (f"Fabrique Prospective : {roadmap.fabrique_title or roadmap.fabrique or 'à compléter'}", False)]
    if _own_theme(roadmap):
        lines.append((f"Thème : {roadmap.theme}", False))
    lines += [(f"Date : {_date_fr(roadmap.created)}", False), (DRAFT_NOTICE, True)]
    for text, bold in lines:
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = p.add_run(text)
        run.bold = bold
    note = doc.add_paragraph()
    note.alignment = WD_ALIGN_PARAGRAPH.CENTER
    note.add_run(READING_NOTE).italic = True
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)

    for section in roadmap.sections:
        doc.add_heading(section.title, level=1)
        if section.id == "sources":
            if not roadmap.sources:
                _add_section(doc, section)
            for s in roadmap.sources:
                p = doc.add_paragraph()
                p.paragraph_format.left_indent = Cm(0.8)
                p.paragraph_format.first_line_indent = Cm(-0.8)
                p.add_run(f"[{s.n}] ").bold = True
                p.add_run(s.title).italic = True
                where = _where(s)
                p.add_run(f"{f' ({where})' if where else ''}, p. {s.page}{_ocr(s)} — {s.source}")
                p.add_run(f"\n« {s.excerpt} »").font.size = Pt(9)
            continue
        _add_section(doc, section)
        if section.id == "actions" and roadmap.actions:
            table = doc.add_table(rows=1, cols=len(ACTION_HEADERS))
            table.style = "Table Grid"
            for cell, name in zip(table.rows[0].cells, ACTION_HEADERS, strict=True):
                cell.text = ""
                cell.paragraphs[0].add_run(name).bold = True
            _repeat_header(table.rows[0])
            for action in roadmap.actions:
                cells = table.add_row().cells
                for cell, value in zip(cells, action.cells(), strict=True):
                    cell.text = value
            for row in table.rows:
                for cell in row.cells:
                    for para in cell.paragraphs:
                        for run in para.runs:
                            run.font.size = Pt(9)

    sec = doc.sections[0]  # narrow margins: the six-column action table needs the width
    sec.left_margin = sec.right_margin = Cm(1.8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(out))
    return out
