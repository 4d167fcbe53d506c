"""Turn a follow-up ("et à Lorient ?") into a question that can be searched on its own.

Retrieval sees one question at a time: "et pour les seniors ?" alone finds nothing useful.
Users of a chat naturally ask this way, so before retrieval the question is rewritten with
the conversation: by rules (always available, offline) — take the previous full question and
substitute the new territory, year or theme — or by the configured LLM, whose output is only
kept when it still carries what the user just asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.answering.frtext import content_stems, distinctive_tokens, fold, words

_CUES = re.compile(
    r"^\s*(?:et\b[\s,]*|qu'?\s*en\s+est[- ]il\b|quid\b|pareil\b|m[eê]me\s+(?:chose|question)\b|idem\b"
    r"|(?:et\s+)?(?:pour|sur)\s+ce\s+qui\s+est\s+(?:de|du|des)\b|(?:et\s+)?du\s+c[oô]t[eé]\s+(?:de|d')"
    r"|(?:et\s+)?c[oô]t[eé]\b|(?:et\s+)?concernant\b|(?:et\s+)?aussi\b|[eé]galement\b)",
    re.IGNORECASE,
)
_LEAD_PREP = re.compile(
    r"^\s*(?:à|À|a|au|aux|en|dans|chez|pour|sur|concernant|avec|vers|côté|cote)\b", re.IGNORECASE
)
_YEAR = re.compile(
    r"\b(?:(?:en|pour|de|depuis|à partir de|a partir de)\s+)?((?:19|20)\d{2})\b", re.IGNORECASE
)
_TERRITORY_PREP = r"(?:à|au|aux|en|dans|chez|de|du|pour|sur|vers)"
_NAME = (
    r"[A-ZÀ-ÖØ-Þ][\wÀ-ÖØ-öø-ÿ'’-]*"
    r"(?:\s+(?:(?:de|des|du|la|le|sur|en|et|d'|l')\s*)?[A-ZÀ-ÖØ-Þ][\wÀ-ÖØ-öø-ÿ'’-]*)*"
    r"(?:\s+(?:métropole|agglomération|communauté|agglo))?"
)
_NAME_RE = re.compile(_NAME)
_NOT_PLACES = frozenset(
    fold(w)
    for w in (
        "Fabrique Fabriques Prospective ANCT État Etat France Noël Petites Villes Demain CCAS PLU "
        "PLUi SCoT EPCI CGET DDT Quelle Quelles Quel Quels Comment Pourquoi Combien Qui Que Où "
        "Quand Et Est-ce Selon Dans En Pour Sur À Au Aux Chez Le La Les Une Un Des Du De"
    ).split()
)
_STEM_VERBS = re.compile(
    r"\b(?:est|sont|était|étaient|a|ont|avait|fait|font|peut|peuvent|doit|doivent|prévoit|prévoient"
    r"|propose|proposent|dit|disent|existe|existent|faut|va|vont|\w+-t-(?:il|elle|on|ils|elles)"
    r"|\w+-(?:il|elle|ils|elles|on))\b",
    re.IGNORECASE,
)


@dataclass
class Slots:
    """What a follow-up asks to change: a territory (with its preposition), a year, a theme."""

    territory: str | None = None
    territory_phrase: str | None = None  # "à Lorient", "au Havre"
    year: str | None = None
    theme: str | None = None  # "pour les seniors"

    def any(self) -> bool:
        return bool(self.territory or self.year or self.theme)

    def required_words(self) -> list[str]:
        """Words a rewritten question must contain to still answer what was asked."""
        out: list[str] = []
        if self.territory:
            out.append(self.territory)
        if self.year:
            out.append(self.year)
        return out


@dataclass
class _Place:
    start: int
    end: int
    name: str  # "Lorient"
    phrase: str  # "à Lorient" (or the name alone when written without preposition)


def _find_territory(text: str, known: Sequence[str] | None) -> _Place | None:
    """A place name in `text` (with its preposition when present), known names first."""
    if known:
        ftext = fold(text)
        best: tuple[int, int] | None = None
        for name in sorted(known, key=len, reverse=True):
            for token in [name, *distinctive_tokens(name)]:
                i = ftext.find(fold(token))
                if i >= 0 and (best is None or i < best[0]):
                    best = (i, i + len(token))
                    break
        if best is not None:
            name_text = text[best[0]:best[1]]
            prefix = rf"(?:\b{_TERRITORY_PREP}\s+(?:la\s+|le\s+|l')?)?"
            m = re.search(prefix + re.escape(name_text), text, re.I)
            if m:
                return _Place(m.start(), m.end(), name_text, m.group(0))
    for cap in re.finditer(r"(?<![\w'’-])[A-ZÀ-ÖØ-Þ]", text):
        nm = _NAME_RE.match(text, cap.start())
        if not nm:
            continue
        name = nm.group(0).strip()
        first = fold(re.split(r"[\s'’-]", name)[0])
        if first in _NOT_PLACES or fold(name) in _NOT_PLACES or name.isupper():
            continue  # "Comment", "Quelles", "ANCT": the next capital is tried
        pm = re.search(rf"(?i:\b{_TERRITORY_PREP})\s+$", text[: cap.start()])
        start = pm.start() if pm else cap.start()
        return _Place(start, nm.end(), name, text[start: nm.end()])
    return None


def extract_slots(question: str, known: Sequence[str] | None = None) -> Slots:
    """The territory, year and theme a (short) follow-up brings."""
    q = _CUES.sub("", question, count=1).strip(" ?!.,;:")
    if _LEAD_PREP.match(q):  # "À Colmar", "Pour les aînés": the capital is the sentence's
        q = q[0].lower() + q[1:]
    slots = Slots()
    ym = _YEAR.search(q)
    if ym:
        slots.year = ym.group(1)
        q = (q[: ym.start()] + q[ym.end():]).strip(" ,")
    tm = _find_territory(q, known)
    if tm:
        slots.territory = tm.name
        locative = re.match(r"(?:à|au|aux|en|dans|chez)\s", tm.phrase, re.I)
        slots.territory_phrase = tm.phrase if locative else f"à {tm.name}"
        q = (q[: tm.start] + q[tm.end:]).strip(" ,")
    rest = re.sub(r"^\s*(?:et|aussi|également)\b", "", q, flags=re.I).strip(" ,")
    if content_stems(rest):
        if question_starts_with_quen(question):  # "qu'en est-il des seniors" -> "les seniors"
            m = re.match(r"(de la|de l'|du|des|de)\s*", rest, flags=re.I)
            if m:
                articles = {"de la": "la ", "de l'": "l'", "du": "le ", "des": "les "}
                rest = articles.get(m.group(1).lower(), "") + rest[m.end():]
        if not _LEAD_PREP.match(rest):
            rest = f"pour {rest}"
        slots.theme = rest.strip()
    return slots


def question_starts_with_quen(question: str) -> bool:
    """"Qu'en est-il de…": its object carries a partitive article to undo."""
    return bool(re.match(r"^\s*qu'?\s*en\s+est[- ]il", question, re.I))


def is_followup(question: str, known: Sequence[str] | None = None) -> bool:
    """Does this question only make sense with the previous one?

    Yes when it starts with a follow-up cue (et…, qu'en est-il…, pareil…, même chose…, idem…)
    and is short, or when it is a bare slot with no verb ("À Lorient ?", "En 2021 ?",
    "Pour les seniors ?").
    """
    q = question.strip()
    n = len(words(q))
    if n == 0:
        return False
    if _CUES.match(q) and n <= 10:
        return True
    if n > 6 or _STEM_VERBS.search(q):
        return False
    first = fold(words(q)[0])
    if first in {"comment", "quel", "quelle", "quels", "quelles", "pourquoi", "combien", "qui", "que",
                 "quoi", "ou", "quand", "est"}:
        return False
    if _LEAD_PREP.match(q) or _YEAR.fullmatch(q.strip(" ?")):
        return True
    # a bare place name: "Lorient ?"
    tm = _find_territory(q, known)
    return tm is not None and len(content_stems(q[: tm.start] + q[tm.end:])) == 0


def _substitute(previous: str, slots: Slots, known: Sequence[str] | None) -> str:
    """The previous question with the follow-up's territory, year and theme put in."""
    out = previous.strip()
    tail = ""
    m_end = re.search(r"\s*[?？]\s*$", out)
    if m_end:
        out, tail = out[: m_end.start()], " ?"
    else:
        tail = " ?"
    if slots.year:
        ym = _YEAR.search(out)
        if ym:
            out = out[: ym.start(1)] + slots.year + out[ym.end(1):]
        else:
            out = f"{out} en {slots.year}"
    if slots.territory:
        tm = _find_territory(out, known)
        if tm:
            has_prep = tm.phrase != tm.name
            new = slots.territory_phrase if has_prep and slots.territory_phrase else slots.territory
            out = out[: tm.start] + (new or "") + out[tm.end:]
        else:
            out = f"{out} {slots.territory_phrase or 'à ' + slots.territory}"
    if slots.theme:
        prep = slots.theme.split()[0].lower()
        pm = re.search(
            rf"\b{re.escape(prep)}\s+(?:(?:les|la|le|l'|des|du|de la|de l'|d')\s*)?[\wÀ-ÖØ-öø-ÿ'’-]+"
            rf"(?:\s+(?!à\b|au\b|aux\b|en\b|dans\b|chez\b)[a-zà-öø-ÿ][\wÀ-ÖØ-öø-ÿ'’-]*){{0,3}}",
            out,
        )
        if pm and not (slots.territory and slots.territory in pm.group(0)):
            out = out[: pm.start()] + slots.theme + out[pm.end():]
        else:
            out = f"{out}, {slots.theme}"
    return re.sub(r"\s{2,}", " ", out).strip() + tail


def rewrite_rules(question: str, history: Sequence[tuple[str, str]] | None,
                  known: Sequence[str] | None = None) -> str:
    """Rule-based rewrite; returns `question` unchanged when it stands on its own."""
    if not history or not is_followup(question, known):
        return question
    previous = ""
    resolved: list[tuple[str, str]] = []
    for user, assistant in history:  # earlier turns may be follow-ups themselves
        previous = rewrite_rules(user, resolved, known) if resolved else user
        resolved.append((previous, assistant))
    if not previous.strip():
        return question
    slots = extract_slots(question, known)
    if not slots.any():
        return previous
    return _substitute(previous, slots, known)


REWRITE_PROMPT = (
    "Voici le début d'une conversation avec un assistant documentaire, puis une nouvelle question "
    "qui en dépend.\n\n{history}\n\nNouvelle question : {question}\n\n"
    "Réécris la nouvelle question pour qu'elle se comprenne seule, en reprenant le sujet de la "
    "conversation. N'y réponds pas. Écris uniquement la question réécrite, sur une ligne."
)


def rewrite(
    question: str,
    history: Sequence[tuple[str, str]] | None,
    *,
    llm: Callable[[str], str] | None = None,
    known_territories: Sequence[str] | None = None,
) -> str:
    """The question to search for: `question` itself, or rewritten with the conversation.

    `llm` (prompt → text) is tried first when given; its output is kept only if it is one
    plausible question that still names the territory/year the user just asked for,
    otherwise the rules answer (a small local model often drifts or answers instead).
    """
    if not history or not is_followup(question, known_territories):
        return question
    by_rules = rewrite_rules(question, history, known_territories)
    if llm is None:
        return by_rules
    turns = "\n".join(f"Utilisateur : {u}\nAssistant : {a[:300]}" for u, a in list(history)[-3:])
    try:
        proposed = llm(REWRITE_PROMPT.format(history=turns, question=question)).strip()
    except (OSError, RuntimeError, ValueError):
        return by_rules
    proposed = proposed.splitlines()[0].strip().strip("«»\"' ") if proposed else ""
    slots = extract_slots(question, known_territories)
    ok = (
        10 <= len(proposed) <= 300
        and proposed.endswith("?")
        and all(fold(w) in fold(proposed) for w in slots.required_words())
        and len(content_stems(proposed)) >= 2
    )
    return proposed if ok else by_rules
