"""What a document says of itself when its file declares nothing: type, year, territories.

Every rule reads the places where a document presents itself (title, subject, running
header, first page) before its body, because the body mentions other documents, other
years and other places: a tender lists « feuille de route » among its deliverables, a
report recalls the seminar of 2019, a synthesis cites Lyon as an example. The body only
decides what nothing else did, and a field nobody can tell stays empty.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.lexical import fold

if TYPE_CHECKING:
    from ingest.gazetteer import Gazetteer, Mention  # noqa: F401 — Mention also imported at run time

# (type, cues) in the order a title is read: the first cue found decides. A note about a
# seminar is a note; a synthesis of intersites seminars is an intersites report.
_TITLE_CUES: list[tuple[str, tuple[str, ...]]] = [
    ("note", (r"^note\b", r"^releve de decisions", r"\bcomite de pilotage\b", r"\bcopil\b",
              r"^note (?:interne|de cadrage|d'etape)")),
    ("cahier_des_charges", (r"cahier des charges", r"\bcctp\b", r"appel d'offres?",
                            r"dossier de consultation", r"\bconsultation\b")),
    ("seminaire_intersites", (r"inter-? ?sites?\b",)),
    ("feuille_de_route", (r"feuille de route", r"plan d'actions?\b", r"programme d'actions?\b")),
    ("seminaire_local", (r"compte[- ]rendu", r"seminaire local", r"atelier local",
                         r"groupe de travail local", r"seminaire n ?°? ?\d")),
    ("publication", (r"enseignements?\b", r"\bsynthese\b", r"\bpublication\b", r"rapport final",
                     r"resultats de la fabrique", r"retour d'experience", r"\bbilan\b")),
    ("article", (r"^article\b", r"\bactualite\b", r"communique de presse")),
]
# Body cues: counted over the first page, a type wins only with a clear lead.
_BODY_CUES: dict[str, tuple[str, ...]] = {
    "cahier_des_charges": (r"cahier des charges", r"modalites de reponse", r"le prestataire (?:devra|retenu)",
                           r"offres? (?:du|des) candidats?", r"criteres d'attribution"),
    "seminaire_intersites": (r"seminaires? inter-? ?sites?",),
    "feuille_de_route": (r"feuille de route", r"plan d'actions?", r"fiche action"),
    "seminaire_local": (r"seminaire local", r"compte[- ]rendu", r"participants", r"ordre du jour"),
    "publication": (r"enseignements", r"recommandations", r"publication"),
}
_COMPILED_TITLE = [(t, [re.compile(c) for c in cues]) for t, cues in _TITLE_CUES]
_COMPILED_BODY = {t: [re.compile(c) for c in cues] for t, cues in _BODY_CUES.items()}


@dataclass
class Guess:
    value: object
    evidence: str  # where it was read, in French (« titre », « première page »…)


def doc_type(zones: list[tuple[str, str]], body: str) -> Guess | None:
    """The type a document announces in its title, subject or first heading; else its body."""
    for label, text in zones:
        folded = " ".join(fold(text).replace("’", "'").split())
        if not folded:
            continue
        for kind, cues in _COMPILED_TITLE:
            if any(c.search(folded) for c in cues):
                return Guess(kind, label)
    folded = " ".join(fold(body).replace("’", "'").split())
    counts = Counter({kind: sum(len(c.findall(folded)) for c in cues)
                      for kind, cues in _COMPILED_BODY.items()})
    ranked = counts.most_common(2)
    if ranked and ranked[0][1] >= 2 and (len(ranked) < 2 or ranked[0][1] >= 2 * ranked[1][1]):
        return Guess(ranked[0][0], "indices du texte")
    return None


_MONTHS = ("janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre")
_DATE_RE = re.compile(
    rf"\b(?:\d{{1,2}}(?:er)?\s+)?(?:{_MONTHS})\s+((?:19|20)\d\d)\b"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]((?:19|20)\d\d)\b"
    r"|\b((?:19|20)\d\d)-\d\d-\d\d\b"
)
_YEAR_RE = re.compile(r"(?<![\d/.,-])((?:19|20)\d\d)(?![\d%])")
# A bare year after these is a projection more often than a date (« en 2030 », « vers 2035 »);
# horizons and plans are _PLANNED_RE's, for bare years and dates alike.
_FUTURE_RE = re.compile(r"(?:projections?|en|vers|avant)\s*$")


def _plausible(year: int) -> bool:
    return 1990 <= year <= _dt.date.today().year + 1


# Documents written after the work they report: dated by the last event they recount (a
# synthesis « des rencontres tenues entre octobre 2021 et juin 2022 » is of 2022).
RETROSPECTIVE = frozenset({"publication", "seminaire_intersites", "feuille_de_route"})
# A date announced as planned is not the document's own date.
_PLANNED_RE = re.compile(
    r"(?:horizon|d'ici|echeance|prevue?s?|programmee?s?|jusqu'(?:en|a|au)|a partir d[eu]"
    r"|se (?:tiendra|retrouvera|reunira)|aura lieu)"
    r"(?:\s+(?:en|pour|a|au|le|la|de|du|debut|fin|mi|l'|d'))*\s*[- ]?$"
)
_COLOPHON_RE = re.compile(
    r"[^.\n]*\b(?:depot legal|achev\w* d'imprimer|date de (?:publication|parution)"
    r"|publie(?:e|s)? le|paru(?:e|s)? le)\b[^.\n]*"
)


# The years of a period (« 2022-2025 », « 2019/20 »): a plan's span, not a date.
_PERIOD_RE = re.compile(r"\s?[-–—]\s?(?:19|20)\d\d\b|/\d\d\b")
_PERIOD_END_RE = re.compile(r"(?:19|20)\d\d\s?[-–—]\s?$")


def colophon(text: str) -> str:
    """The colophon lines of a document's last page (« Dépôt légal décembre 2020 »): the most
    explicit date a publication gives itself."""
    folded = fold(text).replace("’", "'")
    return "\n".join(m.group(0) for m in _COLOPHON_RE.finditer(folded))


def _years(text: str, bare: bool) -> list[int]:
    """The years a text dates, in order: full dates, and bare years when `bare` (never a
    horizon, a plan, a percentage or a « 2021-2023 » period)."""
    found: list[tuple[int, int]] = []
    taken: list[range] = []
    for m in _DATE_RE.finditer(text):
        y = int(next(g for g in m.groups() if g))
        taken.append(range(m.start(), m.end()))
        if _plausible(y) and not _PLANNED_RE.search(text[max(0, m.start() - 40): m.start()]):
            found.append((m.start(), y))
    if bare:
        for m in _YEAR_RE.finditer(text):
            y = int(m.group(1))
            before = text[max(0, m.start() - 40): m.start()]
            if (any(m.start() in r for r in taken) or _PERIOD_RE.match(text, m.end())
                    or _PERIOD_END_RE.search(before)):
                continue
            if (_plausible(y) and y <= _dt.date.today().year and not _FUTURE_RE.search(before[-20:])
                    and not _PLANNED_RE.search(before)):
                found.append((m.start(), y))
    return [y for _, y in sorted(found)]


def year(zones: list[tuple[str, str]], retrospective: bool = False) -> Guess | None:
    """The document's year, read zone by zone in the order given (title, subject, colophon,
    presentation, first page…): the first zone that dates anything decides.

    Within a zone, a report of past work (`retrospective`) takes the latest date it gives,
    anything else its first: a compte rendu opens on the day of its meeting, a synthesis
    is written after the last seminar it recounts. A year after « horizon », « d'ici »,
    « prévu en » is a target, not a date; on the first page, a bare year counts only when
    no dated line (« 12 mars 2021 », « mars 2021 ») exists.
    """
    for label, text in zones:
        folded = fold(text).replace("’", "'")
        if label == "première page":
            years = _years(folded, bare=False) or _years(folded, bare=True)[:1]
        else:
            years = _years(folded, bare=True)
        if years:
            return Guess(max(years) if retrospective else years[0], label)
    return None


_EDITION_RE = re.compile(
    r"fabriques?\b[^.]{0,160}?\b(?:conduite|lancee|menee|engagee|demarree|organisee|deroulee)s?\s+"
    r"(?:de|en|entre|d'|des|a partir de|depuis)\s*(?:(?:debut|fin|mi)[- ]?)?"
    rf"(?:(?:\d{{1,2}}(?:er)?\s+)?(?:{_MONTHS})\s+)?"
    r"((?:19|20)\d\d)"
    rf"|fabriques?\b[^.(]{{0,220}}\((?:\d{{1,2}}\s+)?(?:{_MONTHS})?\s*((?:19|20)\d\d)\s*[-–—]"
)


def edition_year(text: str) -> int | None:
    """The year a fabrique started, when the text says so (« Fabrique conduite de juin 2021
    à juillet 2022 », « … lancée en septembre 2022 », « Fabrique « X » (mai 2022 – mars 2023) »):
    a fabrique's documents share its year, whatever the date of each meeting."""
    m = _EDITION_RE.search(fold(text).replace("’", "'"))
    if not m:
        return None
    y = int(next(g for g in m.groups() if g))
    return y if _plausible(y) else None


# Nouns that announce places: a heading « Territoires accompagnés », « Les sites retenus »,
# « Communes participantes », or a lead « Quatre intercommunalités ont été retenues : ».
_PLACE_NOUNS_RE = re.compile(
    r"\b(?:territoires?|sites?|communes?|villes?|intercommunalites?|agglomerations?|metropoles?"
    r"|collectivites?|epci|laureats?)\b"
)
# The head of a list item or paragraph: what it is about, before its comment (« Decazeville
# Communauté, ancien bassin minier… », « Bourg-en-Bresse a travaillé sur… »).
_ITEM_HEAD_RE = re.compile(r"^[\s*•▪●◦·■□►–—-]*([^,;:.!?()\n]*)")
_ITEM_HEAD_WORDS = 7
# A place name as written (« Bellecombe-sur-Lisonne », « Saint-Martin-en-Haut »): capitalised
# words joined by hyphens, possibly through the small words of French toponyms.
_TOPONYM_RE = re.compile(
    r"^(?:[A-ZÉÈÀÂÎÔ][\w’']+)(?:-(?:(?:sur|sous|en|les|lès|la|le|de|du|des|aux|d'|l')-)*[A-ZÉÈÀÂÎÔ][\w’']+)+$"
)
# A title that names its document's place: « Feuille de route de Bellecombe-sur-Lisonne »,
# « Compte rendu du séminaire local n°2 d'Arvieu ». A proper name right after « de » (no
# article: « de la Fabrique » is not a place) is the place, whether the official list has it
# or not.
_TITLE_PLACE_RE = re.compile(
    r"^\W*(?i:feuille de route|compte[- ]rendu|plan d'actions?|programme d'actions?|diagnostic"
    r"|portrait|s[ée]minaire local|atelier local)"
    r"[^—–:(\n]{0,40}?\s(?:de\s+|d['’])"
    r"(?P<name>[A-ZÉÈÀÂÎÔ][\w’'-]*(?:\s+(?:(?:sur|sous|en|lès|les|la|le|de|du|des)\s+)?[A-ZÉÈÀÂÎÔ][\w’'-]*)*)"
)
# As a title: a list announced as the territories is what the document says it is about.
_ANNOUNCE_WEIGHT = 3.0


def _announced(blocks: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(item head, heading, item) of the lists a document announces as its places.

    A section whose heading names places (« Territoires accompagnés », « Les sites retenus »,
    « Ce que les territoires ont retenu ») gives the head of each of its list items and
    paragraphs; a paragraph ending on « : » that names them (« Quatre intercommunalités ont été
    retenues : ») gives the items that follow it. Only an item's head counts: an item is about
    the place it opens with, not the places its comment mentions.
    """
    out: list[tuple[str, str]] = []
    section = ""  # the heading of the announcing section we are in, or ""
    lead = ""  # the announcing lead paragraph whose list we are in, or ""
    for kind, text in blocks:
        folded = fold(text).replace("’", "'")
        if kind.startswith("heading"):
            section = text.strip() if _PLACE_NOUNS_RE.search(folded) else ""
            lead = ""
            continue
        if kind == "list" and (section or lead):
            out.append((text, section or lead))
            continue
        if kind != "list":
            lead = ""
            if text.rstrip().endswith(":") and _PLACE_NOUNS_RE.search(folded):
                lead = text.strip()
            elif section:
                out.append((text, section))
    heads = []
    for text, where in out:
        m = _ITEM_HEAD_RE.match(text)
        head = " ".join((m.group(1) if m else "").split()[:_ITEM_HEAD_WORDS]).strip(" *")
        if head:
            heads.append((head, where, text))
    return heads



# An enumeration of places as French writes it: « Blois, Cahors, Châtellerault et Colmar », « Awala-Yalimapo
# (Guyane), Bard (Loire) et Gornac (Gironde) », « le Pays basque et le Cotentin ».
_PARENS_RE = re.compile(r"\s*\([^)]*\)")
_SENTENCE_END_RE = re.compile(r"[.;!?](?:\s|$)|\s[–—]\s|$")
_ARTICLE_RE = re.compile(r"^(?:(?:le|la|les)\s+|l['’])", re.IGNORECASE)
_ET_RE = re.compile(r"\s+et\s+")
_CAPITAL_WORD_RE = re.compile(r"[A-ZÉÈÀÂÎÔ][\w’'-]*")
_CONNECTOR_WORDS = frozenset({"de", "du", "des", "d'", "la", "le", "les", "l'", "sur", "sous", "en", "et",
                              "lès"})


def _member(piece: str, gz: Gazetteer) -> list[Mention] | None:
    """The places one member of an enumeration names, or None when it is no place at all.

    The whole member first (« Cotentin », « Niortais » are the short names of their agglomerations);
    else the places the gazetteer finds in it, if they account for every capitalised word (« Lauragais
    Revel Sorèzois » is not the commune of Revel: it stays as written); else a name whose words are
    all capitalised is a place the official list lacks.
    """
    core = _ARTICLE_RE.sub("", piece.strip()).strip()
    if not core or not (core[0].isupper() or core.split()[0].lower() in _AUTHORITY_HEADS):
        return None
    from ingest.gazetteer import Mention

    places = gz.lookup(core) if core[0].isupper() else []
    if places:  # homonyms (« Saint-Joseph »): the name, no code
        code = places[0].code if len(places) == 1 or places[0].kind != places[1].kind else ""
        return [Mention(places[0].name, places[0].kind, code, _ANNOUNCE_WEIGHT, "")]
    found = gz.find(piece, title=piece, limit=3)
    words = [fold(w) for w in _CAPITAL_WORD_RE.findall(core)]
    named = " ".join(fold(m.name) for m in found)
    if found and (any("motif" in m.evidence for m in found)
                  or all(w.replace("-", " ") in named.replace("-", " ") for w in words)):
        return list(found)
    if core[0].isupper() and len(core.split()) <= 5 and all(
            w[0].isupper() or fold(w) in _CONNECTOR_WORDS for w in core.split()):
        return [_mention(core, "")]
    return None


# Lowercase words a member may open with: « la communauté de communes du Sud », « l'agglomération de Dieppe ».
_AUTHORITY_HEADS = frozenset({"communauté", "métropole", "agglomération", "intercommunalité", "commune",
                              "ville", "eurométropole", "bassin"})


def enumeration(text: str, gz: Gazetteer) -> list[Mention]:
    """The places of the enumeration `text` opens with (« A, B, C et D »), or [] when it opens with none.

    An enumeration has two members at least and is closed by « et » (or has three); it stops at
    the first member that is no place (« quatre agglomérations », « avec l'AdCF »). Most of its
    members must be official places: a run of capitalised words is not a list of territories
    because it has commas.
    """
    sentence = _PARENS_RE.sub("", text)
    sentence = sentence[:_SENTENCE_END_RE.search(sentence).start()]
    members: list[list[Mention]] = []
    official = 0
    closed = False
    for segment in sentence.split(","):
        segment = segment.strip()
        whole = _ARTICLE_RE.sub("", segment)
        pieces = [segment]
        if _ET_RE.search(segment) and not (whole[:1].isupper() and gz.lookup(whole)):
            # « Châtellerault et Colmar » is two members; « Vie et Boulogne » is one name
            pieces = [p for p in _ET_RE.split(segment) if p]
            closed = True
        for piece in pieces:
            found = _member(piece, gz)
            if found is None:
                break
            members.append(found)
            official += any(m.code or m.kind != "collectivite" for m in found)
        else:
            if not closed:
                continue
        break
    if len(members) < 2 or not (closed or len(members) >= 3) or 2 * official <= len(members):
        return []
    return [m for found in members for m in found]


def _after_lead(text: str) -> str:
    """A paragraph from after its lead, when a lead naming places opens its first sentence
    (« Quatre communautés de communes … : A, B et C », « Quatre quartiers …, à A, B et C »); else ""."""
    m = _LEAD_RE.match(text)
    lead = fold(m.group(1)).replace("’", "'") if m else ""
    if m and (_PLACE_NOUNS_RE.search(lead) or _QUARTERS_RE.search(lead)):
        return text[m.end():]
    return ""


# A lead before its enumeration, in the same sentence: « Quatre communautés de communes … : »,
# « Quatre quartiers de la politique de la ville, à ».
_LEAD_RE = re.compile(r"^([^.;!?:]{1,200}?)(?:\s*:\s*|,\s+à\s+)")
_QUARTERS_RE = re.compile(r"\bquartiers\b")


def territories(text: str, title: str, head: str, known: list[tuple[str, str]] | None = None,
                limit: int = 8, blocks: list[tuple[str, str]] | None = None) -> list[Guess]:
    """The territories the document is about, best first (gazetteer, patterns, known names).

    `known` holds (folded alias, canonical name) pairs of territories already labelled in
    a manifest: a name a fabrique declared keeps its canonical spelling (« Saint-Ouen » is
    labelled « Plaine Commune » in the fabrique that says so). `blocks` (kind, text) lets
    the lists a document announces as its places (see _announced) name them first.
    """
    from ingest.gazetteer import Gazetteer

    gz = Gazetteer.default()
    found = []
    for item, heading, whole in _announced(blocks or []):
        evidence = f"liste « {heading[:60]} »"
        listed = enumeration(whole.lstrip(" *•▪●◦·■□►–—-"), gz)
        if listed:  # « Gard Rhodanien, Melun Val de Seine, … et Provence-Alpes Agglomération. »
            found += [type(m)(m.name, m.kind, m.code, _ANNOUNCE_WEIGHT, evidence) for m in listed]
            continue
        mentions = gz.find(item, title=item, limit=2)
        if mentions:
            found += [type(m)(m.name, m.kind, m.code, _ANNOUNCE_WEIGHT, evidence) for m in mentions]
        elif _TOPONYM_RE.match(item.strip()):
            found.append(_mention(item.strip(), evidence))
    m = _TITLE_PLACE_RE.match(title or "")
    if m and not gz.lookup(m.group("name")) and not m.group("name").split()[0].isupper():
        found.append(_mention(m.group("name"), "titre (« … de " + m.group("name") + " »)"))
    # A paragraph opening on an enumeration of places (« Blois, Cahors, Châtellerault et Colmar,
    # quatre agglomérations… »), or on a lead naming places then one, is about them; one named in
    # the middle of a sentence (« aux côtés de Nîmes, Prémesques et … ») is only cited.
    for kind, block in blocks or []:
        if kind.startswith("heading"):
            continue
        opening = block.lstrip(" *•▪●◦·■□►–—-")
        listed = enumeration(opening, gz) or enumeration(_after_lead(opening), gz)
        evidence = f"énumération « {block[:40]} »"
        found += [type(m)(m.name, m.kind, m.code, _ANNOUNCE_WEIGHT, evidence) for m in listed]
    # A sentence opening on « À Jonzac, … » is about Jonzac: the place is its subject, not a venue in passing.
    for kind, block in blocks or []:
        if not kind.startswith("heading"):
            found += subjects(block, gz)
    # The cap is for places found in running text: a page listing forty territories keeps them all.
    listed_count = len(found)
    found += gz.find(text, title=title, head=head, limit=limit)
    out: list[Guess] = []
    for mention in found:
        name = mention.name
        if known:
            key = fold(name)
            canon = next((c for alias, c in known if alias == key), None)
            if canon is None:
                canon = next((c for _, c in known if gz.same_territory(name, c)), None)
            name = canon or name
        if any(name == g.value or gz.same_territory(name, str(g.value)) for g in out):
            continue  # a commune and its EPCI found together: one territory, the stronger name
        out.append(Guess(name, mention.evidence))
    return out[:max(limit, listed_count)]


# « À Jonzac, la feuille de route… », « À Vernouillet, plus de 40 partenaires… »: a sentence opening on a
# place and a comma. Only the sentence's first words: « … le séminaire aura lieu à Paris » is a venue.
_SUBJECT_RE = re.compile(
    r"(?:^|(?<=[.!?…»]\s))[\s*•▪●◦·■□►–—-]*À\s+"
    r"(?P<name>[A-ZÉÈÀÂÎÔ][\w’'-]*(?:\s+(?:(?:sur|sous|en|lès|les|la|le|de|du|des)\s+)?[A-ZÉÈÀÂÎÔ][\w’'-]*)*)"
    r"\s*,"
)
# « En Savoie, Cœur de Savoie prépare l'après-neige » : a short locative frame, then the sentence's subject.
_FRAMED_SUBJECT_RE = re.compile(
    r"(?:^|(?<=[.!?…»]\s))[\s*•▪●◦·■□►–—-]*(?:En|Dans|Au|Aux|Sur)\s[^,.;:!?]{1,40},\s+"
    r"(?P<name>[A-ZÉÈÀÂÎÔŒ][\w’'-]*(?:\s+(?:(?:sur|sous|en|lès|les|la|le|de|du|des)\s+)?[A-ZÉÈÀÂÎÔŒ][\w’'-]*)*)"
    r"\s+[a-zéèàâêîôûç]"
)


def subjects(text: str, gz: Gazetteer) -> list[Mention]:
    """The places sentences of `text` open on (« À Jonzac, … »), when the whole name is an official
    commune or intercommunality: a région or département (« À Mayotte, la communauté de communes du
    Sud … ») only situates the subject that follows, and a name read in part is no name."""
    from ingest.gazetteer import Mention

    out = []
    for m in [*_SUBJECT_RE.finditer(text), *_FRAMED_SUBJECT_RE.finditer(text)]:
        places = [p for p in gz.lookup(m.group("name")) if p.kind in ("commune", "epci")]
        if places:  # homonyms: the name, no code
            code = places[0].code if len(places) == 1 or places[0].kind != places[1].kind else ""
            out.append(Mention(places[0].name, places[0].kind, code, _ANNOUNCE_WEIGHT,
                               f"sujet « {text[m.start():m.end('name')].strip()[:60]} »"))
    return out


def _mention(name: str, evidence: str):  # noqa: ANN202 — a gazetteer Mention, imported lazily
    from ingest.gazetteer import Mention

    return Mention(name, "collectivite", "", _ANNOUNCE_WEIGHT, evidence)
