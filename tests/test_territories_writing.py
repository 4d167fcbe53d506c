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


# A list page: one paragraph per fabrique, its places named once each, in enumerations (public page
# « Liste des fabriques », issue #27 item 4).
LIST_PAGE = """# Liste des démarches

Pour chacune : l'année de lancement et les territoires qui y ont pris part.

## Temps et rythmes de vie

Blois, Cahors, Châtellerault et Colmar, quatre agglomérations Action cœur de ville. Partenaires : Villes de
France et Tempo territorial.

## Tourisme responsable

Quatre communautés de communes peu touristiques : Cœur du Var, Cœur de Savoie, Lauragais Revel Sorèzois et
la communauté de communes du Sud, à Mayotte.

## Petites villes et santé

Chantepie, Mouans-Sartoux, Ramonville-Saint-Agne et Saint-Péray, avec l'Association des petites villes.

## Vieillir en périurbain

Bagnolet, Nîmes, Prémesques et Saint-Georges-des-Coteaux.
"""

PASSING = """# Des bancs pour les aînés à Bagnolet

La ville de Bagnolet a installé vingt bancs le long des trajets vers le marché. La démarche, conduite à
Bagnolet aux côtés de Nîmes, Prémesques et Saint-Georges-des-Coteaux, a duré un an. À Bagnolet, les
habitants ont choisi les emplacements.
"""


def test_every_member_of_an_opening_enumeration_counts(tmp_path: Path, gz: Gazetteer) -> None:
    """A paragraph opening on « A, B, C et D », or on a lead naming places and « : », is about every
    member; the eight-label cap is for running text, not for a list page."""
    meta = _meta(tmp_path, "liste.md", LIST_PAGE)
    for place in ("Blois", "Cahors", "Châtellerault", "Colmar", "Cœur du Var", "Cœur de Savoie",
                  "Lauragais Revel Sorèzois", "Chantepie", "Mouans-Sartoux", "Ramonville-Saint-Agne",
                  "Saint-Péray", "Bagnolet", "Nîmes", "Prémesques", "Saint-Georges-des-Coteaux"):
        assert any(t == place or gz.same_territory(place, t) for t in meta.territories), \
            (place, meta.territories)
    assert len(meta.territories) > 8
    # « Lauragais Revel Sorèzois » is not the commune of Revel; « Villes de France » is no place
    assert "Revel" not in meta.territories and "France" not in meta.territories


def test_an_enumeration_cited_in_passing_is_not_the_subject(tmp_path: Path) -> None:
    """« aux côtés de Nîmes, Prémesques et … » in the middle of a sentence: other participants."""
    meta = _meta(tmp_path, "bancs.md", PASSING)
    assert meta.territories == ["Bagnolet"]


def test_an_enumeration_needs_official_places(gz: Gazetteer) -> None:
    from ingest.infer import enumeration

    # people, not places; a run of capitalised words is not a list because it has commas
    assert enumeration("Jean Dupont, Marie Martin et Paul Durand ont signé la charte.", gz) == []
    assert enumeration("Mobilités, alimentation, eau : la métropole s'engage.", gz) == []
    # « Vie et Boulogne » is one name, « le Cotentin » the agglomeration's short name
    names = [m.name for m in enumeration("Niortais, Vie et Boulogne, Pays du Coquelicot et le Cotentin, "
                                         "avec l'AdCF.", gz)]
    assert names == ["CA du Niortais", "CC de Vie et Boulogne", "CC du Pays du Coquelicot", "CA du Cotentin"]


def test_a_list_under_its_heading_gives_every_member(tmp_path: Path, gz: Gazetteer) -> None:
    """An announced section whose paragraph is an enumeration gives all of it, not its first place."""
    text = ("# Sites industriels : les résultats\n\nLe rapport final est publié.\n\n"
            "## Les territoires participants\n\n"
            "Gard Rhodanien, Melun Val de Seine, Niortais, Pays du Coquelicot et Vierzon-Sologne-Berry.\n")
    meta = _meta(tmp_path, "sites.md", text)
    for place in ("Gard Rhodanien", "Melun Val de Seine", "Niortais", "Pays du Coquelicot", "Vierzon"):
        assert any(place in t for t in meta.territories), (place, meta.territories)


def test_a_sentence_opening_on_a_place_is_about_it(gz: Gazetteer) -> None:
    """« À Jonzac, … » makes Jonzac the sentence's subject (a newsletter names each site once, that
    way); a venue at the end of a sentence, a département framing the subject, a name the data lacks
    are not subjects."""
    from ingest.infer import subjects

    text = ("Huit communes ont imaginé la vie de leurs aînés. À Jonzac, la feuille de route mise sur un "
            "habitat inclusif. À Vernouillet, plus de 40 partenaires se sont mobilisés. Le séminaire aura "
            "lieu à Paris, en mai. À Mayotte, la communauté de communes du Sud veut faire connaître ses "
            "mangroves. À Bellecombe-sur-Lisonne, rien.")
    assert [m.name for m in subjects(text, gz)] == ["Jonzac", "Vernouillet"]
    # a short locative frame, then the subject, whose whole name must be official
    framed = ("En Savoie, Cœur de Savoie prépare l'après-neige. En 2023, Claire Vidalenc a suivi la "
              "démarche. Au pied de la Montagne noire, Lauragais Revel Sorèzois cherche l'inverse.")
    assert [m.name for m in subjects(framed, gz)] == ["CC Coeur de Savoie"]


def test_a_petr_and_a_pole_metropolitain_stay_as_written(gz: Gazetteer) -> None:
    """A PETR and a pôle métropolitain are syndicats, not EPCI: named with their prefix they are
    territories as written, never the agglomeration or the city their name contains."""
    text = ("La conférence s'est tenue en présence de onze communautés de communes, du PETR du Pays de "
            "Retz et du pôle métropolitain Nantes Saint-Nazaire.")
    names = [m.name for m in gz.find(text, title=text)]
    assert "PETR du Pays de Retz" in names and "Pôle métropolitain Nantes Saint-Nazaire" in names
    assert not any(n in ("Pays de Retz", "CARENE", "Nantes Métropole", "Nantes") for n in names), names
    assert gz.lookup("PETR du Pays de Retz") == []
    assert gz.lookup("pôle métropolitain Nantes Saint-Nazaire") == []
    assert gz.same_territory("PETR du Pays de Retz", "Pays de Retz")
