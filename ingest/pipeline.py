"""Run a batch: discover files, skip the unchanged, index the rest, never lose the index.

Per document the order is what keeps a crash harmless: (1) the new chunks are written
under ids that carry the new content hash, (2) the registry (and lexical index) switch to
the new version in one SQLite transaction, (3) only then are the old chunks deleted. A
crash before (2) leaves the old version live; a crash before (3) leaves leftovers that the
retriever ignores (their hash is not the registry's) and the next run removes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from langchain_core.embeddings import Embeddings

from ingest.cards import CARDS_NAME, write_cards
from ingest.chunker import chunk_document
from ingest.errors import IngestError, StoreError
from ingest.fabriques import Catalog, Fabrique
from ingest.lexical import Lexical
from ingest.loaders import load, size_fr
from ingest.metadata import MANIFEST_NAME, SIDECAR_SUFFIX, Manifest, declared_digest, resolve
from ingest.models import LoadedDocument
from ingest.ocr import OcrOptions, PageProgress
from ingest.registry import Registry, connect
from ingest.store import Store

Progress = Callable[[int, int, str], None]


@dataclass
class Limits:
    max_bytes: int = 50_000_000
    max_pages: int = 2000
    chunk_size: int = 1000
    chunk_overlap: int = 150
    # OCR of scanned PDF pages (`ingest.ocr`): on, at most this many pages per file and
    # seconds per page, so that one big scan cannot hold the batch for hours
    ocr: bool = True
    ocr_max_pages: int = 50
    ocr_page_timeout: float = 60.0


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)  # metadata changed, text did not
    warnings: list[dict[str, str]] = field(default_factory=list)  # unusable or conflicting metadata
    documents: int = 0
    chunks: int = 0

    def as_json(self) -> dict[str, Any]:
        """The public `ingest --json` shape: counts, failures, and the index totals."""
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "failed": self.failed,
            "duplicates": self.duplicates,
            "relabelled": len(self.relabelled),
            "warnings": self.warnings,
            "documents": self.documents,
            "chunks": self.chunks,
        }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _skipped(name: str) -> bool:
    return name.startswith((".", "_")) or name == MANIFEST_NAME or name.endswith(SIDECAR_SUFFIX)


def discover(paths: list[Path], report: IngestReport) -> tuple[list[Path], list[Path]]:
    """Files to ingest (sorted, deduplicated) and the folders they came from (for --sync).

    Hidden and `_`-prefixed entries are skipped (the corpus keeps its Markdown sources in
    `_sources/`); a link that leads outside the folder being ingested is refused.
    """
    files: list[Path] = []
    roots: list[Path] = []
    for raw in paths:
        if not raw.exists():
            report.failed.append({"path": str(raw), "error": f"{raw} : fichier ou dossier introuvable"})
            continue
        if raw.is_file():
            files.append(raw)
            continue
        root = raw.resolve()
        roots.append(root)
        for item in sorted(raw.rglob("*")):
            rel = item.relative_to(raw)
            if any(_skipped(part) for part in rel.parts) or not item.is_file():
                continue
            if item.is_symlink() and not item.resolve().is_relative_to(root):
                report.failed.append(
                    {
                        "path": str(item),
                        "error": f"{item} : lien symbolique vers l'extérieur du dossier ingéré "
                        f"({item.resolve()}), ignoré par sécurité",
                    }
                )
                continue
            files.append(item)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, roots


class Ingestor:
    """Index files into a store; one instance per batch, holding the ingest lock."""

    cards = True  # rewrite <store>/cards.json after a run that changed something (ingest.cards)

    def __init__(
        self,
        store_dir: Path,
        store: Store,
        embeddings: Embeddings,
        limits: Limits | None = None,
        manifest_fallback: Path | None = None,
        lock_timeout: float = 10.0,
        lexical: bool = True,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.store = store
        self.embeddings = embeddings
        self.limits = limits or Limits()
        self.manifest_fallback = manifest_fallback
        self.lock_timeout = lock_timeout
        self.registry = Registry(connect(self.store_dir))
        # on the registry's own connection, so its writes join the registry's transactions
        self.lexical = Lexical(self.registry.conn) if lexical else None
        self._manifests: dict[Path, Manifest] = {}
        self._catalog: Catalog | None = None
        self._learned_from: dict[str, set[str]] = {}
        self._page_progress: PageProgress | None = None

    @property
    def catalog(self) -> Catalog:
        """Known fabriques: the fallback manifest's, then those indexed documents belong to."""
        if self._catalog is None:
            fallback = self.manifest_fallback
            known = Manifest.load(fallback).fabriques.values() if fallback and fallback.is_file() else []
            catalog = Catalog(known)
            self._learned_from = {}
            for fid, title, year, names, paths in self.registry.learned_fabriques():
                catalog.add(Fabrique(id=fid, title=title, year=year, aliases=names, origin="index"))
                self._learned_from[fid] = set(paths)
            self._catalog = catalog
        return self._catalog

    def _catalog_for(self, key: str) -> Catalog:
        """The catalog a document is labelled with: less the fabriques only this document's own
        earlier label taught the index. Why: otherwise a name read by an older rule (a quoted
        sentence taken for a fabrique's name) is found again in the same text when the rules
        change, and the wrong label keeps itself forever."""
        catalog = self.catalog
        own = {fid for fid, paths in self._learned_from.items()
               if paths == {key} and (fab := catalog.get(fid)) is not None and fab.origin == "index"}
        return Catalog(f for fid, f in catalog.by_id.items() if fid not in own) if own else catalog

    def _resolve(self, file: Path, loaded: LoadedDocument, manifest: Manifest, key: str) -> Any:
        catalog = self._catalog_for(key)
        meta = resolve(file, loaded, manifest, key, catalog)
        if catalog is not self.catalog and meta.fabrique and self.catalog.get(meta.fabrique) is None:
            found = catalog.get(meta.fabrique)
            if found is not None:  # discovered anew under the current rules: later documents may join
                self.catalog.add(found)
        return meta

    def run(
        self, paths: list[Path], sync: bool = False, progress: Progress | None = None,
        page_progress: PageProgress | None = None,
    ) -> IngestReport:
        """Index `paths` (files or folders). `progress(done, total, file)` per file;
        `page_progress(page_done, page_total, file)` per page read by OCR, which is slow
        enough (seconds a page) for a user to need to see it move inside one file."""
        with self._locked():
            self._page_progress = page_progress
            try:
                return self._run(paths, sync, progress)
            finally:
                self._page_progress = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time per index, across processes (CLI, app, API)."""
        lock = FileLock(str(self.store_dir / "ingest.lock"))
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Timeout as exc:
            raise StoreError(
                f"Une autre indexation est en cours sur {self.store_dir} (verrou "
                f"{self.store_dir / 'ingest.lock'} tenu depuis plus de {self.lock_timeout:g} s) : "
                "réessayez quand elle sera terminée."
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def remove(self, path: str) -> IngestReport:
        """Take one document out of the index (passages, lexical entries, registry row), under
        the ingest lock like any batch, so a search never sees it half removed."""
        report = IngestReport()
        with self._locked():
            rec = self.registry.get(path)
            if rec is not None:
                self._forget(rec.path, rec.doc_id, report)
            self._refresh_cards(report)
            report.documents = sum(1 for r in self.registry.all() if r.status != "failed")
            report.chunks = self.store.count()
        return report

    def _run(self, paths: list[Path], sync: bool, progress: Progress | None) -> IngestReport:
        report = IngestReport()
        if self.lexical is not None:
            self.lexical.backfill(self.store)
        files, roots = discover([Path(p) for p in paths], report)
        for i, file in enumerate(files):
            if progress:
                progress(i, len(files), str(file))
            try:
                self._one(file, report)
            except IngestError as exc:
                self._fail(file, exc.message, report)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                self._fail(file, f"{file} : erreur inattendue ({type(exc).__name__} : {exc})", report)
        if sync:
            self._sync(roots, {f.resolve() for f in files}, report)
        self._refresh_cards(report)
        if progress:
            progress(len(files), len(files), "")
        docs = self.registry.all()
        report.documents = sum(1 for r in docs if r.status != "failed")
        report.chunks = self.store.count()
        return report

    def _refresh_cards(self, report: IngestReport) -> None:
        """Fiches fabriques follow the index: rebuilt (atomically, only the fabriques whose
        documents changed) after any change, or when missing. A failure there is a warning,
        never a failed ingest: the passages are indexed whatever the cards say."""
        changed = report.added or report.updated or report.removed or report.relabelled
        if not self.cards or not (changed or not (self.store_dir / CARDS_NAME).exists()):
            return
        try:
            write_cards(self.store_dir, self.store)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - cards are derived; the index stays right
            report.warnings.append({"path": str(self.store_dir / CARDS_NAME), "message":
                                    f"fiches fabriques non mises à jour ({type(exc).__name__} : {exc})"})

    def _fail(self, file: Path, message: str, report: IngestReport) -> None:
        report.failed.append({"path": str(file), "error": message})
        try:
            sha = sha256_file(file)
        except OSError:
            sha = None
        self.registry.mark_failed(str(file.resolve()), sha, message)

    def _manifest(self, file: Path) -> Manifest:
        folder = file.resolve().parent
        if folder not in self._manifests:
            manifest = Manifest.find(file, self.manifest_fallback)
            for fab in manifest.fabriques.values():
                self.catalog.add(fab)
            self._manifests[folder] = manifest
        return self._manifests[folder]

    def _one(self, file: Path, report: IngestReport) -> None:
        key = str(file.resolve())
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise IngestError(str(file), f"fichier illisible ({exc.strerror})", "io") from exc
        if size > self.limits.max_bytes:
            raise IngestError(
                str(file),
                f"fichier trop volumineux ({size_fr(size)}, limite {size_fr(self.limits.max_bytes)})",
                "too_large",
            )
        sha = sha256_file(file)
        rec = self.registry.get(key)
        manifest = self._manifest(file)
        digest = declared_digest(file, manifest)
        if rec and rec.sha256 == sha and rec.status in ("indexed", "cleanup"):
            if rec.status == "cleanup" and rec.doc_id:
                self.store.delete_other_versions(rec.doc_id, sha)
                self.registry.mark_indexed(key)
            if rec.meta_sha == digest:
                report.unchanged.append(str(file))
                return
            if self._relabel(file, key, sha, digest, rec, manifest, report):
                return
        twin = self.registry.by_sha(sha)
        if twin and twin.path != key and Path(twin.path).exists():
            report.duplicates.append(
                {"path": str(file), "of": twin.path,
                 "error": f"{file} : contenu identique à {twin.path}, déjà indexé ; ignoré"}
            )
            return
        loaded = self._load(file)
        meta = self._resolve(file, loaded, manifest, key)
        owner = self.registry.by_doc_id(meta.doc_id)
        if owner and owner.path != key:
            if Path(owner.path).exists():
                raise IngestError(
                    str(file),
                    f"identifiant de document « {meta.doc_id} » déjà utilisé par {owner.path}",
                    "doc_id_conflict",
                )
            self._forget(owner.path, owner.doc_id, report)  # the file was renamed
        chunks = chunk_document(
            loaded, meta, sha, self.limits.chunk_size, self.limits.chunk_overlap
        )
        if not chunks:
            raise IngestError(str(file), "aucun passage exploitable après nettoyage", "empty")
        texts = [f"{meta.title} — {c.section}\n{c.text}" if c.section else f"{meta.title}\n{c.text}"
                 for c in chunks]
        vectors = self.embeddings.embed_documents(texts)
        self.store.upsert(chunks, vectors, sha)
        with self.registry.transaction():
            if self.lexical is not None:
                self.lexical.replace(meta.doc_id, chunks, sha)
            self.registry.mark_written(key, meta, sha, len(chunks), len(loaded.pages), digest)
        self.store.delete_other_versions(meta.doc_id, sha)
        self.registry.mark_indexed(key)
        self._warn(file, meta, report)
        (report.updated if rec and rec.status != "failed" else report.added).append(str(file))

    def _load(self, file: Path) -> LoadedDocument:
        lim = self.limits
        ocr = OcrOptions(lim.ocr, lim.ocr_max_pages, lim.ocr_page_timeout, progress=self._page_progress)
        return load(file, max_bytes=lim.max_bytes, max_pages=lim.max_pages, ocr=ocr)

    def _relabel(self, file: Path, key: str, sha: str, digest: str, rec: Any, manifest: Manifest,
                 report: IngestReport) -> bool:
        """New metadata for unchanged text (a sidecar or manifest entry corrected it): the
        passages keep their vectors and get the new labels. False when the change touches
        what was embedded (another doc_id or other passages): the caller re-indexes."""
        loaded = self._load(file)
        meta = self._resolve(file, loaded, manifest, key)
        chunks = chunk_document(loaded, meta, sha, self.limits.chunk_size, self.limits.chunk_overlap)
        if meta.doc_id != rec.doc_id or len(chunks) != rec.chunks:
            return False
        self.store.relabel(chunks, sha)
        with self.registry.transaction():
            if self.lexical is not None:
                self.lexical.replace(meta.doc_id, chunks, sha)
            self.registry.mark_written(key, meta, sha, len(chunks), len(loaded.pages), digest)
        self.registry.mark_indexed(key)
        self._warn(file, meta, report)
        report.relabelled.append(str(file))
        return True

    @staticmethod
    def _warn(file: Path, meta: Any, report: IngestReport) -> None:
        for message in [*meta.problems, *meta.conflicts]:
            report.warnings.append({"path": str(file), "message": f"{file} : {message}"})

    def _forget(self, path: str, doc_id: str | None, report: IngestReport) -> None:
        if doc_id:
            self.store.delete_document(doc_id)
        with self.registry.transaction():
            if self.lexical is not None and doc_id:
                self.lexical.delete(doc_id)
            self.registry.remove(path)
        report.removed.append(path)

    def _sync(self, roots: list[Path], seen: set[Path], report: IngestReport) -> None:
        """Drop documents whose files are gone from the folders this batch covered."""
        for rec in self.registry.all():
            p = Path(rec.path)
            if p in seen or not any(p.is_relative_to(r) for r in roots):
                continue
            if not p.exists():
                self._forget(rec.path, rec.doc_id, report)
