"""Resolve a document's metadata from every place it can come from, most explicit first.

Order, field by field: the corpus `manifest.yaml` entry, a `<file>.meta.yaml` sidecar, the
file's own front matter or properties (PDF info and XMP, DOCX core and custom properties,
HTML meta tags), and last what the text says of itself (`ingest.fabriques`,
`ingest.infer`). Each field remembers where its value came from (`DocMeta.provenance`), so
ANCT staff can check a label and correct it with a sidecar; explicit layers that disagree
are reported (`DocMeta.conflicts`), values that cannot be used too (`DocMeta.problems`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.declared import Declared, normalise
from ingest.errors import IngestError
from ingest.fabriques import Catalog, Fabrique
from ingest.gazetteer import fold  # one folding rule for names (re-exported: assistant/ imports it here)
from ingest.models import DOC_TYPES, DocMeta, LoadedDocument

MANIFEST_NAME = "manifest.yaml"
SIDECAR_SUFFIX = ".meta.yaml"
# Bumped when inference changes: an index built by older rules is relabelled (no re-embedding).
RULES_VERSION = "9"

SRC_MANIFEST = "manifeste"
SRC_SIDECAR = "fiche .meta.yaml"
SRC_FRONT = "en-tête YAML"
SRC_PROPS = "propriétés du fichier"
SRC_TEXT = "déduit du texte"
FIELDS = ("title", "fabrique", "doc_type", "year", "territories", "partners", "visibility", "doc_id")
FIELD_LABELS = {
    "title": "titre", "fabrique": "fabrique", "doc_type": "type", "year": "année",
    "territories": "territoires", "partners": "partenaires", "visibility": "visibilité",
    "doc_id": "identifiant",
}
HEAD_CHARS = 3000  # "first page" of formats without pages (DOCX, HTML, Markdown)


@dataclass
class Manifest:
    """The corpus description: documents by relative path, fabriques, and their territories."""

    root: Path | None = None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    fabriques: dict[str, Fabrique] = field(default_factory=dict)
    _pairs: list[tuple[str, str]] | None = field(default=None, init=False, repr=False, compare=False)

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
                aliases=[str(a) for a in f.get("aliases") or []],
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
            m.documents = {}  # its fabriques are known; its document entries are not about this file
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
        """(folded form, canonical name) pairs, longest first so 'Grand Reims' beats 'Reims'.

        Computed once per manifest: every document of its folder asks for it."""
        if self._pairs is None:
            self._pairs = self._gazetteer()
        return self._pairs

    def _gazetteer(self) -> list[tuple[str, str]]:
        pairs = []
        for f in self.fabriques.values():
            for name, aliases in f.territories.items():
                for form in [name, *aliases]:
                    if len(form) >= 3:
                        pairs.append((fold(form), name))
        return sorted(set(pairs), key=lambda p: -len(p[0]))


def _as_list(value: Any) -> list[str]:
    """A list of names from whatever a layer holds (string, number, list, mapping)."""
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


def _sidecar(file: Path) -> Path | None:
    sidecar = file.with_name(file.name + SIDECAR_SUFFIX)
    try:
        return sidecar if sidecar.is_file() else None
    except OSError:  # the name plus ".meta.yaml" can exceed the file system's limit
        return None


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IngestError(str(path), f"fiche de métadonnées illisible : {exc}", "meta") from exc
    if not isinstance(data, dict):
        raise IngestError(str(path), "fiche de métadonnées illisible : ce n'est pas une liste de champs",
                          "meta")
    return data


def declared_digest(file: Path, manifest: Manifest) -> str:
    """What the explicit metadata outside the file says, as a hash: when it changes, the
    document is relabelled without re-embedding (the file's own bytes have their sha256)."""
    h = hashlib.sha256(RULES_VERSION.encode())
    entry = manifest.entry_for(file)
    h.update(json.dumps(entry or {}, sort_keys=True, default=str).encode())
    side = _sidecar(file)
    if side is not None:
        try:
            h.update(side.read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()


def _layers(file: Path, loaded: LoadedDocument, manifest: Manifest) -> list[tuple[str, Declared]]:
    layers: list[tuple[str, Declared]] = []
    entry = manifest.entry_for(file)
    if entry:
        layers.append((SRC_MANIFEST, normalise(entry, SRC_MANIFEST)))
    side = _sidecar(file)
    if side is not None:
        layers.append((SRC_SIDECAR, normalise(_read_sidecar(side), SRC_SIDECAR)))
    own = SRC_FRONT if loaded.fmt in ("md", "txt") else SRC_PROPS
    layers.append((own, normalise(loaded.file_meta or {}, own)))
    return layers


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(fold(str(x)) for x in a) == sorted(fold(str(x)) for x in b)
    return fold(str(a)).strip() == fold(str(b)).strip()


def _first_heading(loaded: LoadedDocument) -> str | None:
    for page in loaded.pages:
        for kind, text in page.blocks:
            if kind.startswith("heading") and text.strip():
                return " ".join(text.split())
    return None


def _presentation(loaded: LoadedDocument, limit: int = 1200) -> str:
    """The paragraphs between a document's title and its first section: where a report says
    what it is and when it was made (« Compte rendu de la séance du 17 mars 2021 »,
    « Document issu des séminaires tenus entre mars 2021 et février 2022 »). A document
    without headings gives its opening lines instead."""
    blocks = [b for page in loaded.pages[:2] for b in page.blocks]
    first = next((i for i, (kind, text) in enumerate(blocks)
                  if kind.startswith("heading") and text.strip()), None)
    if first is None:
        return _head(loaded)[:limit // 2]
    out: list[str] = []
    for kind, text in blocks[first + 1:]:
        if sum(map(len, out)) >= limit:
            break
        if kind.startswith("heading"):
            if out:
                break
            continue  # a title followed at once by a section: its first paragraphs present it
        out.append(text)
    return "\n".join(out)[:limit]


_CALENDAR_RE = re.compile(r"\b(?:calendrier|planning|deroule|phasage|delais? d'execution)", re.I)


def _calendar(loaded: LoadedDocument, limit: int = 1200) -> str:
    """The sections a tender titles « Calendrier » (or « Déroulé », « Phasage »): their first
    step says when the mission starts."""
    out: list[str] = []
    inside = False
    for kind, text in (b for page in loaded.pages for b in page.blocks):
        if kind.startswith("heading"):
            inside = bool(_CALENDAR_RE.search(fold(text)))
        elif inside:
            out.append(text)
            if sum(map(len, out)) >= limit:
                break
    return "\n".join(out)[:limit]


def _head(loaded: LoadedDocument) -> str:
    """The first page, or the first screenful of a document without pages."""
    if not loaded.pages:
        return ""
    return loaded.pages[0].text[:HEAD_CHARS]


def resolve(
    file: Path,
    loaded: LoadedDocument,
    manifest: Manifest,
    display_path: str,
    catalog: Catalog | None = None,
) -> DocMeta:
    """Merge every metadata source, the most explicit winning field by field.

    `catalog` holds the fabriques known so far (the manifest's and those learned from
    indexed documents); a fabrique this document reveals is added to it.
    """
    if catalog is None:
        catalog = Catalog(manifest.fabriques.values())
    layers = _layers(file, loaded, manifest)
    provenance: dict[str, str] = {}
    conflicts: list[str] = []
    problems: list[str] = [p for _, d in layers for p in d.problems]
    chosen: dict[str, Any] = {}
    for key in FIELDS:
        for origin, declared in layers:
            value = declared.fields.get(key)
            # an explicit empty list (« territories: [] » for a fabrique-wide document) is an
            # answer, not a gap for inference to fill
            if value in (None, "") or (value == [] and key != "territories"):
                continue
            if key not in chosen:
                chosen[key], provenance[key] = value, origin
            elif not _same(chosen[key], value):
                conflicts.append(
                    f"{FIELD_LABELS[key]} : « {_shown(chosen[key])} » ({provenance[key]}) "
                    f"contre « {_shown(value)} » ({origin}) ; retenu : {provenance[key]}"
                )

    def declared_field(key: str) -> Any:
        return next((d.fields[key] for _, d in layers if d.fields.get(key) not in (None, "")), None)

    heading = _first_heading(loaded)
    title = chosen.get("title")
    if not title:
        title = heading or file.stem.replace("_", " ").replace("-", " ")
        provenance["title"] = SRC_TEXT if heading else "nom du fichier"
    subject = " ".join(str(declared_field(k) or "") for k in ("subject", "description")).strip()
    head = _head(loaded)
    running = " / ".join(loaded.running)
    zones = [("titre", str(title)), ("sujet", subject), ("en-tête courant", running),
             ("premier titre", heading or ""), ("première page", head)]

    fab, fabrique_named = _fabrique(chosen, provenance, zones, catalog, conflicts)
    presentation = _presentation(loaded)

    doc_type = chosen.get("doc_type")
    if doc_type not in DOC_TYPES:
        from ingest import infer

        guess = infer.doc_type([*zones[:4], ("présentation", presentation)], head)
        doc_type = guess.value if guess else "autre"
        provenance["doc_type"] = f"{SRC_TEXT} ({guess.evidence})" if guess else ""

    year = _as_year(chosen.get("year"))
    if year is None:
        from ingest import infer

        edition = infer.edition_year(head)
        if fab is not None and not fab.year and edition:
            fab.year = edition  # a fabrique this document reveals (or declares) learns its year
        last = loaded.pages[-1].text[-HEAD_CHARS:] if loaded.pages else ""
        own = [("titre", str(title)), ("sujet", subject), ("colophon", infer.colophon(last)),
               ("présentation", presentation)]
        if doc_type == "cahier_des_charges":
            own.append(("calendrier", _calendar(loaded)))
        guess = infer.year(own, retrospective=doc_type in infer.RETROSPECTIVE)
        if guess is None and not (fab and fab.year):
            guess = infer.year([("première page", head)])
        if guess:
            year, provenance["year"] = int(guess.value), f"{SRC_TEXT} ({guess.evidence})"
        elif fab and fab.year:
            year, provenance["year"] = int(fab.year), "année de la fabrique"
        elif declared_field("created_year"):
            year, provenance["year"] = _as_year(declared_field("created_year")), "date du fichier"
        else:
            provenance["year"] = ""

    if "territories" in chosen:
        territories = _as_list(chosen["territories"])
    else:
        from ingest import infer

        text = "\n".join(p.text for p in loaded.pages)
        blocks = [b for page in loaded.pages for b in page.blocks]
        guesses = infer.territories(text, str(title), head, manifest.gazetteer(), blocks=blocks)
        territories = [str(g.value) for g in guesses]
        provenance["territories"] = (
            f"{SRC_TEXT} ({'; '.join(f'{g.value} : {g.evidence}' for g in guesses)})" if guesses else ""
        )

    partners = _as_list(chosen.get("partners"))
    if not partners and fab and fab.partners:
        partners, provenance["partners"] = list(fab.partners), "partenaires de la fabrique"

    # fail closed: only an explicit "public" makes a document public when visibility is declared
    declared_vis = chosen.get("visibility")
    visibility = "public" if declared_vis in (None, "public") else "interne"

    doc_id = chosen.get("doc_id")
    if not doc_id:
        digest = hashlib.sha1(display_path.encode()).hexdigest()[:8]
        doc_id = f"{_slug(file.stem)}-{digest}"
    return DocMeta(
        doc_id=str(doc_id),
        title=str(title).strip(),
        source=display_path,
        doc_type=str(doc_type),
        fabrique=fab.id if fab else "",
        fabrique_title=fab.title if fab else "",
        fabrique_year=fab.year if fab and fab.year else None,
        year=year,
        territories=territories,
        partners=partners,
        visibility=visibility,
        provenance={k: v for k, v in provenance.items() if v},
        conflicts=conflicts,
        problems=problems,
        fabrique_named=fabrique_named,
    )


def _fabrique(
    chosen: dict[str, Any],
    provenance: dict[str, str],
    zones: list[tuple[str, str]],
    catalog: Catalog,
    conflicts: list[str],
) -> tuple[Fabrique | None, str]:
    """The declared fabrique (an id or a title), else the one the document names, else none."""
    from ingest.fabriques import slug

    declared = str(chosen.get("fabrique") or "").strip()
    found = catalog.resolve(zones, learn=not declared)
    if declared:
        fab = catalog.get(declared) or catalog.match(declared)
        if fab is None:
            # a fabrique this index has not met: the declaration founds it
            fab = catalog.add(Fabrique(id=declared if " " not in declared else f"fp-{slug(declared)}",
                                       title=declared, origin="index"))
        if found and found.fabrique.id != fab.id:
            conflicts.append(
                f"fabrique : « {fab.title} » ({provenance['fabrique']}) contre « {found.named} » "
                f"nommée par le document ({found.evidence}) ; retenu : {provenance['fabrique']}"
            )
        return fab, found.named if found and found.fabrique.id == fab.id else ""
    if found is None:
        provenance["fabrique"] = ""
        return None, ""
    verb = "nouvelle fabrique nommée" if found.discovered else "nommée"
    provenance["fabrique"] = f"{SRC_TEXT} ({verb} dans : {found.evidence})"
    return found.fabrique, found.named
