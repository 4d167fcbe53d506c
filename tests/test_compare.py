"""Compare mode: one row per territory whose own documents speak to the theme, the fabrique's
view in its own row, actions from the territory's roadmap, rows ordered by how much each says.

The first tests give `compare` hand-set relevances (no model), so that they state the rules
themselves; the last ones run the real extractive answerer (session fixture `e5`) on hand-built
passages, as tests/test_answer.py does, and on the sample corpus (session fixture `corpus_index`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_answer import _p as answer_passage

from assistant.answering.citations import MARKER
from assistant.answering.extractive import (
    NATIONAL_ROW,
    Answer,
    Candidate,
    Evidence,
    ExtractiveAnswerer,
    compare,
    compare_coverage,
)
from assistant.answering.frtext import split_units
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


def _evidence(passages: list[Passage], rel: dict[str, float]) -> Evidence:
    """Every non-heading sentence of the passages as a candidate, with the relevance `rel` gives
    the first key it contains (0.05 otherwise), best first, as EvidenceScorer.assess returns them."""
    cands = []
    for i, p in enumerate(passages):
        for u in split_units(p.text):
            if u.heading or not u.text.strip("|- "):
                continue
            r = next((v for k, v in rel.items() if k in u.text), 0.05)
            cands.append(Candidate(i, u, 0.0, 0.0, rel=r))
    cands.sort(key=lambda c: -c.rel)
    return Evidence(0.8, 0.9, 0.8, cands)


RELEVANCE = {FOUR_CITIES: 1.0, PUBLICATION: 0.7, BLOIS_ALONE: 0.55, COLMAR_CR: 0.8, COLMAR_ACTION: 0.6,
             COLMAR_ACTION_2: 0.45, CHATEL_1: 0.75, CHATEL_2: 0.5, CAHORS_CR: 0.6, CAHORS_PISTE: 0.4}
QUESTION = "Comment les territoires ont-ils traité la question des salariés en horaires décalés ?"


def _row(result: Answer, name: str) -> dict:
    same = Gazetteer.default().same_territory
    found = [r for r in result.rows if same(r["territory"], name)]
    assert len(found) == 1, (name, [r["territory"] for r in result.rows])
    return found[0]


def _quotes(row: dict) -> list[str]:
    return [MARKER.sub("", q).strip() for q in [row["approach"], *row["actions"]]]


@pytest.fixture(scope="module")
def table(passages) -> Answer:
    return compare(QUESTION, passages, _evidence(passages, RELEVANCE))


def test_a_synthesis_sentence_naming_four_cities_goes_to_the_fabrique_row(table):
    territories = [r["territory"] for r in table.rows]
    assert territories[-1] == NATIONAL_ROW, territories
    assert MARKER.sub("", table.rows[-1]["approach"]).strip() == FOUR_CITIES
    for row in table.rows[:-1]:
        assert FOUR_CITIES not in _quotes(row), row


def test_every_territory_with_its_own_document_gets_a_row(table):
    rows = {r["territory"] for r in table.rows}
    assert len(rows) == len(table.rows)
    own = {"Colmar": {"tempo-cr-colmar-1", "tempo-fdr-colmar"},
           "Grand Châtellerault": {"tempo-cr-grand-chatellerault-2"},
           "Grand Cahors": {"tempo-cr-grand-cahors-3"}}
    for name, docs in own.items():
        row = _row(table, name)
        assert {c.doc_id for c in table.citations if c.n in row["citations"]} == docs, row


def test_colmar_and_ca_colmar_agglomeration_are_one_row_under_the_name_used_most(table):
    colmar = _row(table, "Colmar")
    # two sentences of the roadmap (« CA Colmar Agglomération ») against one of the report (« Colmar »)
    assert colmar["territory"] == "CA Colmar Agglomération"
    cited = {c.doc_id for c in table.citations if c.n in colmar["citations"]}
    assert cited == {"tempo-cr-colmar-1", "tempo-fdr-colmar"}


def test_actions_come_from_the_territorys_roadmap_and_pistes(table):
    colmar = _row(table, "Colmar")
    assert MARKER.sub("", colmar["approach"]).strip() == COLMAR_CR
    actions = [MARKER.sub("", a).strip() for a in colmar["actions"]]
    assert actions == [COLMAR_ACTION, COLMAR_ACTION_2]  # the table's first cell, best first
    cahors = _row(table, "Grand Cahors")
    assert [MARKER.sub("", a).strip() for a in cahors["actions"]] == [CAHORS_PISTE]  # under « Pistes »
    assert _row(table, "Grand Châtellerault")["actions"] == []
    line = next(ln for ln in table.text.splitlines() if ln.startswith("| Grand Châtellerault"))
    assert line.split(" | ")[2] == "—"
    assert "Action \\| Porteur" not in table.text  # the header row of a table is no action


def test_rows_are_ordered_by_how_much_each_territory_says(table):
    assert [r["territory"] for r in table.rows] == [
        "CA Colmar Agglomération",  # 0.8 + 0.6 + 0.45
        "Grand Châtellerault",  # 0.75 + 0.5
        "Grand Cahors",  # 0.6 + 0.4
        "Blois",  # 0.55, one sentence of the synthesis
        NATIONAL_ROW,
    ]


def test_the_table_keeps_its_contract(table, passages):
    assert table.mode == "compare" and table.grounded
    assert "| Territoire | Approche | Actions clés | Sources |" in table.text
    numbers = {c.n for c in table.citations}
    for row in table.rows:
        assert set(row) == {"territory", "approach", "actions", "citations"}
        assert row["citations"] and set(row["citations"]) <= numbers
        for quote in _quotes(row):
            assert any(quote in p.text for p in passages), quote


def test_a_synthesis_sentence_naming_one_territory_alone_speaks_for_it(table, passages):
    blois = _row(table, "Blois")  # no document of its own here: the synthesis says what it did
    assert MARKER.sub("", blois["approach"]).strip() == BLOIS_ALONE
    assert {c.doc_id for c in table.citations if c.n in blois["citations"]} == {"tempo-synthese"}
    # naming another place too (Tours is no territory of the fabrique), it stays the fabrique's
    two = BLOIS_ALONE.replace("À Blois,", "À Blois comme à Tours,")
    other = [_p(1, passages[0].text.replace(BLOIS_ALONE, two), passages[0].meta["title"],
                territories=TEMPO_SITES, doc_type="seminaire_intersites", doc_id="tempo-synthese"),
             *passages[1:]]
    result = compare(QUESTION, other, _evidence(other, {**RELEVANCE, two: 0.55}))
    assert not any(Gazetteer.default().same_territory(r["territory"], "Blois") for r in result.rows)


def test_the_territorys_own_words_come_before_what_a_synthesis_says_of_it(passages):
    rel = {**RELEVANCE, BLOIS_ALONE: 0.9, "Le groupe local de Blois": 0.5}
    with_blois = [*passages, _p(7, "Le groupe local de Blois a travaillé avec les employeurs du secteur "
                                   "hospitalier sur les horaires décalés.",
                                "Compte rendu du séminaire local n°1 — Blois", territories=["Blois"],
                                doc_id="tempo-cr-blois-1")]
    result = compare(QUESTION, with_blois, _evidence(with_blois, rel))
    blois = _row(result, "Blois")
    assert MARKER.sub("", blois["approach"]).strip().startswith("Le groupe local de Blois")
    # the synthesis sentence still counts for how much Blois says: 0.9 + 0.5, between Colmar
    # (0.8 + 0.6 + 0.45) and Grand Châtellerault (0.75 + 0.5)
    assert [r["territory"] for r in result.rows][:3] == ["CA Colmar Agglomération", "Blois",
                                                         "Grand Châtellerault"]
    assert MARKER.sub("", result.rows[-1]["approach"]).strip() == FOUR_CITIES


def test_a_territory_is_not_lost_behind_a_stronger_sentence(passages):
    rel = {**RELEVANCE, CAHORS_CR: 0.45, CAHORS_PISTE: 0.3}  # under half the best sentence
    result = compare(QUESTION, passages, _evidence(passages, rel))
    _row(result, "Grand Cahors")


def test_a_report_whose_sentences_were_not_embedded_still_gets_its_row():
    """EvidenceScorer embeds only its most promising sentences: a site's report told in its own
    words gets no dense score, and without a stand-in it falls under the floor."""
    sites = ("sites-industriels-de-demain", "Sites industriels de demain")
    ps = [_p(1, "Dans les huit intercommunalités, le logement des salariés freine le recrutement.",
             "Synthèse des séminaires intersites — sites industriels",
             territories=["Vie et Boulogne", "Niortais"], fabrique=sites, doc_type="seminaire_intersites",
             doc_id="sites-synthese"),
          _p(2, "Les industriels peinent à loger les techniciens qu'ils recrutent.", "CR — Lannion-Trégor",
             territories=["Lannion-Trégor Communauté"], fabrique=sites, doc_id="sites-cr-lannion"),
          _p(3, "Les élus ont parlé des salariés recrutés qui renoncent faute de logement.",
             "CR — Vie et Boulogne", territories=["Vie et Boulogne"], fabrique=sites,
             doc_id="sites-cr-vie-et-boulogne"),
          _p(4, "Les élus ont visité la zone d'activités et la pépinière.", "CR — Niortais",
             territories=["Niortais"], fabrique=sites, doc_id="sites-cr-niortais")]
    ps[0].score, ps[1].score, ps[2].score, ps[3].score = 0.88, 0.875, 0.87, 0.80

    def cand(i: int, rel: float, *, cos: float | None = None, dense: float = 0.0,
             lex: float = 0.0) -> Candidate:
        c = Candidate(i, split_units(ps[i].text)[0], lex, 0.0, rel=rel)
        if cos is not None:
            c.vec, c.cos, c.dense = np.zeros(3), cos, dense
        return c

    # unembedded: lex 0.5 and a retrieval prior of 1/(1 + index) make the rest of their relevance
    cands = [cand(0, 1.2, cos=0.86, dense=0.9), cand(1, 0.9, cos=0.85, dense=0.75),
             cand(2, 0.4 * 0.5 + 0.4 / 3, lex=0.5), cand(3, 0.4 * 0.5 + 0.4 / 4, lex=0.5)]
    result = compare(QUESTION, ps, Evidence(0.8, 0.86, 0.8, cands))
    assert [r["territory"] for r in result.rows][:2] == ["Lannion-Trégor Communauté", "Vie et Boulogne"]
    # a passage far from the question (0.80) lends its sentences nothing
    assert not any(r["territory"] == "Niortais" for r in result.rows)


def test_one_row_per_fabrique_when_several_speak(passages):
    other = _p(7, "La Fabrique a montré que les aînés qui ne conduisent plus dépendent des horaires des "
                  "transports et des services.", "Synthèse des séminaires intersites — senior",
               territories=["Jonzac", "Craponne-sur-Arzon"], fabrique=SENIOR, doc_type="seminaire_intersites",
               doc_id="senior-synthese")
    both = [*passages, other]
    result = compare(QUESTION, both, _evidence(both, {**RELEVANCE, "aînés qui ne conduisent": 0.65}))
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


# --------------------------------------------------------------------------- real model


def test_compare_with_the_real_model(e5, passages):
    answerer = ExtractiveAnswerer(Settings(refusal_threshold=0.0), e5)
    result = answerer.answer(QUESTION, passages, mode="compare")
    assert result.mode == "compare" and result.grounded
    labels = [r["territory"] for r in result.rows]
    for name in ("Colmar", "Grand Châtellerault", "Grand Cahors"):
        _row(result, name)
    for row in result.rows:
        if row["territory"] != NATIONAL_ROW:
            assert FOUR_CITIES not in _quotes(row), row
    if NATIONAL_ROW in labels:
        assert labels[-1] == NATIONAL_ROW
    assert _row(result, "Colmar")["actions"], result.text


# --------------------------------------------------------------------------- sample corpus

GOLD_COMPARE = ("Comment les territoires de la Fabrique temporalités ont-ils traité la question des "
                "salariés en horaires décalés ?")


def test_compare_on_the_sample_corpus(corpus_index, e5):
    """tempo-04 of the gold set: both sites whose reports speak of shift workers have a row."""
    from assistant.retriever import Retriever, answer_context

    store_dir, ingestor, _ = corpus_index
    retriever = Retriever(ingestor.store, ingestor.registry, e5, "interne")
    settings = Settings(store=store_dir)
    passages = answer_context(retriever, GOLD_COMPARE, None, settings)
    # compare itself, whatever the refusal gate in front of it decides
    ev = ExtractiveAnswerer(settings, e5).evidence(GOLD_COMPARE, passages)
    result = compare(GOLD_COMPARE, passages, ev)
    assert compare_coverage(result, ["Colmar", "Grand Châtellerault"]) == 1.0, result.text
    labels = [r["territory"] for r in result.rows]
    assert len(labels) == len(set(labels)) and labels[-1] == NATIONAL_ROW, labels


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
