"""What the index holds, as each audience may see it: documents, filter choices, counts.

One place for the views the three faces share (CLI `docs`/`stats`, the app's corpus page and
filters, the HTTP API), so a public caller is shown the same thing everywhere: the retriever
enforces visibility for search, and these views must not leak it either (a failed row has no
metadata, so its visibility is unknown, and its error names a server path).
Names as users type them are resolved here too: a fabrique by its id or title, a document
type by its French name.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.answering.frtext import fold
from assistant.retriever import Filters, match_territory
from ingest.registry import Record, Registry

NO_FABRIQUE_ID = "(sans fabrique)"  # its pseudo-id in `stats --json` (public contract)

DOC_TYPE_LABELS = {
    "cahier_des_charges": "Cahier des charges",
    "seminaire_local": "Séminaire local",
    "seminaire_intersites": "Séminaire intersites",
    "publication": "Publication",
    "feuille_de_route": "Feuille de route",
    "note": "Note",
    "article": "Article",
    "autre": "Autre",
}
# What people call a type besides its label (« compte rendu » is how a local seminar's report
# is named on its cover).
DOC_TYPE_SYNONYMS = {
    "compte rendu": "seminaire_local",
    "cr": "seminaire_local",
    "seminaire intersite": "seminaire_intersites",
    "cdc": "cahier_des_charges",
    "fdr": "feuille_de_route",
    "enseignements": "publication",
}
STATUS_LABELS = {"indexed": "indexé", "cleanup": "indexé (nettoyage en attente)", "failed": "en échec"}
NO_FABRIQUE = "non renseignée"
UNKNOWN_YEAR = "inconnue"
# Metadata fields as the corpus page and `fp-assistant docs` name them, in reading order.
FIELD_LABELS = {
    "title": "titre",
    "fabrique": "fabrique",
    "fabrique_title": "intitulé de la fabrique",
    "doc_type": "type",
    "year": "année",
    "territories": "territoires",
    "partners": "partenaires",
    "visibility": "visibilité",
    "doc_id": "identifiant",
}
# A metadata source, shortened for a table cell.
_SOURCE_SHORT = {
    "propriétés du fichier": "fichier", "date du fichier": "fichier", "fiche .meta.yaml": "fiche",
    "en-tête YAML": "en-tête",
}


def doc_type_label(doc_type: str | None) -> str:
    return DOC_TYPE_LABELS.get(str(doc_type or "autre"), str(doc_type or "Autre"))


def _type_key(text: str) -> str:
    return re.sub(r"[\s_\-'’]+", " ", fold(text)).strip()


def resolve_doc_type(value: str) -> str:
    """The document type a user means: an id of `ingest.models.DOC_TYPES` (the one list of
    types), its French label (« feuille de route ») or a usual name (« compte rendu »), case,
    accents and separators ignored; a unique partial name (« cahier ») too.

    Raises ValueError (French, with the choices) for an unknown or ambiguous name.
    """
    from ingest.models import DOC_TYPES

    forms: dict[str, str] = {}
    for t in DOC_TYPES:
        forms[_type_key(t)] = t
        forms[_type_key(doc_type_label(t))] = t
    forms.update({_type_key(k): t for k, t in DOC_TYPE_SYNONYMS.items() if t in DOC_TYPES})
    want = _type_key(value)
    if want in forms:
        return forms[want]
    partial = sorted({t for form, t in forms.items() if want and want in form})
    if len(partial) == 1:
        return partial[0]
    choices = ", ".join(partial or DOC_TYPES)
    if partial:
        raise ValueError(f"type de document ambigu : « {value} » (précisez : {choices})")
    raise ValueError(f"type de document inconnu : « {value} » (choix : {choices})")


def provenance_summary(meta: dict[str, Any]) -> str:
    """Where the metadata came from, compact: « titre, type : en-tête ; année : déduit du texte ».

    Fields sharing a source are listed together; a field with no value (source "") and an
    index built before provenance was recorded (no key) give nothing.
    """
    prov = meta.get("provenance") or {}
    if not isinstance(prov, dict):
        return ""
    order = {f: i for i, f in enumerate(FIELD_LABELS)}
    by_source: dict[str, list[str]] = {}
    for name in sorted(prov, key=lambda f: (order.get(f, len(order)), f)):
        # « déduit du texte (nommée dans : titre) »: the evidence is for `fp-assistant docs`
        source = re.sub(r"\s*\(.*\)\s*$", "", str(prov.get(name) or "")).strip()
        if source:
            by_source.setdefault(_SOURCE_SHORT.get(source, source), []).append(FIELD_LABELS.get(name, name))
    return " ; ".join(f"{', '.join(fields)} : {source}" for source, fields in by_source.items())


def metadata_alerts(meta: dict[str, Any]) -> list[str]:
    """The conflicts between metadata sources and the problems found, as recorded at ingest."""
    out: list[str] = []
    for key in ("conflicts", "problems"):
        value = meta.get(key) or []
        out += [str(v) for v in ([value] if isinstance(value, str) else value) if v]
    return out


def visible_records(records: list[Record], audience: str) -> list[Record]:
    """The registry rows this audience may see listed.

    Public: only indexed documents not marked interne (a failed row has no metadata, so its
    visibility is unknown, and its error names a server path: not for the public).
    """
    if audience != "public":
        return list(records)
    return [r for r in records if r.status != "failed" and r.meta.get("visibility", "public") != "interne"]


@dataclass
class IndexOptions:
    """Filter choices and counts, from the documents this audience can see."""

    fabriques: dict[str, str] = field(default_factory=dict)  # id -> title
    fabrique_years: dict[str, int] = field(default_factory=dict)  # id -> edition, when known
    years: list[int] = field(default_factory=list)
    territories: list[str] = field(default_factory=list)
    doc_types: list[str] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    failed: int = 0

    @property
    def empty(self) -> bool:
        return self.documents == 0


def fabrique_year(meta: dict[str, Any]) -> int | None:
    """A document's fabrique's edition year, as the ingest knew it (None in an index built
    before it was recorded)."""
    value = meta.get("fabrique_year")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def index_options(records: list[Record], audience: str) -> IndexOptions:
    opts = IndexOptions()
    fabriques: dict[str, str] = {}
    years: set[int] = set()
    territories: set[str] = set()
    types: set[str] = set()
    for r in visible_records(records, audience):
        if r.status == "failed":
            opts.failed += 1
            continue
        m = r.meta
        opts.documents += 1
        opts.passages += r.chunks
        if m.get("fabrique"):
            fabriques[str(m["fabrique"])] = str(m.get("fabrique_title") or m["fabrique"])
            edition = fabrique_year(m)
            if edition is not None:
                opts.fabrique_years[str(m["fabrique"])] = edition
        if isinstance(m.get("year"), int):
            years.add(int(m["year"]))
        territories.update(str(t) for t in m.get("territories") or [])
        types.add(str(m.get("doc_type") or "autre"))
    opts.fabriques = dict(sorted(fabriques.items(), key=lambda kv: fold(kv[1])))
    opts.years = sorted(years)
    opts.territories = sorted(territories, key=fold)
    opts.doc_types = [t for t in DOC_TYPE_LABELS if t in types] + sorted(types - set(DOC_TYPE_LABELS))
    return opts


def document_rows(records: list[Record], audience: str) -> list[dict[str, Any]]:
    """One row per document for the corpus table (French column names).

    Metadata may be inferred from the text: the reader sees where each field came from
    (« Source des métadonnées ») and what disagreed or failed (« Alertes »), and a fabrique
    nobody could tell reads « non renseignée » rather than an empty cell.
    """
    rows = []
    for r in visible_records(records, audience):
        m = r.meta
        ok = r.status != "failed"
        rows.append({
            "Titre": str(m.get("title") or Path(r.path).name),
            "Fabrique": (str(m.get("fabrique_title") or m.get("fabrique") or "")
                         or (NO_FABRIQUE if ok else "")),
            "Type": doc_type_label(m.get("doc_type")) if m else "",
            "Année": m.get("year"),
            "Territoires": ", ".join(m.get("territories") or []),
            "Pages": r.pages,
            "Passages": r.chunks,
            "Statut": STATUS_LABELS.get(r.status, r.status),
            "Erreur": _short_error(r.error or ""),
            "Fichier": Path(r.path).name,
            "Visibilité": str(m.get("visibility") or ""),
            "Source des métadonnées": provenance_summary(m),
            "Alertes": " ; ".join(metadata_alerts(m)),
        })
    return rows


def _short_error(error: str) -> str:
    """Errors start with the file's full path; the table already has the file name."""
    return re.sub(r"^\S*/", "", error) if error else ""


def filter_rows(
    rows: list[dict[str, Any]], text: str = "", fabriques: list[str] | None = None,
    types: list[str] | None = None, statuses: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The corpus table's own filters: words in title/territories/file, and exact choices."""
    want = fold(text).strip()
    out = []
    for row in rows:
        haystack = fold(f"{row['Titre']} {row['Territoires']} {row['Fichier']} {row['Fabrique']}")
        if want and want not in haystack:
            continue
        if fabriques and row["Fabrique"] not in fabriques:
            continue
        if types and row["Type"] not in types:
            continue
        if statuses and row["Statut"] not in statuses:
            continue
        out.append(row)
    return out


def corpus_stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Documents by fabrique, year and type (and passages by fabrique), failed rows excluded."""
    ok = [r for r in rows if r["Statut"] != STATUS_LABELS["failed"]]
    by_fab = Counter(r["Fabrique"] or NO_FABRIQUE for r in ok)
    by_year = Counter(str(r["Année"]) if r["Année"] else UNKNOWN_YEAR for r in ok)
    by_type = Counter(r["Type"] or "Autre" for r in ok)
    chunks: Counter[str] = Counter()
    for r in ok:
        chunks[r["Fabrique"] or NO_FABRIQUE] += int(r["Passages"] or 0)
    fab_order = sorted(by_fab.items(), key=lambda kv: (-kv[1], fold(kv[0])))
    return {
        "fabrique": dict(fab_order),
        "passages": {name: chunks[name] for name, _n in fab_order},
        "année": dict(sorted(by_year.items())),
        "type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
    }


def record_file(registry: Registry, doc_id: str) -> Path | None:
    """The original file of an indexed document, when it is still on disk.

    Only files the registry knows are ever served: a citation's doc_id is looked up, never
    a path taken from the page.
    """
    if not doc_id:
        return None
    rec = registry.by_doc_id(doc_id)
    if rec is None or rec.status == "failed":
        return None
    path = Path(rec.path)
    return path if path.is_file() else None


def filters_summary(filters: Filters, options: IndexOptions) -> dict[str, Any]:
    """The active filters in words, for the chat (and stored with feedback)."""
    out: dict[str, Any] = {}
    if filters.fabrique:
        out["fabrique"] = options.fabriques.get(filters.fabrique, filters.fabrique)
    if filters.year_from is not None or filters.year_to is not None:
        lo, hi = filters.year_from, filters.year_to
        out["années"] = str(lo) if lo == hi else f"{lo}–{hi}"
    if filters.territory:
        out["territoire"] = filters.territory
    if filters.doc_type:
        out["type"] = doc_type_label(filters.doc_type)
    return out


def known_fabriques(records: list[Any], audience: str) -> dict[str, str]:
    """id → title of the fabriques of the documents this audience may see, as indexed
    (discovered ones included; the title falls back to the id)."""
    out: dict[str, str] = {}
    for r in visible_records(records, audience):
        fid = str(r.meta.get("fabrique") or "")
        if fid and r.status != "failed":
            out[fid] = out.get(fid) or str(r.meta.get("fabrique_title") or "")
    return {fid: title or fid for fid, title in out.items()}


def _name_key(text: str) -> str:
    return " ".join(re.split(r"[\s_\-'’«»\"]+", fold(text))).strip()


def resolve_fabrique(value: str, fabriques: dict[str, str], allow_none: bool = False) -> str:
    """The id of the fabrique the user means: its id or its title, case, accents and
    separators ignored, or a unique word start of either (« littoral », « cyber »).

    Users meet a fabrique by its title in answers and in `stats`; ids of discovered fabriques
    (« fp-cybersecurite-des-collectivites ») are not typed by hand. With `allow_none`,
    « non renseignée » (or « aucune ») means the documents without a fabrique ("").
    Raises ValueError in French, with the choices, for an unknown or ambiguous name.
    """
    want = _name_key(value)
    if allow_none and want in (_name_key(NO_FABRIQUE), "aucune", "sans fabrique", ""):
        return ""
    for fid, title in fabriques.items():
        if want in (_name_key(fid), _name_key(title)):
            return fid
    starts = re.compile(rf"(?<!\w){re.escape(want)}")  # from a word's start: « cyber », « littoral »
    partial = [fid for fid, title in fabriques.items()
               if want and (starts.search(_name_key(fid)) or starts.search(_name_key(title)))]
    if len(partial) == 1:
        return partial[0]

    def named(ids: list[str]) -> str:
        return " ; ".join(f"« {fabriques[f]} » ({f})" if fabriques[f] != f else f for f in ids)

    if partial:
        raise ValueError(f"« {value} » désigne plusieurs fabriques : {named(partial)}. Précisez.")
    if not fabriques:
        raise ValueError(f"fabrique inconnue : « {value} » (aucune fabrique dans l'index)")
    raise ValueError(f"fabrique inconnue dans l'index : « {value} ». Fabriques indexées : "
                     f"{named(sorted(fabriques, key=lambda f: _name_key(fabriques[f])))}")


def collect_stats(records: list[Record]) -> dict[str, Any]:
    """Documents and passages per fabrique, type and year, over the rows a caller may see.

    Every fabrique the index holds is listed with its title, the ones found in new documents
    too; the documents whose fabrique is unknown form the last row (id "", « non renseignée »).
    The caller adds `store`.
    """
    ok = [r for r in records if r.status != "failed"]
    fabriques: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"title": "", "year": None, "documents": 0, "chunks": 0, "doc_types": Counter()}
    )
    by_type: Counter[str] = Counter()
    by_year: Counter[str] = Counter()
    for r in ok:
        fid = str(r.meta.get("fabrique") or "")
        f = fabriques[fid]
        f["title"] = f["title"] or str(r.meta.get("fabrique_title") or "")
        f["year"] = f["year"] or fabrique_year(r.meta)
        f["documents"] += 1
        f["chunks"] += r.chunks
        f["doc_types"][r.meta.get("doc_type", "autre")] += 1
        by_type[r.meta.get("doc_type", "autre")] += 1
        by_year[str(r.meta.get("year") or "inconnue")] += 1
    return {
        "documents": len(ok),
        "chunks": sum(r.chunks for r in ok),
        "pages": sum(r.pages for r in ok),
        "failed": [{"path": r.path, "error": r.error} for r in records if r.status == "failed"],
        "fabriques": [
            # documents without fabrique keep the pseudo-id of the JSON contract, "(sans fabrique)"
            {"id": fid or NO_FABRIQUE_ID, "title": f["title"] or fid or NO_FABRIQUE_ID, "year": f["year"],
             "documents": f["documents"], "chunks": f["chunks"], "doc_types": dict(f["doc_types"])}
            for fid, f in sorted(fabriques.items(), key=lambda kv: (not kv[0], kv[0]))
        ],
        "doc_types": dict(sorted(by_type.items())),
        "years": dict(sorted(by_year.items())),
    }


def document_row(r: Any) -> dict[str, Any]:
    """One document of `docs --json`: a public contract, flat, fields only ever added.

    `provenance` maps a field to where its value came from (« manifeste », « fiche
    .meta.yaml », « en-tête YAML », « propriétés du fichier », « déduit du texte », "" when
    absent); `conflicts` and `problems` are French sentences. An index built before they
    were recorded gives {} and [] (never a missing key). `error` is a failed file's cause.
    """
    m = r.meta or {}
    prov = m.get("provenance") if isinstance(m.get("provenance"), dict) else {}

    def sentences(key: str) -> list[str]:
        value = m.get(key) or []
        return [str(v) for v in ([value] if isinstance(value, str) else value) if v]

    return {
        "doc_id": str(r.doc_id or m.get("doc_id") or ""),
        "path": r.path,
        "title": str(m.get("title") or ""),
        "fabrique": str(m.get("fabrique") or ""),
        "fabrique_title": str(m.get("fabrique_title") or ""),
        "fabrique_year": fabrique_year(m),
        "doc_type": str(m.get("doc_type") or ""),
        "year": m.get("year") if isinstance(m.get("year"), int) else None,
        "territories": [str(t) for t in m.get("territories") or []],
        "visibility": str(m.get("visibility") or ""),
        "status": r.status,
        "chunks": int(r.chunks or 0),
        "pages": int(r.pages or 0),
        "provenance": {str(k): str(v or "") for k, v in (prov or {}).items()},
        "conflicts": sentences("conflicts"),
        "problems": sentences("problems"),
        "error": str(r.error or ""),
    }


def territory_names(records: list[Record]) -> list[str]:
    """Every territory name the documents of `records` carry, sorted."""
    return sorted({str(t) for r in records for t in r.meta.get("territories") or []})


def document_rows_json(records: list[Record], audience: str, fabrique: str | None = None,
                       territory: str | None = None) -> list[dict[str, Any]]:
    """The documents of `records` (already those the audience may see), `document_row` each,
    optionally those of one fabrique (id, title, or « non renseignée ») or of one territory
    (any of its names, as the search filter resolves it). ValueError (French) for an unknown
    fabrique."""
    if fabrique is not None:
        fid = resolve_fabrique(fabrique, known_fabriques(records, audience), allow_none=True)
        records = [r for r in records if r.status != "failed" and str(r.meta.get("fabrique") or "") == fid]
    if territory is not None:
        names = set(match_territory(territory, territory_names(records)).names)
        records = [r for r in records if names & {str(t) for t in r.meta.get("territories") or []}]
    return [document_row(r) for r in records]
