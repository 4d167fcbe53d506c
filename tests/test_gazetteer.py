"""The gazetteer on the shipped data file: what a user sees in labels and filters."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from ingest.gazetteer import DATA_FILE, Gazetteer, Mention, fold

FILLER = (
    "Les participants ont échangé sur les usages du temps, la mobilité et les services publics. "
    "Chaque atelier a réuni des habitants, des élus et des techniciens autour de scénarios contrastés. "
)


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.default()


def names(mentions: list[Mention]) -> list[str]:
    return [m.name for m in mentions]


def by_name(mentions: list[Mention], name: str) -> Mention:
    found = [m for m in mentions if m.name == name]
    assert found, f"{name} absent de {names(mentions)}"
    return found[0]


# ---------------------------------------------------------------- the data file


def test_data_file_is_complete_and_consistent() -> None:
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as f:
        data = json.load(f)
    source = data["source"]
    assert (source["package"], source["version"]) == ("@etalab/decoupage-administratif", "6.0.0")
    communes, epci = data["communes"], data["epci"]
    assert len(communes) >= 34_000
    assert len([e for e in epci if e[2] != "EPT"]) >= 1_200
    sirens = {e[0] for e in epci}
    assert all(c[4] in sirens for c in communes if c[4])
    # only islands without neighbours and overseas collectivities stand outside any EPCI
    mainland = [c for c in communes if not c[2].startswith(("97", "98"))]
    assert sum(1 for c in mainland if not c[4]) <= 10
    codes = {c[0] for c in communes}
    assert all(m in codes for e in epci for m in e[3])
    assert len(data["departements"]) >= 101 and len(data["regions"]) >= 18
    assert DATA_FILE.stat().st_size < 2_000_000


def test_data_file_carries_its_licence() -> None:
    licence = DATA_FILE.with_name("LICENSE-decoupage-administratif.txt")
    text = licence.read_text(encoding="utf-8")
    assert "@etalab/decoupage-administratif 6.0.0" in text.splitlines()[0]
    assert "MIT License" in text and "Permission is hereby granted" in text


def test_common_words_are_flagged_at_build_time(gaz: Gazetteer) -> None:
    def level(name: str) -> int:
        return max(gaz.levels[gaz.places.index(p)] for p in gaz.lookup(name) if p.kind == "commune")

    for word in ("Mer", "Plan", "Eu", "Bar", "Vue", "Ver", "Pont", "Mont"):
        assert level(word) == 2, word
    assert level("Arras") == 0 and level("Angoulême") == 0


def test_default_is_loaded_once(gaz: Gazetteer) -> None:
    assert Gazetteer.default() is gaz
    assert gaz.version == "@etalab/decoupage-administratif@6.0.0"


# ---------------------------------------------------------------- lookups


def test_fold_matches_names_the_way_people_write_them() -> None:
    assert fold("Île-de-France") == "ile-de-france"
    assert fold("L’Haÿ-les-Roses") == "l'hay-les-roses"


def test_lookup_gives_the_commune_with_its_epci(gaz: Gazetteer) -> None:
    arras = gaz.lookup("Arras")[0]
    assert (arras.kind, arras.code, arras.name) == ("commune", "62041", "Arras")
    assert [p.name for p in gaz.linked(arras)] == ["CU d'Arras"]
    assert arras.epci == gaz.linked(arras)[0].code
    assert gaz.context(arras) == {"departement": "Pas-de-Calais", "region": "Hauts-de-France",
                                  "epci": "CU d'Arras"}
    assert gaz.lookup("arras")[0] == arras and gaz.lookup("ARRAS")[0] == arras


def test_lookup_finds_an_epci_by_every_form_of_its_name(gaz: Gazetteer) -> None:
    cu = gaz.lookup("CU d'Arras")[0]
    assert cu.kind == "epci" and cu.code == "200033579"
    assert gaz.lookup("Communauté urbaine d'Arras") == [cu]
    assert gaz.lookup("communauté urbaine d’Arras") == [cu]
    angouleme = gaz.lookup("CA du Grand Angoulême")[0]
    assert gaz.lookup("Grand Angoulême") == [angouleme]
    assert gaz.lookup("Communauté d'agglomération du Grand Angoulême") == [angouleme]
    assert gaz.lookup("Métropole de Lyon")[0].name == "Métropole de Lyon"
    assert gaz.lookup("Brest Métropole")[0].kind == "epci"


def test_linked_gives_an_epci_its_member_communes(gaz: Gazetteer) -> None:
    members = {p.name for p in gaz.linked(gaz.lookup("CU d'Arras")[0])}
    assert {"Arras", "Achicourt", "Saint-Laurent-Blangy"} <= members
    assert all(p.kind == "commune" for p in gaz.linked(gaz.lookup("CU d'Arras")[0]))


def test_lookup_knows_departements_and_regions(gaz: Gazetteer) -> None:
    dep = [p for p in gaz.lookup("Pas-de-Calais") if p.kind == "departement"][0]
    assert dep.code == "62" and gaz.context(dep)["region"] == "Hauts-de-France"
    assert [p.code for p in gaz.lookup("Hauts-de-France") if p.kind == "region"] == ["32"]


@pytest.mark.parametrize(("a", "b"), [
    ("Arras", "CU d'Arras"),
    ("Arras", "Communauté urbaine d'Arras"),
    ("CU d'Arras", "communauté urbaine d'Arras"),
    ("Grand Angoulême", "CA du Grand Angoulême"),
    ("Grand Angoulême", "Angoulême"),
    ("Lyon", "Métropole de Lyon"),
    ("Communauté de communes du Val de Brume", "Val de Brume"),
    ("CC du Val de Brume", "communauté de communes du Val de Brume"),
    ("Arras", "communaute urbaine d arras"),
])
def test_same_territory(gaz: Gazetteer, a: str, b: str) -> None:
    assert gaz.same_territory(a, b)
    assert gaz.same_territory(b, a)


def test_sibling_communes_are_not_the_same_territory(gaz: Gazetteer) -> None:
    assert gaz.lookup("Achicourt")[0].epci == gaz.lookup("Arras")[0].epci
    assert not gaz.same_territory("Arras", "Achicourt")
    assert not gaz.same_territory("Paris", "Lyon")
    assert not gaz.same_territory("Val de Brume", "Val de Lune")


# ---------------------------------------------------------------- find


def test_a_common_word_is_not_a_place(gaz: Gazetteer) -> None:
    assert gaz.find("La mer monte. On regarde la mer depuis la digue, la mer est grise.") == []
    assert gaz.find("Mer calme et ciel bleu. Mer agitée le lendemain. Mer d'huile.") == []


def test_a_common_word_with_a_place_context_is_a_place(gaz: Gazetteer) -> None:
    found = gaz.find("Le séminaire s'est tenu à Mer (Loir-et-Cher), dans la salle des fêtes.")
    assert [(m.name, m.code) for m in found] == [("Mer", "41136")]
    assert gaz.find("Les élus de la commune de Mer ont présenté le projet.")[0].code == "41136"


def test_eu_the_town_and_eu_the_verb(gaz: Gazetteer) -> None:
    assert gaz.find("Il eu fallu plus de temps. Eu égard aux délais, l'atelier est reporté.") == []
    found = gaz.find("La ville d'Eu accueille l'atelier. Les habitants d'Eu y participent.")
    assert [(m.name, m.code) for m in found] == [("Eu", "76255")]


def test_a_capitalised_word_at_a_sentence_start_is_not_evidence(gaz: Gazetteer) -> None:
    assert gaz.find("Vue d'ensemble du projet. Plan d'action pour 2030. Pont entre les acteurs.") == []


def test_homonyms_are_resolved_by_their_departement(gaz: Gazetteer) -> None:
    text = ("À Saint-Denis, en Seine-Saint-Denis, la ville porte la démarche. "
            "Saint-Denis a réuni ses partenaires ; Saint-Denis accueillera la restitution.")
    assert by_name(gaz.find(text), "Saint-Denis").code == "93066"
    text = ("Le séminaire a eu lieu à Saint-Denis (La Réunion). "
            "Saint-Denis a réuni ses partenaires ; Saint-Denis accueillera la restitution.")
    assert by_name(gaz.find(text), "Saint-Denis").code == "97411"


def test_an_unresolved_homonym_keeps_its_name_but_no_code(gaz: Gazetteer) -> None:
    text = "À Saint-Denis, la ville porte la démarche. Saint-Denis a réuni ses partenaires à Saint-Denis."
    m = by_name(gaz.find(text), "Saint-Denis")
    assert m.kind == "commune" and m.code == ""


def test_a_territory_the_data_does_not_hold_is_found_by_its_pattern(gaz: Gazetteer) -> None:
    text = ("La Communauté de communes du Val de Brume porte la fabrique. "
            "Le Val de Brume compte douze communes ; le Val de Brume mise sur la forêt.")
    m = by_name(gaz.find(text), "Communauté de communes du Val de Brume")
    assert (m.kind, m.code) == ("collectivite", "")
    assert "communauté de communes" in m.evidence
    assert gaz.find("Le texte est publié sous licence CC BY-SA. CC BY-SA 4.0 s'applique.") == []


def test_a_known_epci_is_found_in_its_long_form(gaz: Gazetteer) -> None:
    found = gaz.find("La communauté urbaine d'Arras anime le projet. La Communauté urbaine d'Arras finance.")
    assert [(m.name, m.kind, m.code) for m in found] == [("CU d'Arras", "epci", "200033579")]


def test_commune_and_epci_are_both_kept_best_first(gaz: Gazetteer) -> None:
    text = ("Grand Angoulême et la ville d'Angoulême co-pilotent la fabrique. "
            "Le Grand Angoulême finance, Angoulême accueille. Le Grand Angoulême anime les ateliers.")
    found = gaz.find(text, title="Séminaire du Grand Angoulême")
    assert names(found) == ["CA du Grand Angoulême", "Angoulême"]
    assert found[0].score > found[1].score


def test_title_alone_is_enough_a_passing_mention_is_not(gaz: Gazetteer) -> None:
    body = FILLER * 300 + "Un participant venait de Bordeaux. " + FILLER * 20
    found = gaz.find(body, title="Compte rendu du séminaire de Gornac")
    assert names(found) == ["Gornac"]
    assert "titre" in found[0].evidence


def test_frequency_in_the_body_counts(gaz: Gazetteer) -> None:
    body = FILLER * 10 + " ".join(["Les acteurs de Decazeville s'organisent."] * 8) + FILLER * 10
    assert names(gaz.find(body)) == ["Decazeville"]


def test_a_street_name_is_not_the_place(gaz: Gazetteer) -> None:
    text = ("Nos bureaux sont au 12 rue de Paris. L'atelier a lieu avenue de Lyon, "
            "puis au lycée Gornac et place de Paris.")
    assert gaz.find(text) == []
    assert names(gaz.find("Réunion à Paris, puis visite de Paris avec les élus de Paris.")) == ["Paris"]


def test_limit_is_respected(gaz: Gazetteer) -> None:
    towns = ["Arras", "Angoulême", "Brest", "Nantes", "Rennes", "Lille", "Gornac", "Bagnolet", "Colmar"]
    title = "Rencontre de " + ", ".join(towns)
    assert len(gaz.find("", title=title, limit=3)) == 3
    assert set(names(gaz.find("", title=title, limit=20))) == set(towns)


def test_find_is_fast_enough_for_every_document(gaz: Gazetteer) -> None:
    text = (FILLER + "La ville d'Arras et la CU d'Arras, avec Angoulême et Plaine Commune. ") * 250
    assert len(text) > 50_000
    start = time.perf_counter()
    found = gaz.find(text[:100_000], title="Synthèse")
    assert time.perf_counter() - start < 2.0
    assert {"Arras", "CU d'Arras"} <= set(names(found))
