"""Fact questions about a whole fabrique, answered from its card (issue #27 item 3).

« Quel prestataire a animé la Fabrique X ? », « Quels territoires… ? », « Quand… ? », « Avec
quelle association d'élus… ? »: the answer is one field of the fabrique's card, and the card
already holds it with the sentence that says it (`ingest.cards`). Searching passages and
picking a sentence finds it less often (a prestataire's name shares no word with the question).

When the card is used: the question asks for one field — the noun after its interrogative
determiner (« quel prestataire », « quelles communes ») or « quand » / « en quelle année » —
and for nothing else (no second question, no qualifier narrowing the noun: « quelles communes
de l'Isère » is not the whole field), and it names one fabrique: the fabrique whose title the
question's words cover best, provided the passages retrieved for the question agree. Otherwise,
or when the card has no value for that field, the question goes the usual way. The card's line
comes first, each value cited; the retrieved passages follow as usual (the floor is kept).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from assistant.answering.citations import Citation
from assistant.answering.extractive import Answer
from assistant.answering.frtext import content_stems, fold

# the noun a question asks for → the card field that answers it (French grammar: « quel N »)
FIELD_NOUNS: dict[str, str] = {
    "prestataire": "prestataires", "prestataires": "prestataires", "cabinet": "prestataires",
    "cabinets": "prestataires", "consultant": "prestataires", "consultants": "prestataires",
    "bureau d'etudes": "prestataires", "bureaux d'etudes": "prestataires", "groupement": "prestataires",
    "territoire": "territories", "territoires": "territories", "commune": "territories",
    "communes": "territories", "intercommunalite": "territories", "intercommunalites": "territories",
    "collectivite": "territories", "collectivites": "territories", "villes": "territories",
    "metropoles": "territories", "sites": "territories",
    "association d'elus": "associations", "associations d'elus": "associations",
    "association": "associations", "associations": "associations",
    "partenaire": "partners", "partenaires": "partners", "cofinanceur": "partners",
    "cofinanceurs": "partners", "financeur": "partners", "financeurs": "partners",
    "annee": "year",
}
FIELD_LABELS = {
    "prestataires": "Prestataire(s)", "territories": "Territoires", "associations": "Association(s) d'élus",
    "partners": "Partenaires", "year": "Édition",
}
# a complement right after the asked noun narrows it (« quelles communes de l'Isère »): the
# card's whole field would not be the answer
_QUALIFIER = re.compile(r"^(?:de|d'|du|des|en|dans|à|au|aux|hors)\b", re.I)
_SECOND_QUESTION = re.compile(
    r"\bet\s+(?:quels?|quelles?|comment|pourquoi|combien|sur quels?|sur quelles?|que\b|qu'|quand|o[uù]\b)",
    re.I)
_WHEN = re.compile(r"^\s*(?:quand\b|en quelle ann[ée]e\b|depuis quand\b|[àa] quelle date\b)", re.I)
_ASKED = re.compile(r"\b(?:quel|quels|quelle|quelles)\s+((?:bureaux?|associations?)\s+d'\S+|\S+)(.*)$", re.I)
# words of a question that name the asked field or the frame, not the fabrique
_FRAME = frozenset(content_stems(
    "fabrique prospective démarche participé participer accompagné accompagner animé animer partenaire "
    "associée associées territoire communes prestataire quand année lancée menée déroulée"))


@dataclass(frozen=True)
class FactQuestion:
    field: str  # a card field: prestataires, territories, associations, partners, year


def asked_field(question: str) -> FactQuestion | None:
    """The one card field the question asks for, or None (several things, a narrowed field…)."""
    q = question.strip()
    if _SECOND_QUESTION.search(q):
        return None
    if _WHEN.match(q):
        # « Quand la fabrique… » asks its edition; « Quand a lieu le webinaire de la fabrique… »
        # asks an event's date, which the card does not hold
        head = re.split(r"\b(?:fabrique|demarche)\b", fold(q), maxsplit=1)
        before = re.sub(r"(?:\b(?:de|d')\s*)?\b(?:la|cette)\s*$", "", head[0])
        if len(head) < 2 or re.search(r"\b(?:le|la|les|l'|un|une|du|des)\s*[a-z]{3,}", before):
            return None
        return FactQuestion("year")
    m = _ASKED.search(q)
    # the interrogative opens the question, after a preposition at most (« Avec quelle
    # association… »); a frame before it (« En Creuse, quelles communes… ») narrows the field
    if not m or not re.fullmatch(r"\s*(?:\w+\s*)?", q[:m.start()]):
        return None
    noun, rest = fold(m.group(1)).strip(" ?,"), m.group(2).strip()
    field = FIELD_NOUNS.get(noun)
    if field is None:
        return None
    if _QUALIFIER.match(rest) or _adjective_after(noun, rest):
        return None
    return FactQuestion(field)


def _adjective_after(noun: str, rest: str) -> bool:
    """« quelles communes rurales misent… »: after a plural noun, a word in -s/-x that is not a
    verb of the third person plural (-ent, -ont) agrees with it: an adjective narrowing it."""
    following = fold(rest).split(" ", 1)[0] if rest else ""
    return (noun.endswith(("s", "x")) and following.endswith(("s", "x"))
            and not following.endswith(("ent", "ont")))


def _title_words(card: dict[str, Any], title: str) -> set[str]:
    names = [title] + [v["value"] for key in ("title", "theme") for v in card["fields"].get(key, [])]
    return set().union(*(set(content_stems(n)) for n in names)) - _FRAME


def named_fabrique(question: str, cards: list[dict[str, Any]], titles: dict[str, str],
                   passage_fabriques: list[str]) -> dict[str, Any] | None:
    """The card of the fabrique the question names: its title covers the question's own words
    best (at least two of them, and more than any other), and a retrieved passage (among the
    first three) belongs to it. None when unsure: the question then goes the usual way."""
    words = set(content_stems(question)) - _FRAME
    if len(words) < 2:
        return None
    scored = sorted(((len(words & _title_words(c, titles.get(c["id"], ""))), c) for c in cards),
                    key=lambda sc: -sc[0])
    if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    best = scored[0][1]
    return best if best["id"] in passage_fabriques[:3] else None


def _citation(n: int, evidence: dict[str, Any], card: dict[str, Any], title: str) -> Citation:
    return Citation(n=n, source=str(evidence.get("source", "")), title=str(evidence.get("title", "")),
                    page=int(evidence.get("page") or 1), fabrique=card["id"], territories=[],
                    doc_type=str(evidence.get("doc_type", "")), excerpt=str(evidence.get("sentence", "")),
                    doc_id=str(evidence.get("doc_id", "")), fabrique_title=title)


def card_line(fact: FactQuestion, card: dict[str, Any], title: str) -> tuple[str, list[Citation]] | None:
    """« D'après la fiche de la fabrique « T » : Prestataire(s) : Helixeo [1]. » and its citations;
    None when the card has no value for the field (never guessed)."""
    values = [v for v in card["fields"].get(fact.field, []) if v.get("evidence")]
    if not values:
        return None
    citations: list[Citation] = []
    parts: list[str] = []
    # one sentence often lists every value (« … Mouans-Sartoux, Chantepie, Saint-Péray et
    # Ramonville ») : cite it once rather than one sentence per value
    shared = Counter((e.get("doc_id"), e.get("sentence")) for v in values for e in v["evidence"])
    for v in values:
        ev = max(v["evidence"], key=lambda e: shared[(e.get("doc_id"), e.get("sentence"))])
        said = (ev.get("doc_id"), ev.get("sentence"))
        same = next((c for c in citations if (c.doc_id, c.excerpt) == said), None)
        if same is None:
            same = _citation(len(citations) + 1, ev, card, title)
            citations.append(same)
        where = ", ".join(x for x in (v.get("departement"), v.get("region")) if x)
        parts.append(f"{v['value']}{f' ({where})' if where else ''} [{same.n}]")
    disagree = fact.field == "year" and len(values) > 1
    head = f"D'après la fiche de la fabrique « {title} »"
    body = (" ou ".join(parts) + " (les documents ne concordent pas)") if disagree else ", ".join(parts)
    return f"{head} — {FIELD_LABELS[fact.field]} : {body}.", citations


def with_card_line(answer: Answer, line: str, citations: list[Citation], *, streamed: bool = False) -> Answer:
    """The card's line first, then the usual answer renumbered after the card's citations.

    `streamed`: the answer's text was already shown after the line, numbered after the card's
    sources (its numbers stay; a refusal's text stays too, since the reader has read it)."""
    if streamed:
        answer.text = line + "\n\n" + answer.text
        answer.citations = citations + answer.citations
        answer.grounded = True
        return answer
    shift = len(citations)

    def renumber(m: re.Match[str]) -> str:
        return f"[{int(m.group(1)) + shift}]"

    for c in answer.citations:
        c.n += shift
    rest = re.sub(r"\[(\d+)\]", renumber, answer.text) if not answer.refused else ""
    answer.text = line + ("\n\n" + rest if rest else "")
    answer.citations = citations + (answer.citations if rest else [])
    answer.grounded = True
    answer.sure = True
    answer.leads = [] if rest else answer.leads
    return answer
