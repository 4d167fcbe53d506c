"""Read and validate the Markdown sources of the sample corpus (see SOURCES.md).

This module knows only the *source* side of the contract: `_fabrique.yaml` files, document
front matter and the small Markdown subset the renderers understand. It is kept apart from
`build.py` so the rules of the contract live in one place and every renderer sees the same
parsed blocks (a heading is a heading in the PDF, the DOCX and the HTML alike).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NOTICE = "Document d'illustration — contenu fictif, inspiré du dispositif public des Fabriques Prospectives"
DOC_TYPES = (
    "cahier_des_charges",
    "seminaire_local",
    "seminaire_intersites",
    "publication",
    "feuille_de_route",
    "note",
    "article",
    "autre",
)
VISIBILITIES = ("public", "interne")
FORMATS = ("pdf", "pdf2col", "docx", "html", "md")
EXTENSIONS = {"pdf": "pdf", "pdf2col": "pdf", "docx": "docx", "html": "html", "md": "md"}
REQUIRED_KEYS = (
    "doc_id",
    "title",
    "doc_type",
    "fabrique",
    "year",
    "territories",
    "partners",
    "visibility",
    "format",
)
DOC_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PAGEBREAK = "<!-- pagebreak -->"

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM_RE = re.compile(r"^(\s*)([-*+])\s+(.*)$")
_NUMBERED_RE = re.compile(r"^\s*\d+[.)]\s+")
_SEPARATOR_RE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
# Inline syntax outside the contract: reported so authors know it will show up literally.
_UNSUPPORTED_INLINE = (
    (re.compile(r"(?<![*\w])\*(?!\*)\S[^*]*?\*(?!\*)"), "*italique* (non supporté)"),
    (re.compile(r"(?<!\w)_[^_\s][^_]*_(?!\w)"), "_italique_ (non supporté)"),
    (re.compile(r"`[^`]+`"), "`code` (non supporté)"),
    (re.compile(r"\[[^\]]+\]\([^)]+\)"), "lien [texte](url) (non supporté)"),
    (re.compile(r"<(?!!--)[a-zA-Z/][^>]*>"), "balise HTML (non supportée)"),
)


class SourceError(Exception):
    """A source file that cannot be read at all (bad YAML, no front matter)."""


@dataclass
class Issues:
    """Errors (make the build/check fail) and warnings (printed, never fatal).

    Collected rather than raised so one run reports every problem in every file: the sources
    are written by several people at once and a fail-fast build would hide most of them.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, where: str | Path, msg: str) -> None:
        """Record a problem that makes the corpus invalid."""
        self.errors.append(f"{where}: {msg}")

    def warn(self, where: str | Path, msg: str) -> None:
        """Record something suspicious that does not break the contract."""
        self.warnings.append(f"{where}: {msg}")


@dataclass(frozen=True)
class Territory:
    """A participating territory: canonical name plus the spellings found in documents."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass
class Fabrique:
    """One `_fabrique.yaml`, i.e. one Fabrique Prospective and its territories."""

    id: str
    title: str
    year: int
    partners: list[str]
    prestataire: str
    keywords: list[str]
    territories: list[Territory]
    path: Path

    def manifest_entry(self) -> dict[str, Any]:
        """The `fabriques:` entry of manifest.yaml (field order is part of the contract)."""
        return {
            "id": self.id,
            "title": self.title,
            "year": self.year,
            "partners": list(self.partners),
            "prestataire": self.prestataire,
            "keywords": list(self.keywords),
            "territories": [{"name": t.name, "aliases": list(t.aliases)} for t in self.territories],
        }


@dataclass
class Block:
    """One body block. kind: notice | heading | para | list | table | pagebreak.

    `text` holds heading/paragraph text with `**bold**` markers kept (renderers split them),
    `items` the list items, `rows` the table rows with the header row first.
    """

    kind: str
    text: str = ""
    level: int = 0
    items: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    line: int = 0


@dataclass
class SourceDoc:
    """A Markdown source: front matter, raw body, parsed blocks."""

    path: Path
    folder: str
    meta: dict[str, Any]
    body: str
    raw: bytes
    body_line: int
    blocks: list[Block] = field(default_factory=list)

    @property
    def stem(self) -> str:
        """Output file stem (the source file name without `.md`)."""
        return self.path.stem

    @property
    def doc_id(self) -> str:
        """Front-matter doc_id, or a placeholder so broken docs still get reported."""
        return str(self.meta.get("doc_id") or f"<sans doc_id:{self.path.name}>")

    @property
    def fmt(self) -> str:
        """Output format; unknown values are reported by `validate_documents`."""
        return str(self.meta.get("format", ""))

    @property
    def title(self) -> str:
        """Front-matter title."""
        return str(self.meta.get("title", ""))

    @property
    def year(self) -> int:
        """Front-matter year, 0 when absent or invalid (reported elsewhere)."""
        year = self.meta.get("year")
        return year if isinstance(year, int) and not isinstance(year, bool) else 0

    def rel_output(self) -> str:
        """Output path relative to the corpus root, e.g. `fab-id/stem.pdf`."""
        return f"{self.folder}/{self.stem}.{EXTENSIONS.get(self.fmt, self.fmt)}"


# --------------------------------------------------------------------------- inline text


def split_bold(text: str) -> list[tuple[str, bool]]:
    """Split `a **b** c` into [("a ", False), ("b", True), (" c", False)]."""
    parts: list[tuple[str, bool]] = []
    pos = 0
    for m in _BOLD_RE.finditer(text):
        if m.start() > pos:
            parts.append((text[pos : m.start()], False))
        parts.append((m.group(1), True))
        pos = m.end()
    if pos < len(text):
        parts.append((text[pos:], False))
    return parts


def plain(text: str) -> str:
    """Text without `**` markers, as a reader (and every loader) sees it."""
    return _BOLD_RE.sub(r"\1", text)


# --------------------------------------------------------------------------- front matter


def split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """Return (front matter, body, 1-based line number where the body starts).

    The front matter must be the very first thing in the file so that the `md` output,
    copied as is, still starts with it (loaders read it as metadata).
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise SourceError("pas de front matter YAML en tête de fichier (ligne 1 ≠ '---')")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            try:
                meta = yaml.safe_load("\n".join(lines[1:i])) or {}
            except yaml.YAMLError as exc:
                raise SourceError(f"front matter YAML invalide : {_one_line(exc)}") from exc
            if not isinstance(meta, dict):
                raise SourceError("le front matter n'est pas un dictionnaire YAML")
            return meta, "\n".join(lines[i + 1 :]), i + 2
    raise SourceError("front matter non fermé (pas de second '---')")


# --------------------------------------------------------------------------- body parser


def _one_line(exc: Exception) -> str:
    """Exception text on one line, so every reported problem stays one line."""
    return " ".join(str(exc).split())


def _split_row(line: str) -> list[str]:
    """Cells of a pipe-table row; `\\|` is a literal pipe."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells = re.split(r"(?<!\\)\|", s)
    return [c.strip().replace("\\|", "|") for c in cells]


def _inline_warnings(text: str, where: str, issues: Issues) -> None:
    """Warn about inline syntax the renderers would print literally."""
    stripped = _BOLD_RE.sub(r"\1", text)
    if "**" in stripped:
        issues.warn(where, "'**' non fermé (le gras ne sera pas rendu)")
    for rx, label in _UNSUPPORTED_INLINE:
        m = rx.search(stripped)
        if m:
            issues.warn(where, f"{label} : {m.group(0)[:60]!r}")


def parse_body(body: str, path: Path, first_line: int, issues: Issues) -> list[Block]:
    """Parse the Markdown subset of SOURCES.md into blocks.

    The first non-blank line becomes its own `notice` block even when no blank line follows
    it, so the notice always renders as its own first paragraph (loaders may look for it).
    Anything outside the subset is kept as text but reported as a warning.
    """
    lines = body.split("\n")
    blocks: list[Block] = []
    para: list[str] = []
    para_line = 0
    notice_done = False

    def where(idx: int) -> str:
        return f"{path}:{first_line + idx}"

    def flush() -> None:
        nonlocal para
        if para:
            text = " ".join(para)
            _inline_warnings(text, where(para_line), issues)
            blocks.append(Block("para", text=text, line=first_line + para_line))
            para = []

    i = 0
    while i < len(lines):
        raw = lines[i]
        s = raw.strip()
        if not s:
            flush()
            i += 1
            continue
        if not notice_done:
            notice_done = True
            blocks.append(Block("notice", text=s, line=first_line + i))
            i += 1
            continue
        if s == PAGEBREAK:
            flush()
            blocks.append(Block("pagebreak", line=first_line + i))
            i += 1
            continue
        if s.startswith("<!--"):
            flush()
            start = i
            while i < len(lines) and "-->" not in lines[i]:
                i += 1
            if "pagebreak" in "".join(lines[start : i + 1]).lower():
                issues.warn(where(start), f"saut de page mal écrit (attendu exactement {PAGEBREAK!r})")
            else:
                issues.warn(where(start), "commentaire HTML ignoré")
            i += 1
            continue
        m = _HEADING_RE.match(s)
        if m:
            flush()
            level = len(m.group(1))
            if level > 3:
                issues.warn(
                    where(i), f"titre de niveau {level} (seuls #, ##, ### sont prévus) : rendu en niveau 3"
                )
                level = 3
            _inline_warnings(m.group(2), where(i), issues)
            blocks.append(Block("heading", text=m.group(2), level=level, line=first_line + i))
            i += 1
            continue
        if s.startswith("|"):
            flush()
            start = i
            table_lines: list[str] = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                table_lines.append(lines[i])
                i += 1
            blocks.append(_parse_table(table_lines, where(start), issues, first_line + start))
            continue
        m = _ITEM_RE.match(raw)
        if m:
            flush()
            start = i
            items: list[str] = []
            while i < len(lines):
                mi = _ITEM_RE.match(lines[i])
                if mi:
                    if mi.group(2) != "-":
                        issues.warn(where(i), f"puce '{mi.group(2)} ' (le contrat prévoit '- ')")
                    if mi.group(1):
                        issues.warn(where(i), "liste imbriquée : rendue à plat")
                    items.append(mi.group(3).strip())
                elif (
                    lines[i].strip()
                    and lines[i][:1].isspace()
                    and items
                    and not lines[i].strip().startswith(("|", "#", "<!--"))
                ):
                    items[-1] += " " + lines[i].strip()  # indented continuation line
                else:
                    break
                i += 1
            for k, item in enumerate(items):
                _inline_warnings(item, where(start + k), issues)
            blocks.append(Block("list", items=items, line=first_line + start))
            continue
        if _NUMBERED_RE.match(s) and not para:
            issues.warn(where(i), "liste numérotée non supportée : rendue comme paragraphe")
        if not para:
            para_line = i
        para.append(s)
        i += 1
    flush()
    return blocks


def _parse_table(lines: list[str], where: str, issues: Issues, line_no: int) -> Block:
    """Pipe table: header row, `|---|` separator, body rows (ragged rows padded)."""
    rows = [_split_row(line) for line in lines]
    if len(rows) >= 2 and _SEPARATOR_RE.match(lines[1].strip()):
        rows = [rows[0], *rows[2:]]
    else:
        issues.warn(where, "tableau sans ligne séparatrice |---| : la 1re ligne sert d'en-tête")
    width = len(rows[0])
    for k, row in enumerate(rows):
        if len(row) != width:
            issues.warn(where, f"tableau : la ligne {k + 1} a {len(row)} cellules au lieu de {width}")
            row[:] = (row + [""] * width)[:width]
    if len(rows) < 2:
        issues.warn(where, "tableau sans ligne de données")
    for row in rows:
        for cell in row:
            _inline_warnings(cell, where, issues)
    return Block("table", rows=rows, line=line_no)


# --------------------------------------------------------------------------- loading


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def load_fabrique(path: Path, issues: Issues) -> Fabrique | None:
    """Read and validate one `_fabrique.yaml`; None if it is unusable."""
    folder = path.parent.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        issues.error(path, f"YAML illisible : {_one_line(exc)}")
        return None
    if not isinstance(data, dict):
        issues.error(path, "le fichier n'est pas un dictionnaire YAML")
        return None
    ok = True
    for key in ("id", "title", "year", "partners", "prestataire", "keywords", "territories"):
        if key not in data:
            issues.error(path, f"champ obligatoire manquant : {key}")
            ok = False
    if not ok:
        return None
    if data["id"] != folder:
        issues.error(path, f"id {data['id']!r} différent du nom du dossier {folder!r}")
    if not isinstance(data["title"], str) or not data["title"].strip():
        issues.error(path, "title doit être une chaîne non vide")
    if not _is_int(data["year"]):
        issues.error(path, f"year doit être un entier, pas {data['year']!r}")
    for key in ("partners", "keywords"):
        if not _str_list(data[key]):
            issues.error(path, f"{key} doit être une liste de chaînes")
            data[key] = [str(v) for v in data[key]] if isinstance(data[key], list) else []
    if not data["keywords"]:
        issues.warn(path, "keywords vide (sert à inférer la fabrique depuis le texte)")
    if data["prestataire"] is None:
        data["prestataire"] = ""
    if not isinstance(data["prestataire"], str):
        issues.error(path, 'prestataire doit être une chaîne ("" si aucun)')
    territories: list[Territory] = []
    raw_terr = data["territories"] if isinstance(data["territories"], list) else []
    if not isinstance(data["territories"], list) or not raw_terr:
        issues.error(path, "territories doit être une liste non vide de {name, aliases}")
    for k, t in enumerate(raw_terr):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"].strip():
            issues.error(path, f"territories[{k}] : il faut un champ name (chaîne)")
            continue
        aliases = t.get("aliases") or []
        if not _str_list(aliases):
            issues.error(path, f"territories[{k}] ({t['name']}) : aliases doit être une liste de chaînes")
            aliases = []
        unknown = set(t) - {"name", "aliases"}
        if unknown:
            issues.warn(path, f"territories[{k}] : champs inattendus {sorted(unknown)}")
        territories.append(Territory(t["name"], tuple(aliases)))
    names = [t.name for t in territories]
    for name in sorted({n for n in names if names.count(n) > 1}):
        issues.error(path, f"territoire en double : {name}")
    spelled: dict[str, str] = {}
    for t in territories:
        for spelling in (t.name, *t.aliases):
            key = spelling.casefold()
            if key in spelled and spelled[key] != t.name:
                issues.error(path, f"graphie {spelling!r} partagée par {spelled[key]!r} et {t.name!r}")
            spelled.setdefault(key, t.name)
    unknown = set(data) - {"id", "title", "year", "partners", "prestataire", "keywords", "territories"}
    if unknown:
        issues.warn(path, f"champs inattendus : {sorted(unknown)}")
    return Fabrique(
        id=str(data["id"]),
        title=str(data["title"]),
        year=data["year"] if _is_int(data["year"]) else 0,
        partners=list(data["partners"]),
        prestataire=str(data["prestataire"]),
        keywords=list(data["keywords"]),
        territories=territories,
        path=path,
    )


def load_sources(src: Path, issues: Issues) -> tuple[dict[str, Fabrique], list[SourceDoc]]:
    """Load every fabrique folder of `src` (sorted, so output order never depends on the FS)."""
    fabriques: dict[str, Fabrique] = {}
    docs: list[SourceDoc] = []
    if not src.is_dir():
        issues.error(src, "dossier des sources introuvable")
        return fabriques, docs
    for entry in sorted(src.iterdir()):
        if entry.is_file():
            if entry.suffix in (".md", ".yaml", ".yml"):
                issues.warn(entry, "fichier hors d'un dossier de fabrique : ignoré")
            continue
        if entry.name.startswith((".", "_")):
            continue
        fab_file = entry / "_fabrique.yaml"
        if fab_file.is_file():
            fab = load_fabrique(fab_file, issues)
            if fab is not None:
                fabriques[entry.name] = fab
        else:
            issues.error(entry, "_fabrique.yaml manquant")
        for f in sorted(entry.iterdir()):
            if f.name == "_fabrique.yaml" or f.name.startswith("."):
                continue
            if f.is_dir() or f.suffix != ".md":
                issues.warn(f, "ni .md ni _fabrique.yaml : ignoré")
                continue
            doc = load_document(f, entry.name, issues)
            if doc is not None:
                docs.append(doc)
    return fabriques, docs


def load_document(path: Path, folder: str, issues: Issues) -> SourceDoc | None:
    """Read one source: raw bytes (for the `md` copy), front matter and parsed blocks."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.error(path, f"pas en UTF-8 : {exc}")
        return None
    if text.startswith("\ufeff"):
        issues.warn(path, "BOM UTF-8 en tête de fichier")
        text = text[1:]
    text = text.replace("\r\n", "\n")
    try:
        meta, body, body_line = split_front_matter(text)
    except SourceError as exc:
        issues.error(path, str(exc))
        return None
    doc = SourceDoc(path=path, folder=folder, meta=meta, body=body, raw=raw, body_line=body_line)
    doc.blocks = parse_body(body, path, body_line, issues)
    if unicodedata.normalize("NFC", text) != text:
        issues.warn(path, "texte non normalisé NFC (accents décomposés)")
    return doc


# --------------------------------------------------------------------------- validation


def validate_documents(fabriques: dict[str, Fabrique], docs: list[SourceDoc], issues: Issues) -> None:
    """Check every front matter and body against SOURCES.md."""
    seen_ids: dict[str, Path] = {}
    for doc in docs:
        p = doc.path
        meta = doc.meta
        for key in REQUIRED_KEYS:
            if key not in meta:
                issues.error(p, f"front matter : champ obligatoire manquant : {key}")
        unknown = sorted(set(meta) - set(REQUIRED_KEYS))
        if unknown:
            issues.warn(p, f"front matter : champs inattendus {unknown}")
        doc_id = meta.get("doc_id")
        if "doc_id" in meta:
            if not isinstance(doc_id, str) or not DOC_ID_RE.match(doc_id):
                issues.error(p, f"doc_id {doc_id!r} invalide (minuscules ascii, chiffres, tirets)")
            elif doc_id in seen_ids:
                issues.error(p, f"doc_id {doc_id!r} déjà utilisé par {seen_ids[doc_id]}")
            else:
                seen_ids[doc_id] = p
        if "title" in meta and (not isinstance(meta["title"], str) or not meta["title"].strip()):
            issues.error(p, "title doit être une chaîne non vide")
        if "doc_type" in meta and meta["doc_type"] not in DOC_TYPES:
            issues.error(p, f"doc_type {meta['doc_type']!r} invalide (attendu : {' | '.join(DOC_TYPES)})")
        if "visibility" in meta and meta["visibility"] not in VISIBILITIES:
            issues.error(p, f"visibility {meta['visibility']!r} invalide (public | interne)")
        if "format" in meta and meta["format"] not in FORMATS:
            issues.error(p, f"format {meta['format']!r} invalide (attendu : {' | '.join(FORMATS)})")
        if "year" in meta and (not _is_int(meta["year"]) or not 2000 <= meta["year"] <= 2100):
            issues.error(p, f"year {meta['year']!r} doit être une année entière")
        for key in ("territories", "partners"):
            if key in meta and not _str_list(meta[key]):
                issues.error(p, f"{key} doit être une liste de chaînes ([] si aucune)")
        fab_id = meta.get("fabrique")
        if "fabrique" in meta and fab_id != doc.folder:
            issues.error(p, f"fabrique {fab_id!r} différente du dossier {doc.folder!r}")
        fab = fabriques.get(doc.folder)
        if fab is not None:
            _check_against_fabrique(doc, fab, issues)
        _check_notice(doc, issues)


def _check_against_fabrique(doc: SourceDoc, fab: Fabrique, issues: Issues) -> None:
    """Territories must be canonical names of the fabrique; partners/year are sanity-checked."""
    names = {t.name for t in fab.territories}
    alias_of = {a.casefold(): t.name for t in fab.territories for a in t.aliases}
    alias_of.update({t.name.casefold(): t.name for t in fab.territories})
    terr = doc.meta.get("territories")
    if _str_list(terr):
        for name in terr:
            if name in names:
                continue
            hint = alias_of.get(name.casefold())
            extra = f" (nom canonique : {hint!r})" if hint else f" (connus : {sorted(names)})"
            issues.error(doc.path, f"territoire {name!r} absent de {fab.path}{extra}")
        if len(set(terr)) != len(terr):
            issues.warn(doc.path, "territoire en double dans territories")
    partners = doc.meta.get("partners")
    if _str_list(partners):
        for partner in partners:
            if partner not in fab.partners:
                issues.warn(doc.path, f"partenaire {partner!r} absent des partners de {fab.path}")
    year = doc.meta.get("year")
    if _is_int(year) and fab.year and year < fab.year:
        issues.warn(doc.path, f"year {year} antérieure à l'année de la fabrique ({fab.year})")


def _check_notice(doc: SourceDoc, issues: Issues) -> None:
    """The first body line must be the illustration notice, word for word."""
    first = next((line.strip() for line in doc.body.split("\n") if line.strip()), "")
    if first != NOTICE:
        issues.error(
            doc.path,
            f"la première ligne du corps doit être l'avertissement exact {NOTICE!r}, trouvé {first[:120]!r}",
        )
    else:
        body_lines = doc.body.split("\n")
        idx = next(k for k, line in enumerate(body_lines) if line.strip())
        if idx + 1 < len(body_lines) and body_lines[idx + 1].strip():
            issues.warn(doc.path, "pas de ligne vide après l'avertissement")
