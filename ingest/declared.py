"""Turn one explicit metadata layer into canonical fields, and say what could not be used.

Metadata reaches us from people and tools that never agreed on names: a manifest written
by the team, a `.meta.yaml` sidecar, Markdown front matter, PDF/DOCX/HTML properties set
by a prestataire (« année », « Territoires », dc.coverage, og:type, « CR séminaire »...).
Each layer goes through `normalise` on its own so that the merge in `ingest.metadata`
compares like with like, and so that every value we had to drop is reported (in French,
naming the key, the value and the layer) instead of silently leaving a document out of a
filter. Nothing here raises on odd input: a metadata typo must never cost a document.

Visibility fails closed: a declared value we cannot read makes the document "interne",
never "public".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ingest.models import DOC_TYPES

CANONICAL = ("doc_id", "title", "subject", "description", "keywords", "fabrique", "year",
             "territories", "doc_type", "partners", "visibility")

YEAR_MIN, YEAR_MAX = 1990, 2100

_LIST_FIELDS = frozenset({"keywords", "territories", "partners"})
# free text: a comma inside a `titre=…` keyword belongs to the title, not to the next keyword
_TEXT_FIELDS = frozenset({"title", "subject", "description"})


@dataclass
class Declared:
    """One layer's canonical fields plus the French report of what it declared unusably."""

    fields: dict[str, Any]  # canonical key -> normalised value
    problems: list[str] = field(default_factory=list)  # French, one line each, naming key and value


# --------------------------------------------------------------------------- keys


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


def _key_form(name: Any) -> str:
    """One spelling per key: folded, `-`/`_`/spaces alike, dc:/dcterms. prefixes alike."""
    s = _fold(str(name)).strip()
    s = re.sub(r"^(?:dcterms|dc)[.:]", "dc.", s)
    return re.sub(r"[\s_\-]+", "_", s).strip("_")


# (canonical field, rank): a lower rank wins when one layer names a field twice
# (PDF /Title and XMP dc:title, <title> and og:title, « année » and « date »).
_ALIASES: dict[str, tuple[str, int]] = {}


def _alias(canonical: str, rank: int, *names: str) -> None:
    for name in names:
        _ALIASES[_key_form(name)] = (canonical, rank)


_alias("doc_id", 0, "doc_id", "docid", "id", "identifiant", "identifiant_document")
_alias("title", 0, "title", "titre", "intitulé", "titre_du_document")
_alias("title", 1, "dc.title")
_alias("title", 2, "og:title")
_alias("subject", 0, "subject", "sujet", "objet")
_alias("description", 0, "description", "résumé", "resume", "abstract", "summary")
_alias("description", 1, "dc.description")
_alias("description", 2, "og:description")
_alias("keywords", 0, "keywords", "keyword", "mots-clés", "mots_cles", "mot-clé", "mots-cle", "motscles",
       "tags", "tag")
# Dublin Core's subject is "keywords or classification codes" (XMP's dc:subject is the
# keyword bag Acrobat fills from /Keywords), not our one-line « sujet ».
_alias("keywords", 1, "dc.subject", "pdf:keywords")
_alias("fabrique", 0, "fabrique", "fabrique_prospective", "fabrique_id")
_alias("year", 0, "année", "annee", "year", "millésime", "millesime")
_alias("year", 1, "date", "date_de_publication", "date_publication")
_alias("year", 2, "dc.date", "dc.issued", "dc.created")
_alias("territories", 0, "territoire", "territoires", "territories", "territory", "commune", "communes",
       "epci", "collectivité", "collectivités", "collectivite", "collectivites", "coverage")
_alias("territories", 1, "dc.coverage", "dc.spatial")
_alias("doc_type", 0, "doc_type", "type_de_document", "type_document", "document_type")
_alias("doc_type", 1, "type", "nature")
_alias("doc_type", 2, "catégorie", "categorie", "category")
_alias("doc_type", 3, "dc.type")
_alias("doc_type", 4, "og:type")
_alias("partners", 0, "partenaires", "partenaire", "partners", "partner")
_alias("visibility", 0, "visibilité", "visibilite", "visibility", "diffusion", "niveau_de_diffusion")
_alias("visibility", 0, "confidentialité", "confidentialite", "confidentiality", "confidentiel")

_CONFIDENTIALITY_KEYS = frozenset(
    _key_form(k) for k in ("confidentialité", "confidentiality", "confidentiel")
)
_CREATED_KEYS = frozenset({"created_year"})
# generic page or resource types: saying nothing about our document types is not a mistake
_SILENT_TYPE_KEYS = frozenset({"og:type"})
_DCMI_TYPES = frozenset(
    {"text", "texte", "document", "image", "dataset", "collection", "event", "interactiveresource",
     "interactive resource", "movingimage", "moving image", "physicalobject", "physical object",
     "service", "software", "sound", "stillimage", "still image", "website", "web page", "webpage"}
)


def canonical_key(name: Any) -> str | None:
    """The canonical field a metadata key names (« Année » → "year"), or None if it is not metadata."""
    entry = _ALIASES.get(_key_form(name))
    return entry[0] if entry else None


# --------------------------------------------------------------------------- document types

_B, _E = r"(?<![a-z0-9])(?:", r")(?![a-z0-9])"
_TYPE_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (doc_type, re.compile(_B + cues + _E))
    for doc_type, cues in (
        ("seminaire_intersites", r"inter ?sites?|cross ?sites?"),
        ("cahier_des_charges", r"cahiers? des charges|cctp|appels? d offres?|consultation"
                               r"|terms of reference|call for (?:tenders?|proposals?)"),
        ("feuille_de_route", r"feuilles? de route|(?:plans?|programmes?) d actions?|road ?map|action plan"),
        ("seminaire_local", r"comptes? rendus?|cr|seminaires?|seminars?|atelier local|proces verbal"
                            r"|minutes"),
        ("publication", r"syntheses?|publications?|rapport final|enseignements?|final report"
                        r"|synthesis|lessons? learn(?:ed|t)"),
        ("note", r"notes?|memo|memorandum"),
        ("article", r"articles?|actualites?|actus?|news|breves?|billets?|blog ?posts?"),
    )
)
_INTERSITES = _TYPE_CUES[0][1]
_OTHER_LABELS = frozenset({"autre", "autres", "divers", "other", "misc"})


def doc_type_of(label: str) -> str | None:
    """The document type a French or English label names, or None when it names none.

    Labels start with what the document is (« Compte rendu du séminaire… », « Synthèse des
    séminaires intersites », « Cahier des charges de la consultation »), so the earliest
    cue wins; a report on an intersites seminar stays intersites whatever it is called.
    """
    text = re.sub(r"[^a-z0-9]+", " ", _fold(label)).strip()
    if not text:
        return None
    if text.replace(" ", "_") in DOC_TYPES:
        return text.replace(" ", "_")
    if text in _OTHER_LABELS:
        return "autre"
    best: tuple[int, int, str] | None = None
    for order, (doc_type, pattern) in enumerate(_TYPE_CUES):
        m = pattern.search(text)
        if m and (best is None or (m.start(), order) < best[:2]):
            best = (m.start(), order, doc_type)
    if best is None:
        return None
    if best[2] == "seminaire_local" and _INTERSITES.search(text):
        return "seminaire_intersites"
    return best[2]


# --------------------------------------------------------------------------- values


class _Unusable(Exception):
    """A declared value we cannot turn into the field; the message says why, in French."""


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {v}" for k, v in list(value.items())[:5]) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(str(v) for v in value[:8]) + "]"
    elif isinstance(value, date | datetime):
        text = value.isoformat()
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "…"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _scalar_text(value: Any) -> str:
    """A str for one scalar value; lists, mappings and booleans are not text we can trust."""
    if isinstance(value, bool):
        raise _Unusable("valeur booléenne inutilisable ici")
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise _Unusable(f"valeur inutilisable ({type(value).__name__})")


def _flatten(value: Any) -> Iterator[Any]:
    """Scalars of a (possibly nested) list, in order; a mapping inside makes it unusable."""
    stack = [iter([value])]
    depth = 0
    while stack:
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            depth -= 1
            continue
        if isinstance(item, Mapping):
            raise _Unusable("valeur inutilisable (un tableau clé: valeur là où une liste était attendue)")
        if isinstance(item, list | tuple | set | frozenset):
            if depth > 20:
                raise _Unusable("liste trop imbriquée")
            stack.append(iter(item))
            depth += 1
            continue
        yield item


def _text(value: Any, canonical: str) -> str | None:
    if isinstance(value, Mapping):
        raise _Unusable("valeur inutilisable (attendu un texte, trouvé un tableau clé: valeur)")
    if isinstance(value, list | tuple | set | frozenset):
        items = [t for t in (_scalar_text(v) for v in _flatten(value) if not _empty(v)) if t]
        if not items:
            return None
        if canonical == "description":
            return " ".join(items)
        if len(set(items)) > 1:
            raise _Unusable("plusieurs valeurs là où une seule était attendue")
        return items[0]
    return _scalar_text(value) or None


def _names(value: Any) -> list[str]:
    """Names from a string (split on ; , | and new lines), a number or a nested list."""
    if isinstance(value, Mapping):
        raise _Unusable("valeur inutilisable (attendu une liste de noms, trouvé un tableau clé: valeur)")
    out: list[str] = []
    for item in _flatten(value):
        if _empty(item):
            continue
        text = _scalar_text(item)
        out.extend(" ".join(p.split()) for p in re.split(r"[;,|\n]", text) if p.strip())
    return out


_COMPACT_DATE_RE = re.compile(r"^\s*(?:D:)?(\d{4})(?:\d{2}){1,5}")
_YEAR_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def _year(value: Any) -> int | None:
    """The year of an int, a date, or a date-like string (2024-03-12, 12/03/2024, mars 2024,
    2021-2022 gives 2021); None when the value holds no year at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, date | datetime):
        return value.year
    if isinstance(value, str):
        m = _YEAR_RE.search(value) or _COMPACT_DATE_RE.match(value)
        return int(m.group(1)) if m else None
    if isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, Mapping | list | tuple) and (year := _year(item)) is not None:
                return year
    return None


def _checked_year(value: Any) -> int:
    if isinstance(value, Mapping):
        raise _Unusable("valeur inutilisable (attendu une année, trouvé un tableau clé: valeur)")
    year = _year(value)
    if year is None:
        raise _Unusable("aucune année reconnue (attendu par exemple 2024, 2024-03-12 ou « mars 2024 »)")
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise _Unusable(f"année {year} hors de la plage {YEAR_MIN}–{YEAR_MAX}")
    return year


_INTERNAL_WORDS = frozenset(
    {"interne", "internes", "internal", "confidentiel", "confidentielle", "confidentiels",
     "confidentielles", "confidential", "restreint", "restreinte", "restreints", "restreintes",
     "restricted", "prive", "privee", "prives", "privees", "private", "reserve", "reservee", "limite",
     "limitee", "secret", "non", "pas", "ne", "no", "not"}
)
_PUBLIC_CORE = frozenset({"public", "publique", "publics", "publiques", "open", "ouvert", "ouverte", "libre",
                          "everyone"})
_PUBLIC_FILLER = frozenset({"diffusion", "acces", "tout", "tous", "grand", "document", "en", "ligne", "au"})
_NO_WORDS = frozenset({"non", "aucune", "aucun", "no", "none", "false", "faux", "sans", "pas", "0"})
_YES_WORDS = frozenset({"oui", "yes", "true", "vrai", "1"})


def _visibility(value: Any, key_form: str) -> str:
    """"public" or "interne" for one readable value; `_Unusable` for anything else."""
    if isinstance(value, Mapping):
        raise _Unusable("valeur inutilisable (tableau clé: valeur)")
    if isinstance(value, list | tuple | set | frozenset):
        found = [_visibility(v, key_form) for v in _flatten(value) if not _empty(v)]
        if not found:
            raise _Unusable("liste vide")
        return "public" if all(v == "public" for v in found) else "interne"
    words = set(re.findall(r"[a-z0-9]+", _fold(str(value)))) if not isinstance(value, bool) else set()
    if key_form in _CONFIDENTIALITY_KEYS:  # « confidentialité : non » is a public document
        if value is False or (words and words <= _NO_WORDS | {"confidentiel", "confidentielle"}
                              and words & _NO_WORDS):
            return "public"
        if value is True or (words and words <= _YES_WORDS):
            return "interne"
    if words & _INTERNAL_WORDS:
        return "interne"
    if words & _PUBLIC_CORE and words <= _PUBLIC_CORE | _PUBLIC_FILLER:
        return "public"
    raise _Unusable("visibilité illisible (attendu « public » ou « interne »)")


# --------------------------------------------------------------------------- keywords


def _split_pair(part: str) -> tuple[str, str] | None:
    sep = "=" if "=" in part else ":" if ":" in part else None
    if sep is None:
        return None
    key, value = part.split(sep, 1)
    return (key.strip(), value.strip()) if key.strip() and len(key) <= 60 else None


def _keyword_parts(value: Any) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """Plain keywords, and `key=value` pairs (key, canonical, values) hidden among them.

    A pair's value runs to the next `;` (or `|`, new line): inside it, commas separate the
    items of a list field (« territoires=Arras, Lens ») and belong to free text
    (« titre=Compte rendu, séance 2 »); after a code-like field (year, type, fabrique...)
    a comma starts a plain keyword again.
    """
    if isinstance(value, Mapping):
        raise _Unusable("valeur inutilisable (attendu une liste de mots-clés, trouvé un tableau clé: valeur)")
    plain: list[str] = []
    pairs: list[tuple[str, str, list[str]]] = []
    for item in _flatten(value):
        if _empty(item):
            continue
        for segment in re.split(r"[;|\n]", _scalar_text(item)):
            current: tuple[str, str, list[str]] | None = None
            for part in (p.strip() for p in segment.split(",")):
                if not part:
                    continue
                pair = _split_pair(part)
                canonical = canonical_key(pair[0]) if pair else None
                if pair and canonical == "keywords":
                    plain.extend(_names(pair[1]))
                    current = None
                elif pair and canonical:
                    current = (pair[0], canonical, [pair[1]] if pair[1] else [])
                    pairs.append(current)
                elif current and (current[1] in _LIST_FIELDS or current[1] in _TEXT_FIELDS):
                    current[2].append(part)
                else:
                    plain.append(" ".join(part.split()))
                    current = None
    return plain, pairs


# --------------------------------------------------------------------------- normalise


_Report = Callable[[str, Any, str], None]  # (key as written, value, why) -> one problem line


@dataclass
class _Candidate:
    rank: float
    order: int
    key: str  # as the layer spells it, for the problem messages
    key_form: str
    value: Any


def normalise(raw: Mapping[str, Any], origin: str) -> Declared:
    """Canonical fields of one explicit layer; unusable values become French problems.

    `origin` names the layer in the messages: « manifeste », « fiche .meta.yaml »,
    « en-tête YAML », « propriétés du fichier ». Never raises.
    """
    out = Declared(fields={})
    try:
        _normalise(raw, origin, out)
    except Exception as exc:  # noqa: BLE001 - a metadata oddity must never cost the document
        out.problems.append(f"{origin} : métadonnées illisibles ({type(exc).__name__})")
        if "visibility" in out.fields or _declares_visibility(raw):
            out.fields["visibility"] = "interne"
    return out


def _declares_visibility(raw: Any) -> bool:
    try:
        return isinstance(raw, Mapping) and any(canonical_key(k) == "visibility" for k in raw)
    except Exception:  # noqa: BLE001 - only used on the error path
        return True


def _normalise(raw: Any, origin: str, out: Declared) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        out.problems.append(
            f"{origin} : attendu des paires clé: valeur, trouvé « {_show(raw)} » ({type(raw).__name__})"
        )
        return

    def problem(key: str, value: Any, why: str) -> None:
        out.problems.append(f"{origin} : « {key} » = « {_show(value)} » : {why}")

    candidates: dict[str, list[_Candidate]] = {name: [] for name in CANONICAL}
    created: list[tuple[str, Any]] = []
    for order, (key, value) in enumerate(raw.items()):
        form = _key_form(key)
        if form in _CREATED_KEYS:
            created.append((str(key), value))
            continue
        entry = _ALIASES.get(form)
        if entry is not None:
            candidates[entry[0]].append(_Candidate(entry[1], order, str(key), form, value))

    # keywords first: the `key=value` pairs they hide feed the other fields, just after the
    # same key written as a field of its own
    keywords: list[str] = []
    for cand in sorted(candidates["keywords"], key=lambda c: (c.rank, c.order)):
        if _empty(cand.value):
            continue
        try:
            plain, pairs = _keyword_parts(cand.value)
        except _Unusable as exc:
            problem(cand.key, cand.value, str(exc))
            continue
        keywords.extend(plain)
        for inner_key, canonical, values in pairs:
            inner_form = _key_form(inner_key)
            rank = _ALIASES[inner_form][1] + 0.5
            shown = f"{inner_key} (dans {cand.key})"
            if not values:
                continue
            if canonical in _LIST_FIELDS:
                value: Any = values
            elif canonical in _TEXT_FIELDS:
                value = ", ".join(values)
            else:
                value = values[0]
            candidates[canonical].append(_Candidate(rank, cand.order, shown, inner_form, value))
    if keywords:
        out.fields["keywords"] = _dedupe(keywords)

    for name in CANONICAL:
        if name == "keywords":
            continue
        ordered = sorted(candidates[name], key=lambda c: (c.rank, c.order))
        if not ordered:
            continue
        if name in _LIST_FIELDS:
            _list_field(name, ordered, out, problem)
        elif name == "year":
            _first_usable(name, ordered, out, problem, _checked_year)
        elif name == "doc_type":
            _doc_type_field(ordered, out, problem)
        elif name == "visibility":
            _visibility_field(ordered, out, problem)
        else:
            _first_usable(name, ordered, out, problem, lambda v, n=name: _text(v, n))

    for _key, value in created:  # a weak hint computed by the loaders: no complaints
        year = _year(value) if not isinstance(value, Mapping) else None
        if year is not None and YEAR_MIN <= year <= YEAR_MAX:
            out.fields["created_year"] = year
            break


def _first_usable(
    name: str, ordered: list[_Candidate], out: Declared, problem: _Report, convert: Callable[[Any], Any]
) -> None:
    for cand in ordered:
        if _empty(cand.value) or (isinstance(cand.value, list | tuple) and not cand.value):
            continue
        try:
            value = convert(cand.value)
        except _Unusable as exc:
            problem(cand.key, cand.value, str(exc))
            continue
        if value is not None and name not in out.fields:
            out.fields[name] = value


def _list_field(name: str, ordered: list[_Candidate], out: Declared, problem: _Report) -> None:
    items: list[str] = []
    explicit_empty = False
    for cand in ordered:
        if isinstance(cand.value, list | tuple) and not cand.value:
            explicit_empty = True  # « territoires: [] »: a fabrique-wide document, an answer
            continue
        if _empty(cand.value):
            continue
        try:
            items.extend(_names(cand.value))
        except _Unusable as exc:
            problem(cand.key, cand.value, str(exc))
    if items or explicit_empty:
        out.fields[name] = _dedupe(items)


def _doc_type_field(ordered: list[_Candidate], out: Declared, problem: _Report) -> None:
    for cand in ordered:
        if _empty(cand.value):
            continue
        try:
            label = _text(cand.value, "doc_type")
        except _Unusable as exc:
            problem(cand.key, cand.value, str(exc))
            continue
        if not label:
            continue
        doc_type = doc_type_of(label)
        if doc_type is None:
            weak = cand.key_form in _SILENT_TYPE_KEYS or (
                cand.key_form == "dc.type" and _fold(label).strip() in _DCMI_TYPES
            )
            if not weak:
                problem(cand.key, cand.value, "type de document inconnu (attendu par exemple « compte rendu "
                        "de séminaire local », « séminaire intersites », « cahier des charges », « feuille "
                        "de route », « publication », « note », « article »)")
            continue
        out.fields.setdefault("doc_type", doc_type)


def _visibility_field(ordered: list[_Candidate], out: Declared, problem: _Report) -> None:
    found: list[tuple[str, Any, str]] = []
    for cand in ordered:
        if _empty(cand.value) or (isinstance(cand.value, list | tuple) and not cand.value):
            continue
        try:
            found.append((cand.key, cand.value, _visibility(cand.value, cand.key_form)))
        except _Unusable as exc:
            problem(cand.key, cand.value, f"{exc} ; document traité comme interne")
            found.append((cand.key, cand.value, "interne"))
    if not found:
        return
    if all(v == "public" for _, _, v in found):
        out.fields["visibility"] = "public"
        return
    out.fields["visibility"] = "interne"
    public = [(k, v) for k, v, vis in found if vis == "public"]
    if public:
        key, value = public[0]
        problem(key, value, "contredit une autre visibilité déclarée non publique ; "
                "document traité comme interne")


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for item in items:
        folded = _fold(item)
        if item and folded not in seen:
            seen.add(folded)
            kept.append(item)
    return kept
