"""Which Fabrique Prospective a document belongs to: known ones, and ones it reveals.

A false fabrique label is the worst metadata error (the answer heads its quotes with it and
users trust it), so a document joins a known fabrique only when it names it: « Fabrique
prospective « X » », « Fabrique prospective sur X » or the fabrique's full title, in its
title, subject, running header or first page. A name that matches no known fabrique makes
a new one (stable id from its name) that later documents naming it join. Nothing else is
guessed: no keyword counting, no nearest theme. An empty fabrique is an acceptable answer.

Names are compared on their content words (French stems, frame words removed): documents
call the same fabrique « Territoires industriels et capital social » and « Territoires
industriels : comment renforcer le capital social ? ».
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.lexical import analyse, fold

# Words every fabrique name may carry: they say nothing about which one it is.
_FRAME = frozenset(analyse(
    "fabrique fabriques prospective prospectives étude comment quel quelle quels quelles "
    "demain transition transitions enjeu enjeux pistes démarche anct"
))
_MIN_SHARED = 2  # content words two names must share (unless both have a single one)
_CONTAINMENT = 0.8  # share of the shorter name's content words found in the longer one

_OPEN, _CLOSE = "«“\"", "»”\""
# « le thème », « la question »: the frame of a name, not a name (« Fabrique prospective sur le
# thème « X » », « … sur la question du vieillissement »): the name is what follows.
_THEME_FRAME = (r"(?:(?:le|la|les)\s+|l['’])"
                r"(?:th[èe]mes?|th[ée]matiques?|sujets?|questions?|probl[ée]matiques?)\b")
_FRAME_HEAD_RE = re.compile(rf"^\s*{_THEME_FRAME}\s*(?:(?:de\s+la|de\s+l['’]|du|des|de|d['’])\s*|:\s*)?",
                            re.IGNORECASE)
# The quoted name follows « fabrique » on the same line: across a paragraph break, a quote is
# another paragraph (a page's headline, an élu's words under a banner « … des Fabriques
# Prospectives »), not the fabrique's name.
_NAMED_RE = re.compile(
    r"\bfabriques?(?:[^\S\n]+prospectives?)?[^\S\n]*(?:n[^\S\n]*°[^\S\n]*\d+[^\S\n]*)?[:,]?[^\S\n]*"
    rf"(?:(?:sur|consacr[ée]e?s?\s+(?:à|a))\s+{_THEME_FRAME}\s*:?[^\S\n]*)?"
    rf"[{_OPEN}][^\S\n]*(?P<name>[^{_CLOSE}\n]{{3,220}}?)\s*[{_CLOSE}]",
    re.IGNORECASE,
)
_ABOUT_RE = re.compile(
    r"\bfabriques?\s+prospectives?\s+"
    r"(?:(?:consacr[ée]e?s?|d[ée]di[ée]e?s?|relatives?)\s+(?:à|au|aux|a)\s+|portant\s+sur\s+|sur\s+)"
    # a name stated this way ends at the first comma (« …, à l'issue de quatre séminaires »);
    # names with a comma are written in quotes, the form above
    r"(?P<name>[^.,;:!?()\[\]\n«»\"“”]{8,220})",
    re.IGNORECASE,
)
# A name stated in running text is a noun phrase; it ends where the sentence's verb begins. In
# French a determiner (« du », « des » are also « de » + article: not counted) or « que »
# follows a preposition or a conjunction inside a noun phrase;
# after any other word (« les temps de la ville confirment une intuition ») that word is a verb.
_DETERMINERS = frozenset("le la les l' un une ce cet cette ces son sa ses leur leurs notre nos "
                         "votre vos que qu'".split())
_LINKS = frozenset("de d' à a au aux en dans sur pour par avec entre et ou vers chez sans sous contre "
                   "selon pendant après apres avant auprès aupres comme hors parmi face".split())
# A name ends before a date range or a dash introducing something else.
_NAME_TAIL_RE = re.compile(r"\s+[–—-]\s+.*$|\s*\((?:[^)]*\d{4}[^)]*)\)\s*$")


def content_stems(name: str) -> frozenset[str]:
    """The words that tell one fabrique name from another."""
    return frozenset(s for s in analyse(name) if s not in _FRAME and not s.isdigit())


def same_name(a: str, b: str) -> float:
    """How surely two fabrique names denote the same fabrique (0 = not, 1 = surely)."""
    sa, sb = content_stems(a), content_stems(b)
    if not sa or not sb:
        return 0.0
    shared = len(sa & sb)
    if shared < min(_MIN_SHARED, len(sa), len(sb)):
        return 0.0
    ratio = shared / min(len(sa), len(sb))
    return ratio if ratio >= _CONTAINMENT else 0.0


def clean_name(raw: str) -> str:
    """A fabrique name as a title: no quotes, dates or trailing punctuation, capital first."""
    name = " ".join(raw.split()).strip(" ,;:-–—'\"«»“”")
    name = _NAME_TAIL_RE.sub("", name).strip(" ,;:-–—")
    return name[:1].upper() + name[1:] if name else ""


def _noun_phrase(raw: str) -> tuple[str, bool]:
    """noun_phrase, and whether its end was guessed (cut before a presumed verb) rather than
    written (punctuation, end of line)."""
    text = _FRAME_HEAD_RE.sub("", raw, count=1)
    words = [(m.start(), fold(m.group(0)).replace("’", "'")) for m in re.finditer(r"[\w-]+['’]?", text)]
    for k in range(1, len(words)):
        prev, word = words[k - 1][1], words[k][1]
        if word in _DETERMINERS and prev not in _LINKS and prev not in _DETERMINERS:
            return text[:words[k - 1][0]].rstrip(), True
    return text.strip(), False


def noun_phrase(raw: str) -> str:
    """The noun phrase a running-text name opens with: no theme frame (« le thème de »), no verb
    and what follows it (see _DETERMINERS). « Le thème » alone gives ""."""
    return _noun_phrase(raw)[0]


# A clause, not a name: a finite form of the verbs French sentences lean on (auxiliaries and
# modals, a closed class), or a negation « ne … », « n'… », which only a conjugated verb takes.
# Fabrique names are noun phrases or questions built on an infinitive (« comment renforcer le
# capital social ? », « être senior demain… »); a quote with a finite verb (« Le temps est un
# service public comme un autre », « Un terrain vendu doit être un terrain bâti ») is somebody's
# words.
_FINITE = frozenset(
    "est sont etait etaient sera seront serait seraient fut soit soient "
    "ai as avons avez ont avait avaient aura auront aurait auraient "
    "doit doivent devait devaient devra devront devrait devraient "
    "peut peuvent pouvait pouvaient pourra pourront pourrait pourraient "
    "faut fallait faudra faudrait va vont allait fait font faisait "
    "suis es sommes etes".split())
_NEGATION_RE = re.compile(r"(?:^|\s)(?:ne\s+\w|n['’]\w)", re.IGNORECASE)


# After a determiner (or « Grand »), these words are nouns: « le Grand Est », « l'Est », « le fait
# urbain », « des sommes ».
_BEFORE_NOUN = _DETERMINERS | frozenset("l d du des grand".split())


def is_clause(name: str) -> bool:
    """Whether a quoted text is a sentence (a finite verb, a negation) rather than a name."""
    folded = fold(name).replace("’", "'")
    words = re.findall(r"[\w-]+", folded)
    return bool(_NEGATION_RE.search(folded)) or any(
        w in _FINITE and (k == 0 or words[k - 1] not in _BEFORE_NOUN) for k, w in enumerate(words))


def stated_fabriques(text: str) -> list[tuple[str, bool]]:
    """(name, written) for each fabrique name a text states, in order. `written` is False for a
    running-text name whose end had to be guessed (« la Fabrique consacrée aux temps de la ville
    confirment une intuition »): it may join a known fabrique, too unsure to found one."""
    found: list[tuple[int, str, bool]] = []
    for rx in (_NAMED_RE, _ABOUT_RE):
        for m in rx.finditer(text):
            if rx is _NAMED_RE:
                raw, guessed = m.group("name"), False
                if is_clause(raw):
                    continue
            else:
                raw, guessed = _noun_phrase(m.group("name"))
            name = clean_name(raw)
            if len(content_stems(name)) >= 1 and len(name) >= 3:
                found.append((m.start(), name, not guessed))
    return [(n, w) for _, n, w in sorted(found)]


def named_fabriques(text: str) -> list[str]:
    """Fabrique names a text states (« Fabrique prospective « X » », « … sur X »), in order."""
    return [n for n, _ in stated_fabriques(text)]


def slug(text: str, limit: int = 48) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:limit].strip("-") or "fabrique"


@dataclass
class Fabrique:
    id: str
    title: str
    year: int | None = None
    keywords: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    territories: dict[str, list[str]] = field(default_factory=dict)  # name -> aliases
    aliases: list[str] = field(default_factory=list)  # other names documents give it
    origin: str = "manifeste"  # manifeste | index (learned from indexed documents)

    def names(self) -> list[str]:
        return [self.title, *self.aliases]


@dataclass
class Match:
    fabrique: Fabrique
    named: str  # the name as the document gives it
    evidence: str  # where it was found, in French (« titre », « première page »…)
    discovered: bool = False


class Catalog:
    """The fabriques an ingest knows: the manifest's, and those learned from documents."""

    def __init__(self, fabriques: Iterable[Fabrique] = ()) -> None:
        self.by_id: dict[str, Fabrique] = {}
        for f in fabriques:
            self.add(f)

    def add(self, fab: Fabrique) -> Fabrique:
        known = self.by_id.get(fab.id)
        if known is None:
            self.by_id[fab.id] = fab
            return fab
        for alias in fab.names():
            self.remember(known, alias)
        if known.year is None and fab.year:
            known.year = fab.year
        return known

    def get(self, fabrique_id: str) -> Fabrique | None:
        return self.by_id.get(fabrique_id)

    def match(self, name: str) -> Fabrique | None:
        """The one known fabrique this name denotes; None when none or several fit."""
        scored = []
        for fab in self.by_id.values():
            best = max((same_name(name, n) for n in fab.names()), default=0.0)
            if best:
                scored.append((best, fab))
        if not scored:
            return None
        scored.sort(key=lambda s: -s[0])
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            return None  # two fabriques fit equally: an empty label beats a coin toss
        return scored[0][1]

    def in_text(self, text: str) -> Fabrique | None:
        """A known fabrique whose full title (or declared alias) the text contains verbatim."""
        folded = " ".join(fold(text).split())
        hits = []
        for fab in self.by_id.values():
            for name in fab.names():
                key = " ".join(fold(name).split()).strip(" ?!.")
                if len(content_stems(name)) >= 3 and key and key in folded:
                    hits.append(fab)
                    break
        return hits[0] if len(hits) == 1 else None

    def resolve(self, zones: list[tuple[str, str]], learn: bool = True) -> Match | None:
        """The fabrique a document belongs to, from its zones (label, text) best first.

        The first zone that names a fabrique decides: its first name joins a known
        fabrique or founds a new one (only a name whose end the writer marked: see
        stated_fabriques). A zone naming none may still hold a known fabrique's full title.
        Zones that say nothing leave the fabrique empty.
        """
        for label, text in zones:
            if not text:
                continue
            names = stated_fabriques(text)
            if names:
                named, written = names[0]
                fab = self.match(named)
                if fab is not None:
                    if learn:
                        self.remember(fab, named)
                    return Match(fab, named, label)
                if written:
                    new = Fabrique(id=f"fp-{slug(named)}", title=named, origin="index")
                    return Match(self.add(new) if learn else new, named, label, discovered=True)
            fab = self.in_text(text)
            if fab is not None:
                return Match(fab, fab.title, label)
        return None

    def remember(self, fab: Fabrique, named: str) -> None:
        """A new way of naming a known fabrique: later documents may use it too."""
        if named != fab.title and named not in fab.aliases:
            fab.aliases.append(named)
