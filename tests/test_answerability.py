"""Refuse what the passages do not speak of, name what is missing, and still answer a
question asked in everyday words. Real embedding model, hand-built passages."""

from __future__ import annotations

import pytest
from test_answer import _p

from assistant.answering.answerability import asked_fabrique, fabrique_present, key_elements
from assistant.answering.extractive import REFUSAL, ExtractiveAnswerer
from assistant.config import Settings

COAST = ("littoral-risques", "Littoral et risques côtiers")


@pytest.fixture(scope="module")
def coast():
    return [
        _p(1, "L'érosion du trait de côte fait reculer la plage de plusieurs mètres par an devant le front "
              "de mer. Les tempêtes d'hiver submergent la promenade et inondent les rez-de-chaussée.",
           "Compte rendu du séminaire local n°1 — Lacanau", territories=["Lacanau"], fabrique=COAST),
        _p(2, "Le groupe de travail propose de relocaliser les commerces du front de mer vers l'arrière-pays "
              "et de laisser les dunes se reconstituer.",
           "Compte rendu du séminaire local n°2 — Lacanau", territories=["Lacanau"], fabrique=COAST),
        _p(3, "La communauté de communes a financé un observatoire du trait de côte avec l'université.",
           "Synthèse des séminaires intersites — Littoral", territories=["CC Médoc Atlantique"],
           fabrique=COAST, doc_type="seminaire_intersites"),
    ]


@pytest.fixture(scope="module")
def answerer(e5):
    # the evidence threshold off: these tests are about what the question names
    return ExtractiveAnswerer(Settings(refusal_threshold=0.0), e5)


def test_frame_words_are_not_key_elements():
    elements = key_elements("Quelles pistes la Fabrique prospective a-t-elle retenues lors du séminaire "
                            "local pour le calendrier des territoires ?")
    assert elements == []
    names = [e.shown for e in key_elements("Quelle usine de dessalement Jonzac a-t-elle prévue ?")]
    assert names == ["Jonzac", "usine de dessalement", "usine de dessalement"]


def test_refusal_names_the_object_the_passages_never_mention(answerer, coast):
    ans = answerer.answer("Quelle usine de dessalement Lacanau a-t-elle prévue ?", coast)
    assert ans.refused and not ans.grounded
    assert "Aucun des passages trouvés ne parle d'« usine de dessalement »." in ans.text
    assert ans.leads  # the closest leads are still offered


def test_refusal_names_a_place_no_document_gives(answerer, coast):
    ans = answerer.answer("Comment Saint-Malo protège-t-elle ses digues de l'érosion ?", coast)
    assert ans.text.startswith(REFUSAL)
    assert "« Saint-Malo »" in ans.text


def test_a_place_opening_the_question_is_a_name_too(answerer, coast):
    # every first word has a capital: the official list tells « Saint-Malo » from « Comment »
    assert [(e.text, e.kind) for e in key_elements("Saint-Malo : comment protéger les digues ?")][0] == (
        "Saint-Malo", "nom")
    assert all(e.kind == "terme" for e in key_elements("Digues : comment Lacanau les protège-t-elle ?")
               if e.text == "Digues")
    ans = answerer.answer("Saint-Malo : comment protéger les digues de l'érosion ?", coast)
    assert ans.text.startswith(REFUSAL)
    assert "« Saint-Malo »" in ans.text


def test_a_fabrique_the_corpus_does_not_hold_is_refused(answerer, coast):
    question = ("Quelles pistes la Fabrique prospective sur l'intelligence artificielle dans les mairies "
                "a-t-elle retenues ?")
    assert asked_fabrique(question) == "l'intelligence artificielle dans les mairies"
    ans = answerer.answer(question, coast)
    assert ans.refused and "Fabrique « l'intelligence artificielle dans les mairies »" in ans.text
    # the fabrique the passages come from, named loosely, is found
    assert fabrique_present("littoral et risques", [COAST[1]])
    other = "Le vieillissement dans les territoires périurbains et les quartiers prioritaires"
    assert not fabrique_present("la nature dans les quartiers prioritaires", [other])


def test_a_section_title_does_not_make_another_fabrique(answerer):
    # a section of the nature fabrique's publication speaks of food: the food fabrique is still absent
    nature = ("nature-qpv", "La nature dans les quartiers prioritaires")
    passages = [_p(1, "Les jardins partagés des quartiers prioritaires relient la nature, l'emploi et "
                      "l'alimentation : ils fournissent des légumes aux épiceries solidaires.",
                   "La nature dans les quartiers prioritaires — Enseignements de la Fabrique Prospective",
                   territories=["Grasse"], fabrique=nature, doc_type="publication",
                   section="Enseignement n°3 : relier nature, emploi et alimentation")]
    ans = answerer.answer("Quelles pistes la Fabrique sur l'alimentation dans les quartiers prioritaires "
                          "a-t-elle retenues ?", passages)
    assert ans.refused, ans.text
    assert "Fabrique « l'alimentation dans les quartiers prioritaires »" in ans.text
    # the fabrique itself, named by its theme, is found
    assert not answerer.answer("Quelles pistes la Fabrique sur la nature dans les quartiers prioritaires "
                               "a-t-elle retenues ?", passages).refused


def test_a_place_the_question_does_not_capitalise_is_a_name(answerer, coast):
    # « Pays basque »: the official list of EPCI knows it, whatever the capitals
    elements = key_elements("Combien de communes compte la communauté d'agglomération du Pays basque ?")
    assert ("Pays basque", "nom") in [(e.text, e.kind) for e in elements]
    assert "basque" not in [e.text for e in elements if e.kind == "terme"]
    ans = answerer.answer("Combien de communes compte la communauté d'agglomération du Pays basque ?", coast)
    assert ans.refused and "« Pays basque »" in ans.text


def test_the_verb_after_an_opening_que_is_not_a_key_element(answerer, coast):
    # « Que deviennent… ? » asks what happens; the passage that answers uses another verb
    assert [e.text for e in key_elements("Que deviennent les commerces du front de mer à Lacanau ?")] == [
        "Lacanau", "commerces", "front", "mer"]
    ans = answerer.answer("Que deviennent les commerces du front de mer à Lacanau ?", coast)
    assert not ans.refused, ans.text
    assert "relocaliser" in ans.text


def test_a_territory_named_by_its_commune_is_found_in_its_epci_documents(answerer, coast):
    # « Carcans » is a commune of the CC Médoc Atlantique: the EPCI's document speaks for it
    ans = answerer.answer("Qu'a financé la communauté de communes de Carcans pour suivre le trait de côte ?",
                          coast)
    assert not ans.refused, ans.text
    assert "observatoire" in ans.text


def test_a_question_in_everyday_words_is_answered(answerer, coast):
    ans = answerer.answer("Que faire quand le sable recule devant les maisons du bord de mer ?", coast)
    assert not ans.refused, ans.text
    assert ans.citations and "Lacanau" in ans.citations[0].title


def test_the_first_line_quotes_the_answer_not_the_topic(e5):
    passages = [
        _p(1, "La question de la mobilité des aînés a été abordée lors de ce séminaire. "
              "Depuis mars, une navette communale gratuite conduit les aînés qui ne conduisent plus "
              "au marché et chez le médecin deux fois par semaine.",
           "Compte rendu du séminaire local n°2 — Jonzac", territories=["Jonzac"]),
    ]
    ans = ExtractiveAnswerer(Settings(refusal_threshold=0.0), e5).answer(
        "Comment Jonzac aide-t-elle les aînés qui ne conduisent plus à se déplacer ?", passages)
    # the first quote, right under the lead phrase and its territory, is the one that answers
    first = next(line for line in ans.text.splitlines() if line.startswith("- "))
    assert "navette communale" in first and "[1]" in first
    assert ans.text.splitlines()[2] == "**Jonzac**"
