"""Declared metadata: what each file format carries reaches `file_meta`, and `normalise`
turns any explicit layer into canonical fields, reporting in French what it cannot use.

Every file is built in tmp_path with the tools a prestataire would use (fpdf2 + pypdf for
PDF info and XMP, python-docx plus a custom.xml part, hand-written HTML and Markdown).
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from ingest.declared import CANONICAL, Declared, canonical_key, doc_type_of, normalise
from ingest.loaders import load
from ingest.models import DOC_TYPES

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BODY = (
    "Les élus de Jonzac et de Pons ont présenté la démarche engagée avec les bailleurs sociaux "
    "et les associations de quartier pour accompagner le vieillissement de la population."
)
FILE = "propriétés du fichier"


def declared(path: Path) -> Declared:
    return normalise(load(path).file_meta, FILE)


# --------------------------------------------------------------------------- builders


def _plain_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_font("dv", "", FONT)
    pdf.add_page()
    pdf.set_font("dv", "", 11)
    pdf.multi_cell(0, 6, BODY)
    return bytes(pdf.output())


def _pdf(path: Path, info: dict[str, str] | None = None, xmp: bytes | None = None) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(_plain_pdf())))
    if info:
        writer.add_metadata(info)
    if xmp is not None:
        writer.xmp_metadata = xmp
    with path.open("wb") as fh:
        writer.write(fh)
    return path


XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="uuid:5c2b1f0e-0000-4000-8000-000000000001"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
    xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/"
    pdf:Keywords="isolement, mobilité">
   <dc:title><rdf:Alt>
     <rdf:li xml:lang="en">Intersite seminar</rdf:li>
     <rdf:li xml:lang="x-default">Séminaire intersites de Bagnolet</rdf:li>
   </rdf:Alt></dc:title>
   <dc:subject><rdf:Bag>
     <rdf:li>vieillissement</rdf:li>
     <rdf:li>fabrique=vieillissement-periurbain-qpv</rdf:li>
   </rdf:Bag></dc:subject>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Retour sur la deuxième journée.</rdf:li>
   </rdf:Alt></dc:description>
   <dc:date><rdf:Seq><rdf:li>2021-06-15</rdf:li></rdf:Seq></dc:date>
   <dc:type><rdf:Bag><rdf:li>Compte rendu de séminaire inter-sites</rdf:li></rdf:Bag></dc:type>
   <dc:coverage>Bagnolet; Montreuil</dc:coverage>
   <pdfx:Visibilite>publique</pdfx:Visibilite>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()

CONTENT_TYPES_OVERRIDE = (
    '<Override PartName="/docProps/custom.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>'
)
CUSTOM_REL = (
    '<Relationship Id="rIdCustom1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" '
    'Target="docProps/custom.xml"/>'
)


def _custom_xml(props: dict[str, str], doctype: str = "") -> bytes:
    """docProps/custom.xml as Word writes it: one vt:lpwstr (or vt:i4 for numbers) per property."""
    rows = []
    for pid, (name, value) in enumerate(props.items(), start=2):
        kind = "i4" if value.isdigit() else "lpwstr"
        rows.append(
            f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{pid}" name="{name}">'
            f"<vt:{kind}>{value}</vt:{kind}></property>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + doctype
        + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
        'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        + "".join(rows) + "</Properties>"
    ).encode()


def _docx(path: Path, core: dict[str, object], custom: bytes | None = None) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Feuille de route de Jonzac", level=1)
    document.add_paragraph(BODY)
    for name, value in core.items():
        setattr(document.core_properties, name, value)
    buf = io.BytesIO()
    document.save(buf)
    if custom is None:
        path.write_bytes(buf.getvalue())
        return path
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", CONTENT_TYPES_OVERRIDE.encode() + b"</Types>")
            elif info.filename == "_rels/.rels":
                data = data.replace(b"</Relationships>", CUSTOM_REL.encode() + b"</Relationships>")
            dst.writestr(info, data)
        dst.writestr("docProps/custom.xml", custom)
    path.write_bytes(out.getvalue())
    return path


def _html(path: Path, head: str) -> Path:
    path.write_text(
        f"""<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">{head}</head>
<body><nav><a href="/">Accueil</a></nav><main><article>
<h1>Les aînés dans les quartiers</h1>
<p>{BODY}</p>
<p>Un second paragraphe détaille la gouvernance partagée du projet et le rôle de
l'intercommunalité dans le suivi des actions engagées par les communes.</p>
</article></main></body></html>""",
        encoding="utf-8",
    )
    return path


def _md(path: Path, front: str) -> Path:
    path.write_text(f"---\n{front}---\n# Compte rendu\n\n{BODY}\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- PDF


def test_pdf_info_dictionary_with_key_value_keywords(tmp_path: Path) -> None:
    path = _pdf(
        tmp_path / "cr.pdf",
        info={
            "/Title": "Compte rendu du séminaire local n°2 — Jonzac",
            "/Subject": "Mobilité des aînés",
            "/Keywords": "fabrique=senior-petite-ville; annee=2023; territoires=Jonzac, Pons; "
            "type=compte rendu; seniors, mobilité",
            "/Author": "Cabinet Exemple",
            "/CreationDate": "D:20240105093000+01'00'",
            "/Partenaires": "CCAS de Jonzac; Département",
        },
    )
    doc = load(path)
    assert doc.file_meta["author"] == "Cabinet Exemple"
    assert doc.file_meta["partenaires"] == "CCAS de Jonzac; Département", "custom info entries kept"
    result = normalise(doc.file_meta, FILE)
    assert result.problems == []
    f = result.fields
    assert f["title"] == "Compte rendu du séminaire local n°2 — Jonzac"
    assert f["subject"] == "Mobilité des aînés"
    assert f["fabrique"] == "senior-petite-ville"
    assert f["year"] == 2023, "the declared year, not the creation date"
    assert f["created_year"] == 2024
    assert f["territories"] == ["Jonzac", "Pons"]
    assert f["doc_type"] == "seminaire_local"
    assert f["partners"] == ["CCAS de Jonzac", "Département"]
    assert f["keywords"] == ["seniors", "mobilité"]
    assert "visibility" not in f and "author" not in f


def test_pdf_xmp_only(tmp_path: Path) -> None:
    doc = load(_pdf(tmp_path / "intersites.pdf", xmp=XMP))
    assert "title" not in doc.file_meta, "no /Title in the info dictionary"
    assert doc.file_meta["dc:title"] == "Séminaire intersites de Bagnolet", "x-default wins"
    assert doc.file_meta["dc:subject"] == ["vieillissement", "fabrique=vieillissement-periurbain-qpv"]
    result = normalise(doc.file_meta, FILE)
    assert result.problems == []
    f = result.fields
    assert f["title"] == "Séminaire intersites de Bagnolet"
    assert f["description"] == "Retour sur la deuxième journée."
    assert f["year"] == 2021
    assert f["doc_type"] == "seminaire_intersites"
    assert f["territories"] == ["Bagnolet", "Montreuil"]
    assert f["fabrique"] == "vieillissement-periurbain-qpv"
    assert sorted(f["keywords"]) == ["isolement", "mobilité", "vieillissement"]
    assert f["visibility"] == "public", "Acrobat custom property (pdfx)"


@pytest.mark.parametrize(
    "xmp",
    [
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><broken",
        b"not xml at all \x00\xff",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&b;</x:xmpmeta>",
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><nordf/></x:xmpmeta>",
    ],
    ids=["truncated", "binary", "entities", "no-rdf"],
)
def test_pdf_with_broken_xmp_still_loads(tmp_path: Path, xmp: bytes) -> None:
    doc = load(_pdf(tmp_path / "xmp-casse.pdf", info={"/Title": "Note de cadrage"}, xmp=xmp))
    assert "bailleurs sociaux" in doc.pages[0].text
    assert doc.file_meta["title"] == "Note de cadrage", "the info dictionary survives"
    assert not any(k.startswith(("dc:", "pdf:")) for k in doc.file_meta)
    assert normalise(doc.file_meta, FILE).fields["title"] == "Note de cadrage"


# --------------------------------------------------------------------------- DOCX


def test_docx_core_and_custom_properties(tmp_path: Path) -> None:
    custom = _custom_xml({"Fabrique": "senior-petite-ville", "Année": "2022", "Territoires": "Jonzac; Pons",
                          "Visibilité": "interne"})
    path = _docx(
        tmp_path / "fdr.docx",
        core={
            "title": "Feuille de route — Jonzac",
            "subject": "Plan local",
            "keywords": "seniors; mobilité",
            "category": "Plan d'actions",
            "comments": "Version validée en comité de pilotage.",
            "created": datetime(2021, 11, 3),
        },
        custom=custom,
    )
    meta = load(path).file_meta
    assert meta["année"] == 2022 and meta["fabrique"] == "senior-petite-ville", "custom names, lower-cased"
    assert meta["category"] == "Plan d'actions"
    assert meta["description"] == "Version validée en comité de pilotage."
    result = normalise(meta, FILE)
    assert result.problems == []
    assert result.fields == {
        "title": "Feuille de route — Jonzac",
        "subject": "Plan local",
        "description": "Version validée en comité de pilotage.",
        "keywords": ["seniors", "mobilité"],
        "fabrique": "senior-petite-ville",
        "year": 2022,
        "territories": ["Jonzac", "Pons"],
        "doc_type": "feuille_de_route",
        "visibility": "interne",
        "created_year": 2021,
    }


def test_docx_without_custom_properties_and_library_boilerplate(tmp_path: Path) -> None:
    meta = load(_docx(tmp_path / "simple.docx", core={"title": "Note interne"})).file_meta
    assert "description" not in meta, "python-docx's « generated by python-docx » is not a description"
    assert normalise(meta, FILE).fields["title"] == "Note interne"


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Properties [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE Properties [<!ENTITY a "haha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    ],
    ids=["xxe", "entities"],
)
def test_docx_custom_properties_with_a_dtd_are_ignored(tmp_path: Path, doctype: str) -> None:
    custom = _custom_xml({"fabrique": "&xxe;" if "xxe" in doctype else "&b;"}, doctype=doctype)
    doc = load(_docx(tmp_path / "dtd.docx", core={"title": "Feuille de route"}, custom=custom))
    assert "fabrique" not in doc.file_meta
    assert doc.file_meta["title"] == "Feuille de route", "core properties still read"
    assert "bailleurs sociaux" in doc.pages[0].text


def test_docx_malformed_custom_properties_lose_only_themselves(tmp_path: Path) -> None:
    doc = load(_docx(tmp_path / "casse.docx", core={"title": "CR"}, custom=b"<Properties><property"))
    assert doc.file_meta["title"] == "CR"


# --------------------------------------------------------------------------- HTML


def test_html_dublin_core_open_graph_and_french_meta(tmp_path: Path) -> None:
    head = """<title>Les aînés dans les quartiers — Centre de ressources</title>
<meta name="DC.Title" content="Les aînés dans les quartiers">
<meta name="DC.Subject" content="vieillissement"><meta name="DC.Subject" content="quartiers prioritaires">
<meta name="DC.Description" content="Synthèse des enseignements de la fabrique.">
<meta name="DC.Type" content="Synthèse">
<meta name="DCTERMS.date" content="2024-03-12">
<meta name="dc.coverage" content="Bagnolet">
<meta property="og:title" content="Les aînés (OG)">
<meta property="og:description" content="Description OG">
<meta property="og:type" content="article">
<meta name="annee" content="2023">
<meta name="territoires" content="Arras; Lens">
<meta name="Fabrique" content="vieillissement-periurbain-qpv">
<meta name="partenaires" content="CCAS | Bailleur social">
<meta name="diffusion" content="Tout public">
<meta name="author" content="Quelqu'un">"""
    meta = load(_html(tmp_path / "page.html", head)).file_meta
    assert meta["dc.subject"] == ["vieillissement", "quartiers prioritaires"], "repeated DC names give a list"
    assert meta["og:type"] == "article" and meta["annee"] == "2023" and "author" not in meta
    result = normalise(meta, FILE)
    assert result.problems == []
    f = result.fields
    assert f["title"] == "Les aînés dans les quartiers — Centre de ressources", "<title> first"
    assert f["description"] == "Synthèse des enseignements de la fabrique.", "dc.description before og"
    assert f["keywords"] == ["vieillissement", "quartiers prioritaires"]
    assert f["doc_type"] == "publication", "dc.type before og:type"
    assert f["year"] == 2023, "« annee » before dcterms.date"
    assert f["created_year"] == 2024
    assert f["territories"] == ["Arras", "Lens", "Bagnolet"]
    assert f["fabrique"] == "vieillissement-periurbain-qpv"
    assert f["partners"] == ["CCAS", "Bailleur social"]
    assert f["visibility"] == "public"


def test_html_og_type_alone(tmp_path: Path) -> None:
    head = '<title>Actualité</title><meta property="og:type" content="article">'
    assert declared(_html(tmp_path / "a.html", head)).fields["doc_type"] == "article"
    head = '<title>Accueil</title><meta property="og:type" content="website">'
    result = declared(_html(tmp_path / "b.html", head))
    assert "doc_type" not in result.fields and result.problems == [], "a generic page type is no error"


def test_html_key_value_keywords(tmp_path: Path) -> None:
    head = (
        '<title>x</title><meta name="keywords" content="fabrique=senior-petite-ville; annee=2024; '
        'territoires=Arras, Lens; type=compte rendu; seniors">'
    )
    f = declared(_html(tmp_path / "kv.html", head)).fields
    assert f["fabrique"] == "senior-petite-ville" and f["year"] == 2024
    assert f["territories"] == ["Arras", "Lens"] and f["doc_type"] == "seminaire_local"
    assert f["keywords"] == ["seniors"]


# --------------------------------------------------------------------------- Markdown


def test_markdown_front_matter_french_keys(tmp_path: Path) -> None:
    front = """titre: Compte rendu du séminaire local n°1
annee: 2022
territoires: [Bagnolet, Montreuil]
type: Compte rendu du séminaire local
visibilité: interne
année: 2022
mots-clés: [seniors, "partenaires=CCAS, Bailleur social"]
Fabrique Prospective: vieillissement-periurbain-qpv
"""
    meta = load(_md(tmp_path / "cr.md", front)).file_meta
    assert "visibilité" in meta and "année" in meta, "accented keys survive as keys"
    result = normalise(meta, "en-tête YAML")
    assert result.problems == []
    assert result.fields == {
        "title": "Compte rendu du séminaire local n°1",
        "keywords": ["seniors"],
        "fabrique": "vieillissement-periurbain-qpv",
        "year": 2022,
        "territories": ["Bagnolet", "Montreuil"],
        "doc_type": "seminaire_local",
        "partners": ["CCAS", "Bailleur social"],
        "visibility": "interne",
    }


def test_markdown_front_matter_unusable_values_are_reported(tmp_path: Path) -> None:
    front = "année: bientôt\ntype: recette de cuisine\nvisibilité: peut-être\ntitle: Essai\n"
    result = normalise(load(_md(tmp_path / "bad.md", front)).file_meta, "en-tête YAML")
    assert result.fields == {"title": "Essai", "visibility": "interne"}
    assert len(result.problems) == 3
    year, doc_type, visibility = result.problems
    assert year.startswith("en-tête YAML : « année » = « bientôt » : aucune année reconnue")
    assert "« type » = « recette de cuisine »" in doc_type and "type de document inconnu" in doc_type
    assert "« visibilité » = « peut-être »" in visibility and "traité comme interne" in visibility
    assert all("\n" not in p for p in result.problems)


# --------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"title": "A"}, {"title": "A"}),
        ({"Titre": "A"}, {"title": "A"}),
        ({"dc:title": "A"}, {"title": "A"}),
        ({"objet": "S"}, {"subject": "S"}),
        ({"Résumé": "R"}, {"description": "R"}),
        ({"resume": "R"}, {"description": "R"}),
        ({"Mots_Clés": "a, b"}, {"keywords": ["a", "b"]}),
        ({"tags": ["a", "b"]}, {"keywords": ["a", "b"]}),
        ({"fabrique_prospective": "f"}, {"fabrique": "f"}),
        ({"Fabrique-ID": "f"}, {"fabrique": "f"}),
        ({"millésime": 2020}, {"year": 2020}),
        ({"year": "2024-03-12"}, {"year": 2024}),
        ({"date": "12/03/2024"}, {"year": 2024}),
        ({"année": "mars 2024"}, {"year": 2024}),
        ({"annee": "2021-2022"}, {"year": 2021}),
        ({"annee": 2019.0}, {"year": 2019}),
        ({"date": date(2020, 5, 1)}, {"year": 2020}),
        ({"date": datetime(2020, 5, 1, 10, 0)}, {"year": 2020}),
        ({"date": "D:20190601120000"}, {"year": 2019}),
        ({"communes": "Arras; Lens"}, {"territories": ["Arras", "Lens"]}),
        ({"EPCI": "Communauté de communes du Pays de Lunel"},
         {"territories": ["Communauté de communes du Pays de Lunel"]}),
        ({"collectivités": "A | B"}, {"territories": ["A", "B"]}),
        ({"territory": ["A", ["B", ["C"]]]}, {"territories": ["A", "B", "C"]}),
        ({"coverage": "A"}, {"territories": ["A"]}),
        ({"territoires": []}, {"territories": []}),
        ({"nature": "CCTP"}, {"doc_type": "cahier_des_charges"}),
        ({"Type de document": "Note de cadrage"}, {"doc_type": "note"}),
        ({"catégorie": "Actualité"}, {"doc_type": "article"}),
        ({"doc_type": "seminaire_intersites"}, {"doc_type": "seminaire_intersites"}),
        ({"type": "autre"}, {"doc_type": "autre"}),
        ({"partenaire": "CCAS"}, {"partners": ["CCAS"]}),
        ({"Partners": ["A", "B", "a"]}, {"partners": ["A", "B"]}),
        ({"identifiant": 42}, {"doc_id": "42"}),
        ({"ID": "cr-1"}, {"doc_id": "cr-1"}),
        ({"visibility": "Public"}, {"visibility": "public"}),
        ({"visibilite": "open"}, {"visibility": "public"}),
        ({"diffusion": "restreinte"}, {"visibility": "interne"}),
        ({"confidentialité": "confidentiel"}, {"visibility": "interne"}),
        ({"confidentialite": "non"}, {"visibility": "public"}),
        ({"visibility": "non public"}, {"visibility": "interne"}),
        ({"visibility": "privé"}, {"visibility": "interne"}),
        ({"format": "pdf", "pages": 3, "lang": "fr", "author": "X", "producer": "Y"}, {}),
        ({"created_year": 2018}, {"created_year": 2018}),
        ({"created_year": 1200}, {}),
    ],
)
def test_normalise_keys_and_values(raw: dict, expected: dict) -> None:
    result = normalise(raw, "manifeste")
    assert result.fields == expected
    assert result.problems == []


@pytest.mark.parametrize(
    ("label", "doc_type"),
    [
        ("Compte rendu du séminaire local n°2", "seminaire_local"),
        ("CR séminaire", "seminaire_local"),
        ("compte-rendu", "seminaire_local"),
        ("séminaire intersites", "seminaire_intersites"),
        ("inter-sites", "seminaire_intersites"),
        ("CR du séminaire inter-sites", "seminaire_intersites"),
        ("synthèse", "publication"),
        ("publication d'enseignements", "publication"),
        ("rapport final", "publication"),
        ("Enseignements", "publication"),
        ("cahier des charges", "cahier_des_charges"),
        ("CCTP", "cahier_des_charges"),
        ("Appel d'offres", "cahier_des_charges"),
        ("consultation", "cahier_des_charges"),
        ("feuille de route", "feuille_de_route"),
        ("plan d'actions", "feuille_de_route"),
        ("Programme d’actions", "feuille_de_route"),
        ("note", "note"),
        ("Note interne", "note"),
        ("note de cadrage", "note"),
        ("article", "article"),
        ("actualité", "article"),
        ("news", "article"),
        ("roadmap", "feuille_de_route"),
        ("minutes", "seminaire_local"),
        ("recette de cuisine", None),
        ("", None),
    ],
)
def test_doc_type_labels(label: str, doc_type: str | None) -> None:
    assert doc_type_of(label) == doc_type


def test_every_doc_type_id_is_accepted_and_known() -> None:
    assert DOC_TYPES[-3:] == ("note", "article", "autre")
    for doc_type in DOC_TYPES:
        assert normalise({"doc_type": doc_type}, "manifeste").fields["doc_type"] == doc_type


def test_key_value_pairs_in_keywords() -> None:
    result = normalise(
        {"keywords": ["fabrique=f1", "annee: 2024", "territoires=Arras, Lens", "type=compte rendu",
                      "seniors", "Habitat: rénovation", "titre=Bilan, étape 2"]},
        "fiche .meta.yaml",
    )
    assert result.problems == []
    assert result.fields == {
        "keywords": ["seniors", "Habitat: rénovation"],
        "title": "Bilan, étape 2",
        "fabrique": "f1",
        "year": 2024,
        "territories": ["Arras", "Lens"],
        "doc_type": "seminaire_local",
    }


def test_explicit_field_beats_key_value_in_keywords() -> None:
    result = normalise({"keywords": "annee=2024; seniors", "année": 2023}, "manifeste")
    assert result.fields["year"] == 2023


def test_key_value_in_keywords_with_a_bad_value_is_reported() -> None:
    result = normalise({"keywords": "annee=bientôt; seniors"}, "propriétés du fichier")
    assert result.fields == {"keywords": ["seniors"]}
    assert result.problems == [
        "propriétés du fichier : « annee (dans keywords) » = « bientôt » : aucune année reconnue "
        "(attendu par exemple 2024, 2024-03-12 ou « mars 2024 »)"
    ]


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        ({"année": "bientôt"}, "year", "aucune année reconnue"),
        ({"year": 1850}, "year", "hors de la plage 1990–2100"),
        ({"year": 3000}, "year", "hors de la plage"),
        ({"année": True}, "year", "aucune année reconnue"),
        ({"année": {"début": 2020}}, "year", "tableau clé: valeur"),
        ({"type": "recette de cuisine"}, "doc_type", "type de document inconnu"),
        ({"dc.type": "recette"}, "doc_type", "type de document inconnu"),
        ({"territoires": {"Arras": 1}}, "territories", "valeur inutilisable"),
        ({"partenaires": [{"nom": "CCAS"}]}, "partners", "valeur inutilisable"),
        ({"keywords": {"a": 1}}, "keywords", "valeur inutilisable"),
        ({"fabrique": ["a", "b"]}, "fabrique", "plusieurs valeurs"),
        ({"title": {"fr": "x"}}, "title", "valeur inutilisable"),
        ({"doc_id": True}, "doc_id", "booléenne"),
    ],
)
def test_unusable_values_are_reported_and_dropped(raw: dict, field: str, fragment: str) -> None:
    result = normalise(raw, "manifeste")
    assert field not in result.fields
    assert len(result.problems) == 1
    key = next(iter(raw))
    assert result.problems[0].startswith(f"manifeste : « {key} » = « ")
    assert fragment in result.problems[0]


@pytest.mark.parametrize("value", ["peut-être", "oui", "", 3, True, {"niveau": "public"}, ["public", "??"]])
def test_unreadable_visibility_fails_closed(value: object) -> None:
    result = normalise({"visibilité": value}, "fiche .meta.yaml")
    if value == "":
        assert result.fields == {} and result.problems == [], "an empty value declares nothing"
        return
    assert result.fields["visibility"] == "interne"
    assert len(result.problems) == 1 and "visibilité" in result.problems[0]


def test_contradictory_visibilities_make_the_document_internal() -> None:
    result = normalise({"visibility": "public", "diffusion": "interne"}, "manifeste")
    assert result.fields["visibility"] == "interne"
    assert len(result.problems) == 1 and "contredit" in result.problems[0]


@pytest.mark.parametrize("raw", [None, {}, [], "texte", 42, {None: None}, {1: 2}, {"title": None}])
def test_odd_layers_never_raise(raw: object) -> None:
    result = normalise(raw, "fiche .meta.yaml")  # type: ignore[arg-type]
    assert isinstance(result, Declared)
    assert set(result.fields) <= set(CANONICAL) | {"created_year"}


def test_not_a_mapping_is_reported() -> None:
    result = normalise(["fabrique: x"], "fiche .meta.yaml")  # type: ignore[arg-type]
    assert result.fields == {}
    assert result.problems
    assert result.problems[0].startswith("fiche .meta.yaml : attendu des paires clé: valeur")


def test_canonical_key() -> None:
    assert canonical_key("Année") == "year"
    assert canonical_key("DCTERMS.coverage") == "territories"
    assert canonical_key("mots clés") == "keywords"
    assert canonical_key("format") is None and canonical_key("created_year") is None
