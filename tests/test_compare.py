"""Compare mode: one row per territory whose own documents were read, the fabrique's view in its
own row, last; the territory's other extracts beside its best one; rows ordered by evidence.

The first tests give `compare` a lead model that reads only retrieval's rank (the passages'
order stands for their evidence), so that they state the table's rules themselves; the last ones
run the real decisions (session fixture `e5`) on hand-built passages, as tests/test_answer.py
does, and on the sample corpus (session fixture `corpus_index`).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_answer import _p as answer_passage
from test_answer import _verbatim, answering, rank_only

import assistant.answering.extractive as extractive_mod
from assistant.answering.citations import MARKER
from assistant.answering.extractive import (
    NATIONAL_ROW,
    Answer,
    Evidence,
    ExtractiveAnswerer,
    compare,
    compare_coverage,
)
from assistant.config import Settings
from assistant.retriever import Passage
from ingest.gazetteer import Gazetteer

TEMPO = ("temporalites-rythmes-villes-moyennes", "Temporalités et rythmes de vie dans les villes moyennes")
SENIOR = ("senior-petite-ville", "Dans un monde en transition, être senior demain dans une petite ville")
TEMPO_SITES = ["Blois", "Grand Cahors", "Grand Châtellerault", "Colmar"]

FOUR_CITIES = ("Colmar, Blois, Cahors et Châtellerault ont tous constaté que les salariés en horaires "
               "décalés sont mal desservis par les transports collectifs avant 6 h et après 21 h.")
BLOIS_ALONE = ("À Blois, la ville a élargi les horaires d'accueil de la crèche municipale pour les parents "
               "qui travaillent en horaires décalés.")
COLMAR_CR = ("Les salariés postés des zones d'activités de l'agglomération arrivent au travail avant le "
             "premier bus de 6 h 15 et repartent après le dernier.")
COLMAR_ACTION = ("Expérimenter un transport à la demande vers les zones d'activités aux prises de poste de "
                 "5 h et 21 h")
COLMAR_ACTION_2 = "Ouvrir une crèche en horaires élargis (6 h – 21 h) dans un quartier proche de l'hôpital"
CHATEL_1 = ("À Grand Châtellerault, une navette de rabattement vers la zone industrielle, calée sur les "
            "prises de poste de 5 h et de 21 h, a été conçue avec les employeurs.")
CHATEL_2 = ("Faute de transport aux horaires de nuit, des demandeurs d'emploi refusent des postes en "
            "horaires décalés.")
CAHORS_PISTE = "un guichet unique des services publics ouvert le samedi matin et deux soirs par semaine ;"
CAHORS_CR = ("Le groupe local de Grand Cahors a recensé les horaires des services publics au regard des "
             "horaires décalés des salariés de l'hôpital.")
PUBLICATION = ("La Fabrique recommande d'associer les employeurs à l'adaptation des horaires des services "
               "publics et des transports.")


def _p(rank: int, text: str, title: str, **kw: Any) -> Passage:
    """test_answer's passage builder, with this module's fabrique and year by default."""
    kw.setdefault("fabrique", TEMPO)
    kw.setdefault("year", 2021)
    return answer_passage(rank, text, title, **kw)


@pytest.fixture(scope="module")
def passages() -> list[Passage]:
    return [
        _p(1, f"{FOUR_CITIES} {BLOIS_ALONE}",
           "Synthèse des séminaires intersites — temporalités", territories=TEMPO_SITES,
           doc_type="seminaire_intersites", doc_id="tempo-synthese"),
        _p(2, f"{COLMAR_CR} Les commerçants du centre ferment majoritairement avant 19 h.",
           "Compte rendu du séminaire local n°1 — Colmar", territories=["Colmar"],
           doc_id="tempo-cr-colmar-1"),
        _p(3, "Programme d'actions\n"
              "| Action | Porteur | Partenaires | Calendrier | Indicateurs |\n"
              "|---|---|---|---|---|\n"
              f"| {COLMAR_ACTION} | Colmar Agglomération, direction des mobilités | Exploitant du réseau "
              "de bus, employeurs des zones d'activités | Expérimentation 2023 | Nombre de courses |\n"
              f"| {COLMAR_ACTION_2} | Ville de Colmar, direction de la petite enfance | Caisse d'allocations "
              "familiales, centre hospitalier | Étude 2023, ouverture 2024 | Places en horaires élargis |",
           "Feuille de route — Colmar Agglomération", territories=["CA Colmar Agglomération"],
           doc_type="feuille_de_route", page=3, doc_id="tempo-fdr-colmar", section="Programme d'actions"),
        _p(4, f"{CHATEL_1} {CHATEL_2}", "Compte rendu du séminaire local n°2 — Grand Châtellerault",
           territories=["Grand Châtellerault"], doc_id="tempo-cr-grand-chatellerault-2"),
        _p(5, f"{CAHORS_CR}\nPistes d'action évoquées\n- {CAHORS_PISTE}\n"
              "- une information commune sur les horaires des crèches et des transports.",
           "Compte rendu du séminaire local n°3 — Grand Cahors", territories=["Grand Cahors"],
           doc_id="tempo-cr-grand-cahors-3"),
        _p(6, PUBLICATION, "Enseignements de la Fabrique temporalités", territories=TEMPO_SITES,
           doc_type="publication", year=2023, doc_id="tempo-publication"),
    ]


EVIDENCE = Evidence(0.8, False)
QUESTION = "Comment les territoires ont-ils traité la question des salariés en horaires décalés ?"


def by_rank(passages: list[Passage], question: str = QUESTION) -> Answer:
    """The comparison when the passages' order is their evidence."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extractive_mod, "load_models", lambda *_a: rank_only())
        return compare(question, passages, EVIDENCE)


def _row(result: Answer, name: str) -> dict:
    same = Gazetteer.default().same_territory
    found = [r for r in result.rows if same(r["territory"], name)]
    assert len(found) == 1, (name, [r["territory"] for r in result.rows])
    return found[0]


def _plain(quote: str) -> str:
    return MARKER.sub("", quote).replace("**", "").strip()


def _quotes(row: dict) -> list[str]:
    return [_plain(q) for q in [row["approach"], *row["actions"]]]


def _docs(result: Answer, row: dict) -> set[str]:
    return {c.doc_id for c in result.citations if c.n in row["citations"]}


@pytest.fixture(scope="module")
def table(passages) -> Answer:
    return by_rank(passages)


def test_a_synthesis_naming_four_cities_goes_to_the_fabrique_row(table):
    territories = [r["territory"] for r in table.rows]
    assert territories[-1] == NATIONAL_ROW, territories
    assert FOUR_CITIES in _plain(table.rows[-1]["approach"])
    assert _docs(table, table.rows[-1]) == {"tempo-synthese", "tempo-publication"}
    for row in table.rows[:-1]:
        assert not any(FOUR_CITIES in q for q in _quotes(row)), row


def test_every_territory_with_its_own_document_gets_a_row(table):
    rows = {r["territory"] for r in table.rows}
    assert len(rows) == len(table.rows)
    own = {"Colmar": {"tempo-cr-colmar-1", "tempo-fdr-colmar"},
           "Grand Châtellerault": {"tempo-cr-grand-chatellerault-2"},
           "Grand Cahors": {"tempo-cr-grand-cahors-3"}}
    for name, docs in own.items():
        assert _docs(table, _row(table, name)) == docs


def test_colmar_and_ca_colmar_agglomeration_are_one_row(table):
    colmar = _row(table, "Colmar")
    assert colmar["territory"] in {"Colmar", "CA Colmar Agglomération"}
    assert _docs(table, colmar) == {"tempo-cr-colmar-1", "tempo-fdr-colmar"}


def test_other_extracts_come_from_the_territorys_own_documents(table, passages):
    colmar = _row(table, "Colmar")
    assert COLMAR_CR in _plain(colmar["approach"])  # its best passage (the first here)
    assert len(colmar["actions"]) == 1 and _verbatim(_plain(colmar["actions"][0]), passages[2])
    assert _docs(table, colmar) == {"tempo-cr-colmar-1", "tempo-fdr-colmar"}
    assert _row(table, "Grand Châtellerault")["actions"] == []
    line = next(ln for ln in table.text.splitlines() if ln.startswith("| Grand Châtellerault"))
    assert line.split(" | ")[2] == "—"
    for line in table.text.splitlines()[2:]:
        assert line.count("|") == 5, f"a cell breaks the table: {line}"  # a quoted table's "|" too


def test_rows_are_ordered_by_evidence(passages):
    forward = by_rank(passages)
    assert [r["territory"] for r in forward.rows] == [
        "Colmar", "Grand Châtellerault", "Grand Cahors", NATIONAL_ROW]
    backward = by_rank(passages[::-1])
    assert [r["territory"] for r in backward.rows] == [
        "Grand Cahors", "Grand Châtellerault", "CA Colmar Agglomération", NATIONAL_ROW]


def test_the_table_keeps_its_contract(table, passages):
    assert table.mode == "compare" and table.grounded
    assert "| Territoire | Approche | Autres extraits | Sources |" in table.text
    numbers = {c.n for c in table.citations}
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    for row in table.rows:
        assert set(row) == {"territory", "approach", "actions", "citations"}
        assert row["citations"] and set(row["citations"]) <= numbers
        assert len(_plain(row["approach"])) <= 380
        for quote in _quotes(row):
            assert any(_verbatim(quote, p) for p in passages), quote


def test_a_territory_named_only_in_a_synthesis_gets_no_row(table, passages):
    """A row says « this territory did that »: Blois has no document of its own here."""
    assert not any(Gazetteer.default().same_territory(r["territory"], "Blois") for r in table.rows)
    with_blois = [*passages, _p(7, "Le groupe local de Blois a travaillé avec les employeurs du secteur "
                                   "hospitalier sur les horaires décalés.",
                                "Compte rendu du séminaire local n°1 — Blois", territories=["Blois"],
                                doc_id="tempo-cr-blois-1")]
    result = by_rank(with_blois)
    blois = _row(result, "Blois")
    assert _docs(result, blois) == {"tempo-cr-blois-1"}
    assert _plain(blois["approach"]).startswith("Le groupe local de Blois")
    assert result.rows[-1]["territory"] == NATIONAL_ROW


def test_one_row_per_fabrique_when_several_speak(passages):
    other = _p(7, "La Fabrique a montré que les aînés qui ne conduisent plus dépendent des horaires des "
                  "transports et des services.", "Synthèse des séminaires intersites — senior",
               territories=["Jonzac", "Craponne-sur-Arzon"], fabrique=SENIOR, doc_type="seminaire_intersites",
               doc_id="senior-synthese")
    result = by_rank([*passages, other])
    labels = [r["territory"] for r in result.rows]
    assert f"Fabrique « {TEMPO[1]} »" in labels and f"Fabrique « {SENIOR[1]} »" in labels
    assert NATIONAL_ROW not in labels
    assert labels.index(f"Fabrique « {TEMPO[1]} »") > labels.index("Grand Cahors")


def test_coverage_counts_rows_and_own_documents_cited(table):
    assert compare_coverage(table, ["Colmar", "Grand Châtellerault", "Grand Cahors"]) == 1.0
    assert compare_coverage(table, ["Colmar Agglomération", "Vierzon"]) == 0.5
    assert compare_coverage(table, []) == 1.0
    refused = Answer("Je n'ai pas trouvé de réponse dans le corpus.", False, mode="compare")
    assert compare_coverage(refused, ["Colmar"]) == 0.0


def test_compare_uses_the_answerers_decisions(e5, passages):
    answerer = ExtractiveAnswerer(Settings(), e5)
    answerer.models = rank_only()
    reordered = passages[::-1]
    result = answerer.answer(QUESTION, reordered, mode="compare")
    assert [r["territory"] for r in result.rows] == [r["territory"] for r in by_rank(reordered).rows]


# --------------------------------------------------------------------------- real model


def test_compare_with_the_real_model(e5, passages):
    answerer = ExtractiveAnswerer(Settings(), e5)
    answerer.models = answering()
    result = answerer.answer(QUESTION, passages, mode="compare")
    assert result.mode == "compare" and result.grounded
    labels = [r["territory"] for r in result.rows]
    for name in ("Colmar", "Grand Châtellerault", "Grand Cahors"):
        _row(result, name)
    for row in result.rows:
        if row["territory"] != NATIONAL_ROW:
            assert not any(FOUR_CITIES in q for q in _quotes(row)), row
    assert labels[-1] == NATIONAL_ROW
    assert _row(result, "Colmar")["actions"], result.text


# --------------------------------------------------------------------------- sample corpus

GOLD_COMPARE = ("Comment les territoires de la Fabrique temporalités ont-ils traité la question des "
                "salariés en horaires décalés ?")


def test_compare_on_the_sample_corpus(corpus_index, e5):
    """tempo-04 of the gold set: both sites whose reports speak of shift workers have a row, read
    as the product reads a comparison (compare_context); rows of no territory come last."""
    from assistant.retriever import Retriever, compare_context

    store_dir, ingestor, _ = corpus_index
    retriever = Retriever(ingestor.store, ingestor.registry, e5, "interne")
    settings = Settings(store=store_dir)
    passages = compare_context(retriever, GOLD_COMPARE, None, settings)
    # compare itself, whatever the refusal gate in front of it decides
    ev = ExtractiveAnswerer(settings, e5).evidence(GOLD_COMPARE, passages)
    result = compare(GOLD_COMPARE, passages, ev)
    assert compare_coverage(result, ["Colmar", "Grand Châtellerault"]) == 1.0, result.text
    labels = [r["territory"] for r in result.rows]
    assert len(labels) == len(set(labels)), labels
    # rows that are no territory's: a fabrique's view, or a document of no fabrique (a public page)
    wide = [i for i, label in enumerate(labels)
            if label == NATIONAL_ROW or label.startswith(("Fabrique « ", "Document : "))]
    assert wide and wide == list(range(len(labels) - len(wide), len(labels))), labels


def test_a_comparison_reads_every_territorys_own_reports(corpus_index, e5):
    """One search ranks a fabrique's syntheses and the roadmap that uses the question's words
    first; the other territories' reports, which speak of the theme in their own words, are
    read for a comparison by a search of their own, and get their rows."""
    from assistant.retriever import Retriever, answer_context, compare_context, own_territory

    store_dir, ingestor, _ = corpus_index
    retriever = Retriever(ingestor.store, ingestor.registry, e5, "interne")
    settings = Settings(store=store_dir)
    question = ("Comment les territoires de la Fabrique alimentation durable ont-ils traité la question "
                "de l'aide alimentaire ?")
    sites = retriever.own_territories("alimentation-durable-qpv")
    assert {"Plaine Commune", "Grand Angoulême", "Saint-Joseph"} <= set(sites)
    alone = {own_territory(p.meta) for p in answer_context(retriever, question, None, settings)}
    assert not set(sites) <= alone  # what one search leaves out
    passages = compare_context(retriever, question, None, settings)
    assert set(sites) <= {own_territory(p.meta) for p in passages}
    result = ExtractiveAnswerer(settings, e5).answer(question, passages, mode="compare")
    assert compare_coverage(result, ["Plaine Commune", "Grand Angoulême", "Saint-Joseph"]) == 1.0, result.text


class _Sites:
    """A retriever over one fabrique of four sites, whose first search finds only a synthesis:
    it records which territories a comparison searches."""

    def __init__(self) -> None:
        self.searched: list[str | None] = []

    def own_territories(self, fabrique: str) -> list[str]:
        return TEMPO_SITES

    def neighbours(self, passages: list[Passage], n: int) -> list[Passage]:
        return []

    def search(self, query: str, k: int = 10, filters: Any = None, **_kw: Any) -> list[Passage]:
        self.searched.append(filters.territory if filters else None)
        if filters is None or filters.territory is None:
            return [_p(1, PUBLICATION, "Synthèse des séminaires intersites", territories=TEMPO_SITES,
                       doc_type="seminaire_intersites")]
        return [_p(1, CHATEL_2, f"CR {filters.territory}",
                   territories=[filters.territory])]


def test_a_comparison_searches_the_territories_the_question_names_else_all():
    from assistant.retriever import compare_context, own_territory

    settings = Settings()
    sites = _Sites()
    passages = compare_context(sites, "Comment les villes ont-elles adapté les horaires ?", None, settings)
    assert sites.searched == [None, *TEMPO_SITES]
    assert [own_territory(p.meta) for p in passages] == [None, *TEMPO_SITES]
    sites = _Sites()
    compare_context(sites, "Comment Colmar et Grand Cahors ont-ils adapté les horaires ?", None, settings)
    assert sites.searched == [None, "Grand Cahors", "Colmar"]
    sites = _Sites()  # one territory asked for by the filter: nothing to add
    from assistant.retriever import Filters

    compare_context(sites, "Comment adapter les horaires ?", Filters(territory="Colmar"), settings)
    assert sites.searched == ["Colmar"]
