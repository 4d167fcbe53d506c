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
_NAMED_RE = re.compile(
    r"\bfabriques?(?:\s+prospectives?)?\s*(?:n\s*°\s*\d+\s*)?[:,]?\s*"
    rf"(?:(?:sur|consacr[ée]e?s?\s+(?:à|a))\s+{_THEME_FRAME}\s*:?\s*)?"
    rf"[{_OPEN}]\s*(?P<name>[^{_CLOSE}\n]{{3,220}}?)\s*[{_CLOSE}]",
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


def noun_phrase(raw: str) -> str:
    """The noun phrase a running-text name opens with: no theme frame (« le thème de »), no verb
    and what follows it (see _DETERMINERS). « Le thème » alone gives ""."""
    text = _FRAME_HEAD_RE.sub("", raw, count=1)
    words = [(m.start(), fold(m.group(0)).replace("’", "'")) for m in re.finditer(r"[\w-]+['’]?", text)]
    for k in range(1, len(words)):
        prev, word = words[k - 1][1], words[k][1]
        if word in _DETERMINERS and prev not in _LINKS and prev not in _DETERMINERS:
            return text[:words[k - 1][0]].rstrip()
    return text.strip()


def named_fabriques(text: str) -> list[str]:
    """Fabrique names a text states (« Fabrique prospective « X » », « … sur X »), in order."""
    found: list[tuple[int, str]] = []
    for rx in (_NAMED_RE, _ABOUT_RE):
        for m in rx.finditer(text):
            raw = m.group("name") if rx is _NAMED_RE else noun_phrase(m.group("name"))
            name = clean_name(raw)
            if len(content_stems(name)) >= 1 and len(name) >= 3:
                found.append((m.start(), name))
    return [n for _, n in sorted(found)]


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
        fabrique or founds a new one. A zone naming none may still hold a known fabrique's
        full title. Zones that say nothing leave the fabrique empty.
        """
        for label, text in zones:
            if not text:
                continue
            names = named_fabriques(text)
            if names:
                named = names[0]
                fab = self.match(named)
                if fab is not None:
                    if learn:
                        self.remember(fab, named)
                    return Match(fab, named, label)
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
