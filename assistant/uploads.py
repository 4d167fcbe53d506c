"""Files uploaded through the app or the API: checked, saved under the store, indexed like any other.

Why each step:
- the type is decided by the bytes (`ingest.loaders.detect_format`), not by the name the
  browser sends: a renamed executable or a .doc called .pdf is refused before it is saved;
- the name is rebuilt from safe characters only, so « ../../etc/passwd » or « C:\\x.pdf »
  can only ever land inside the uploads folder, and never as a hidden or `_` file that the
  ingest discovery would skip on the next reindex;
- indexing goes through the same `Ingestor` as the CLI (`assistant.index.make_ingestor`),
  so limits, metadata, crash safety and the ingest lock are the same;
- a file that replaces an earlier upload of the same name is indexed as an update; if the
  new version fails, the previous file is put back, so the index and the folder agree.
Errors come back per file, in French, naming the file as the user sent it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.config import Settings
from assistant.index import make_ingestor
from ingest.errors import IngestError, StoreError
from ingest.loaders import detect_format, size_fr
from ingest.pipeline import Ingestor, IngestReport
from ingest.registry import Registry, connect

Progress = Callable[[int, int, str], None]

# what st.file_uploader offers
ACCEPTED_TYPES = ("pdf", "docx", "odt", "pptx", "odp", "html", "htm", "md", "txt")
_EXT_FORMAT = {".pdf": "pdf", ".docx": "docx", ".odt": "odt", ".pptx": "pptx", ".odp": "odp",
               ".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".txt": "txt"}
_FORMAT_LABEL = {"pdf": "PDF", "docx": "DOCX", "odt": "ODT", "pptx": "PPTX", "odp": "ODP", "html": "HTML",
                 "md": "Markdown", "txt": "texte"}
ACCEPTED_LABELS = "PDF, DOCX, ODT, PPTX, ODP, HTML, Markdown, texte"
_TEXT_FORMATS = {"md", "txt"}

# outcome statuses (French, shown as is)
ADDED, UPDATED, UNCHANGED, DUPLICATE, REJECTED, FAILED = (
    "ajouté", "mis à jour", "inchangé", "doublon", "refusé", "en échec")


@dataclass
class FileOutcome:
    """What happened to one uploaded file."""

    name: str  # as the user sent it
    status: str
    message: str = ""
    saved_as: str = ""  # the sanitised file name in the uploads folder

    @property
    def ok(self) -> bool:
        return self.status in (ADDED, UPDATED, UNCHANGED)


@dataclass
class UploadResult:
    outcomes: list[FileOutcome] = field(default_factory=list)
    error: str = ""  # the whole batch could not run (lock held, index unusable)
    report: IngestReport | None = None

    @property
    def indexed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def problems(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if not o.ok]


class UploadRejected(ValueError):
    """A file refused before saving; the message is French and names the file."""


def sanitize_filename(name: str) -> str:
    """A safe file name from whatever the browser sent: no folders, no dots in front.

    Keeps letters (accents folded), digits, « - », « _ » and one extension; collapses the
    rest to « - ». Never empty, never hidden, never starting with « _ » (skipped by ingest).
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = base.strip().lstrip("._ ")  # « .bashrc » is a name, not an extension
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_.")
    stem = re.sub(r"-{2,}", "-", stem)[:100] or "document"
    ext = re.sub(r"[^A-Za-z0-9]", "", ext).lower()[:10]
    return f"{stem}.{ext}" if ext else stem


def check_upload(name: str, data: bytes, settings: Settings) -> tuple[str, str]:
    """(safe file name, format) or `UploadRejected`: size, extension, and content agree."""
    safe = sanitize_filename(name)
    if not data:
        raise UploadRejected(f"{name} : fichier vide")
    limit = settings.upload_max_bytes
    if len(data) > limit:
        raise UploadRejected(
            f"{name} : fichier trop volumineux ({size_fr(len(data))}, limite {size_fr(limit)})"
        )
    ext = Path(safe).suffix.lower()
    claimed = _EXT_FORMAT.get(ext)
    if claimed is None:
        raise UploadRejected(
            f"{name} : type de fichier non accepté ({ext or 'sans extension'} ; "
            f"formats acceptés : {ACCEPTED_LABELS})"
        )
    try:
        found = detect_format(Path(safe), data)
    except IngestError as exc:
        raise UploadRejected(f"{name} : {exc.reason}") from exc
    if found != claimed and {found, claimed} != _TEXT_FORMATS:
        raise UploadRejected(
            f"{name} : le contenu est un fichier {_FORMAT_LABEL.get(found, found)}, pas un fichier "
            f"{_FORMAT_LABEL[claimed]} comme l'annonce son extension ; renommez-le ou exportez-le à nouveau"
        )
    if found in _TEXT_FORMATS and b"\x00" in data[:65536]:
        raise UploadRejected(f"{name} : contenu binaire, ce n'est pas un fichier texte")
    return safe, found


def _unique(safe: str, taken: set[str]) -> str:
    """Two files of one batch with the same name must not overwrite each other."""
    if safe not in taken:
        return safe
    stem, ext = Path(safe).stem, Path(safe).suffix
    i = 2
    while f"{stem}-{i}{ext}" in taken:
        i += 1
    return f"{stem}-{i}{ext}"


def _write_atomic(target: Path, data: bytes) -> None:
    part = target.with_name(f".{target.name}.part")
    part.write_bytes(data)
    os.replace(part, target)


@dataclass
class _Saved:
    name: str
    path: Path
    backup: Path | None


def handle_uploads(
    settings: Settings, files: Sequence[tuple[str, bytes]], progress: Progress | None = None,
    ingestor: Callable[[], Ingestor] | None = None, page_progress: Progress | None = None,
) -> UploadResult:
    """Check, save and index uploaded files (name, bytes); one outcome per file, in order.
    `page_progress(page_done, page_total, file)` follows the OCR of a scanned PDF.

    At most `settings.upload_max_files` files are taken per batch. Raises nothing a user
    could cause: a held ingest lock comes back as `result.error` with the files not kept.
    """
    result = UploadResult()
    folder = settings.uploads_dir
    keep = list(files)[: settings.upload_max_files]
    extra = [
        FileOutcome(name, REJECTED,
                    f"{name} : trop de fichiers dans ce dépôt (au plus {settings.upload_max_files} à la "
                    "fois) ; déposez-le dans un second temps")
        for name, _data in list(files)[settings.upload_max_files:]
    ]
    saved: list[_Saved] = []
    outcome_of: dict[int, FileOutcome] = {}
    taken: set[str] = set()
    for name, data in keep:
        try:
            safe, _fmt = check_upload(name, data, settings)
        except UploadRejected as exc:
            result.outcomes.append(FileOutcome(name, REJECTED, str(exc)))
            continue
        safe = _unique(safe, taken)
        taken.add(safe)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe
        if target.resolve().parent != folder.resolve():  # belt and braces: sanitize forbids it
            result.outcomes.append(FileOutcome(name, REJECTED, f"{name} : nom de fichier refusé"))
            continue
        backup = None
        if target.exists() and target.read_bytes() != data:
            backup = target.with_name(f".{safe}.previous")
            os.replace(target, backup)
        if not target.exists():
            _write_atomic(target, data)
        outcome = FileOutcome(name, UNCHANGED, saved_as=safe)
        result.outcomes.append(outcome)
        outcome_of[len(saved)] = outcome
        saved.append(_Saved(name, target, backup))
    result.outcomes += extra
    if not saved:
        return result

    try:
        report = (ingestor or (lambda: make_ingestor(settings)))().run(
            [s.path for s in saved], progress=progress, page_progress=page_progress)
    except StoreError as exc:
        for s in saved:
            _undo(s)
        for i in outcome_of:
            outcome_of[i].status, outcome_of[i].message = FAILED, f"{saved[i].name} : non indexé"
        result.error = str(exc)
        return result
    result.report = report
    _apply_report(settings, report, saved, outcome_of)
    return result


def _apply_report(settings: Settings, report: IngestReport, saved: list[_Saved],
                  outcome_of: dict[int, FileOutcome]) -> None:
    """Per-file outcome from the batch report; undo the files that did not make it in."""
    failed = {f["path"]: f["error"] for f in report.failed}
    duplicates = {d["path"]: d for d in report.duplicates}
    registry: Registry | None = None
    for i, s in enumerate(saved):
        key = str(s.path)
        out = outcome_of[i]
        if key in failed:
            out.status = FAILED
            out.message = failed[key].replace(key, s.name, 1)
            if s.backup is None:  # a new file: forget its failed row too (the user saw why)
                registry = registry or Registry(connect(settings.store))
                rec = registry.get(str(s.path.resolve()))
                if rec is not None and rec.status == "failed":
                    registry.remove(rec.path)
            _undo(s)
        elif key in duplicates:
            out.status = DUPLICATE
            twin = Path(duplicates[key].get("of", "")).name
            out.message = (
                f"{s.name} : contenu identique à un document déjà indexé"
                + (f" ({twin})" if twin and settings.audience != "public" else "")
                + " ; ignoré"
            )
            _undo(s)
        else:
            if key in report.added:
                out.status = ADDED
            elif key in report.updated:
                out.status = UPDATED
            if s.backup is not None:
                s.backup.unlink(missing_ok=True)
    if registry is not None:
        registry.conn.close()


def _undo(s: _Saved) -> None:
    """Put the folder back as it was: the previous version if any, else no file."""
    if s.backup is not None:
        os.replace(s.backup, s.path)
    else:
        s.path.unlink(missing_ok=True)


def reindex_paths(settings: Settings) -> list[Path]:
    """What « Réindexer le corpus » covers: the corpus folder and the uploads folder."""
    return [p for p in (settings.corpus_dir, settings.uploads_dir) if p.is_dir()]


def reindex(settings: Settings, progress: Progress | None = None,
            ingestor: Callable[[], Ingestor] | None = None,
            page_progress: Progress | None = None) -> IngestReport:
    """Incremental ingest of the corpus and uploads; files gone from them leave the index.

    Unchanged files cost one hash each. Raises `StoreError` when another ingest holds the
    lock (the page says so in French).
    """
    paths = reindex_paths(settings)
    if not paths:
        raise StoreError(
            f"Rien à réindexer : le dossier du corpus {settings.corpus_dir} est introuvable "
            "(réglage FP_CORPUS_DIR) et aucun fichier n'a été déposé."
        )
    return (ingestor or (lambda: make_ingestor(settings)))().run(paths, sync=True, progress=progress,
                                                                 page_progress=page_progress)
