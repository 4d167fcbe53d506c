"""What the Streamlit pages show, computed without Streamlit (so tests call it directly).

The pages in `assistant/ui*.py` only lay things out; the choices made for the reader live
here: which documents an audience may see listed (the retriever enforces it for search; the
corpus table and the filter options must not leak it either), French labels, the index
status line, and the excerpt highlighting, which escapes the source text before marking
words (a document may contain HTML, and it is shown as text, never as markup).
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.frtext import STOPWORDS, content_stems, fold, stem
from assistant.retriever import Filters
from ingest.registry import Record, Registry

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


def empty_index_message(settings: Settings) -> str:
    """What to do when there is nothing to search yet (the exact command to run)."""
    return (
        "L'index est vide : aucun document n'a encore été indexé. Lancez "
        f"`fp-assistant ingest corpus --store {settings.store}` (ou `make run`), "
        "ou déposez des fichiers dans la page « Corpus »."
    )


# --------------------------------------------------------------------------- registry views


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
    years: list[int] = field(default_factory=list)
    territories: list[str] = field(default_factory=list)
    doc_types: list[str] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    failed: int = 0

    @property
    def empty(self) -> bool:
        return self.documents == 0


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


def mime_of(path: Path) -> str:
    if path.suffix.lower() == ".md":
        return "text/markdown"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


# --------------------------------------------------------------------------- status lines


def backend_label(settings: Settings) -> str:
    """The answering back-end in one line (users must know whether a model writes)."""
    if settings.llm == "openai":
        where = settings.openai_base_url or "API OpenAI"
        return f"Modèle de langage : `{settings.llm_model}` via {where}"
    return "Extractif : citations des documents, hors ligne (aucun modèle de langage)"


def index_location(settings: Settings) -> str:
    if settings.chroma_url:
        return f"Serveur Chroma {settings.chroma_url} (registre : `{settings.store}`)"
    return f"Dossier `{settings.store}`"


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


# --------------------------------------------------------------------------- text


_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿŒœÆæ]+")


def highlight(text: str, question: str) -> str:
    """HTML of `text` with the question's meaningful words in <mark>, everything escaped.

    Words match by French stem with accents folded (« aînés » marks « aîné »); stopwords
    never match, so « de la » is not lit up everywhere.
    """
    wanted = set(content_stems(question, generic=True))
    out: list[str] = []
    last = 0
    for m in _TOKEN.finditer(text):
        word = m.group(0)
        f = fold(word)
        key = f if f.isdigit() else stem(word)
        if wanted and f not in STOPWORDS and key in wanted:
            out.append(html.escape(text[last:m.start()]))
            out.append(f"<mark>{html.escape(word)}</mark>")
            last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]$<>|~#])")


def md_escape(text: str) -> str:
    """A document's title or a place name shown literally in a label (no emphasis, no link)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def safe_markdown(text: str) -> str:
    """Answer text for st.markdown: `$` would start LaTeX and `<` raw HTML (shown as text)."""
    return text.replace("$", "\\$").replace("<", "&lt;")


def pdf_page_link(data: bytes, page: int, label: str, key: str) -> str:
    """HTML + JS: a link opening the PDF at `page` in a new tab (#page=N).

    Browsers refuse to open a data: URL as a page, so the embedded bytes become a blob: URL
    when the link is drawn; the built-in PDF viewers honour #page there. The caller keeps
    this for small files (the whole file travels inside the page).
    """
    b64 = base64.b64encode(data).decode("ascii")
    anchor = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    return (
        f'<a id="{anchor}" class="fp-pdf-link" href="#" target="_blank" rel="noopener">'
        f"{html.escape(label)}</a>"
        "<script>(function(){"
        f"const a=document.getElementById({json.dumps(anchor)});if(!a||a.dataset.ready)return;"
        # no « < » in the script: the page's HTML sanitiser drops a script whose text has one
        f"const buf=Uint8Array.from(atob({json.dumps(b64)}),c=>c.charCodeAt(0));"
        "const url=URL.createObjectURL(new Blob([buf],{type:'application/pdf'}));"
        f"a.href=url+'#page={int(page)}';a.dataset.ready='1';"
        "})();</script>"
    )


def source_label(title: str, page: int, territories: list[str], fabrique_title: str = "") -> str:
    """« Titre — p. 3 (Lorient) », the one-line name of a source (also stored with feedback)."""
    where = ", ".join(territories) or fabrique_title
    return f"{title} — p. {page}" + (f" ({where})" if where else "")
