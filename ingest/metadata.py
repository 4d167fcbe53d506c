"""Resolve a document's metadata from every place it can come from, best source first.

Order: `manifest.yaml` of the corpus (or a `<file>.meta.yaml` sidecar), then the file's own
front matter, then PDF/DOCX properties, then inference from the text (fabrique titles and
keywords, years, territory names from the gazetteer the manifest defines). Users drop in
PDFs with no manifest at all; inference is what still makes their filters work.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import IngestError
from ingest.models import DOC_TYPES, DocMeta, LoadedDocument

MANIFEST_NAME = "manifest.yaml"
SIDECAR_SUFFIX = ".meta.yaml"

_TYPE_CUES = [
    ("feuille_de_route", ("feuille de route", "programme d'actions")),
    ("cahier_des_charges", ("cahier des charges", "consultation", "modalités de réponse")),
    ("seminaire_intersites", ("intersites", "inter-sites", "séminaire intersite")),
    ("seminaire_local", ("compte rendu", "compte-rendu", "séminaire local", "atelier local")),
    ("publication", ("enseignements", "publication", "synthèse nationale")),
]


def fold(text: str) -> str:
    """Lowercase without accents, for matching names the way people write them."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


@dataclass
class Fabrique:
    id: str
    title: str
    year: int | None = None
    keywords: list[str] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    territories: dict[str, list[str]] = field(default_factory=dict)  # name -> aliases


@dataclass
class Manifest:
    """The corpus description: documents by relative path, fabriques, and a gazetteer."""

    root: Path | None = None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    fabriques: dict[str, Fabrique] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise IngestError(str(path), f"manifeste illisible : {exc}", "manifest") from exc
        fabriques = {}
        for f in data.get("fabriques") or []:
            terr = {}
            for t in f.get("territories") or []:
                if isinstance(t, str):
                    terr[t] = []
                else:
                    terr[t["name"]] = list(t.get("aliases") or [])
            fabriques[f["id"]] = Fabrique(
                id=f["id"],
                title=f.get("title", f["id"]),
                year=f.get("year"),
                keywords=list(f.get("keywords") or []),
                partners=list(f.get("partners") or []),
                territories=terr,
            )
        documents = {}
        for d in data.get("documents") or []:
            if d.get("path"):
                documents[Path(d["path"]).as_posix()] = d
        return cls(root=path.parent, documents=documents, fabriques=fabriques)

    @classmethod
    def find(cls, file: Path, fallback: Path | None = None) -> Manifest:
        """The nearest `manifest.yaml` above a file; else the fallback (the sample corpus')."""
        for parent in file.resolve().parents:
            candidate = parent / MANIFEST_NAME
            if candidate.is_file():
                return cls.load(candidate)
        if fallback and fallback.is_file():
            m = cls.load(fallback)
            m.documents = {}  # its gazetteer helps; its document entries are not about this file
            m.root = None
            return m
        return cls()

    def entry_for(self, file: Path) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            rel = file.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        return self.documents.get(rel)

    def gazetteer(self) -> list[tuple[str, str]]:
        """(folded form, canonical name) pairs, longest first so 'Grand Reims' beats 'Reims'."""
        pairs = []
        for f in self.fabriques.values():
            for name, aliases in f.territories.items():
                for form in [name, *aliases]:
                    if len(form) >= 3:
                        pairs.append((fold(form), name))
        return sorted(set(pairs), key=lambda p: -len(p[0]))


def _as_list(value: Any) -> list[str]:
    """A list of names from whatever a front matter holds (string, number, list, mapping)."""
    if value is None or value == "":
        return []
    if isinstance(value, str | int | float):
        return [v.strip() for v in re.split(r"[;,]", str(value)) if v.strip()]
    if isinstance(value, dict):
        return [str(k) for k in value]
    return [str(v) for v in value if v not in (None, "")]


def _as_year(value: Any) -> int | None:
    if value is None or value == "":
        return None
    m = re.search(r"(19|20)\d\d", str(value))
    return int(m.group(0)) if m else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:60] or "document"


def infer(text: str, manifest: Manifest) -> dict[str, Any]:
    """Guess fabrique, year, territories and type from the words of the document."""
    folded = fold(text[:60_000])
    found: dict[str, Any] = {}
    best, best_score = None, 0
    for f in manifest.fabriques.values():
        score = 5 * folded.count(fold(f.title)) + sum(
            folded.count(fold(k)) for k in f.keywords if len(k) > 3
        )
        if score > best_score:
            best, best_score = f, score
    if best and best_score >= 3:
        found["fabrique"] = best.id
    territories = []
    for form, name in manifest.gazetteer():
        if name not in territories and re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", folded):
            territories.append(name)
    found["territories"] = territories[:8]
    years = Counter(int(y) for y in re.findall(r"(?<!\d)(20[12]\d)(?!\d)", folded))
    if years:
        found["year"] = years.most_common(1)[0][0]
    head = folded[:3000]
    for doc_type, cues in _TYPE_CUES:
        if any(c in head for c in cues):
            found["doc_type"] = doc_type
            break
    return found


def resolve(
    file: Path, loaded: LoadedDocument, manifest: Manifest, display_path: str
) -> DocMeta:
    """Merge every metadata source, the most explicit winning field by field."""
    layers: list[dict[str, Any]] = []
    entry = manifest.entry_for(file)
    if entry:
        layers.append(entry)
    sidecar = file.with_name(file.name + SIDECAR_SUFFIX)
    try:
        has_sidecar = sidecar.is_file()
    except OSError:  # the name plus ".meta.yaml" can exceed the file system's limit
        has_sidecar = False
    if has_sidecar:
        try:
            layers.append(yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise IngestError(str(sidecar), f"fiche de métadonnées illisible : {exc}", "meta") from exc
    layers.append(loaded.file_meta or {})
    text = "\n".join(p.text for p in loaded.pages)
    layers.append(infer(text, manifest))

    def pick(key: str) -> Any:
        # an explicit empty list in a declared layer ("territories: []" for a fabrique-wide
        # document) is an answer, not a gap for inference to fill
        for layer in layers:
            value = layer.get(key)
            if value not in (None, "", []) or (value == [] and layer is not layers[-1]):
                return value
        return None

    fabrique_id = str(pick("fabrique") or "")
    fabrique = manifest.fabriques.get(fabrique_id)
    doc_type = str(pick("doc_type") or "autre")
    if doc_type not in DOC_TYPES:
        doc_type = "autre"
    title = pick("title") or _first_heading(loaded) or file.stem.replace("_", " ").replace("-", " ")
    year = _as_year(pick("year")) or (fabrique.year if fabrique else None)
    # fail closed: anything but an explicit "public" on a declared value is internal
    declared = pick("visibility")
    is_public = declared is None or fold(str(declared)).strip() in ("public", "publique")
    visibility = "public" if is_public else "interne"
    doc_id = pick("doc_id")
    if not doc_id:
        digest = hashlib.sha1(display_path.encode()).hexdigest()[:8]
        doc_id = f"{_slug(file.stem)}-{digest}"
    return DocMeta(
        doc_id=str(doc_id),
        title=str(title).strip(),
        source=display_path,
        doc_type=doc_type,
        fabrique=fabrique_id,
        fabrique_title=fabrique.title if fabrique else "",
        year=year,
        territories=_as_list(pick("territories")),
        partners=_as_list(pick("partners")) or (fabrique.partners if fabrique else []),
        visibility=visibility,
    )


def _first_heading(loaded: LoadedDocument) -> str | None:
    for page in loaded.pages:
        for kind, text in page.blocks:
            if kind.startswith("heading") and text.strip():
                return text.strip()
    return None
