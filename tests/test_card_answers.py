"""Fact questions about a fabrique answered from its card: which questions, and what the user reads.

The card itself (what `ingest.cards` extracts) is tested in tests/test_cards.py; here a card
is given, so that what is checked is the routing and the answer: a question asking one field
of a named fabrique opens with that field, each value cited by the sentence that says it; a
question asking more, or a narrower thing, or naming no fabrique, goes the usual way; a field
the card does not hold is never guessed.
"""

from __future__ import annotations

import pytest

from assistant.answering.extractive import REFUSAL, Answer
from assistant.card_answers import asked_field, card_line, named_fabrique, with_card_line


@pytest.mark.parametrize("question, field", [
    ("Quel prestataire a accompagné les communes de la Fabrique Petites villes et santé environnementale ?",
     "prestataires"),
    ("Quels prestataires animent la fabrique sur la nature dans les quartiers prioritaires ?",
     "prestataires"),
    ("Quels territoires ont participé à la Fabrique prospective Territoires industriels et capital social ?",
     "territories"),
    ("Quelles communes ont participé à la Fabrique prospective Petites villes et santé environnementale ?",
     "territories"),
    ("Avec quelle association d'élus la Fabrique sur les villes moyennes a-t-elle été menée ?",
     "associations"),
    ("Quels partenaires ont participé à la fabrique sur les sites industriels ?", "partners"),
    ("Quand a eu lieu la Fabrique sur les temporalités des villes moyennes ?", "year"),
    ("En quelle année la fabrique sur les seniors a-t-elle été lancée ?", "year"),
])
def test_a_question_asking_one_field_is_read_as_such(question, field):
    fact = asked_field(question)
    assert fact is not None and fact.field == field


@pytest.mark.parametrize("question", [
    # a narrower set than the whole field
    "Quelles communes de l'Isère ont participé à la Fabrique sur les seniors dans les petites villes ?",
    # two questions: the card answers only one
    "Quelles communes ont été accompagnées par la Fabrique sur la nature, et sur quel sujet chacune a-t-elle "
    "travaillé ?",
    # an event's date, not the fabrique's edition
    "À quelle date s'est tenue la rencontre nationale d'étape de la Fabrique Sites industriels de demain ?",
    "Quand a lieu le webinaire de présentation du rapport sur les sites industriels de demain ?",
    # no card field
    "Quel budget pour la navette des aînés de Lorient ?",
    "Comment la mobilité des aînés est-elle organisée à Jonzac ?",
])
def test_other_questions_go_the_usual_way(question):
    assert asked_field(question) is None


def _evidence(doc: str, sentence: str, page: int = 2) -> dict:
    return {"doc_id": doc, "title": f"Titre {doc}", "source": f"{doc}.pdf", "page": page,
            "sentence": sentence, "visibility": "public"}


LIST = "Quatre communes participent : Mouans-Sartoux, Chantepie, Saint-Péray et Ramonville-Saint-Agne."
CARD = {
    "id": "pvse", "title": "Petites villes et santé environnementale",
    "fields": {
        "title": [{"value": "Petites villes et santé environnementale", "evidence": [_evidence("cdc", "x")]}],
        "territories": [
            {"value": name, "departement": dep, "region": reg,
             "evidence": [_evidence("cr", f"Séminaire à {name}."), _evidence("cdc", LIST)]}
            for name, dep, reg in (("Mouans-Sartoux", "Alpes-Maritimes", "Provence-Alpes-Côte d'Azur"),
                                   ("Chantepie", "Ille-et-Vilaine", "Bretagne"))],
        "prestataires": [{"value": "Helixeo", "evidence": [
            _evidence("pub", "La fabrique a été animée par un groupement conduit par Helixeo.", 1)]}],
        "year": [{"value": "2019", "evidence": [_evidence("cdc", "Lancée en 2019.")]},
                 {"value": "2020", "evidence": [_evidence("cr", "La fabrique de 2020.")]}],
        "associations": [],
    },
}
OTHER = {"id": "seniors", "title": "Être senior demain dans une petite ville",
         "fields": {"title": [{"value": "Être senior demain dans une petite ville", "evidence": []}]}}


def test_the_card_line_cites_the_sentence_that_lists_every_value():
    fact = asked_field("Quelles communes ont participé à la fabrique ?")
    line, citations = card_line(fact, CARD, CARD["title"])
    assert line.startswith("D'après la fiche de la fabrique « Petites villes et santé environnementale »")
    assert "Mouans-Sartoux (Alpes-Maritimes, Provence-Alpes-Côte d'Azur) [1]" in line
    assert "Chantepie (Ille-et-Vilaine, Bretagne) [1]" in line
    assert [c.excerpt for c in citations] == [LIST]  # one sentence names both: cited once


def test_documents_that_disagree_are_both_shown_and_an_empty_field_is_not_guessed():
    line, citations = card_line(asked_field("Quand a eu lieu la fabrique ?"), CARD, CARD["title"])
    assert "2019 [1] ou 2020 [2]" in line and "ne concordent pas" in line
    assert [c.excerpt for c in citations] == ["Lancée en 2019.", "La fabrique de 2020."]
    assert card_line(asked_field("Quelle association d'élus a participé à la fabrique ?"), CARD,
                     CARD["title"]) is None


def test_the_fabrique_is_the_one_the_question_names_and_the_passages_agree():
    q = "Quel prestataire a accompagné la Fabrique Petites villes et santé environnementale ?"
    titles = {"pvse": CARD["title"], "seniors": OTHER["title"]}
    assert named_fabrique(q, [CARD, OTHER], titles, ["pvse", "seniors"])["id"] == "pvse"
    # the retrieved passages are all of another fabrique: unsure, the usual way
    assert named_fabrique(q, [CARD, OTHER], titles, ["seniors", "seniors", "seniors", "pvse"]) is None
    # the question names no fabrique
    bare = "Quel prestataire a accompagné la fabrique ?"
    assert named_fabrique(bare, [CARD, OTHER], titles, ["pvse"]) is None


def test_the_card_line_comes_first_and_the_passages_follow_renumbered():
    from assistant.answering.citations import Citation

    quoted = Citation(n=1, source="cr.pdf", title="CR", page=3, fabrique="pvse", territories=[],
                      doc_type="seminaire_local", excerpt="Un passage.", doc_id="cr")
    usual = Answer("D'après les documents du corpus :\n\n> Un passage. [1]", True, [quoted])
    line, citations = card_line(asked_field("Quel prestataire a animé la fabrique ?"), CARD, CARD["title"])
    answer = with_card_line(usual, line, citations)
    assert answer.text.splitlines()[0] == line and answer.text.endswith("> Un passage. [2]")
    assert [c.n for c in answer.citations] == [1, 2]
    assert answer.citations[0].excerpt == "La fabrique a été animée par un groupement conduit par Helixeo."
    refused = Answer(REFUSAL + " Pistes : …", False, [])
    answer = with_card_line(refused, line, citations)
    assert answer.grounded and answer.text == line and len(answer.citations) == 1


@pytest.mark.parametrize("question", [
    "En Creuse, quelles communes rurales misent sur la nature pour attirer de nouveaux habitants ?",
    "Quelles communes rurales ont participé à la Fabrique sur la nature ?",
    "Dans le Var, quels territoires ont participé à la fabrique sur le tourisme responsable ?",
])
def test_a_field_narrowed_before_or_after_its_noun_is_not_the_whole_field(question):
    assert asked_field(question) is None
