"""Fiches fabriques (issue #27): built at ingest from the index's text, every value with the
sentence that says it, both values where documents disagree, rewritten atomically.

Documents are written here and ingested for real, with a deterministic fake embedder (the card
reads text, not vectors). The field models are replaced by one-feature models that keep a
candidate as soon as its field's cue is seen: these tests check the card's mechanics (evidence,
disagreement, visibility, refresh, crash safety), not the fitted choice, which
`fp-assistant eval --cards` measures on held-out fabriques.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import ingest.cards as cards
from ingest.pipeline import Ingestor
from ingest.store import open_store


class HashEmbeddings:
    model_id = "test-hash-32"
    dim = 32

    def _vec(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest()
        v = [b / 255 - 0.5 for b in digest[: self.dim]]
        n = sum(x * x for x in v) ** 0.5
        return [x / n for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


# the feature each field's test model keeps a candidate on (kept when it is > 0)
TEST_FEATURES = {"title": "log_sent", "year": "launch", "period": "log_sent", "territories": "log_sent",
                 "prestataires": "presta", "associations": "assoc_list", "partners": "fund"}


@pytest.fixture
def test_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cards_model.json"
    fields = {name: {"features": [f], "weights": [10.0], "bias": -1.0, "mean": [0.0], "scale": [1.0],
                     "threshold": 0.5} for name, f in TEST_FEATURES.items()}
    path.write_text(json.dumps({"version": 1, "fields": fields}), encoding="utf-8")
    monkeypatch.setattr(cards, "MODEL_FILE", path)
    return path


CDC = """# Cahier des charges de la Fabrique prospective « Les rivières et les petites villes »

La Fabrique prospective « Les rivières et les petites villes » a été lancée en mars 2021.
Elle est cofinancée par la Caisse des dépôts.
Quatre communes sont accompagnées : Jonzac, Gornac, Bard et Beurey-sur-Saulx.

## Jonzac

À Jonzac, la Seugne traverse le centre ancien. La commune de Jonzac accueille le premier séminaire local.
Les élus de Jonzac veulent rouvrir les berges au public.
"""

PUBLICATION = """# Les rivières et les petites villes : enseignements

Cette publication clôt la Fabrique prospective « Les rivières et les petites villes ».
La démarche, cofinancée par la Banque des Territoires, a réuni huit communes.
Premier enseignement : une rivière se gère à l'échelle du bassin, pas de la commune.
"""

NOTE = """# Note interne au comité de pilotage

Le cabinet Hydrorives a animé les séminaires locaux de la Fabrique prospective
« Les rivières et les petites villes ».
"""


def _corpus(root: Path) -> Path:
    folder = root / "corpus"
    folder.mkdir(parents=True)
    (folder / "cahier-des-charges.md").write_text(CDC, encoding="utf-8")
    (folder / "publication.md").write_text(PUBLICATION, encoding="utf-8")
    (folder / "note-interne.md").write_text(NOTE, encoding="utf-8")
    docs = [("cdc", "cahier-des-charges.md", "cahier_des_charges", "public"),
            ("pub", "publication.md", "publication", "public"),
            ("note", "note-interne.md", "note", "interne")]
    manifest = {
        "fabriques": [{"id": "rivieres", "title": "Les rivières et les petites villes"}],
        "documents": [{"doc_id": d, "path": p, "title": p, "doc_type": t, "fabrique": "rivieres",
                       "visibility": v} for d, p, t, v in docs],
    }
    (folder / "manifest.yaml").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


def _ingest(store_dir: Path, folder: Path) -> Ingestor:
    emb = HashEmbeddings()
    store = open_store(store_dir, "fp_passages", emb.model_id, emb.dim)
    ing = Ingestor(store_dir, store, emb)
    report = ing.run([folder], sync=True)
    assert not report.failed, report.failed
    return ing


def _card(store_dir: Path) -> dict:
    data = cards.load_cards(store_dir)
    assert data["version"] == 1
    (card,) = [c for c in data["fabriques"] if c["id"] == "rivieres"]
    return card


def _values(card: dict, field: str) -> dict[str, dict]:
    return {v["value"]: v for v in card["fields"][field]}


def test_every_value_carries_its_sentence_verbatim(tmp_path, test_models):
    folder = _corpus(tmp_path)
    store_dir = tmp_path / "index"
    _ingest(store_dir, folder)
    card = _card(store_dir)
    assert set(card["fields"]) == set(cards.FIELDS)
    # the page text as loaded joins a paragraph's soft line breaks: compare on single spaces
    texts = {p.name: " ".join(p.read_text(encoding="utf-8").split()) for p in folder.glob("*.md")}
    filled = [v for vs in card["fields"].values() for v in vs]
    assert filled
    for v in filled:
        assert v["evidence"], v
        for e in v["evidence"]:
            assert e["page"] == 1 and e["doc_id"] in {"cdc", "pub", "note"}
            assert any(" ".join(e["sentence"].split()) in t for t in texts.values()), e["sentence"]
    assert "Jonzac" in _values(card, "territories")
    jonzac = _values(card, "territories")["Jonzac"]
    assert jonzac["departement"] == "Charente-Maritime" and jonzac["region"] == "Nouvelle-Aquitaine"
    assert any("Jonzac" in e["sentence"] for e in jonzac["evidence"])
    assert "2021" in _values(card, "year")
    assert "Premier enseignement" in card["fields"]["lessons"][0]["value"]
    assert {d["doc_id"] for d in card["documents"]} == {"cdc", "pub", "note"}


def test_a_field_no_document_states_stays_empty(tmp_path, test_models):
    store_dir = tmp_path / "index"
    _ingest(store_dir, _corpus(tmp_path))
    card = _card(store_dir)
    assert card["fields"]["associations"] == []  # no association of élus is named anywhere
    assert card["fields"]["theme"] == []


def test_documents_that_disagree_give_both_values_each_with_its_source(tmp_path, test_models):
    store_dir = tmp_path / "index"
    _ingest(store_dir, _corpus(tmp_path))
    partners = _values(_card(store_dir), "partners")
    assert {"Caisse des dépôts", "Banque des Territoires"} <= set(partners)
    assert {e["doc_id"] for e in partners["Caisse des dépôts"]["evidence"]} == {"cdc"}
    assert {e["doc_id"] for e in partners["Banque des Territoires"]["evidence"]} == {"pub"}


def test_facts_only_an_internal_document_states_are_marked_interne(tmp_path, test_models):
    store_dir = tmp_path / "index"
    _ingest(store_dir, _corpus(tmp_path))
    presta = _values(_card(store_dir), "prestataires")
    assert "Hydrorives" in presta
    assert [e["visibility"] for e in presta["Hydrorives"]["evidence"]] == ["interne"]
    assert presta["Hydrorives"]["visibility"] == "interne"
    for v in _values(_card(store_dir), "partners").values():
        assert all(e["visibility"] == "public" for e in v["evidence"])


def test_cards_follow_the_documents_when_they_change_or_go(tmp_path, test_models):
    folder = _corpus(tmp_path)
    store_dir = tmp_path / "index"
    _ingest(store_dir, folder)
    assert "Banque des Territoires" in _values(_card(store_dir), "partners")

    (folder / "publication.md").write_text(PUBLICATION.replace("la Banque des Territoires", "l'ADEME"),
                                          encoding="utf-8")
    _ingest(store_dir, folder)
    partners = _values(_card(store_dir), "partners")
    assert "Banque des Territoires" not in partners and "ADEME" in partners

    (folder / "note-interne.md").unlink()
    _ingest(store_dir, folder)
    card = _card(store_dir)
    assert "Hydrorives" not in _values(card, "prestataires")
    assert "note" not in {d["doc_id"] for d in card["documents"]}


def test_a_crash_while_writing_leaves_the_previous_cards(tmp_path, test_models, monkeypatch):
    folder = _corpus(tmp_path)
    store_dir = tmp_path / "index"
    _ingest(store_dir, folder)
    before = (store_dir / cards.CARDS_NAME).read_bytes()

    def crash(*_a, **_k):
        raise OSError("disque plein")

    monkeypatch.setattr(cards.os, "replace", crash)
    with pytest.raises(OSError):
        cards.write_cards(store_dir)
    assert (store_dir / cards.CARDS_NAME).read_bytes() == before
    assert not [p for p in store_dir.iterdir() if p.name.startswith(".cards-")]

    # through an ingest run: the passages are indexed, the cards stay the previous ones, a warning says so
    (folder / "publication.md").write_text(PUBLICATION + "\nUne phrase de plus.\n", encoding="utf-8")
    emb = HashEmbeddings()
    ing = Ingestor(store_dir, open_store(store_dir, "fp_passages", emb.model_id, emb.dim), emb)
    report = ing.run([folder], sync=True)
    assert report.updated and any("fiches fabriques" in w["message"] for w in report.warnings)
    assert (store_dir / cards.CARDS_NAME).read_bytes() == before
    monkeypatch.setattr(cards.os, "replace", os.replace)


def test_no_cards_file_reads_as_an_empty_set(tmp_path):
    assert cards.load_cards(tmp_path) == {"version": 1, "fabriques": []}


# ----------------------------------------------------------------------------- organisation candidates
# The rules that propose who ran or joined a fabrique, read on single sentences (no model: which
# candidates exist, and which cue each carries).


def _orgs(*texts: str, doc_type: str = "cahier_des_charges") -> dict[str, cards.Candidate]:
    doc = cards.DocInfo("d", "d", "corpus/f/d.md", doc_type, None, "public", "f")
    sents = [cards.Sentence(doc, 1, t, "") for t in texts]
    return {c.value: c for c in cards.org_candidates(sents, 1)}


def test_et_before_an_article_parts_two_names_in_any_item():
    got = _orgs("Quatre villes ont été accompagnées par la Scop Ellyx et le cabinet Oxalis, chacune sur "
                "un quartier.")
    assert {"Ellyx", "Oxalis"} <= set(got) and not any(" et " in v for v in got)
    assert got["Ellyx"].features["presta"] > 0 and got["Ellyx"].features["strong"] > 0


def test_a_committee_list_reads_past_acronyms_asides_and_a_final_et():
    got = _orgs("Un comité de pilotage réunit la Direction générale des outre-mer (DGOM), l'Office "
                "français de la biodiversité (OFB), qui cofinance la démarche, et l'Université Jean Moulin "
                "Lyon 3 pour l'apport scientifique.")
    assert "Université Jean Moulin Lyon 3" in got  # « et » dropped, « pour l'apport… » cut
    assert got["Université Jean Moulin Lyon 3"].features["copil"] > 0


def test_a_person_stands_for_the_body_they_represent():
    got = _orgs("Le comité de pilotage réunit le pôle Prospective, un représentant de la direction "
                "générale des entreprises et un représentant du réseau des agences régionales de santé.")
    assert {"direction générale des entreprises", "réseau des agences régionales de santé"} <= set(got)


def test_a_list_after_a_colon_runs_across_semicolons_and_a_list_in_parentheses_is_read():
    got = _orgs("Présents : pôle Prospective ; programme Action cœur de ville ; Tempo territorial.",
                "Le titulaire participe au comité de pilotage national (ANCT, Villes de France, Hydrorives).")
    assert got["programme Action cœur de ville"].features["copil"] > 0
    assert got["Tempo territorial"].features["copil"] > 0
    assert got["Hydrorives"].features["copil"] > 0


def test_who_a_fabrique_was_run_with_and_who_is_associated_to_it_are_partners():
    got = _orgs("Fabrique conduite de juin 2021 à juillet 2022 avec Terres en villes et le Mouvement "
                "des régies.",
                "Le ministère des Solidarités et de la Santé et le ministère de la Transition écologique "
                "sont associés à la démarche.",
                "Étude conduite en 2018 par le CGET, avec l'appui du cabinet Acadie.")
    for name in ("Terres en villes", "Mouvement des régies", "ministère des Solidarités et de la Santé",
                 "ministère de la Transition écologique"):
        assert got[name].features["partner"] > 0 and got[name].features["gov"] > 0, name
    # « du cabinet Acadie » read whole, not « u cabinet Acadie »
    assert got["Acadie"].features["partner"] > 0 and got["Acadie"].features["strong"] > 0
    assert "CGET" not in got  # the organiser, before 2020


def test_a_cue_said_of_another_work_or_a_new_clause_proposes_nothing():
    got = _orgs("Selon une enquête menée par l'ANRU en juin 2021, les habitants demandent des jardins.",
                "Le comité de pilotage, animé par l'ANCT, réunit France urbaine et Terres en villes.")
    assert "ANRU en juin 2021" not in got
    assert got["ANRU"].features["presta"] == 0 and got["ANRU"].features["near_presta"] == 0
    assert got["Terres en villes"].features["presta"] == 0  # « réunit » opens another clause
    assert "ANCT" not in got  # the organiser is no partner


def test_a_territory_committee_counts_apart_from_the_fabrique_one():
    got = _orgs("Un comité de pilotage local associe la ville, le centre social et la Régie Nord.",
                doc_type="feuille_de_route")
    assert got["Régie Nord"].features["gov_local"] > 0 and got["Régie Nord"].features["gov"] == 0


def test_the_piece_of_a_reference_name_cut_at_its_comma_is_not_a_second_name():
    got = _orgs("Le comité de pilotage réunit la Direction générale de l'aménagement, du logement et de "
                "la nature.")
    assert "Direction générale de l'aménagement, du logement et de la nature" in got
    assert "Direction générale de l'aménagement" not in got


def test_two_names_of_one_association_make_one_value_with_both_sources():
    """« AdCF » here, « Assemblée des communautés de France » there: one body, named once on the
    card, the other name under `also`, the evidence of both kept (public first)."""
    from ingest.cards import _merge_same

    def ev(doc: str, sentence: str, visibility: str = "public") -> dict:
        return {"doc_id": doc, "title": doc, "source": f"{doc}.pdf", "page": 1, "sentence": sentence,
                "visibility": visibility}

    values = [
        {"value": "AdCF", "canonical": "Intercommunalités de France", "visibility": "interne",
         "evidence": [ev("note", "L'AdCF copilote la fabrique.", "interne")]},
        {"value": "France urbaine", "canonical": "France urbaine", "visibility": "public",
         "evidence": [ev("cdc", "France urbaine est partenaire.")]},
        {"value": "Assemblée des communautés de France", "canonical": "Intercommunalités de France",
         "visibility": "public",
         "evidence": [ev("cdc", "L'Assemblée des communautés de France est associée.")]},
    ]
    merged = _merge_same(values)
    assert [v["value"] for v in merged] == ["AdCF", "France urbaine"]
    adcf = merged[0]
    assert adcf["also"] == ["Assemblée des communautés de France"] and adcf["visibility"] == "public"
    assert [e["doc_id"] for e in adcf["evidence"]] == ["cdc", "note"]  # public evidence first
