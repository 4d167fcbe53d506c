"""French text helpers shared by the answering modules: sentences, content words, cues.

Answers quote sentences verbatim and citations point to sentences, so the splitter must not
cut "M. Dupont", "n° 3", "art. 12" or "3.5 %" in two, and must return exact substrings of the
passage (a quote that is not in its source is a false citation). Lexical matching folds
accents and stems words (PyStemmer, French) because users type "salaries" for "salariés".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

# Abbreviations after which a period does not end a sentence (compared folded, no period).
_ABBREVIATIONS = {
    "m", "mm", "mme", "mmes", "mlle", "dr", "pr", "me", "mgr", "st", "ste", "cf", "p", "pp",
    "env", "art", "ex", "vol", "av", "bd", "chap", "fig", "no", "n", "coll", "dir", "ibid",
    "op", "cit", "approx", "vs", "resp", "dept", "dpt",
}
_BULLET = re.compile(r"^\s*(?:[-*•–—▪◦]|\d{1,2}[.)]|[a-z][.)])\s+")
_END = re.compile(r"[.!?…]+(?:\s*[»\"”’)\]])*(?=\s+[«\"“(\[]?\s*[A-ZÀ-ÖØ-Þ0-9])")
_TERMINAL = re.compile(r"[.!?…:;»\"”)]\s*$")
_WORD = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿŒœÆæ]+(?:[-'’][0-9A-Za-zÀ-ÖØ-öø-ÿŒœÆæ]+)*")

STOPWORDS = frozenset(
    """
    a à afin ai aie aient aies ait alors as au aucun aucune aupres auquel aura aurai auraient
    aurait auras aurez auriez aurons auront aussi autre autres aux auxquelles auxquels avaient
    avais avait avant avec avez aviez avions avoir avons ayant ayez ayons c ça car ce ceci cela
    celle celles celui cependant certain certaine certaines certains ces cet cette ceux chacun
    chaque chez ci comme comment concernant contre d dans de des desquelles desquels deux donc
    dont du duquel elle elles en encore entre es est et etaient etais etait etant ete etes
    etiez etions etre eu eue eues eurent eus eusse eut eux fait faites faut font fut hors ici
    il ils j je jusqu l la laquelle le lequel les lesquelles lesquels leur leurs lors lorsque
    lui m ma mais me meme memes mes moi mon n ne ni nos notre nous on ont ou où par parce
    parmi pas pendant peu peut peuvent plus plusieurs pour pourquoi pourrait qu quand que quel
    quelle quelles quels qui quoi s sa sans se selon ses seulement si sien soi soit son sont
    sous suis sur t ta te tes toi ton tous tout toute toutes tres tu un une unes uns vers via
    vos votre vous y est-ce qu'est-ce
    quelle quel combien ou-t-il a-t-il a-t-elle ont-ils ont-elles
    il elle ils elles t-il t-elle t-ils t-elles
    """.split()
)
# Words present in almost every question or document of this corpus: they say nothing
# about whether a passage answers, so lexical coverage ignores them.
GENERIC = frozenset(
    """
    fabrique fabriques prospective prospectives anct document documents corpus territoire
    territoires territorial territoriale question questions dire disent parle parlent
    trouve trouver exemple exemples cas sujet chose choses quoi ete etre avoir faire
    traite traites traitee traitees traiter aborde abordee abordes aborder apprehende
    repondu repondre repondent maniere facon action actions prevoit prevoient prevu prevue
    prevus prevues retient retiennent retenu retenue retenus retenues
    """.split()
)
_INTERROGATIVES = frozenset(
    "comment quel quelle quels quelles pourquoi combien qui que quoi ou quand est-ce lequel "
    "laquelle lesquels lesquelles".split()
)

# Text that addresses the assistant instead of describing a territory: a passage is data,
# and a sentence like this one is never quoted nor sent to a model as if it were content.
_INSTRUCTION = re.compile(
    r"(\b(ignore[sz]?|oublie[sz]?|n[eé]glige[sz]?)\b.{0,40}\b(instructions?|consignes?|r[eè]gles?|"
    r"pr[eé]c[eé]dent\w*|ci-dessus|tout ce qui pr[eé]c[eè]de)"
    r"|\bne (tiens|tenez) (plus |pas )+compte\b.{0,40}\b(instructions?|consignes?|r[eè]gles?)"
    r"|\b(nouvelles?|vraies?) (instructions?|consignes?)\s*:"
    r"|\b(instructions?|consignes?) (syst[eè]me|system|pr[eé]c[eé]dentes?)\b"
    r"|\btu (es|dois|vas) (d[eé]sormais|maintenant|[aà] pr[eé]sent)\b"
    r"|\b(r[eé]ponds|r[eé]pondez|[eé]cris|[eé]crivez|affiche|affichez|dis|dites)\b.{0,25}"
    r"\b(uniquement|seulement|simplement|exactement|toujours)\b"
    r"|\b(r[eé]ponds|r[eé]pondez)\s*(par\s*)?[«\"“:]"
    r"|\ben tant qu'(assistant|ia|intelligence artificielle|mod[eè]le)\b"
    r"|\b(l'assistant|le chatbot|le mod[eè]le de langage|l'ia)\b.{0,40}\b(doit|devra|ignore|r[eé]pond)"
    r"|\bignore (all |the )?(previous|above|prior) (instructions|prompts?)"
    r"|\bdisregard (all |the )?(previous|above|prior)"
    r"|\byou are now\b|\bsystem prompt\b|\bprompt syst[eè]me\b"
    r"|</?\s*(source|system|instructions?|sources)\b)",
    re.IGNORECASE,
)


def fold(text: str) -> str:
    """Lowercase without accents (same rule as ingest.metadata.fold), for matching."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("french")


def words(text: str) -> list[str]:
    """Word tokens as written; elisions and hyphens split ("l'agglomération" → "l",
    "agglomération"; "envisage-t-elle" → "envisage", "t", "elle")."""
    out: list[str] = []
    for w in _WORD.findall(text):
        out.extend(p for p in re.split(r"['’-]", w) if p)
    return out


@lru_cache(maxsize=20000)
def stem(word: str) -> str:
    """French stem of one word, accents folded after stemming (the stemmer needs them)."""
    return fold(_stemmer().stemWord(word.lower()))


def content_stems(text: str, *, generic: bool = False) -> list[str]:
    """Stems of the words that carry meaning, in order, without duplicates.

    Stopwords and interrogatives are dropped; corpus-generic words too unless `generic`.
    Numbers are kept (a year or "58 %" is exactly what a question is about).
    """
    seen: dict[str, None] = {}
    for w in words(text):
        f = fold(w)
        if f in STOPWORDS or f in _INTERROGATIVES or (not generic and f in GENERIC):
            continue
        if len(f) < 2 and not f.isdigit():
            continue
        seen.setdefault(f if f.isdigit() else stem(w), None)
    return list(seen)


# Words FP documents use interchangeably: a question about "aînés" is answered by a
# sentence about "personnes âgées". Small and domain-specific on purpose.
_SYNONYM_GROUPS = (
    "aîné aînés âgé âgée âgées senior seniors vieillissement vieillir retraité retraités",
    "mobilité mobilités transport transports déplacement déplacements déplacer navette",
    "logement logements habitat habitation",
    "jeune jeunes jeunesse",
    "emploi emplois travail salarié salariés",
    "alimentation alimentaire nourriture",
    "santé soin soins",
    "commerce commerces commerçant commerçants",
    "industrie industriel industrielle industriels",
    "tourisme touriste touristes touristique",
    "nature biodiversité",
    "partenaire partenaires partenariat partenariats",
)


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for group in _SYNONYM_GROUPS:
        stems = frozenset(stem(w) for w in group.split())
        for s in stems:
            table[s] = table.get(s, frozenset()) | stems
    return table


def synonyms_of(s: str) -> frozenset[str]:
    """A stem and the stems FP documents use for the same thing ("aîné" → "âgé", "senior"…)."""
    return _synonyms().get(s, frozenset()) | {s}


def key_stems(text: str) -> set[str]:
    """Stems of the names (capitalised words after the first) and numbers of a question.

    A question naming "LVMH" or "2023" is not answered by passages that never mention them,
    however close the rest of the wording is.
    """
    ws = words(text)
    out = {fold(w) for w in ws if fold(w).isdigit()}
    out |= {stem(w) for w in ws[1:] if w[:1].isupper() and fold(w) not in GENERIC | STOPWORDS}
    return out


def coverage(query_stems: list[str], text_stems: set[str], keys: set[str] | None = None,
             idf: dict[str, float] | None = None) -> float:
    """Share of the question's content stems that occur in a text (0..1).

    Longer (rarer) stems weigh a little more than short ones: "chatellerault" says more
    about an answer than "part"; names and numbers (`keys`, see `key_stems`) weigh most
    ("80 ans" is not "75 ans"). `idf` multiplies each weight (rarity among the sentences
    read for this question, see answer._local_idf).
    """
    if not query_stems:
        return 0.0
    keys = keys or set()
    weights = {
        s: (2.5 if s.isdigit() or s in keys else 1.0 + min(len(s), 10) / 10) * (idf or {}).get(s, 1.0)
        for s in query_stems
    }
    total = sum(weights.values())
    return sum(w for s, w in weights.items() if synonyms_of(s) & text_stems) / total


def looks_like_instruction(text: str) -> bool:
    """True when a sentence speaks to the assistant (prompt injection), not about the world."""
    return bool(_INSTRUCTION.search(text.lower().replace("’", "'")))


@dataclass(frozen=True)
class Unit:
    """One sentence or list item of a passage: `text` is an exact substring of the passage."""

    text: str
    start: int
    bullet: bool
    heading: bool


def _is_abbreviation_end(line: str, end: int) -> bool:
    """Is the period at `end` the end of an abbreviation or an initial (not a sentence end)?"""
    if line[end] != ".":
        return False
    m = re.search(r"([A-Za-zÀ-ÖØ-öø-ÿ°]+)$", line[:end])
    if not m:
        return False
    token = m.group(1)
    if len(token) == 1 and token.isupper():
        return True  # an initial: "J. Dupont", "M. Martin"
    return fold(token) in _ABBREVIATIONS


def split_units(text: str) -> list[Unit]:
    """Sentences and list items of a passage, in order, as exact substrings.

    Lines are hard boundaries (the chunker keeps one block per line: paragraph, list item or
    heading). Inside a line, a sentence ends at . ! ? … followed by a capital, a digit or an
    opening quote, unless the period closes an abbreviation or an initial.
    """
    units: list[Unit] = []
    offset = 0
    for raw in text.split("\n"):
        line_start = offset
        offset += len(raw) + 1
        if not raw.strip():
            continue
        bullet_m = _BULLET.match(raw)
        body_start = bullet_m.end() if bullet_m else len(raw) - len(raw.lstrip())
        line = raw[body_start:].rstrip()
        # strip markdown heading marks, keep the text
        hm = re.match(r"#{1,6}\s+", line)
        if hm:
            body_start += hm.end()
            line = line[hm.end():]
        pieces: list[tuple[int, int]] = []
        begin = 0
        for m in _END.finditer(line):
            if _is_abbreviation_end(line, m.start()):
                continue
            pieces.append((begin, m.end()))
            begin = m.end()
            while begin < len(line) and line[begin].isspace():
                begin += 1
        pieces.append((begin, len(line)))
        n_words = len(words(line))
        heading = bool(hm) or (
            not bullet_m and not _TERMINAL.search(line) and n_words < 12 and len(pieces) == 1
        )
        for a, b in pieces:
            piece = line[a:b].strip()
            if piece:
                start = line_start + body_start + line.index(piece, a)
                units.append(Unit(piece, start, bool(bullet_m), heading))
    return units


def sentences(text: str) -> list[str]:
    """Just the sentence texts of `split_units` (convenience for callers and tests)."""
    return [u.text for u in split_units(text)]


_VERB_LIKE_END = ("er", "ir", "re", "oir")
_NOT_VERBS = frozenset(
    "entre contre notre votre autre leur hier premier premiere dernier derniere cher hiver "
    "outre titre centre chiffre nombre membre septembre octobre novembre decembre ordre "
    "offre mer fer pour sur par lire quartier atelier dossier chantier metier foyer loyer "
    "cahier calendrier terre pierre lettre cadre theatre ministre registre sinistre "
    "maire plusieurs leurs livre libre".split()
)


def starts_with_action_verb(text: str) -> bool:
    """"Créer une navette…", "Mettre en place…": an action item of a roadmap."""
    ws = words(text)
    if not ws or not ws[0][:1].isupper():
        return False
    first = fold(ws[0])
    if first in _NOT_VERBS or first in STOPWORDS:
        return False
    return first.endswith(_VERB_LIKE_END) and len(first) > 3


_GENERIC_PLACE_WORDS = frozenset(
    "grand grande metropole agglomeration communaute pays ville de des du la le les et sur en "
    "communes commune agglo territoire territoires saint sainte val".split()
)


def distinctive_tokens(name: str) -> list[str]:
    """"Grand Châtellerault" → ["Châtellerault"]; "Brest métropole" → ["Brest"].

    Documents name places the short way ("à Brest"), the gazetteer the long way.
    """
    return [w for w in re.split(r"\s+", name) if len(w) >= 4 and fold(w) not in _GENERIC_PLACE_WORDS]
