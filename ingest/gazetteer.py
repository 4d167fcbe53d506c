"""The French territories a document is about, from the official administrative map.

Documents name places every way people write them ("à Arras", "la CU d'Arras",
"Communauté urbaine d'Arras", "le Grand Angoulême"); labels and filters need one
name per territory, and the link between a commune and its intercommunality so
that a question about one finds documents about the other. The data file is
derived at build time from Etalab's `@etalab/decoupage-administratif` (see
`ingest/data/build_gazetteer.py`); this module only reads it, with the standard
library, once per process.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "territoires.json.gz"

# Ambiguity levels of a name, decided at build time (see the data file's header).
PLAIN, CAPITAL_ONLY, NEEDS_CONTEXT = 0, 1, 2

# Scoring: a document is about a territory named in its title, or named on its first page and
# again in the body, or named often for its length; once in passing is not enough.
TITLE_SCORE = 3.0
HEAD_UNIT, HEAD_CAP = 0.5, 2.0
BODY_UNIT, BODY_CAP = 0.4, 2.0
BODY_TOKENS = 1500  # a body longer than this needs proportionally (√) more mentions
THRESHOLD = 1.2
ADMIN_WEIGHT = 1.5  # « commune de Mer », « Mer (41) », « communauté de communes de … » say it is the place
LOCATIVE_WEIGHT = 1.2  # « à Mer » says it is a place
HEAD_CHARS = 3000  # the first page when the caller gives none

# Gaps between tokens: what separates a token from the previous one.
JOIN, SPACE, PUNCT, BREAK = 0, 1, 2, 3

_WORD = re.compile(r"[^\W_]+(?:['’ʼ](?=[^\W\d_]))?")
_HYPHENS = "-‐‑"
_BREAKS = frozenset(".!?…;:•▪●◦·■□►*")
_DEP_CODE = re.compile(r"\s*\(\s*(\d{2,3}|2[AaBb])\s*\)")

ARTICLES = frozenset({"le", "la", "les", "l'"})
_ARTICLES_TYPED = ARTICLES | {"l"}
# "de la", "d'" (and "d", "l" as people type them without the apostrophe: "communaute urbaine d arras")
LINKERS = (("de", "la"), ("de", "l'"), ("de", "l"), ("du",), ("des",), ("de",), ("d'",), ("d",))
# Small words a multi-word name can hold between its capitalised words.
CONNECTORS = frozenset({"de", "du", "des", "d'", "la", "le", "les", "l'", "sur", "sous", "lez", "aux",
                        "au", "en", "et", "a"})  # folded: "lès" is "les", "à" is "a"
# Small words that bind only inside hyphenated names ("Saint-Martin-en-Haut", "Loir-et-Cher") or
# right before a capital ("Terres et Mers", not "Val de Brume et la Région").
HYPHEN_ONLY = frozenset({"en", "et", "a"})
# Capitalised words that open a sentence, never a place.
FUNCTION_WORDS = frozenset({"le", "la", "les", "l'", "un", "une", "des", "ce", "cet", "cette", "ces",
                            "notre", "votre", "leur", "leurs", "son", "sa", "ses", "chaque", "toute",
                            "tout", "tous", "toutes", "en", "et", "a", "au", "aux", "du", "de", "d'",
                            "dans", "par", "pour", "sur", "avec", "il", "elle", "on", "nous", "vous"})
# "Cité du Parc", "QPV La Rabaterie", "quartier Saint-Louis": a part of a commune. The name after
# them is the quarter's, never a territory of its own; the commune it is said to be in
# ("la Cité du Parc à Vernouillet") takes its mentions (see Gazetteer._quarters).
QUARTER_WORDS = frozenset({"quartier", "quartiers", "qpv", "hameau", "residence", "cite", "lotissement",
                           "faubourg"})
# "rue de Paris", "lycée Victor-Hugo": an address, a school, a station; and the quarters.
STREET_WORDS = QUARTER_WORDS | frozenset({"rue", "avenue", "av", "boulevard", "bd", "place", "lycee",
                                          "college", "ecole", "allee", "quai", "impasse", "chemin", "route",
                                          "square", "gare"})
# "mairie de Plan", "habitants d'Eu": the word after them is a place.
ADMIN_NOUNS = frozenset({"commune", "communes", "ville", "village", "mairie", "maire", "municipalite",
                         "bourg", "territoire", "habitants", "canton", "agglomeration"})

# Authority prefixes ("communauté de communes de …"), folded, with the EPCI types they name. A PETR and a
# pôle métropolitain are syndicats, not EPCI: they name no type, so the data never answers for them
# (« PETR du Pays de Retz » is not Pornic Agglo Pays de Retz, « pôle métropolitain Nantes Saint-Nazaire » not
# Nantes Métropole) and they stay as written.
_CC, _CA, _CU, _METRO, _EPT, _ANY = "CC", "CA", "CU", "METRO", "EPT", "*"
_PETR, _POLE = "PETR", "POLE"
AUTHORITY_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("communaute", "de", "communes"), _CC),
    (("communaute", "de", "commune"), _CC),
    (("communaute", "d'", "agglomeration"), _CA),
    (("communaute", "d'", "agglo"), _CA),
    (("communaute", "urbaine"), _CU),
    (("etablissement", "public", "territorial"), _EPT),
    (("metropole", "europeenne"), _METRO),
    (("eurometropole",), _METRO),
    (("metropole",), _METRO),
    (("agglomeration",), _CA),
    (("agglo",), _CA),
    (("communaute",), _ANY),
    (("intercommunalite",), _ANY),  # "l'intercommunalité d'Arras": whichever kind it is
    (("cc",), _CC),
    (("ca",), _CA),
    (("cu",), _CU),
    (("ept",), _EPT),
    (("pole", "d'", "equilibre", "territorial", "et", "rural"), _PETR),
    (("petr",), _PETR),
    (("pole", "metropolitain"), _POLE),
)
_PREFIX_FIRSTS = frozenset(p[0][0] for p in AUTHORITY_PREFIXES)
# Lowercase words an official name may start with before its first capital.
_LEADING_WORDS = frozenset(w for p, _ in AUTHORITY_PREFIXES for w in p if len(w) > 3) \
    | ARTICLES | {w for linker in LINKERS for w in linker}
AUTHORITY_SUFFIXES: dict[str, str] = {"metropole": _METRO, "agglomeration": _CA, "agglo": _CA,
                                      "communaute": _ANY, "intercom": _ANY, "interco": _ANY}
TYPES_FOR = {_CC: {"CC"}, _CA: {"CA"}, _CU: {"CU"}, _METRO: {"METRO", "MET69", "CU"}, _EPT: {"EPT"},
             _ANY: {"CC", "CA", "CU", "METRO", "MET69", "EPT"}, _PETR: set(), _POLE: set()}
PREFIX_LABELS = {_CC: "communauté de communes", _CA: "communauté d'agglomération", _CU: "communauté urbaine",
                 _METRO: "métropole", _EPT: "établissement public territorial", _ANY: "communauté",
                 _PETR: "PETR", _POLE: "pôle métropolitain",
                 "commune": "commune de", "ville": "ville de", "pays": "Pays"}


def fold(text: str) -> str:
    """Lowercase without accents, for matching names the way people write them (as ingest.metadata.fold,
    without importing its YAML-reading module into every process that only wants places)."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


def _accent_table() -> dict[int, str]:
    """One translate() per token instead of a Unicode normalisation: most text is Latin-1."""
    table = {}
    for code in range(0xC0, 0x250):
        ch = chr(code)
        folded = fold(ch)
        if folded != ch.lower() and len(folded) == 1:
            table[code] = folded
    table.update({ord("œ"): "oe", ord("æ"): "ae", ord("’"): "'", ord("ʼ"): "'"})
    return table


_TABLE = _accent_table()


def _fold_word(word: str) -> str:
    w = word.lower().translate(_TABLE)
    if not w.isascii():  # decomposed accents from a PDF, rare scripts
        w = fold(w).translate(_TABLE)
    return _SAINTS.get(w, w)


_PARENS = re.compile(r"[ \t]*\([^)\n]*\)")
_COMBINING = re.compile(r"[\u0300-\u036f]")
_CAMEL = re.compile(r"(?<=[a-zß-öø-ÿ])(?=[A-ZÀ-ÖØ-Þ])")
_SAINTS = {"st": "saint", "ste": "sainte"}


def _tokens_of(name: str) -> list[str]:
    """A name's folded words: hyphens are spaces, elisions stay on their article ("l'", "d'"); what
    is in brackets is not part of it ("Bors (Canton de Charente-Sud)")."""
    return _bulk_tokens([name])[0]


def _bulk_tokens(names: list[str]) -> list[list[str]]:
    """_tokens_of for many names at once: one pass of each string operation over all of them is
    what keeps loading the 37,000 names of the data file fast."""
    joined = _CAMEL.sub(" ", _PARENS.sub(" ", "\n".join(names))).lower()
    for ligature, plain in (("œ", "oe"), ("æ", "ae"), ("’", "'"), ("ʼ", "'")):
        joined = joined.replace(ligature, plain)
    joined = _COMBINING.sub("", unicodedata.normalize("NFKD", joined))
    out = []
    for folded in joined.split("\n"):
        words = _WORD.findall(folded)
        if "st" in words or "ste" in words:
            words = [_SAINTS.get(w, w) for w in words]
        out.append(words)
    return out


def _strip_article(tokens: list[str]) -> list[str]:
    return tokens[1:] if len(tokens) > 1 and tokens[0] in _ARTICLES_TYPED else tokens


def split_authority(tokens: list[str]) -> tuple[str, list[str]]:
    """(kind of authority named, core words): "CU d'Arras" → ("CU", ["arras"]), "Brest Métropole" →
    ("METRO", ["brest"]); ("", tokens) for a name with no authority word around it."""
    kind = ""
    core = list(tokens)
    changed = bool(core) and (core[0] in _PREFIX_FIRSTS or core[-1] in AUTHORITY_SUFFIXES)
    while changed and core:
        changed = False
        for prefix, k in AUTHORITY_PREFIXES if core[0] in _PREFIX_FIRSTS else ():
            n = len(prefix)
            if len(core) > n and tuple(core[:n]) == prefix:
                core, kind, changed = core[n:], kind or k, True
                break
        for linker in LINKERS:
            n = len(linker)
            if kind and len(core) > n and tuple(core[:n]) == linker:
                core, changed = core[n:], True
                break
    if len(core) > 1 and core[-1] in AUTHORITY_SUFFIXES:
        kind = kind or AUTHORITY_SUFFIXES[core[-1]]
        core = core[:-1]
    return kind, core


@dataclass(frozen=True, slots=True)
class Place:
    kind: str          # "commune" | "epci" | "departement" | "region"
    code: str          # INSEE code (commune), SIREN (EPCI), département code, région code
    name: str          # official name: "Arras", "CU d'Arras", "Pas-de-Calais", "Hauts-de-France"
    departement: str = ""   # département code ("" for EPCI spanning several / for regions)
    region: str = ""        # région code
    epci: str = ""          # SIREN of a commune's EPCI


@dataclass(frozen=True, slots=True)
class Mention:
    name: str          # display name: official name, or the name as written for pattern-found territories
    kind: str          # as Place.kind, or "collectivite" for a pattern-found territory the data does not hold
    code: str          # "" when not in the data, or when homonyms could not be told apart
    score: float       # how strongly the document is about it (title, first page, frequency)
    evidence: str      # short explanation: "titre, première page ×3, texte ×12"


class _Tokens:
    """A text tokenised once: folded words, their case, and what separates each from the previous."""

    __slots__ = ("text", "keys", "starts", "ends", "caps", "gaps")

    def __init__(self, text: str) -> None:
        self.text = text
        keys: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        caps: list[int] = []
        gaps: list[int] = []
        prev = -1
        for m in _WORD.finditer(text):
            word = m.group()
            start = m.start()
            if word[0].isupper() and not word.isupper() and _CAMEL.search(word):  # "GrandAngoulême"
                cuts = [0, *(c.start() for c in _CAMEL.finditer(word)), len(word)]
                pieces = [(start + a, word[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
            else:
                pieces = [(start, word)]
            for start, word in pieces:
                keys.append(_fold_word(word))
                starts.append(start)
                ends.append(start + len(word))
                caps.append(0 if not word[0].isupper() else 2 if len(word) > 1 and word.isupper() else 1)
                gaps.append(BREAK if prev < 0 else JOIN if start == prev else _gap_kind(text[prev:start]))
                prev = start + len(word)
        self.keys, self.starts, self.ends, self.caps, self.gaps = keys, starts, ends, caps, gaps

    def __len__(self) -> int:
        return len(self.keys)


def _gap_kind(gap: str) -> int:
    if gap == " ":
        return SPACE
    bare = gap.strip()
    if not bare:
        return BREAK if gap.count("\n") >= 2 else SPACE
    if all(c in _HYPHENS for c in bare):
        return JOIN if bare == gap else SPACE
    if any(c in _BREAKS for c in bare):
        return BREAK
    return PUNCT


@dataclass
class _Hit:
    group: tuple[str, ...]      # what occurrences add up under
    places: tuple[int, ...]     # candidate place indices (several for homonyms), () for collectivite
    weight: float
    where: str = ""             # "title" | "head" | "text" | "text+head"
    display: str = ""           # for collectivite: the name as written
    pattern: str = ""           # evidence label of the pattern that found it


@dataclass
class _Group:
    places: tuple[int, ...]
    kind: str
    display: Counter = field(default_factory=Counter)
    title: float = 0.0
    head: float = 0.0
    text: float = 0.0
    n_head: int = 0
    n_text: int = 0
    patterns: set[str] = field(default_factory=set)


class Gazetteer:
    """Communes, EPCI, départements and régions, indexed by every folded form a document may use."""

    def __init__(self, data: dict) -> None:
        places: list[Place] = []
        levels: list[int] = []
        for code, name, dep, region, epci, _pop, level in data["communes"]:
            places.append(Place("commune", code, name, dep, region, epci))
            levels.append(level)
        self._n_communes = len(places)
        commune_at = {p.code: i for i, p in enumerate(places)}
        self._types: dict[int, str] = {}
        self._members: dict[str, list[int]] = {}
        self._epts: dict[str, list[int]] = {}
        self._epci_at: dict[str, int] = {}
        for siren, name, typ, members in data["epci"]:
            e = len(places)
            idx = [commune_at[c] for c in members if c in commune_at]
            dep_codes = {places[i].departement for i in idx}
            reg_codes = {places[i].region for i in idx}
            self._types[e] = typ
            self._members[siren] = idx
            self._epci_at[siren] = e
            if typ == "EPT":
                for i in idx:
                    self._epts.setdefault(places[i].code, []).append(e)
            places.append(Place("epci", siren, name, dep_codes.pop() if len(dep_codes) == 1 else "",
                                reg_codes.pop() if len(reg_codes) == 1 else ""))
            levels.append(PLAIN)
        for code, name, region, level in data["departements"]:
            places.append(Place("departement", code, name, code, region))
            levels.append(level)
        for code, name, level in data["regions"]:
            places.append(Place("region", code, name))
            levels.append(level)
        self.places = places
        self.levels = levels
        self.version = f"{data['source']['package']}@{data['source']['version']}"
        self._regions = {r[0]: r[1] for r in data["regions"]}
        self._deps = {d[0]: d[1] for d in data["departements"]}
        self._dep_codes = frozenset(self._deps)

        by_name: dict[str, list[int]] = {}
        contracted: dict[str, list[int]] = {}  # "Le Havre" as written after "au"/"du": "le>havre"
        maxlen: dict[str, int] = {}  # first word → most words of a name starting with it
        n_communes = self._n_communes
        for i, toks in enumerate(_bulk_tokens([p.name for p in places])):
            if not toks:
                continue
            by_name.setdefault(" ".join(toks), []).append(i)
            if maxlen.get(toks[0], 0) < len(toks):
                maxlen[toks[0]] = len(toks)
            if i < n_communes and len(toks) > 1 and toks[0] in ("le", "les"):
                contracted.setdefault(toks[0] + ">" + " ".join(toks[1:]), []).append(i)
                if maxlen.get(toks[1], 0) < len(toks) - 1:
                    maxlen[toks[1]] = len(toks) - 1

        by_core: dict[str, list[int]] = {}
        acronyms: dict[str, list[int]] = {}
        for e in self._epci_at.values():
            name = places[e].name
            for core in self.cores(name):
                lst = by_core.setdefault(core, [])
                if e not in lst:
                    lst.append(e)
            for acro in re.findall(r"\(([A-Z][A-Z0-9]{3,})\)", name):  # "(CARENE)", "(CINOR)"
                acronyms.setdefault(acro.lower(), []).append(e)
        self._by_name = by_name
        self._by_core = by_core
        self._acronyms = {k: v for k, v in acronyms.items() if k not in by_name and k not in by_core}
        self._contracted = contracted
        # What a text is matched against: official names, and the EPCI short names that are no one's
        # official name and hold two words or more ("grand angouleme"; not "perche" nor "sud").
        index: dict[str, list[int]] = dict(by_name)
        extra = [(k, v) for k, v in by_core.items() if " " in k] + list(self._acronyms.items())
        for key, idx in extra:
            if key not in index:
                index[key] = idx
                toks = key.split(" ")
                if maxlen.get(toks[0], 0) < len(toks):
                    maxlen[toks[0]] = len(toks)
        self._index = index
        self._maxlen = maxlen

    # ----------------------------------------------------------------- loading

    @classmethod
    @functools.cache  # noqa: B019 — one instance per process, on purpose
    def default(cls) -> Gazetteer:
        """The shipped file, read on first use only: importing this module costs nothing."""
        return cls.load(DATA_FILE)

    @classmethod
    def load(cls, path: Path) -> Gazetteer:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return cls(json.load(f))

    # ----------------------------------------------------------------- lookups

    @staticmethod
    def cores(name: str) -> list[str]:
        """Every short form an EPCI goes by: without "CC de", "Métropole", a leading article; each
        part of a double name ("Golfe du Morbihan - Vannes Agglomération")."""
        out: list[str] = []
        parts = [name, *re.split(r"\s+[-/]\s+|\s*\(|\)", name)] if re.search(r"\s[-/]\s|\(", name) else [name]
        for n, part in enumerate(parts):
            _, core = split_authority(_tokens_of(part))
            forms = [core, _strip_article(core)]
            if "metropole" in core[1:-1]:  # "Tours Métropole Val de Loire" → "tours"
                forms.append(core[: core.index("metropole")])
            for form in forms:
                if n and len(form) < 2:  # a one-word piece of a double name says too little
                    continue
                key = " ".join(form)
                if key and key not in out:
                    out.append(key)
        return out

    def lookup(self, name: str) -> list[Place]:
        """Places with this official name first, then EPCI known by it as a short name.

        "Communauté urbaine d'Arras" and "CU d'Arras" give the EPCI, "Arras" the commune (then the
        EPCI whose short name it is), "Grand Angoulême" the agglomeration.
        """
        toks = _tokens_of(name)
        key = " ".join(toks)
        found = list(self._by_name.get(key, ()))
        kind, core = split_authority(toks)
        core_key = " ".join(core)
        wanted = TYPES_FOR.get(kind, TYPES_FOR[_ANY])
        if kind and not wanted:  # a PETR, a pôle métropolitain: no EPCI of the data is it
            return [self.places[i] for i in found]
        epcis = self._by_core.get(core_key, []) + self._by_core.get(" ".join(_strip_article(core)), [])
        epcis = sorted(dict.fromkeys(epcis), key=lambda i: self._types.get(i, "") not in wanted)
        found += [i for i in epcis if i not in found]
        if not found and toks and toks[0] in ("commune", "ville"):
            rest = toks[1:]
            for linker in LINKERS:
                if tuple(rest[: len(linker)]) == linker:
                    rest = rest[len(linker):]
                    break
            found = [i for i in self._by_name.get(" ".join(rest), []) if i < self._n_communes]
        if not found and kind and core:  # "communauté d'agglomération de Rouen": the town's EPCI
            for i in self._by_name.get(core_key, []):
                if i < self._n_communes:
                    e = self._epci_at.get(self.places[i].epci)
                    if e is not None and self._types.get(e) in wanted and e not in found:
                        found.append(e)
        return [self.places[i] for i in found]

    def _resolve(self, name: str) -> list[Place]:
        """lookup() without the short-name matches an official name already answers: "Arras" is
        the commune only, so that its neighbours are not "the same territory" through the EPCI."""
        toks = _tokens_of(name)
        exact = self._by_name.get(" ".join(toks))
        if exact:
            return [self.places[i] for i in exact]
        return self.lookup(name)

    def linked(self, place: Place) -> list[Place]:
        """A commune's EPCI (then its établissement public territorial), an EPCI's member communes."""
        if place.kind == "commune":
            out = []
            i = self._epci_at.get(place.epci)
            if i is not None:
                out.append(self.places[i])
            out += [self.places[j] for j in self._epts.get(place.code, [])]
            return out
        if place.kind == "epci":
            return [self.places[i] for i in self._members.get(place.code, [])]
        return []

    def context(self, place: Place) -> dict[str, str]:
        out = {}
        if place.departement in self._deps:
            out["departement"] = self._deps[place.departement]
        if place.region in self._regions:
            out["region"] = self._regions[place.region]
        i = self._epci_at.get(place.epci) if place.epci else None
        if i is not None:
            out["epci"] = self.places[i].name
        return out

    def _related(self, a: Place, b: Place) -> bool:
        if a == b:
            return True
        for x, y in ((a, b), (b, a)):
            if x.kind == "commune" and y.kind == "epci":
                if x.epci == y.code or self._epci_at.get(y.code) in self._epts.get(x.code, ()):
                    return True
        return False

    def same_territory(self, a: str, b: str) -> bool:
        """Same place, or a commune and its EPCI; names outside the data compare by their core
        ("Communauté de communes du Val de Brume" and "Val de Brume")."""
        ta, tb = _tokens_of(a), _tokens_of(b)
        if not ta or not tb:
            return False
        if ta == tb:
            return True
        pa, pb = self._resolve(a), self._resolve(b)
        if pa and pb:
            return any(self._related(x, y) for x in pa for y in pb)
        ca, cb = _strip_article(split_authority(ta)[1]), _strip_article(split_authority(tb)[1])
        return bool(ca) and ca == cb

    # ----------------------------------------------------------------- find

    def find(self, text: str, title: str = "", head: str = "", limit: int = 8) -> list[Mention]:
        """The territories a document is about, best first.

        Every valid occurrence adds to its territory: the title counts TITLE_SCORE once, the first
        page HEAD_UNIT per occurrence, the whole text BODY_UNIT per occurrence divided by √(length in
        BODY_TOKENS); an occurrence in an administrative context weighs ADMIN_WEIGHT, after « à »
        LOCATIVE_WEIGHT.
        Only territories reaching THRESHOLD are returned: a title alone is enough, a passing mention
        is not.
        """
        text = text or ""
        body = _Tokens(text)
        if head and text.startswith(head):
            head_end, head_toks = len(head), None
        elif head:
            head_end, head_toks = 0, _Tokens(head)
        else:
            head_end, head_toks = HEAD_CHARS, None
        streams = [(t, w) for t, w in ((_Tokens(title or ""), "title"), (head_toks, "head"), (body, "text"))
                   if t is not None and len(t)]
        ctx = _Context()
        hits: list[_Hit] = []
        covered: list[list[tuple[int, int]]] = []
        for toks, where in streams:
            found, cov = self._scan(toks, where, ctx, head_end if where == "text" else 0)
            hits += found
            covered.append(cov)
        cores = {h.group[2]: h.group for h in hits if h.group[0] == "c"}
        if cores:
            for (toks, where), cov in zip(streams, covered, strict=True):
                hits += _bare_cores(toks, cores, cov, where, head_end if where == "text" else 0)
        quarters = self._quarters([t for t, _ in streams])
        if quarters:
            for toks, where in streams:
                hits += _quarter_hits(toks, quarters, where, head_end if where == "text" else 0)
        ctx.dep_codes.update(c.upper() for c in _DEP_CODE.findall(text) if c.upper() in self._dep_codes)

        groups: dict[tuple[str, ...], _Group] = {}
        for h in hits:
            g = groups.get(h.group)
            if g is None:
                g = groups[h.group] = _Group(h.places, h.group[0])
            if h.display:
                g.display[h.display] += 1
            if h.pattern:
                g.patterns.add(h.pattern)
            if h.where == "title":
                g.title = max(g.title, h.weight)
                continue
            if h.where in ("head", "text+head"):
                g.head += h.weight
                g.n_head += 1
            if h.where in ("text", "text+head"):
                g.text += h.weight
                g.n_text += 1
        for g in groups.values():
            if len(g.places) == 1:
                p = self.places[g.places[0]]
                if p.kind == "commune":
                    ctx.implied_epci.add(p.epci)
                    ctx.implied_dep.add(p.departement)
                elif p.kind == "epci":
                    ctx.epci.add(p.code)
        norm = max(1.0, math.sqrt(len(body) / BODY_TOKENS))
        out: list[Mention] = []
        for g in groups.values():
            score = (TITLE_SCORE if g.title else 0.0) + min(HEAD_CAP, HEAD_UNIT * g.head) \
                + min(BODY_CAP, BODY_UNIT * g.text / norm)
            if score < THRESHOLD:
                continue
            evidence = []
            if g.title:
                evidence.append("titre")
            if g.n_head:
                evidence.append(f"première page ×{g.n_head}")
            if g.n_text:
                evidence.append(f"texte ×{g.n_text}")
            evidence += [f"motif « {p} … »" for p in sorted(g.patterns)]
            score = round(score, 2)
            if g.kind == "c":
                name = max(g.display.items(), key=lambda kv: (kv[1], len(kv[0])))[0] if g.display else ""
                if name:
                    out.append(Mention(name, "collectivite", "", score, ", ".join(evidence)))
                continue
            chosen = self._disambiguate(g.places, ctx)
            if chosen is None:
                first = self.places[g.places[0]]
                evidence.append(f"{len(g.places)} homonymes")
                out.append(Mention(first.name, first.kind, "", score, ", ".join(evidence)))
            else:
                p = self.places[chosen]
                out.append(Mention(p.name, p.kind, p.code, score, ", ".join(evidence)))
        out.sort(key=lambda m: (-m.score, m.name))
        return out[:limit]

    def _disambiguate(self, cands: tuple[int, ...], ctx: _Context) -> int | None:
        """The homonym whose surroundings the text also names; None rather than a guess."""
        if len(cands) == 1:
            return cands[0]
        best, best_score, tie = None, 0, False
        for i in cands:
            p = self.places[i]
            s = 4 * (p.epci in ctx.epci or p.code in ctx.epci) + 3 * (p.departement in ctx.dep_codes) \
                + (p.region in ctx.regions) + 2 * (bool(p.epci) and p.epci in ctx.implied_epci) \
                + (p.departement in ctx.implied_dep)
            if s > best_score:
                best, best_score, tie = i, s, False
            elif s == best_score and s > 0:
                tie = True
        return None if tie else best

    # ----------------------------------------------------------------- scanning

    def _scan(self, t: _Tokens, where: str, ctx: _Context,
              head_end: int) -> tuple[list[_Hit], list[tuple[int, int]]]:
        """One pass over the tokens: at each position an authority phrase, else the longest known
        name, else a capitalised name followed by "Métropole" / "Agglo"."""
        keys, caps, gaps, starts = t.keys, t.caps, t.gaps, t.starts
        n = len(keys)
        hits: list[_Hit] = []
        covered: list[tuple[int, int]] = []
        suffix_at = [k for k in range(n) if caps[k] and keys[k] in AUTHORITY_SUFFIXES]
        i = 0
        while i < n:
            key = keys[i]
            if not caps[i] and key not in _LOWER_STARTERS:
                i += 1
                continue
            hit: _Hit | None = None
            end = i
            pat = self._pattern_at(t, i) if key in _PATTERN_STARTERS else None
            dict_end, places, dict_key = self._dict_at(t, i)
            if pat is not None and pat[0] > dict_end:
                end, hit = pat
            elif dict_end > i:
                end = dict_end
                if end < n and caps[end] and keys[end] in AUTHORITY_SUFFIXES and gaps[end] <= SPACE:
                    # "Rouen Métropole", "Laval Agglo": the name is the EPCI's
                    hit = self._authority_hit(t, i, i, end, AUTHORITY_SUFFIXES[keys[end]], suffix=True)
                    if hit is not None:
                        end += 1
                if hit is None:
                    hit = self._dict_hit(t, i, dict_end, places, dict_key, ctx)
            elif caps[i] and key not in FUNCTION_WORDS and gaps[i] != BREAK:
                k = bisect.bisect_right(suffix_at, i)
                if k < len(suffix_at) and suffix_at[k] <= i + 10:
                    span_end = _span(t, i)
                    s = max((x for x in suffix_at[k:k + 10] if x < span_end), default=0)
                    if s > i:
                        hit = self._authority_hit(t, i, i, s, AUTHORITY_SUFFIXES[keys[s]], suffix=True)
                        end = s + 1
            if hit is not None:
                hit.where = where if where != "text" else ("text+head" if starts[i] < head_end else "text")
                hits.append(hit)
                covered.append((i, end))
                if len(hit.places) == 1 and self.places[hit.places[0]].kind == "epci":
                    ctx.epci.add(self.places[hit.places[0]].code)
            i = max(end, i + 1)
        return hits, covered

    def _quarters(self, streams: list[_Tokens]) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
        """Quarters a text places in a commune (« la Cité du Parc à Vernouillet », « QPV La
        Rabaterie (Saint-Pierre-des-Corps) »): quarter name → (group, places) of that commune, so
        that every mention of the quarter, in the title too, counts for its commune."""
        out: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        for t in streams:
            for _, j, end in _quarter_spans(t):
                k = end
                if k < len(t.keys) and t.text[t.starts[k]:t.ends[k]] in ("à", "À") and t.gaps[k] <= PUNCT:
                    k += 1
                elif not (k < len(t.keys) and t.text[t.ends[k - 1]:t.starts[k]].strip() == "("):
                    continue
                stop, places, key = self._dict_at(t, k)
                communes = tuple(p for p in places if p < self._n_communes)
                if stop > k and communes and t.caps[k]:
                    quarter = " ".join(_strip_article(t.keys[j:end]))
                    out.setdefault(quarter, (("k", key.split(">")[-1]), communes))
        return out

    def _dict_at(self, t: _Tokens, i: int) -> tuple[int, tuple[int, ...], str]:
        """Longest official name (or EPCI short name) starting at token i: (end, places, key).
        After "au"/"du" ("aux"/"des") a name may have lost its "Le" ("Les"): "au Havre"."""
        keys, gaps = t.keys, t.gaps
        n = len(keys)
        start, contracted = i, ""
        if keys[i] in _CONTRACTIONS and i + 1 < n and gaps[i + 1] <= SPACE and t.caps[i + 1]:
            start, contracted = i + 1, _CONTRACTIONS[keys[i]]
        m = self._maxlen.get(keys[start], 0)
        if not m:
            return i, (), ""
        limit = start + 1
        while limit < n and limit - start < m and gaps[limit] <= SPACE:
            limit += 1
        for end in range(limit, start, -1):
            key = " ".join(keys[start:end])
            if contracted:
                places = self._contracted.get(contracted + key)
                if places:
                    return end, tuple(places), contracted + key
                continue
            places = self._index.get(key)
            if places:
                return end, tuple(places), key
        return i, (), ""

    def _dict_hit(self, t: _Tokens, i: int, end: int, places: tuple[int, ...], key: str,
                  ctx: _Context) -> _Hit | None:
        """An occurrence of a known name, if its case and surroundings make it the place."""
        keys, caps = t.keys, t.caps
        first = i + 1 if ">" in key else i
        while first < end - 1 and keys[first] in _LEADING_WORDS and not caps[first]:
            first += 1  # "le Grand Chalon", "la métropole du Grand Paris"
        if not caps[first] or _after_street(t, i) or _in_compound(t, i, end):
            return None
        name_start = i + 1 if ">" in key else i
        sentence_start = t.gaps[name_start] == BREAK
        admin = _admin_before(t, name_start) or self._dep_after(t, end)
        strong = admin or (">" in key and keys[i] in ("au", "aux")) or _locative(t, name_start)
        communes = tuple(p for p in places if p < self._n_communes)
        acronym = key in self._acronyms
        if communes and i > 0 and keys[i - 1] in ARTICLES and not caps[i - 1] and t.gaps[i] <= SPACE \
                and ">" not in key:
            communes = ()  # "la Saulx", "la Saône": a river or a region, not the commune
        epcis = tuple(p for p in places if self.places[p].kind == "epci")
        areas = [p for p in places if self.places[p].kind in ("departement", "region")]
        level = min((self.levels[p] for p in communes), default=PLAIN)
        if acronym and not communes:  # "CARENE", "CINOR": only as written, in capitals
            ok = caps[first] == 2
        elif communes and len(key) <= 4 and caps[first] == 2 and not strong:
            ok = False  # "PACT", "CULT": an acronym, not the village
        else:
            # "Tours de table" opens a sentence with a word; "Lyon 2030 :", "Tours, Blois" with a place
            alone = end >= len(keys) or t.gaps[end] >= PUNCT or keys[end].isdigit()
            capital = caps[first] == 1 and (not sentence_start or alone)
            ok = strong or level == PLAIN or (level == CAPITAL_ONLY and capital)
        if areas and communes and not any(self.places[a].code == self.places[c].departement
                                          for a in areas for c in communes):
            ok = admin  # "Vienne", "La Réunion": the département or région unless « commune de » says not
        if areas and not (communes and ok):
            for a in areas:
                if self.levels[a] == PLAIN or not sentence_start:
                    pl = self.places[a]
                    (ctx.dep_codes if pl.kind == "departement" else ctx.regions).add(pl.code)
            return None
        cands = communes or epcis
        if not cands or not ok:
            return None
        if communes:
            group = ("k", key.split(">")[-1])
        elif len(epcis) == 1:
            group = ("e", self.places[epcis[0]].code)
        else:
            group = ("k", key)
        return _Hit(group, cands, ADMIN_WEIGHT if admin else LOCATIVE_WEIGHT if strong else 1.0)

    def _dep_after(self, t: _Tokens, end: int) -> bool:
        """"Mer (Loir-et-Cher)", "Mer (41)": the département in brackets right after the name."""
        if end >= len(t.keys):
            return False
        gap = t.text[t.ends[end - 1]:t.starts[end]]
        if gap.strip() != "(":
            return False
        if t.keys[end].upper() in self._dep_codes:
            return True
        _, places, _ = self._dict_at(t, end)
        return any(self.places[p].kind == "departement" for p in places)

    def _pattern_at(self, t: _Tokens, i: int) -> tuple[int, _Hit | None] | None:
        """A local-authority phrase starting at token i: (end, hit or None when it names nothing)."""
        keys, caps, gaps = t.keys, t.caps, t.gaps
        for prefix, kind in AUTHORITY_PREFIXES:
            m = len(prefix)
            if tuple(keys[i:i + m]) != prefix or any(gaps[k] > SPACE for k in range(i + 1, i + m)):
                continue
            abbrev = m == 1 and len(prefix[0]) <= 3
            if (abbrev and caps[i] != 2) or (m == 1 and prefix[0] in _CAPITAL_PREFIXES and not caps[i]):
                continue
            j, linked = _skip_linker(t, i + m)
            end = _span(t, j)
            if end == j:
                continue
            label = PREFIX_LABELS[kind] + (" de" if linked else "")
            # "CC BY-SA" is a licence: an abbreviation without "de" needs a name from the data
            return end, self._authority_hit(t, i, j, end, kind, label=label, known_only=abbrev and not linked)
        key = keys[i]
        if key in ("commune", "ville") or (key == "pays" and caps[i]):
            j, linked = _skip_linker(t, i + 1)
            if key != "pays" and not linked:
                return None
            if key == "pays" and not linked and i + 1 < len(keys) and gaps[i + 1] == JOIN:
                return None  # "Pays-Bas"
            end = _span(t, j)
            if end == j or (key != "pays" and keys[j] in _PATTERN_STARTERS):  # "une commune du Pays de …"
                return None
            return self._pays_hit(t, i, end) if key == "pays" else self._commune_hit(t, j, end, key)
        return None

    def _commune_hit(self, t: _Tokens, j: int, end: int, key: str) -> tuple[int, _Hit | None]:
        """"commune de Mer", "ville d'Eu": the name after it is a commune, known or not."""
        keys = t.keys
        for stop in range(end, j, -1):
            name = " ".join(keys[j:stop])
            idx = tuple(p for p in self._by_name.get(name, ()) if p < self._n_communes)
            if idx:
                return stop, _Hit(("k", name), idx, ADMIN_WEIGHT, pattern=PREFIX_LABELS[key])
        core = _strip_article(keys[j:end])
        if len(core) == 1 and core[0] in FUNCTION_WORDS:
            return end, None
        written = t.text[t.starts[j]:t.ends[end - 1]]
        return end, _Hit(("c", "commune", " ".join(core)), (), ADMIN_WEIGHT, display=written,
                         pattern=PREFIX_LABELS[key])

    def _pays_hit(self, t: _Tokens, i: int, end: int) -> tuple[int, _Hit | None] | None:
        """"Pays de Lunel" is an EPCI's short name; "Pays de Retz" a territory the data does not hold;
        "Pays de la Loire" a région, left to the name index."""
        keys = t.keys
        for stop in range(end, i + 1, -1):
            key = " ".join(keys[i:stop])
            if key in self._by_name:
                return None
            idx = self._by_core.get(key)
            if idx:
                return stop, self._epci_hit(tuple(idx), key, PREFIX_LABELS["pays"])
        written = t.text[t.starts[i]:t.ends[end - 1]]
        return end, _Hit(("c", "t", " ".join(keys[i:end])), (), ADMIN_WEIGHT, display=written,
                         pattern=PREFIX_LABELS["pays"])

    def _epci_hit(self, idx: tuple[int, ...], key: str, pattern: str) -> _Hit:
        group = ("e", self.places[idx[0]].code) if len(idx) == 1 else ("k", key)
        return _Hit(group, idx, ADMIN_WEIGHT, pattern=pattern)

    def _authority_hit(self, t: _Tokens, i: int, j: int, end: int, kind: str, label: str = "",
                       suffix: bool = False, known_only: bool = False) -> _Hit | None:
        """An EPCI named with its authority word, prefix (tokens j..end after the phrase at i) or
        suffix (tokens i..end before it): the data's if its short name is known, or if it is named
        after a commune whose EPCI is of that kind; else a collectivité as written."""
        keys = t.keys
        core_toks = keys[j:end]
        if suffix:
            label = "… " + t.text[t.starts[end]:t.ends[end]]
        wanted = TYPES_FOR[kind]
        stops = [len(core_toks)] if suffix else range(len(core_toks), 0, -1)
        if not wanted:  # a PETR, a pôle métropolitain: as written, never an EPCI of the data
            stops = []
        # "communauté de communes de l'Ouest guyanais": lowercase words end the name too
        if not suffix and wanted:
            more = end
            while more < len(keys) and more - end < 3 and t.gaps[more] <= SPACE and not t.caps[more]:
                more += 1
            for stop in range(more, end, -1):
                key = " ".join(_strip_article(keys[j:stop]))
                if key in self._by_core:
                    idx = self._by_core[key]
                    pick = [p for p in idx if self._types.get(p) in wanted] or idx
                    return self._epci_hit(tuple(pick), key, label)
        for stop in stops:
            for cand in (core_toks[:stop], _strip_article(core_toks[:stop])):
                idx = self._by_core.get(" ".join(cand))
                # a shorter name must also be of the kind said ("communauté urbaine Grand Paris Seine
                # et Oise" is not the Métropole du Grand Paris); the whole name may have changed kind
                pick = [p for p in idx or () if self._types.get(p) in wanted] or \
                    (list(idx) if idx and stop == len(core_toks) else [])
                if pick:
                    return self._epci_hit(tuple(pick), " ".join(cand), label)
        for stop in stops if not known_only else ():  # "métropole de Rouen": the town's EPCI
            towns = [p for p in self._by_name.get(" ".join(core_toks[:stop]), ()) if p < self._n_communes]
            if len(towns) == 1:
                e = self._epci_at.get(self.places[towns[0]].epci)
                if e is not None and self._types.get(e) in wanted:
                    return self._epci_hit((e,), " ".join(core_toks[:stop]), label)
        core = _strip_article(core_toks)
        if known_only or not core or (len(core) == 1 and core[0] in FUNCTION_WORDS):
            return None
        a, b = (i, end) if suffix else (i, end - 1)
        written = t.text[t.starts[a]:t.ends[b]]
        return _Hit(("c", "t", " ".join(core)), (), ADMIN_WEIGHT,
                    display=written[:1].upper() + written[1:], pattern=label)


@dataclass
class _Context:
    """What a text says around its places: the départements, régions and EPCI it names, and those
    its unambiguous communes imply."""

    dep_codes: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)
    epci: set[str] = field(default_factory=set)
    implied_epci: set[str] = field(default_factory=set)
    implied_dep: set[str] = field(default_factory=set)


_PATTERN_STARTERS = frozenset({p[0][0] for p in AUTHORITY_PREFIXES} | {"commune", "ville", "pays"})
_CAPITAL_PREFIXES = frozenset({"agglomeration", "agglo", "communaute"})
_CONTRACTIONS = {"au": "le>", "du": "le>", "aux": "les>", "des": "les>"}
_LOWER_STARTERS = _PATTERN_STARTERS | ARTICLES | frozenset(_CONTRACTIONS)


def _bare_cores(t: _Tokens, cores: dict[str, tuple[str, ...]], covered: list[tuple[int, int]], where: str,
                head_end: int) -> list[_Hit]:
    """A territory found by its authority phrase, named again by its core alone
    ("la communauté de communes du Val de Brume … le Val de Brume")."""
    firsts: dict[str, list[tuple[list[str], tuple[str, ...]]]] = {}
    for core, group in cores.items():
        toks = core.split(" ")
        firsts.setdefault(toks[0], []).append((toks, group))
    inside = set()
    for a, b in covered:
        inside.update(range(a, b))
    out = []
    keys, caps, gaps = t.keys, t.caps, t.gaps
    for i, key in enumerate(keys):
        if key not in firsts or i in inside or not caps[i]:
            continue
        for toks, group in firsts[key]:
            m = len(toks)
            if keys[i:i + m] == toks and all(gaps[k] <= SPACE for k in range(i + 1, i + m)) \
                    and (m > 1 or gaps[i] != BREAK):
                w = where if where != "text" else ("text+head" if t.starts[i] < head_end else "text")
                out.append(_Hit(group, (), 1.0, w))
                break
    return out


def _quarter_spans(t: _Tokens) -> list[tuple[int, int, int]]:
    """(quarter word, name start, name end) of every « Cité du Parc », « QPV La Rabaterie »."""
    out = []
    for i, key in enumerate(t.keys):
        if key not in QUARTER_WORDS:
            continue
        j, _ = _skip_linker(t, i + 1)
        end = _span(t, j)
        # « Parc à Vernouillet » reads as one name to _span: a quarter's name ends at « à »
        end = next((k for k in range(j + 1, end) if t.text[t.starts[k]:t.ends[k]] in ("à", "À")), end)
        if end > j:
            out.append((i, j, end))
    return out


def _quarter_hits(t: _Tokens, quarters: dict[str, tuple[tuple[str, ...], tuple[int, ...]]], where: str,
                  head_end: int) -> list[_Hit]:
    """A mention of a quarter placed in its commune: a mention of the commune."""
    out = []
    for i, j, end in _quarter_spans(t):
        found = quarters.get(" ".join(_strip_article(t.keys[j:end])))
        if found:
            w = where if where != "text" else ("text+head" if t.starts[i] < head_end else "text")
            out.append(_Hit(found[0], found[1], 1.0, w))
    return out


def _skip_linker(t: _Tokens, j: int) -> tuple[int, bool]:
    keys, gaps = t.keys, t.gaps
    for linker in LINKERS:
        m = len(linker)
        if tuple(keys[j:j + m]) == linker and all(gaps[k] <= SPACE for k in range(j, j + m)):
            return j + m, True
    return j, False


def _span(t: _Tokens, j: int) -> int:
    """End of the capitalised name starting at token j ("Val de Brume", "Saint-Martin-en-Haut")."""
    keys, caps, gaps = t.keys, t.caps, t.gaps
    n = len(keys)
    if j >= n or not caps[j] or gaps[j] > SPACE:
        return j
    end = j + 1
    k = j + 1
    while k < n and k - j < 10 and gaps[k] <= SPACE:
        if caps[k]:
            k += 1
            end = k
            continue
        if keys[k] in CONNECTORS and (keys[k] not in HYPHEN_ONLY or gaps[k] == JOIN
                                      or (k + 1 < n and caps[k + 1] and keys[k + 1] not in ARTICLES)):
            k += 1
            continue
        break
    return end


def _in_compound(t: _Tokens, i: int, end: int) -> bool:
    """"Cayenne-Butor", "Entre-Deux-Mers": a name hyphened to more words is another name."""
    text = t.text
    if t.gaps[i] == JOIN and i > 0 and not t.keys[i - 1].endswith("'"):
        return True
    return end < len(t.keys) and t.gaps[end] == JOIN and text[t.ends[end - 1]:t.ends[end - 1] + 1] in _HYPHENS


def _locative(t: _Tokens, i: int) -> bool:
    """« à Mer »: the word before is the preposition à, as written."""
    if i == 0 or t.gaps[i] > SPACE:
        return False
    return t.text[t.starts[i - 1]:t.ends[i - 1]] in ("à", "À")


def _admin_before(t: _Tokens, i: int) -> bool:
    """« mairie de Plan », « habitants d'Eu »."""
    keys, gaps = t.keys, t.gaps
    if i < 2 or gaps[i] > SPACE or keys[i - 1] not in ("de", "d'", "du") or gaps[i - 1] > SPACE:
        return False
    return keys[i - 2] in ADMIN_NOUNS


def _after_street(t: _Tokens, i: int) -> bool:
    """« rue de Paris », « place de la Mairie », « lycée Jean-Moulin »."""
    keys, gaps = t.keys, t.gaps
    q = i - 1
    steps = 0
    while q >= 0 and steps < 2 and keys[q] in ("de", "du", "des", "d'", "la", "l'", "le", "les") \
            and gaps[q + 1] <= SPACE:
        q -= 1
        steps += 1
    return q >= 0 and keys[q] in STREET_WORDS and gaps[q + 1] <= SPACE
