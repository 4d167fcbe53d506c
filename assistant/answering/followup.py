"""Turn a follow-up ("et à Lorient ?") into a question that can be searched on its own.

Retrieval sees one question at a time: "et pour les seniors ?" alone finds nothing useful.
Users of a chat naturally ask this way, so before retrieval the question is rewritten with
the conversation: by rules (always available, offline) or by the configured LLM, whose output
is only kept when it still carries what the user just asked for.

A follow-up does one of two things, and the rules tell them apart by French grammar:
- it changes a slot of the previous question ("et à Lorient ?", "en 2021 ?", "pour les
  seniors ?"): the previous full question is kept and the new territory, year or theme put in;
- it asks something else about the same subject ("et quels partenaires y ont participé ?",
  "qui a porté ça ?", "et le calendrier ?"): an interrogative, a pronoun standing for the
  subject (ça, y, en, l'), or a bare facet noun. Then the follow-up's own question is kept and
  the previous question's subject (`topic_of`: its noun phrases without the interrogative
  frame) takes the pronoun's place, so the search asks for partners of that subject, not for
  the subject again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from assistant.answering.frtext import content_stems, distinctive_tokens, fold, stem, words

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


# French question grammar, for the subject of a question (`topic_of`) and for the follow-ups
# that ask something else about it (`facet_of`). Word sets are compared folded (no accents).
_PREP_BEFORE_WH = r"(?:(?:à|a|avec|selon|pour|par|de|sur|dans|depuis|jusqu'à|vers|chez)\s+)?"
_WH_START = re.compile(
    rf"^\s*{_PREP_BEFORE_WH}(?:qu'|(?:quel|quelle|quels|quelles|combien|comment|pourquoi|où|quand|que|quoi"
    r"|qui|lequel|laquelle|lesquels|lesquelles|est-ce)(?![\wÀ-ÖØ-öø-ÿ]))",
    re.IGNORECASE,
)
_OPENER = re.compile(
    rf"^{_PREP_BEFORE_WH}(?:(?P<det>quel|quelle|quels|quelles)\s+|(?P<many>combien)\s+(?:de\s+|d')"
    r"|(?P<adv>qu'est-ce\s+que?|est-ce\s+que?|comment|pourquoi|où|quand|combien)(?![\wÀ-ÖØ-öø-ÿ])'?\s*"
    r"|(?P<verb>qu'(?!est-ce)|(?:qu'est-ce\s+qui|que|qui|quoi)(?![\wÀ-ÖØ-öø-ÿ]))\s*)",
    re.IGNORECASE,
)
_SECOND_QUESTION = re.compile(rf",?\s+et\s+(?={_PREP_BEFORE_WH}(?:quel|quelle|quels|quelles|combien|comment"
                              r"|pourquoi|où|quand|que|qu'|qui)\b)", re.IGNORECASE)
# "répondent-elles", "accompagne-t-elle", "a-t-on": the verb of a question with inversion
_INVERTED = re.compile(r"(?<![\w-])([\wÀ-ÖØ-öø-ÿ]+)-(?:t-)?(?:il|elle|on|ils|elles)(?![\w-])", re.IGNORECASE)
_ETRE = frozenset("est sont etait etaient sera seront fut furent serait seraient".split())
_AVOIR = frozenset("a ont avait avaient aura auront eut eurent aurait auraient".split())
_PARTICIPLE = re.compile(r"[\wÀ-ÖØ-öø-ÿ]+(?:é|i|u|it|is|ert|int)(?:e|s|es)?", re.IGNORECASE)
_PREPOSITIONS = frozenset("a au aux de d du des en dans pour par sur sous avec sans chez vers entre selon "
                          "depuis jusqu lors pres et ou".split())
_DETERMINERS = frozenset("le la les l un une ce cet cette ces son sa ses leur leurs notre nos".split())
_CLITICS = frozenset("s se ne n y en l le la les lui leur me te nous vous".split())
# A pronoun standing for the previous question's subject: ça / cela, and before a verb the
# clitics y (à + it), en (de + it) and l' / les (it, them). "Il y a", "y a-t-il" hold none.
_ANAPHOR = re.compile(
    r"(?P<ca>\b(?:ça|cela|ceci)\b)"
    r"|(?<!\bil )(?<!\bn')\b(?P<y>y)\s+(?!a-t-|avait-|aura-)(?=[\wÀ-ÖØ-öø-ÿ])"
    r"|\b(?P<en>en)\s+(?=(?:est|sont|a|ont|avait|avaient|était|étaient)\b)"
    r"|\b(?P<obj>l'|les\s+)(?=(?:a|ont|avait|avaient|aura|auront)\b)",
    re.IGNORECASE,
)
# What FP roadmaps describe a project by (the columns of their action tables, governance,
# results): "et le calendrier ?" asks for one of these about the subject where "et les
# seniors ?" changes the subject's population. Only a verbless follow-up needs this list: a
# question ("et quels partenaires ?") or a pronoun ("qui a porté ça ?") says it by its grammar.
_FACET_WORDS = (
    "porteur pilotage gouvernance partenaire partenariat financeur financement budget coût montant "
    "calendrier échéance délai indicateur suivi évaluation résultat bilan prestataire acteur participant "
    "action objectif étape territoire"
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
    and is short, when it is a bare slot with no verb ("À Lorient ?", "En 2021 ?", "Pour les
    seniors ?"), when a short question names its subject only by a pronoun ("Qui a porté ça ?",
    "Quels partenaires y ont participé ?") or when it is a verbless question ("Quels
    partenaires ?").
    """
    q = question.strip().replace("’", "'")
    n = len(words(q))
    if n == 0:
        return False
    if _CUES.match(q) and n <= 10:
        return True
    if n <= 8 and _ANAPHOR.search(q) and _find_territory(q, known) is None:
        return True
    if n <= 3 and _WH_START.match(q) and not (_STEM_VERBS.search(q) or _INVERTED.search(q)):
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


def _put_slots(text: str, slots: Slots, known: Sequence[str] | None) -> str:
    """`text` (a question without its « ? », or a subject) with the territory, year and theme
    of a follow-up put in: in place of its own when it has one, else added at the end."""
    out = text.strip()
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
    return re.sub(r"\s{2,}", " ", out).strip()


def _substitute(previous: str, slots: Slots, known: Sequence[str] | None) -> str:
    """The previous question with the follow-up's territory, year and theme put in."""
    return _put_slots(re.sub(r"\s*[?？]\s*$", "", previous.strip()), slots, known) + " ?"


# --------------------------------------------------------------------------- subject and facet


def _aux(word: str) -> str | None:
    """"etre" or "avoir" for their finite forms (« a » is one, « à » is not)."""
    w = fold(word) if word.lower() != "à" else ""
    return "etre" if w in _ETRE else "avoir" if w in _AVOIR else None


def _is_verb(word: str) -> bool:
    return _aux(word) is not None or bool(_STEM_VERBS.fullmatch(word))


def _verb_group(tokens: list[str]) -> tuple[int, bool]:
    """How many of `tokens` the verb they start with takes ("ont été menées à Jonzac" → 3),
    and whether it is a passive participle (which then describes the subject: "menées")."""
    if _aux(tokens[0]) is None:
        return 1, False
    i, passive = 1, _aux(tokens[0]) == "etre"
    if i < len(tokens) and fold(tokens[i]) == "ete":
        i, passive = i + 1, True
    if i < len(tokens) and _PARTICIPLE.fullmatch(tokens[i]):
        return i + 1, passive
    return i, False


def _noun_phrase(det: str, noun: str) -> str:
    """The questioned noun with the article its interrogative stood for: "quelles actions" →
    "les actions", "quelle vision" → "la vision", "quel outil" → "l'outil"."""
    d = fold(det)
    if d in {"quels", "quelles", "combien"}:
        return f"les {noun}"
    if fold(noun[:1]) in "aeiouyh":
        return f"l'{noun}"
    return f"{'le' if d == 'quel' else 'la'} {noun}"


def _split_subject(text: str) -> tuple[str, str]:
    """"vision à l'horizon 2040 la feuille de route de Colmar" → ("vision à l'horizon 2040",
    "la feuille de route de Colmar"): the subject of an inverted verb starts at the first
    determiner or name that no preposition governs."""
    tokens = list(re.finditer(r"[\wÀ-ÖØ-öø-ÿ]+'?|\S", text))
    for prev, tok in zip(tokens, tokens[1:], strict=False):
        p, t = fold(prev.group(0)).rstrip("'"), fold(tok.group(0)).rstrip("'")
        if p in _PREPOSITIONS or p in _DETERMINERS:
            continue
        if t in _DETERMINERS or tok.group(0)[:1].isupper():
            return text[: tok.start()].strip(" ,"), text[tok.start():].strip(" ,")
    return text.strip(" ,"), ""


def _has_content(text: str) -> bool:
    """Does `text` say more than a place or a date ("à Jonzac", "en 2021")?"""
    return bool(content_stems(" ".join(w for w in text.split() if not w[:1].isupper())))


def topic_of(question: str) -> str:
    """What a question is about, as a noun phrase: the question without its interrogative frame.

    "Comment la mobilité des aînés est-elle organisée à Jonzac ?" → "la mobilité des aînés
    organisée à Jonzac"; "Quelles actions ont été menées à Jonzac pour les jeunes ?" → "les
    actions menées à Jonzac pour les jeunes"; "Comment les communes répondent-elles à la
    mobilité des personnes âgées ?" → "la mobilité des personnes âgées, dans les communes"
    (the verb's subject, when it is not what the question is about, says where). A follow-up
    asking something else about it ("qui l'a porté ?") puts this in place of its pronoun.
    """
    q = re.sub(r"\s+", " ", question.replace("’", "'")).strip().rstrip(" ?？!.").strip()
    q = _SECOND_QUESTION.split(q, maxsplit=1)[0]  # "Quelle était la stratégie et pourquoi …": the first
    m = _OPENER.match(q)
    if not m:
        return q  # no interrogative: "La mobilité des aînés à Jonzac ?"
    rest, det = q[m.end():].strip(), m.group("det") or m.group("many")
    inverted = _INVERTED.search(rest)
    if inverted:  # "Comment <subject> <verb>-t-elle <rest> ?", "Quel <noun> <subject> <verb>-il … ?"
        before = rest[: inverted.start()].split()
        while before and fold(before[-1]).rstrip("'") in _CLITICS:  # "s'" of "s'organise-t-elle"
            before.pop()
        noun, subject = _split_subject(" ".join(before)) if det else ("", " ".join(before))
        group = [inverted.group(1), *rest[inverted.end():].split()]
        n, passive = _verb_group(group)
        tail = " ".join(group[n - 1 if passive else n:]).strip(" ,")
        tail = re.sub(r"^(?:à|a)\s+(?=(?:la|l'|les?|un|une|ce|cet|cette|ces|son|sa|ses|leurs?)\b)", "", tail)
        tail = re.sub(r"^au\b", "le", re.sub(r"^aux\b", "les", tail))
        if passive or (subject and not noun and not _has_content(tail)):
            tail, subject = f"{subject} {tail}", ""  # the subject is what the question is about
        topic = f"{_noun_phrase(det, noun)} {tail}" if noun else tail
        if subject:  # who acts, as a place: "…, dans les communes", "…, à Colmar Agglomération"
            topic = f"{topic.strip()}, {'à' if subject[:1].isupper() else 'dans'} {subject}"
    else:
        tokens = rest.split()
        at = next((i for i, w in enumerate(tokens) if _is_verb(w)), None)
        if m.group("verb") and tokens:  # "Que prévoit <subject> …", "Qui a porté <object> …"
            topic = " ".join(tokens[_verb_group(tokens)[0]:])
        elif det and at is None:  # "Quelles actions pour les seniors ?"
            topic = _noun_phrase(det, rest)
        elif det and at == 0:  # "Quel est le calendrier …", "Quelle a été la part …"
            topic = " ".join(tokens[_verb_group(tokens)[0]:])
        elif det:  # "Quelles actions ont été menées …" → "les actions menées …"; "… qui ont participé …"
            n, passive = _verb_group(tokens[at:])
            noun = _noun_phrase(det, " ".join(tokens[:at]))
            verb_phrase = tokens[at + n - 1:] if passive else ["qui", *tokens[at:]]
            topic = f"{noun} {' '.join(verb_phrase)}"
        else:  # "Comment les communes répondent à …", "Qu'est-ce que la gérontocroissance"
            topic = rest
    topic = re.sub(r"\s{2,}", " ", topic).strip(" ,;:")
    return topic or q


def facet_of(question: str, known: Sequence[str] | None = None) -> str | None:
    """The question a follow-up asks about the previous subject, without its cue, territory and
    year (they are slots, put into the subject); None when it only changes a slot.

    "Et quels partenaires y ont participé ?" → "quels partenaires y ont participé"; "Qui a
    porté ça ?" → itself; "Et le calendrier ?" → "le calendrier"; "et à Lorient ?" → None.
    """
    q = question.replace("’", "'")
    for _ in range(2):  # "et côté partenaires", "et concernant le budget": two cues
        q = _CUES.sub("", q, count=1).strip(" ?!.,;:")
    if _LEAD_PREP.match(q) and not _WH_START.match(q):
        q = q[0].lower() + q[1:]
    ym = _YEAR.search(q)
    if ym:
        q = (q[: ym.start()] + q[ym.end():]).strip(" ,")
    tm = _find_territory(q, known)
    if tm:
        q = (q[: tm.start] + q[tm.end:]).strip(" ,")
    q = re.sub(r"\s{2,}", " ", q).strip(" ,")
    if not q:
        return None
    if _WH_START.match(q) or _ANAPHOR.search(q):
        return q
    # verbless: "le calendrier", "du budget" (after « qu'en est-il »), "côté partenaires"
    m = re.match(r"(?:(de la|de l'|les|le|la|l'|du|des|d')(?:(?<=')|\s+))?([\wÀ-ÖØ-öø-ÿ]+)", q, re.I)
    if m and len(words(q)) <= 4 and not _STEM_VERBS.search(q) and stem(m.group(2)) in _facet_stems():
        article = m.group(1) or ""  # « qu'en est-il du budget » asks for « le budget »
        article = {"du": "le ", "de la": "la ", "de l'": "l'", "des": "les ", "d'": ""}.get(
            fold(article), article + ("" if article.endswith("'") or not article else " "))
        return article + q[m.start(2):]
    return None


@lru_cache(maxsize=1)
def _facet_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in _FACET_WORDS.split())


def _joined(prep: str, phrase: str) -> str:
    """`prep` + `phrase` as French writes it: "à les actions" → "aux actions", "de le suivi" →
    "du suivi"; a phrase that starts with its own preposition ("à Melun") keeps it."""
    first = fold(phrase.split()[0]) if phrase.split() else ""
    if first in _PREPOSITIONS - {"des", "du"}:
        return phrase
    for p, article, contracted in (("à", "le ", "au "), ("à", "les ", "aux "), ("de", "le ", "du "),
                                   ("de", "les ", "des ")):
        if prep == p and phrase.lower().startswith(article):
            return contracted + phrase[len(article):]
    if prep == "de" and fold(phrase[:1]) in "aeiouyh":
        return f"d'{phrase}"
    return f"{prep} {phrase}"


def _ask(facet: str, topic: str) -> str:
    """The follow-up's own question, about `topic`: the subject goes where its pronoun was
    ("quels partenaires y ont participé" → "Quels partenaires ont participé à <topic> ?"), or
    after it with « pour » when it has none ("le calendrier" → "Le calendrier pour <topic> ?")."""
    m = _ANAPHOR.search(facet)
    if m is None:
        sep = " " if content_stems(facet, generic=True) else ", "  # "Pourquoi, pour … ?"
        out = f"{facet}{sep}{_joined('pour', topic)}"
    else:
        head, rest = facet[: m.start()].strip(), facet[m.end():].strip()
        if m.group("ca") and not head:  # "ça a coûté combien" → "<topic> a coûté combien"
            out = f"{topic} {rest}"
        elif m.group("y"):
            out = f"{head} {rest} {_joined('à', topic)}"
        elif m.group("en"):
            out = f"{head} {rest} {_joined('de', topic)}"
        else:  # "qui a porté ça", "combien ça coûte" → "combien coûte <topic>", "qui l'a porté"
            out = f"{head} {rest} {topic}"
    out = re.sub(r"\s{2,}", " ", out).strip(" ,")
    return out[:1].upper() + out[1:] + " ?"


def _follow(question: str, previous: str, topic: str, known: Sequence[str] | None) -> tuple[str, str]:
    """A follow-up resolved against the previous question and its subject: the question to
    search, and the subject the conversation is now about."""
    slots = extract_slots(question, known)
    facet = facet_of(question, known)
    if facet is not None:  # a new question on the same subject, in the territory/year it names
        slots.theme = None
        topic = _put_slots(topic, slots, known)
        return _ask(facet, topic), topic
    if not slots.any():
        return previous, topic
    rewritten = _substitute(previous, slots, known)
    topic = _put_slots(topic, slots, known) if fold(topic) in fold(previous) else topic_of(rewritten)
    return rewritten, topic


def _conversation(history: Sequence[tuple[str, str]], known: Sequence[str] | None) -> tuple[str, str]:
    """The last question of the conversation as it was searched, and its subject.

    Earlier turns may be follow-ups themselves. A question that repeats the subject, in its
    own territory or year (as a rewritten follow-up does: the app sends those back), keeps it,
    so « et le calendrier ? » after « Quels partenaires ont participé à <subject> ? » is still
    about <subject>, not about its partners.
    """
    previous = topic = ""
    for user, _answer in history:
        if previous and is_followup(user, known):
            previous, topic = _follow(user, previous, topic, known)
            continue
        previous = user
        places = extract_slots(user, known)
        places.theme = None
        kept = _put_slots(topic, places, known) if topic else ""
        topic = kept if kept and fold(kept) in fold(user) else topic_of(user)
    return previous, topic


def rewrite_rules(question: str, history: Sequence[tuple[str, str]] | None,
                  known: Sequence[str] | None = None) -> str:
    """Rule-based rewrite; returns `question` unchanged when it stands on its own."""
    if not history or not is_followup(question, known):
        return question
    previous, topic = _conversation(history, known)
    if not previous.strip():
        return question
    return _follow(question, previous, topic or topic_of(previous), known)[0]


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
    plausible question that still names the territory/year the user just asked for, and
    what a follow-up asks about the subject (« partenaires »), otherwise the rules answer
    (a small local model often drifts or answers instead).
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
    facet = facet_of(question, known_territories)
    asked = set(content_stems(facet, generic=True)) if facet else set()
    ok = (
        10 <= len(proposed) <= 300
        and proposed.endswith("?")
        and all(fold(w) in fold(proposed) for w in slots.required_words())
        and len(content_stems(proposed)) >= 2
        and (not asked or bool(asked & set(content_stems(proposed, generic=True))))
    )
    return proposed if ok else by_rules
