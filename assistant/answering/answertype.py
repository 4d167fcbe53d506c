"""What kind of answer a question asks for, and whether a sentence gives it.

"Combien de places en EHPAD…", "Quel montant l'État a-t-il versé en 2021…": the corpus
talks about EHPAD, the State and 2021 in many places, so a passage can look very close to
such a question and still not answer it. The answer is a number of places, an amount in
euros. Whether a passage gives a quantity of the asked kind (a number right before "places",
a sum in euros, a percentage of the asked thing, a duration, a date) in a passage that also
has the years and names the question states is one feature of each of the answer layer's two
decisions (`assistant.answering.decisions`): which passage leads, and whether to answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.answering.frtext import STOPWORDS, content_stems, fold, key_stems, stem, synonyms_of, words

_NUMBER_WORDS = (
    "deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
    "vingt trente quarante cinquante soixante cent cents mille million millions milliard "
    "milliards dizaine dizaines douzaine quinzaine vingtaine trentaine quarantaine "
    "cinquantaine soixantaine centaine centaines millier milliers"
).split()
_NUMBER = rf"(?:\d[\d\s.,]*\d|\d|{'|'.join(_NUMBER_WORDS)})"
_CURRENCY = re.compile(
    rf"{_NUMBER}\s*(?:€|k€|m€|euros?\b|(?:millions?|milliards?|mille)\s+d'euros)|€\s*\d", re.I
)
_SHARE = re.compile(
    rf"{_NUMBER}\s*(?:%|pour\s?cent\b|points?\b)|\b(?:moitie|tiers|quart|majorite|minorite)\b"
    rf"|\b{_NUMBER}\s+sur\s+{_NUMBER}\b",
    re.I,
)
_DURATION = re.compile(
    rf"\b{_NUMBER}\s*(?:jours?|nuits?|nuitees?|semaines?|mois|ans|annees?|heures?|h)\b", re.I
)
_MONTHS = "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre"
_DATE = re.compile(rf"\b(?:{'|'.join(_MONTHS.split())})\s+(?:19|20)\d\d\b|\b(?:19|20)\d\d\b", re.I)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_SMALL = frozenset("d de des du l la le les environ pres plus moins quelque quelques".split())

# What the user reads when no passage gives the kind of answer asked for.
KIND_LABELS = {
    "amount": "un montant en euros",
    "count": "un nombre",
    "share": "une part ou un pourcentage",
    "duration": "une durée",
    "date": "une date",
}


@dataclass(frozen=True)
class Expectation:
    """The kind of answer a question asks for (`kind`), about what (`focus`, a stem), and
    the years and names (`anchors`, stems) any answering passage must also contain."""

    kind: str
    focus: frozenset[str] = frozenset()
    anchors: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    def fits(self, sentence: str) -> bool:
        """Does this sentence give a quantity of the asked kind, about the asked thing?"""
        f = fold(sentence)
        if self.kind == "amount":
            return bool(_CURRENCY.search(f))
        if self.kind == "duration":
            return bool(_DURATION.search(f))
        if self.kind == "date":
            return bool(_DATE.search(f))
        if self.kind == "share":
            return bool(_SHARE.search(f)) and (not self.focus or bool(self.focus & _stems(sentence)))
        return _counts(sentence, self.focus)

    def anchored(self, passage_text: str, context: str = "") -> bool:
        """Are the question's years and names in the passage or its `context` (title,
        section, territories: a passage of "Échirolles, quartier La Luire-Viscose" is about
        La Luire-Viscose even when it does not repeat the name)?"""
        if not self.anchors:
            return True
        have = _stems(passage_text + "\n" + context) | set(_YEAR.findall(passage_text + " " + context))
        return self.anchors <= have


def _stems(text: str) -> set[str]:
    return set(content_stems(text, generic=True))


def _counts(sentence: str, focus: frozenset[str]) -> bool:
    """A number right before the counted thing: "250 foyers", "une vingtaine d'exploitations"."""
    toks = words(sentence)
    for i, tok in enumerate(toks):
        if not re.fullmatch(_NUMBER, fold(tok)):
            continue
        if not focus:
            return True
        for nxt in toks[i + 1:i + 4]:
            f = fold(nxt)
            if f in _SMALL or f.isdigit() or f in _NUMBER_WORDS:
                continue
            if stem(nxt) in focus:
                return True
            break
    return False


def _focus(noun: str | None) -> frozenset[str]:
    if not noun or fold(noun) in STOPWORDS:
        return frozenset()
    return frozenset(synonyms_of(stem(noun)))


def expectation(question: str) -> Expectation | None:
    """The quantity a question asks for, or None for other questions (they are judged by
    the evidence score alone)."""
    f = " ".join(fold(question).replace("’", "'").split())
    kind: str | None = None
    noun: str | None = None
    # « Quel montant… », « Combien a coûté… », « Combien coûtera… »: the verb asks an amount too
    cost = r"\b(montant|cout(?:e|ee|ent|era|eront|ait|aient)?|budget|somme|subvention)\b"
    if re.search(cost, f) and re.search(r"\b(quel|quelle|combien|jusqu'a)\b", f):
        kind = "amount"
    elif m := re.search(r"\bcombien (?:de |d')(\w+)", f):
        kind, noun = "count", m.group(1)
    elif re.search(r"\b(quelle (part|proportion)|quel (pourcentage|taux))\b", f):
        kind = "share"
        m = re.search(r"\b(?:part|proportion|pourcentage|taux) (?:de la |des |du |de l'|de |d')(\w+)", f)
        noun = m.group(1) if m else None
    elif re.search(r"\bquelle (est la |a ete la )?duree\b", f):
        kind = "duration"
    elif re.search(r"\b(a quelle date|en quelle annee|(?:depuis|jusqu'a) quand)\b", f) or (
        # « Quand… » asks for a date; « Que faire quand le sable recule ? » does not: there
        # « quand » opens a clause and another word asks the question
        re.match(r"quand\b", f)
        and not re.search(r"\b(que|quoi|comment|quel|quelle|quels|quelles|pourquoi|qui|combien)\b", f[5:])
    ):
        kind = "date"
    elif re.search(r"\bcombien\b", f):
        kind = "count"
    if kind is None:
        return None
    # its years and names (key_stems without the other numbers: "250 foyers" is the answer)
    anchors = set(_YEAR.findall(question)) | {s for s in key_stems(question) if not s.isdigit()}
    return Expectation(kind, _focus(noun), frozenset(anchors))
