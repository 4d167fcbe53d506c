"""Territories and fabrique names from documents as people write them, text only: a tender's
announced list, a title naming an unlisted commune, a theme frame or a clause mistaken for a
fabrique name, a quarter that belongs to its commune (issue #27, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.fabriques import Catalog, is_clause, named_fabriques
from ingest.gazetteer import Gazetteer
from ingest.loaders import load
from ingest.metadata import Manifest, resolve
from ingest.models import DocMeta, LoadedDocument

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MANIFEST = REPO / "corpus" / "manifest.yaml"

TENDER = """# Cahier des charges — Fabrique prospective « Mobilités du quotidien dans les villes moyennes »

## 1. Contexte

L'Agence nationale de la cohésion des territoires lance une fabrique prospective consacrée aux
mobilités du quotidien. En France, les villes moyennes accueillent près d'un quart de la population ;
partout en France, leurs habitants dépendent de la voiture. La France compte plus de deux cents villes
moyennes.

## 2. Objet de la mission

Le prestataire retenu animera quatre séminaires locaux par territoire et un séminaire intersites. Il
remettra une feuille de route par territoire et une publication des enseignements.

## 3. Méthode

Les ateliers associeront élus, techniciens, entreprises et habitants, à parts égales.

## 4. Territoires accompagnés

- l'intercommunalité d'Arras ;
- l'intercommunalité de Bourges ;
- l'intercommunalité de Clermont-Ferrand ;
- la communauté d'agglomération du Pays Foix-Varilhes.

## 5. Calendrier

La mission débutera en mars 2024 et s'achèvera en février 2025.
"""

ROADMAP = """# Feuille de route de Bellecombe-sur-Lisonne

Adoptée par le conseil municipal le 12 juin 2023, cette feuille de route rassemble les actions retenues
à l'issue des séminaires locaux.

## Action 1 : ouvrir la cour de l'école le samedi

Les habitants ont demandé un lieu de rencontre pour les familles.

## Action 2 : un marché de producteurs

Un marché hebdomadaire sera organisé sur la place de l'église.
"""

THEME = """# Compte rendu du séminaire local n°2

Fabrique prospective sur le thème de la sobriété foncière dans les bourgs ruraux, séance du 4 avril 2023.

Les participants ont présenté les friches commerciales du centre-bourg et les logements vacants.
"""

CLAUSE = """# Synthèse des échanges

Les travaux de la fabrique prospective sur les temps de la ville confirment une intuition portée par
les élus : les horaires des services publics ne suivent plus ceux des habitants.
"""

# An interview page: a banner naming the programme, then the élu's words as the headline, then the
# fabrique described in a sentence whose end has to be guessed (public pages, issue #27 item 1).
INTERVIEW = """Document d'illustration — inspiré du dispositif public des Fabriques Prospectives

« À Bellecombe, personne ne doit rester seul pendant une canicule »

Les travaux de la Fabrique prospective consacrée aux fraîcheurs urbaines confirment ce que disait l'élue.
"""

QUARTER = """# Compte rendu du séminaire local n°1 — Cité du Parc

Réunion du 3 mai 2022 à la maison de quartier de la Cité du Parc, à Villeurbanne.

Les habitants de la Cité du Parc ont décrit les jardins partagés. La Cité du Parc compte 2 000 habitants.
Le bailleur de la Cité du Parc prévoit une réhabilitation.
"""


def _meta(tmp_path: Path, name: str, text: str) -> DocMeta:
    """A stranger's document: text only (no manifest entry, sidecar or front matter), read by an
    ingest that knows the sample corpus' fabriques."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    loaded = load(path)
    loaded = LoadedDocument(path=loaded.path, pages=loaded.pages, file_meta={}, fmt=loaded.fmt,
                            running=loaded.running)
    manifest = Manifest.load(SAMPLE_MANIFEST)
    manifest.documents, manifest.root = {}, None
    return resolve(path, loaded, manifest, name, Catalog(manifest.fabriques.values()))


@pytest.fixture(scope="module")
def gz() -> Gazetteer:
    return Gazetteer.default()


def test_a_list_under_its_heading_gives_the_territories(tmp_path: Path, gz: Gazetteer) -> None:
    meta = _meta(tmp_path, "cahier-des-charges.md", TENDER)
    for place in ("Arras", "Bourges", "Clermont-Ferrand"):
        assert any(gz.same_territory(place, t) for t in meta.territories), (place, meta.territories)
    assert any("Foix-Varilhes" in t for t in meta.territories)
    assert "France" not in meta.territories
    assert "liste « 4. Territoires accompagnés »" in meta.provenance["territories"]


def test_a_title_names_a_commune_the_official_list_lacks(tmp_path: Path) -> None:
    meta = _meta(tmp_path, "feuille-de-route.md", ROADMAP)
    assert meta.territories == ["Bellecombe-sur-Lisonne"]
    assert meta.doc_type == "feuille_de_route"


def test_a_theme_frame_is_not_a_fabrique_name(tmp_path: Path) -> None:
    meta = _meta(tmp_path, "cr-2.md", THEME)
    assert meta.fabrique_title == "Sobriété foncière dans les bourgs ruraux"
    assert named_fabriques("Fabrique prospective sur le thème « Sobriété foncière »") == ["Sobriété foncière"]
    assert named_fabriques("Fabrique prospective sur le thème, en 2023, des élus réunis") == []


def test_a_clause_is_not_a_fabrique_name(tmp_path: Path) -> None:
    # the name is read up to the verb, but its end is a guess: it may join a known fabrique, it
    # founds none (« Temps de la ville » is how a public page describes a known fabrique titled
    # otherwise: founding it was a wrong fabrique)
    assert named_fabriques(CLAUSE) == ["Les temps de la ville"]
    meta = _meta(tmp_path, "synthese.md", CLAUSE)
    assert meta.fabrique == "" and meta.fabrique_title == ""
    # « du », « des » open a complement, not a clause
    assert named_fabriques("Cette synthèse clôt la Fabrique prospective sur la cybersécurité des "
                           "collectivités bretonnes.") == ["La cybersécurité des collectivités bretonnes"]


def test_a_quarter_is_not_a_territory(tmp_path: Path) -> None:
    meta = _meta(tmp_path, "cr-cite-du-parc.md", QUARTER)
    assert meta.territories == ["Villeurbanne"]
    assert "Le Parc" not in meta.territories


def test_a_quarter_counts_for_its_commune(gz: Gazetteer) -> None:
    """Named once with its commune, a quarter's later mentions (the title's too) are the commune's."""
    title = "Compte rendu du séminaire local n°2 — QPV La Rabaterie"
    text = ("Séance du 14 juin 2022 au centre social du QPV La Rabaterie (Saint-Pierre-des-Corps).\n"
            "Les habitants du QPV La Rabaterie ont proposé un quartier éponge.")
    found = gz.find(text, title=title, head=text)
    assert [m.name for m in found] == ["Saint-Pierre-des-Corps"]
    assert "titre" in found[0].evidence
    assert gz.find("Les habitants du QPV La Rabaterie ont proposé un quartier éponge.",
                   title="QPV La Rabaterie") == []


def test_a_quoted_sentence_is_never_a_fabrique_name(tmp_path: Path) -> None:
    """An élu's words quoted as a page's headline name no fabrique, under a banner naming the
    programme or right after « fabrique »."""
    meta = _meta(tmp_path, "interview.md", INTERVIEW)
    assert meta.fabrique == "" and meta.fabrique_title == ""
    assert "canicule" not in meta.provenance.get("fabrique", "")
    # on the same line, a quoted clause is still somebody's words
    assert named_fabriques("Fabrique prospective « Le temps est un service public comme un autre »") == []
    assert named_fabriques("Fabrique prospective « Un terrain vendu doit être un terrain bâti »") == []
    # a paragraph break ends « fabrique »: the next paragraph's quote is not its name
    assert named_fabriques("des Fabriques Prospectives\n\n« Sobriété foncière »") == []


def test_names_stay_names() -> None:
    """Noun phrases and infinitive questions, with words that are verbs elsewhere, are names."""
    for name in ("Territoires du Grand Est", "Le fait métropolitain dans l'Est",
                 "Territoires industriels : comment renforcer le capital social ?",
                 "Être senior demain dans une petite ville"):
        assert not is_clause(name), name
        assert named_fabriques(f"Fabrique prospective « {name} »") == [name]
    assert is_clause("À Jonzac, personne ne doit rester seul pendant une canicule")
    assert is_clause("Ce que l'Est n'oublie pas")
