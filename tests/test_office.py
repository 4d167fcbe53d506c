"""OpenDocument text (.odt), presentations (.odp) and PowerPoint (.pptx): what ingest reads.

Every file is built in the test with the tools that write them (python-pptx for PPTX,
odfpy for ODT/ODP), so each assertion names content the test put there: headings, list
items, table rows, slides read in reading order, speaker notes marked, slide number =
page, document properties normalised by `ingest.declared` as the pipeline does. Fast
tests need no model; the last one ingests the three files with the real model and finds
a slide's passage by a French question, cited with its slide number.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from badinputs.generate import ODF_ENCRYPTED_MANIFEST as ENCRYPTED_MANIFEST

from ingest.declared import normalise
from ingest.errors import IngestError
from ingest.loaders import detect_format, load
from ingest.office import NOTES_PREFIX

FILE = "propriétés du fichier"  # the layer name ingest.metadata gives a file's own properties

# --------------------------------------------------------------------------- PPTX


def _inches(x: float) -> int:
    from pptx.util import Inches

    return Inches(x)


def pptx_bytes() -> bytes:
    """Four slides: title, two boxes whose XML order is not the reading order (+ notes),
    a table (+ notes), bullets and a group; core properties with French key=value keywords."""
    from pptx import Presentation

    prs = Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[0])  # title slide
    s1.shapes.title.text = "Séminaire local de Jonzac"
    s1.placeholders[1].text = "Fabrique prospective : vieillir en petite ville"

    s2 = prs.slides.add_slide(prs.slide_layouts[5])  # title only
    s2.shapes.title.text = "Deux ateliers en parallèle"
    # written right column first, then the bottom box, then the left column (a hair lower):
    # read left column, right column, then the bottom box
    box = s2.shapes.add_textbox(_inches(5), _inches(2), _inches(4), _inches(1.5))
    box.text_frame.text = "Atelier B : les habitants veulent des bancs tous les deux cents mètres."
    box = s2.shapes.add_textbox(_inches(0.5), _inches(5), _inches(9), _inches(1))
    box.text_frame.text = "Synthèse commune : la marche reste le premier mode de déplacement des aînés."
    box = s2.shapes.add_textbox(_inches(0.5), _inches(2.05), _inches(4), _inches(1.5))
    box.text_frame.text = (
        "Atelier A : une navette électrique à la demande relierait les hameaux au marché du mardi."
    )
    s2.notes_slide.notes_text_frame.text = "Insister sur le coût de la navette pour l'intercommunalité."

    s3 = prs.slides.add_slide(prs.slide_layouts[5])
    s3.shapes.title.text = "Programme d'actions"
    table = s3.shapes.add_table(3, 3, _inches(0.5), _inches(2), _inches(9), _inches(2)).table
    for r, row in enumerate([("Action", "Porteur", "Calendrier"), ("Navette solidaire", "CCAS", "2024"),
                             ("Bancs", "Voirie", "2025")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    s3.notes_slide.notes_text_frame.text = "Le calendrier dépend du vote du budget."

    s4 = prs.slides.add_slide(prs.slide_layouts[1])  # title and content: bullets
    s4.shapes.title.text = "Prochaines étapes"
    body = s4.placeholders[1].text_frame
    body.text = "Recruter deux médiateurs"
    body.add_paragraph().text = "Tester la navette au printemps"
    group = s4.shapes.add_group_shape()
    inner = group.shapes.add_textbox(_inches(5), _inches(6), _inches(4), _inches(0.5))
    inner.text_frame.text = "Contact : mission seniors de la mairie"
    inner = group.shapes.add_textbox(_inches(0.5), _inches(6), _inches(4), _inches(0.5))
    inner.text_frame.text = "Document de travail"

    props = prs.core_properties
    props.title = "Séminaire local n°2 — Jonzac"
    props.subject = "Mobilité des aînés"
    props.keywords = "fabrique=senior-petite-ville; annee=2023; seniors, mobilité"
    props.category = "Compte rendu de séminaire local"
    props.comments = ""
    props.created = datetime(2023, 5, 12)
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "seminaire-jonzac.pptx"
    path.write_bytes(pptx_bytes())
    return path


def test_pptx_one_page_per_slide_title_first_reading_order(deck: Path) -> None:
    doc = load(deck)
    assert doc.fmt == "pptx"
    assert [p.number for p in doc.pages] == [1, 2, 3, 4], "page number = slide number"
    first = doc.pages[0].blocks
    assert first == [("heading1", "Séminaire local de Jonzac"),
                     ("para", "Fabrique prospective : vieillir en petite ville")]
    second = [t for _, t in doc.pages[1].blocks]
    assert doc.pages[1].blocks[0] == ("heading1", "Deux ateliers en parallèle")
    starts = [t.split(" :")[0] for t in second[1:]]
    assert starts == ["Atelier A", "Atelier B", "Synthèse commune", NOTES_PREFIX.split(" :")[0]], (
        "top then left, whatever the order the boxes were written in; notes last"
    )


def test_pptx_table_rows_notes_bullets_and_groups(deck: Path) -> None:
    doc = load(deck)
    third = doc.pages[2].blocks
    assert third[0] == ("heading1", "Programme d'actions")
    assert third[1][0] == "table" and third[1][1].split("\n") == [
        "Action | Porteur | Calendrier", "Navette solidaire | CCAS | 2024", "Bancs | Voirie | 2025"]
    assert third[-1] == ("para", f"{NOTES_PREFIX}Le calendrier dépend du vote du budget.")
    notes = doc.pages[1].blocks[-1]
    assert notes == ("para", f"{NOTES_PREFIX}Insister sur le coût de la navette pour l'intercommunalité.")
    fourth = doc.pages[3].blocks
    assert ("list", "Recruter deux médiateurs") in fourth, "body placeholder paragraphs are bullets"
    assert ("list", "Tester la navette au printemps") in fourth
    group = [t for _, t in fourth if t in ("Document de travail", "Contact : mission seniors de la mairie")]
    assert group == ["Document de travail", "Contact : mission seniors de la mairie"], "group read left first"
    assert not any(NOTES_PREFIX in t for _, t in fourth), "a slide without notes gets no notes block"


def test_pptx_slide_limit_is_the_page_limit(deck: Path) -> None:
    with pytest.raises(IngestError) as info:
        load(deck, max_pages=3)
    assert info.value.code == "too_many_pages"
    assert info.value.reason == "présentation PPTX trop longue : 4 diapositives, limite 3"


def test_pptx_properties_reach_declared(deck: Path) -> None:
    doc = load(deck)
    meta = doc.file_meta
    assert meta["title"] == "Séminaire local n°2 — Jonzac"
    assert meta["keywords"] == ["fabrique=senior-petite-ville", "annee=2023", "seniors", "mobilité"]
    assert meta["category"] == "Compte rendu de séminaire local"
    assert "description" not in meta, "python-pptx's « generated using python-pptx » is not a description"
    result = normalise(meta, FILE)
    assert result.problems == []
    f = result.fields
    assert f["title"] == "Séminaire local n°2 — Jonzac"
    assert f["subject"] == "Mobilité des aînés"
    assert f["fabrique"] == "senior-petite-ville"
    assert f["year"] == 2023
    assert f["doc_type"] == "seminaire_local"
    assert f["keywords"] == ["seniors", "mobilité"]
    assert f["created_year"] == 2023


# --------------------------------------------------------------------------- ODT


def odt_bytes(*, empty: bool = False) -> bytes:
    """Heading, paragraphs, a list, a table and a sub-heading; meta.xml with title, subject,
    description, keywords as LibreOffice splits them (one meta:keyword per comma) and
    user-defined properties."""
    from odf import dc, meta, table, text
    from odf.opendocument import OpenDocumentText

    doc = OpenDocumentText()
    if not empty:
        body = doc.text
        body.addElement(text.H(outlinelevel=1, text="Feuille de route de Pons"))
        body.addElement(text.P(text="La commune de Pons engage un plan pour les aînés isolés des hameaux."))
        body.addElement(text.H(outlinelevel=2, text="Enjeux"))
        para = text.P(text="Trois enjeux ressortent des ateliers :")
        para.addElement(text.S(c=2))
        para.addText("ils ont été validés en comité.")
        body.addElement(para)
        items = text.List()
        for item in ("repérer les personnes isolées", "adapter l'habitat", "rompre la solitude"):
            li = text.ListItem()
            li.addElement(text.P(text=item))
            items.addElement(li)
        body.addElement(items)
        body.addElement(text.H(outlinelevel=2, text="Programme d'actions"))
        tbl = table.Table(name="Actions")
        tbl.addElement(table.TableColumn(numbercolumnsrepeated=3))
        for row_values in (("Action", "Porteur", "Calendrier"), ("Visites de convivialité", "CCAS", "2023"),
                           ("Portage de repas", "Département", "2024")):
            row = table.TableRow()
            for value in row_values:
                cell = table.TableCell()
                cell.addElement(text.P(text=value))
                row.addElement(cell)
            tbl.addElement(row)
        body.addElement(tbl)
        body.addElement(text.P(text="Le bilan sera présenté en conseil municipal."))
    else:
        doc.text.addElement(text.P())
    doc.meta.addElement(dc.Title(text="Feuille de route — Pons"))
    doc.meta.addElement(dc.Subject(text="Plan local pour les aînés"))
    doc.meta.addElement(dc.Description(text="Version validée en comité de pilotage."))
    # « seniors, fabrique=senior-petite-ville, territoires=Pons, Jonzac » typed in LibreOffice
    for keyword in ("seniors", "fabrique=senior-petite-ville", "territoires=Pons", "Jonzac"):
        doc.meta.addElement(meta.Keyword(text=keyword))
    doc.meta.addElement(meta.CreationDate(text="2022-03-14T10:00:00"))
    doc.meta.addElement(meta.UserDefined(name="Année", valuetype="float", text="2022"))
    doc.meta.addElement(meta.UserDefined(name="Type de document", valuetype="string",
                                         text="Feuille de route"))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def test_odt_headings_paragraphs_list_table_in_order(tmp_path: Path) -> None:
    path = tmp_path / "feuille-de-route.odt"
    path.write_bytes(odt_bytes())
    doc = load(path)
    assert doc.fmt == "odt" and [p.number for p in doc.pages] == [1], "one page, as a DOCX"
    blocks = doc.pages[0].blocks
    assert blocks[0] == ("heading1", "Feuille de route de Pons")
    assert ("heading2", "Enjeux") in blocks
    assert ("para", "Trois enjeux ressortent des ateliers : ils ont été validés en comité.") in blocks
    assert [t for k, t in blocks if k == "list"] == [
        "repérer les personnes isolées", "adapter l'habitat", "rompre la solitude"]
    kinds = [k for k, _ in blocks]
    at = kinds.index("table")
    assert blocks[at - 1] == ("heading2", "Programme d'actions"), "the table stays in place"
    assert blocks[at][1].split("\n") == [
        "Action | Porteur | Calendrier",
        "Visites de convivialité | CCAS | 2023",
        "Portage de repas | Département | 2024",
    ]
    assert blocks[at + 1] == ("para", "Le bilan sera présenté en conseil municipal.")


def test_odt_properties_reach_declared(tmp_path: Path) -> None:
    path = tmp_path / "fdr.odt"
    path.write_bytes(odt_bytes())
    meta = load(path).file_meta
    assert meta["title"] == "Feuille de route — Pons"
    assert meta["description"] == "Version validée en comité de pilotage."
    assert meta["année"] == 2022, "user-defined properties, names lower-cased"
    assert meta["type de document"] == "Feuille de route"
    # LibreOffice's comma split is undone: Jonzac stays with « territoires= »
    assert meta["keywords"] == ["seniors, fabrique=senior-petite-ville, territoires=Pons, Jonzac"]
    result = normalise(meta, FILE)
    assert result.problems == []
    assert result.fields == {
        "title": "Feuille de route — Pons",
        "subject": "Plan local pour les aînés",
        "description": "Version validée en comité de pilotage.",
        "keywords": ["seniors"],
        "fabrique": "senior-petite-ville",
        "year": 2022,
        "territories": ["Pons", "Jonzac"],
        "doc_type": "feuille_de_route",
        "created_year": 2022,
    }


def test_odt_without_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vide.odt"
    path.write_bytes(odt_bytes(empty=True))
    err = _refused(path)
    assert err.code == "no_text" and err.reason == "aucun texte extractible dans le document ODT"


# --------------------------------------------------------------------------- ODP


def odp_bytes() -> bytes:
    """Two slides (title + outline list + notes; title + two boxes written right first)."""
    from odf import dc, draw, presentation, style, text
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation

    doc = OpenDocumentPresentation()
    layout = style.PageLayout(name="PM1")
    layout.addElement(style.PageLayoutProperties(pagewidth="28cm", pageheight="21cm"))
    doc.automaticstyles.addElement(layout)
    master = style.MasterPage(name="Standard", pagelayoutname=layout)
    doc.masterstyles.addElement(master)

    def frame(parent, cls: str | None, x: str, y: str, *paragraphs: str, as_list: bool = False):
        fr = draw.Frame(width="12cm", height="3cm", x=x, y=y)
        if cls:
            fr.setAttrNS(PRESENTATIONNS, "class", cls)
        box = draw.TextBox()
        if as_list:
            lst = text.List()
            for p in paragraphs:
                li = text.ListItem()
                li.addElement(text.P(text=p))
                lst.addElement(li)
            box.addElement(lst)
        else:
            for p in paragraphs:
                box.addElement(text.P(text=p))
        fr.addElement(box)
        parent.addElement(fr)

    s1 = draw.Page(name="diapo1", masterpagename=master)
    frame(s1, "title", "2cm", "1cm", "Atelier de Saintes")
    frame(s1, "outline", "2cm", "5cm", "Une épicerie solidaire itinérante", "Un café des aidants",
          as_list=True)
    notes = presentation.Notes()
    frame(notes, "notes", "2cm", "14cm", "Rappeler que l'épicerie passera chaque jeudi.")
    s1.addElement(notes)
    doc.presentation.addElement(s1)

    s2 = draw.Page(name="diapo2", masterpagename=master)
    frame(s2, None, "15cm", "5cm", "Colonne de droite : le financement par la CAF.")
    frame(s2, "title", "2cm", "1cm", "Financements")
    frame(s2, None, "2cm", "5.2cm", "Colonne de gauche : le budget communal.")
    doc.presentation.addElement(s2)
    doc.meta.addElement(dc.Title(text="Atelier de Saintes"))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def test_odp_slides_titles_lists_and_notes(tmp_path: Path) -> None:
    path = tmp_path / "atelier.odp"
    path.write_bytes(odp_bytes())
    doc = load(path)
    assert doc.fmt == "odp" and [p.number for p in doc.pages] == [1, 2]
    assert doc.pages[0].blocks == [
        ("heading1", "Atelier de Saintes"),
        ("list", "Une épicerie solidaire itinérante"),
        ("list", "Un café des aidants"),
        ("para", f"{NOTES_PREFIX}Rappeler que l'épicerie passera chaque jeudi."),
    ]
    assert doc.pages[1].blocks == [
        ("heading1", "Financements"),
        ("para", "Colonne de gauche : le budget communal."),
        ("para", "Colonne de droite : le financement par la CAF."),
    ]
    assert doc.file_meta["title"] == "Atelier de Saintes"


ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
)
# What LibreOffice writes and odfpy's simple API does not: a « Title » paragraph through an
# automatic style, a table of contents, tracked changes, a comment, a footnote, a text box
# anchored in a paragraph, a line break, a nested list, merged cells.
LIBREOFFICE_BODY = """
<office:automatic-styles>
 <style:style style:name="P1" style:family="paragraph" style:parent-style-name="Title"/>
</office:automatic-styles>
<office:body><office:text>
 <text:tracked-changes><text:changed-region text:id="c1"><text:deletion>
  <text:p>Phrase supprimée en relecture.</text:p></text:deletion></text:changed-region></text:tracked-changes>
 <text:p text:style-name="P1">Diagnostic de Marennes</text:p>
 <text:table-of-content><text:index-body><text:p>Contexte 2</text:p></text:index-body></text:table-of-content>
 <text:h text:outline-level="2">Contexte</text:h>
 <text:p>Le port<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation>
  <text:note-body><text:p>Données de la criée, 2022.</text:p></text:note-body></text:note> ostréicole
  <office:annotation><text:p>À vérifier</text:p></office:annotation>emploie<text:line-break/>trois cents
  personnes.<draw:frame svg:x="1cm" svg:y="1cm"><draw:text-box>
  <text:p>Encadré : la saison commence en septembre.</text:p></draw:text-box></draw:frame></text:p>
 <text:list><text:list-item><text:p>ostréiculture</text:p>
  <text:list><text:list-item><text:p>naissain</text:p></text:list-item></text:list></text:list-item>
 </text:list>
 <table:table><table:table-header-rows><table:table-row>
  <table:table-cell table:number-columns-spanned="2"><text:p>Filière</text:p></table:table-cell>
  <table:covered-table-cell/></table:table-row></table:table-header-rows>
  <table:table-row><table:table-cell><text:p>Huîtres</text:p></table:table-cell>
  <table:table-cell><text:p>300</text:p></table:table-cell></table:table-row></table:table>
</office:text></office:body>"""


def test_odt_as_libreoffice_writes_it(tmp_path: Path) -> None:
    content = f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}>{LIBREOFFICE_BODY}'
    content += "</office:document-content>"
    path = tmp_path / "diagnostic.odt"
    path.write_bytes(_rezip(odt_bytes(), {"content.xml": content.encode()}))
    blocks = load(path).pages[0].blocks
    assert blocks == [
        ("heading1", "Diagnostic de Marennes"),
        ("heading2", "Contexte"),
        ("para", "Le port ostréicole emploie trois cents personnes."),
        ("para", "Données de la criée, 2022."),
        ("para", "Encadré : la saison commence en septembre."),
        ("list", "ostréiculture"),
        ("list", "naissain"),
        ("table", "Filière |\nHuîtres | 300"),
    ], "no deleted text, table of contents or comment; footnote and box after their paragraph"


def test_odt_entities_are_refused_and_never_resolved(tmp_path: Path) -> None:
    doctype = '<!DOCTYPE office:document-content [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    content = (f'<?xml version="1.0"?>{doctype}<office:document-content {ODF_NS}><office:body><office:text>'
               "<text:p>&xxe;</text:p></office:text></office:body></office:document-content>")
    path = tmp_path / "xxe.odt"
    path.write_bytes(_rezip(odt_bytes(), {"content.xml": content.encode()}))
    err = _refused(path)
    assert err.code == "corrupt" and "DOCTYPE" in err.reason
    meta = (f'<?xml version="1.0"?>{doctype.replace("document-content", "document-meta")}'
            f"<office:document-meta {ODF_NS}><office:meta><dc:title>&xxe;</dc:title></office:meta>"
            "</office:document-meta>")
    path.write_bytes(_rezip(odt_bytes(), {"meta.xml": meta.encode()}))
    doc = load(path)
    assert doc.file_meta == {} and "Feuille de route de Pons" in doc.pages[0].text, "metadata lost, text kept"


def test_numbered_slide_titles_survive_and_footer_placeholders_are_not_read(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.enum.shapes import PP_PLACEHOLDER

    prs = Presentation()
    layout = prs.slide_layouts[5]
    furniture = [ph for ph in layout.placeholders
                 if ph.placeholder_format.type in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER)]
    assert len(furniture) == 2
    for i, text in enumerate(["Les bancs du centre-bourg.", "La navette du mardi.", "Le portage de repas."]):
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = f"Atelier {i + 1}"
        slide.shapes.add_textbox(_inches(0.5), _inches(2), _inches(9), _inches(1)).text_frame.text = text
        for ph in furniture:
            slide.shapes.clone_placeholder(ph)
        for shape in slide.placeholders:
            if shape.placeholder_format.type == PP_PLACEHOLDER.FOOTER:
                shape.text_frame.text = "Fabrique prospective de Jonzac"
            elif shape.placeholder_format.type == PP_PLACEHOLDER.SLIDE_NUMBER:
                shape.text_frame.text = str(i + 1)
    path = tmp_path / "ateliers.pptx"
    buf = io.BytesIO()
    prs.save(buf)
    path.write_bytes(buf.getvalue())
    doc = load(path)
    assert [p.blocks for p in doc.pages] == [
        [("heading1", "Atelier 1"), ("para", "Les bancs du centre-bourg.")],
        [("heading1", "Atelier 2"), ("para", "La navette du mardi.")],
        [("heading1", "Atelier 3"), ("para", "Le portage de repas.")],
    ], "« Atelier # » on every slide is a title, not a running header; footers and numbers not read"


# --------------------------------------------------------------------------- detection


def test_the_content_decides_not_the_extension(tmp_path: Path) -> None:
    renamed = tmp_path / "en-realite-un-diaporama.odt"
    renamed.write_bytes(pptx_bytes())
    doc = load(renamed)
    assert doc.fmt == "pptx" and len(doc.pages) == 4
    odt_named_docx = tmp_path / "texte.docx"
    odt_named_docx.write_bytes(odt_bytes())
    assert load(odt_named_docx).fmt == "odt"
    assert detect_format(tmp_path / "sans-extension", odp_bytes()) == "odp"


def _zip(entries: dict[str, bytes], stored: tuple[str, ...] = ("mimetype",)) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, replace.get(info.filename, src.read(info)))
    return out.getvalue()


def _refused(path: Path) -> IngestError:
    with pytest.raises(IngestError) as info:
        load(path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("name", "mimetype", "fragment"),
    [
        ("tableur.ods", b"application/vnd.oasis.opendocument.spreadsheet", "(.ods : classeur OpenDocument"),
        ("dessin.odg", b"application/vnd.oasis.opendocument.graphics", "document OpenDocument autre"),
    ],
)
def test_other_opendocument_kinds_stay_refused(
    tmp_path: Path, name: str, mimetype: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(_zip({"mimetype": mimetype, "content.xml": b"<x/>"}))
    err = _refused(path)
    assert err.code == "unsupported" and err.reason.startswith("format non pris en charge")
    assert fragment in err.reason


def test_encrypted_odt_and_pptx_are_refused(tmp_path: Path) -> None:
    manifest = ENCRYPTED_MANIFEST  # what LibreOffice writes for a password-protected ODT
    path = tmp_path / "protege.odt"
    ciphered = b"\x8f\x01\xfe" * 99  # content.xml as LibreOffice writes it with a password
    path.write_bytes(_rezip(odt_bytes(), {"META-INF/manifest.xml": manifest, "content.xml": ciphered}))
    err = _refused(path)
    assert err.code == "encrypted" and "protégé par mot de passe" in err.reason
    ole = tmp_path / "protege.pptx"  # what PowerPoint writes with a password: OLE2 + EncryptedPackage
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le"))
    err = _refused(ole)
    assert err.code == "encrypted" and "protégé par mot de passe" in err.reason


def test_broken_archives_are_corrupt_in_french(tmp_path: Path) -> None:
    odt = odt_bytes()
    cut = tmp_path / "tronque.odt"
    cut.write_bytes(odt[: len(odt) // 2])
    err = _refused(cut)
    assert err.code == "corrupt" and err.reason.startswith("ODT illisible ou corrompu (archive ZIP invalide")
    deck = pptx_bytes()
    with zipfile.ZipFile(io.BytesIO(deck)) as zf:
        xml = zf.read("ppt/presentation.xml")
    broken = tmp_path / "presentation-coupee.pptx"
    broken.write_bytes(_rezip(deck, {"ppt/presentation.xml": xml[: len(xml) // 2]}))
    err = _refused(broken)
    assert err.code == "corrupt" and err.reason.startswith("PPTX illisible ou corrompu (")
    body = tmp_path / "contenu-coupe.odt"
    with zipfile.ZipFile(io.BytesIO(odt)) as zf:
        content = zf.read("content.xml")
    body.write_bytes(_rezip(odt, {"content.xml": content[: len(content) * 2 // 3]}))
    err = _refused(body)
    assert err.code == "corrupt" and err.reason.startswith("ODT illisible ou corrompu (XMLSyntaxError")
    not_zip = tmp_path / "pas-une-archive.pptx"
    not_zip.write_text("juste du texte", encoding="utf-8")
    assert _refused(not_zip).reason == "PPTX illisible ou corrompu (ce n'est pas une archive ZIP Office)"


def test_pptx_zip_bomb_is_refused_before_reading(tmp_path: Path) -> None:
    deck = pptx_bytes()
    with zipfile.ZipFile(io.BytesIO(deck)) as zf:
        slide = zf.read("ppt/slides/slide1.xml")
    bomb = tmp_path / "bombe.pptx"
    bomb.write_bytes(_rezip(deck, {"ppt/slides/slide1.xml": slide + b" " * 24_000_000}))
    assert bomb.stat().st_size < 200_000
    err = _refused(bomb)
    assert err.code == "zip_bomb" and "ppt/slides/slide1.xml" in err.reason


def test_uploads_accept_the_new_formats(tmp_path: Path) -> None:
    from assistant.config import Settings
    from assistant.uploads import ACCEPTED_TYPES, UploadRejected, check_upload

    settings = Settings(_env_file=None, store=tmp_path / "index")
    assert {"odt", "odp", "pptx"} <= set(ACCEPTED_TYPES)
    assert check_upload("Séminaire.pptx", pptx_bytes(), settings) == ("Seminaire.pptx", "pptx")
    assert check_upload("fdr.odt", odt_bytes(), settings) == ("fdr.odt", "odt")
    assert check_upload("atelier.odp", odp_bytes(), settings) == ("atelier.odp", "odp")
    with pytest.raises(UploadRejected, match="le contenu est un fichier PPTX, pas un fichier ODT"):
        check_upload("faux.odt", pptx_bytes(), settings)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_ingest_the_three_formats_and_cite_the_slide(tmp_path: Path, store_dir: Path, e5) -> None:
    from assistant.retriever import Retriever
    from ingest.pipeline import Ingestor
    from ingest.store import open_store

    root = tmp_path / "docs"
    root.mkdir()
    (root / "seminaire-jonzac.pptx").write_bytes(pptx_bytes())
    (root / "feuille-de-route-pons.odt").write_bytes(odt_bytes())
    (root / "atelier-saintes.odp").write_bytes(odp_bytes())
    store = open_store(store_dir, "fp_test", e5.model_id, e5.dim)
    ingestor = Ingestor(store_dir, store, e5)
    report = ingestor.run([root])
    assert len(report.added) == 3 and not report.failed, report.failed
    retriever = Retriever(ingestor.store, ingestor.registry, e5)

    top = retriever.search("navette électrique à la demande pour relier les hameaux au marché", k=3)[0]
    assert top.source == str((root / "seminaire-jonzac.pptx").resolve())
    assert top.page == 2, "cited with its slide number"
    assert "navette électrique" in top.text
    assert top.meta["fabrique"] == "senior-petite-ville" and top.meta["year"] == 2023
    assert top.meta["doc_type"] == "seminaire_local"

    top = retriever.search("épicerie solidaire itinérante", k=3)[0]
    assert top.source == str((root / "atelier-saintes.odp").resolve()) and top.page == 1

    top = retriever.search("visites de convivialité du CCAS", k=3)[0]
    assert top.source == str((root / "feuille-de-route-pons.odt").resolve()) and top.page == 1
    assert top.meta["territories"] == ["Pons", "Jonzac"]
