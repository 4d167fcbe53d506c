"""The one door to the core: every face (CLI, Streamlit app, HTTP API) asks through here.

Why a single door: the three faces must give the same answer to the same question, show a
public caller the same documents, and refuse a write to anyone but an admin in the same
words. So the index is opened once per process here (embedding model, Chroma client), each
call takes the `Caller` it serves, and the audience and the rights are decided here, never
in a face. Faces format what comes back; they never wire retrieval, answering or drafting.

Thread-safety: the HTTP server and Streamlit call from many threads. The embedding model and
the Chroma client are shared; the registry's SQLite connection belongs to one thread, so a
retriever (cheap: a connection and a few objects) is built per call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.access import AccessDenied, Caller, require_write
from assistant.answering.citations import stream_correction  # noqa: F401 - for the faces
from assistant.answering.extractive import (  # the answer's vocabulary, for the faces
    LEAD_COMPARE,
    LEADS_TITLE,
    REFUSAL,
    Answer,
    AnswerStream,
    History,
    Mode,
)
from assistant.answering.frtext import fold
from assistant.config import Settings, get_settings
from assistant.retriever import Filters
from assistant.uploads import ACCEPTED_TYPES, sanitize_filename
from ingest.errors import StoreError

Progress = Callable[[int, int, str], None]

__all__ = ["ACCEPTED_TYPES", "LEAD_COMPARE", "LEADS_TITLE", "REFUSAL", "AccessDenied", "Answer",
           "AnswerStream",
           "Caller", "Filters", "Service", "StoreError", "fold", "get_service", "sanitize_filename"]


class Service:
    """Search, ask, compare, draft, documents, stats, uploads and feedback over one index."""

    def __init__(self, settings: Settings | None = None, embeddings: Any = None, store: Any = None) -> None:
        self.settings = settings or get_settings()
        self._embeddings = embeddings
        self._store = store
        self._lock = threading.Lock()
        self._feedback: Any = None
        self._keys: Any = None

    # ------------------------------------------------------------------ resources

    @property
    def embeddings(self) -> Any:
        if self._embeddings is None:
            with self._lock:
                if self._embeddings is None:
                    from ingest.embeddings import get_embeddings

                    self._embeddings = get_embeddings(self.settings.embeddings)
        return self._embeddings

    @property
    def store(self) -> Any:
        """The Chroma collection, opened on first use; StoreError (French) if it cannot be."""
        if self._store is None:
            emb = self.embeddings
            with self._lock:
                if self._store is None:
                    from ingest.store import open_store

                    s = self.settings
                    self._store = open_store(s.store, s.collection, emb.model_id, emb.dim, s.chroma_url)
        return self._store

    def registry(self) -> Any:
        """A registry on a connection of the calling thread."""
        from ingest.registry import Registry, connect

        return Registry(connect(self.settings.store))

    def retriever(self, caller: Caller) -> Any:
        from assistant.retriever import Retriever

        return Retriever(self.store, self.registry(), self.embeddings, caller.audience)

    def answerer(self) -> Any:
        from assistant.answering.backends import get_answerer

        return get_answerer(self.settings, self.embeddings)

    @property
    def feedback_store(self) -> Any:
        if self._feedback is None:
            from assistant.feedback import FeedbackStore

            self._feedback = FeedbackStore(self.settings.store)
        return self._feedback

    @property
    def keys(self) -> Any:
        """The API keys of this index (`access.KeyStore`, `keys.sqlite` beside the registry)."""
        from assistant.access import keys_of

        if self._keys is None or Path(self._keys.path).parent != Path(self.settings.store):
            self._keys = keys_of(self.settings.store)
        return self._keys

    def authenticate(self, secret: str | None) -> Caller | None:
        """The caller a key stands for; None for no key, an unknown or a revoked one."""
        return self.keys.authenticate(secret) if secret else None

    def local_caller(self) -> Caller:
        """Who the local faces (CLI, an open app) act as: the configured audience."""
        return Caller.local(self.settings.audience)

    # ------------------------------------------------------------------ what the index holds

    def _records(self, caller: Caller) -> list[Any]:
        import sqlite3

        from assistant.catalog import visible_records

        if not (Path(self.settings.store) / "index.sqlite3").is_file():
            return []  # an index never built lists nothing (and is not created by a read)
        try:
            return visible_records(self.registry().all(), caller.audience)
        except sqlite3.Error as exc:
            raise StoreError(f"registre de l'index illisible ({self.settings.store}) : {exc}") from exc

    def records(self, caller: Caller) -> list[Any]:
        """Registry rows this caller may see (failed rows only for internal callers)."""
        return self._records(caller)

    def options(self, caller: Caller) -> Any:
        """Filter choices and counts (`catalog.IndexOptions`) for this caller."""
        from assistant.catalog import index_options

        return index_options(self._records(caller), caller.audience)

    def filters(self, caller: Caller, *, fabrique: str | None = None, territory: str | None = None,
                year: str | int | None = None, year_from: int | None = None, year_to: int | None = None,
                doc_type: str | None = None) -> Any:
        """Filters from names as users type them; ValueError (French) for an unknown one.

        `fabrique` is an id or a title, `doc_type` an id or its French name, `year` « 2019 »
        or « 2019-2021 »; territories are resolved by the retriever (any name of them).
        """
        from assistant.catalog import known_fabriques, resolve_doc_type, resolve_fabrique, territory_names
        from assistant.retriever import Filters

        if year not in (None, ""):
            year_from, year_to = Filters.parse_year(str(year))
        kind = resolve_doc_type(doc_type) if doc_type else None
        records = self._records(caller) if territory or fabrique else []
        if territory:  # one rule for every filter: an unknown name is refused with the close ones
            _check_territory(territory, territory_names([r for r in records if r.status != "failed"]))
        fid = None
        if fabrique:
            fid = resolve_fabrique(fabrique, known_fabriques(records, caller.audience))
        return Filters(fabrique=fid, territory=territory or None, year_from=year_from, year_to=year_to,
                       doc_type=kind)

    def documents(self, caller: Caller, fabrique: str | None = None,
                  territory: str | None = None) -> list[dict[str, Any]]:
        """`docs --json` / `GET /api/documents`: one row per document this caller may see."""
        from assistant.catalog import document_rows_json

        rows = document_rows_json(self._records(caller), caller.audience, fabrique, territory)
        if _hide_paths(caller):
            for row in rows:
                row["path"] = Path(row["path"]).name
        return rows

    def stats(self, caller: Caller) -> dict[str, Any]:
        """`stats --json` / `GET /api/stats`, counted over what this caller may see."""
        from assistant.catalog import collect_stats

        stats = collect_stats(self._records(caller))
        stats["store"] = "" if _hide_paths(caller) else str(self.settings.store)
        return stats

    def document_file(self, caller: Caller, doc_id: str) -> Path | None:
        """The original file of a document this caller may see, if still on disk."""
        from assistant.catalog import record_file

        if not any(r.doc_id == doc_id for r in self._records(caller)):
            return None
        return record_file(self.registry(), doc_id)

    def ingest_running(self) -> bool:
        """Is an ingest holding the index lock right now (CLI, another user's upload)?"""
        from filelock import FileLock, Timeout

        lock_path = Path(self.settings.store) / "ingest.lock"
        if not lock_path.exists():
            return False
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    # ------------------------------------------------------------------ reading

    def search(self, query: str, caller: Caller, *, filters: Any = None, k: int = 5) -> list[Any]:
        _check_question(query, self.settings.max_question_chars)
        passages = self.retriever(caller).search(query, k=k, filters=filters)
        if _hide_paths(caller):
            for p in passages:
                p.meta = {**p.meta, "source": Path(p.source).name}
        return passages

    def _prepare(self, question: str, caller: Caller, filters: Any, history: History | None,
                 k: int | None, mode: Mode = "answer") -> tuple[str, list[Any]]:
        _check_question(question, self.settings.max_question_chars)
        from assistant.retriever import answer_context, compare_context

        retriever = self.retriever(caller)
        rewritten = question
        if history:
            known = retriever.known_territories()
            try:
                rewritten = self.answerer().rewrite(question, history, known) or question
            except Exception:  # noqa: BLE001 - an LLM outage must not lose the user's question
                from assistant.answering.followup import rewrite_rules

                rewritten = rewrite_rules(question, history, known)
        context = compare_context if mode == "compare" else answer_context
        return rewritten, context(retriever, rewritten, filters, self.settings, k)

    def ask(self, question: str, caller: Caller, *, mode: Mode = "answer", filters: Any = None,
            history: History | None = None, k: int | None = None) -> Answer:
        """A cited answer (or a refusal with leads); follow-ups are rewritten with `history`
        first, and `answer.question` is what was actually searched."""
        rewritten, passages = self._prepare(question, caller, filters, history, k, mode)
        answer = self.answerer().answer(rewritten, passages, mode=mode)
        answer.question = rewritten
        if mode == "answer":
            answer = self._card_fact(rewritten, caller, passages, answer, filters)
        elif answer.rows:
            self._card_territories_missing(caller, answer)
        return _shown_to(caller, answer)

    def _card_territories_missing(self, caller: Caller, answer: Answer) -> None:
        """A comparison names the territories its fabrique's card lists and no row covers: the
        reader then knows the comparison is partial, and which territory to ask about."""
        from assistant.retriever import same_territory

        cards = {c["id"]: c for c in self._cards_if_readable(caller)}
        rows = [str(r.get("territory") or "") for r in answer.rows]
        for fid in dict.fromkeys(c.fabrique for c in answer.citations if c.fabrique in cards):
            values = cards[fid]["fields"].get("territories", [])
            listed = [str(v["value"]) for v in values if v.get("evidence")]
            missing = [t for t in listed if not any(r == t or same_territory(r, t) for r in rows)]
            # a fabrique quoted only through a synthesis is not one this comparison is about
            if missing and len(missing) < len(listed):
                answer.notes.append(f"La fiche de la fabrique « {cards[fid]['title']} » compte aussi "
                                    f"{', '.join(missing)} : aucun passage de ce(s) territoire(s) ne répond "
                                    "ici à la question.")

    def _cards_if_readable(self, caller: Caller) -> list[dict[str, Any]]:
        """The cards for an answer to lean on; none when they cannot be read: the usual answer
        then stands, an unreadable cards.json must not fail a question."""
        try:
            return self._fabrique_cards(caller)
        except (StoreError, OSError, ValueError):
            return []

    def _card_fact(self, question: str, caller: Caller, passages: list[Any], answer: Answer,
                   filters: Any) -> Answer:
        """A question asking one field of a named fabrique (« Quel prestataire a animé… ») opens
        with that field of the fabrique's card, cited (`card_answers`); the passages follow."""
        from assistant.card_answers import with_card_line

        card = self._card_line(question, caller, passages, filters)
        return with_card_line(answer, *card) if card else answer

    def _card_line(self, question: str, caller: Caller, passages: list[Any],
                   filters: Any) -> tuple[str, list[Any]] | None:
        """The card's line answering `question` and its citations, or None (not a question on
        one field of a named fabrique, or the card does not hold that field)."""
        from assistant import card_answers as F

        fact = F.asked_field(question)
        if fact is None:
            return None
        cards = self._cards_if_readable(caller)
        wanted = getattr(filters, "fabrique", None)
        if wanted:
            card = next((c for c in cards if c["id"] == wanted), None)
        else:
            card = F.named_fabrique(question, cards, {c["id"]: c["title"] for c in cards},
                                    [str(p.meta.get("fabrique") or "") for p in passages])
        return F.card_line(fact, card, card["title"]) if card else None

    def ask_stream(self, question: str, caller: Caller, *, mode: Mode = "answer", filters: Any = None,
                   history: History | None = None, k: int | None = None) -> AnswerStream:
        """The same answer as text pieces (an LLM writes them as it goes; the extractive
        back-end gives its whole text as one piece); `.answer` afterwards is the cleaned one."""
        if self.settings.llm == "extractive":
            done = self.ask(question, caller, mode=mode, filters=filters, history=history, k=k)
            return AnswerStream(iter([done.text]), lambda _text: done)
        rewritten, passages = self._prepare(question, caller, filters, history, k, mode)
        card = self._card_line(rewritten, caller, passages, filters) if mode == "answer" else None
        answerer = self.answerer()
        # the card's line is read first; the model numbers the passages after its sources
        stream = (answerer.stream(rewritten, passages, mode=mode, first=len(card[1]) + 1) if card
                  else answerer.stream(rewritten, passages, mode=mode))

        def pieces() -> Any:
            if card:
                yield card[0] + "\n\n"
            yield from stream

        def finish(_text: str) -> Answer:
            from assistant.card_answers import with_card_line

            final = stream.answer
            if card:
                final = with_card_line(final, *card, streamed=True)
            final.question = rewritten
            return _shown_to(caller, final)

        return AnswerStream(pieces(), finish)

    def compare(self, question: str, caller: Caller, *, filters: Any = None, k: int | None = None) -> Answer:
        return self.ask(question, caller, mode="compare", filters=filters, k=k)

    def draft(self, territory: str, caller: Caller, *, fabrique: str | None = None, theme: str | None = None,
              sections: Sequence[str] | None = None) -> Any:
        """A cited draft roadmap (`drafting.draft.Roadmap`). ValueError (French) for an unknown
        territory, fabrique or section."""
        from assistant.catalog import known_fabriques, resolve_fabrique
        from assistant.drafting.draft import draft_roadmap, llm_writer

        fid = None
        if fabrique:
            fid = resolve_fabrique(fabrique, known_fabriques(self._records(caller), caller.audience))
        roadmap = draft_roadmap(self.retriever(caller), territory, fid, theme or None,
                                list(sections) if sections else None, writer=llm_writer(self.settings))
        if _hide_paths(caller):
            for src in roadmap.sources:
                src.source = Path(src.source).name
        return roadmap

    @staticmethod
    def draft_sections() -> dict[str, str]:
        """Section id → French title, in the order a roadmap has them."""
        from assistant.drafting.draft import SECTIONS

        return {sid: spec.title for sid, spec in SECTIONS.items()}

    @staticmethod
    def export(roadmap: Any, fmt: str) -> bytes:
        """A draft as a file: « docx » or « md »."""
        from assistant.drafting.export import to_docx, to_markdown

        if fmt == "md":
            return to_markdown(roadmap).encode("utf-8")
        if fmt == "docx":
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "feuille-de-route.docx"
                to_docx(roadmap, out)
                return out.read_bytes()
        raise ValueError(f"format d'export inconnu : « {fmt} » (docx ou md)")

    # ------------------------------------------------------------------ writing (admin)

    def _ingestor(self) -> Any:
        from assistant.index import make_ingestor

        return make_ingestor(self.settings, self.store, self.embeddings)

    def ingest(self, paths: Sequence[Path], caller: Caller, *, sync: bool = False,
               progress: Progress | None = None, page_progress: Progress | None = None) -> Any:
        """Index files or folders (`IngestReport`); StoreError if another ingest holds the lock.

        `progress(done, total, file)` per file, `page_progress(page_done, page_total, file)`
        per page of a scanned PDF read by OCR (seconds a page: worth showing).
        """
        require_write(caller, "indexer des documents")
        return self._ingestor().run([Path(p) for p in paths], sync=sync, progress=progress,
                                    page_progress=page_progress)

    def upload(self, files: Sequence[tuple[str, bytes]], caller: Caller,
               progress: Progress | None = None, page_progress: Progress | None = None) -> Any:
        """Check, save and index uploaded files (`uploads.UploadResult`, one outcome per file)."""
        require_write(caller, "ajouter des documents")
        from assistant.uploads import handle_uploads

        return handle_uploads(self.settings, files, progress=progress, ingestor=self._ingestor,
                              page_progress=page_progress)

    def reindex(self, caller: Caller, progress: Progress | None = None,
                page_progress: Progress | None = None) -> Any:
        require_write(caller, "réindexer le corpus")
        from assistant.uploads import reindex

        return reindex(self.settings, progress=progress, ingestor=self._ingestor,
                       page_progress=page_progress)

    def delete(self, doc_id: str, caller: Caller) -> dict[str, Any] | None:
        """Remove a document from the index; an uploaded file is deleted with it (otherwise the
        next re-index would bring it back). None when no such document exists."""
        require_write(caller, "supprimer des documents")
        rec = self.registry().by_doc_id(doc_id)
        if rec is None:
            return None
        report = self._ingestor().remove(rec.path)
        path = Path(rec.path)
        uploads = Path(self.settings.uploads_dir).resolve()
        file_removed = False
        if path.is_file() and path.resolve().parent == uploads:
            path.unlink()
            file_removed = True
        return {"doc_id": doc_id, "path": rec.path, "removed": bool(report.removed),
                "file_removed": file_removed, "documents": report.documents, "chunks": report.chunks}

    # ------------------------------------------------------------------ feedback

    def record_feedback(self, caller: Caller, message_id: str, **fields: Any) -> Any:
        """A vote or comment on an answer; anyone who may ask may give feedback."""
        fields.setdefault("audience", caller.audience)
        return self.feedback_store.record(message_id, **fields)

    def feedback_counts(self, caller: Caller) -> dict[str, int]:
        require_write(caller, "consulter les avis")
        return self.feedback_store.counts()

    def feedback_csv(self, caller: Caller) -> bytes:
        require_write(caller, "exporter les avis")
        return self.feedback_store.csv_bytes()

    # ------------------------------------------------------------------ chat clients' own tasks

    def chat_task(self, text: str, caller: Caller) -> str | None:
        """The reply to a chat client's background task (Open WebUI's « ### Task: » prompts for a
        title, tags, follow-up questions…), or None when `text` is an ordinary question.

        Why here and without retrieval: such a prompt quotes the whole chat, so it is longer than
        a question may be, and searching the corpus for it costs seconds for a reply nobody reads
        as an answer. What it needs is in the prompt and in the catalog of the documents this
        caller may see (`assistant.chat_tasks`): no embedding, no vector store, no model.
        """
        from assistant import chat_tasks

        kind = chat_tasks.task_kind(text)
        if kind is None:
            return None
        records: list[Any] = []
        if kind in chat_tasks.CATALOG_KINDS:
            try:
                records = self._records(caller)
            except StoreError:
                records = []  # an unreadable registry leaves the reply empty, not the task failed
        return chat_tasks.task_reply(kind, text, records)

    # ------------------------------------------------------------------ fabriques' cards

    def _fabrique_cards(self, caller: Caller) -> list[dict[str, Any]]:
        """Every card this caller may read, as the faces show it (`cards.card_json`), sorted by
        title. What a card may say is decided from the evidence's documents and the registry's
        view of this caller (`cards.visible_cards`), so a public caller reads only what public
        documents say, here and in every face."""
        from assistant import cards as C
        from assistant.catalog import DOC_TYPE_LABELS

        records = [r for r in self._records(caller) if r.status != "failed"]
        titles = {str(r.meta.get("fabrique") or ""): str(r.meta.get("fabrique_title") or "")
                  for r in records if r.meta.get("fabrique_title")}
        visible = C.visible_cards(C.read_cards(self.settings.store), caller.audience,
                                  [str(r.doc_id) for r in records])
        return C.sort_cards([C.card_json(card, C.display_title(card, titles), DOC_TYPE_LABELS,
                                         _hide_paths(caller)) for card in visible])

    def fabriques(self, caller: Caller, *, theme: str | None = None, year: str | int | None = None,
                  region: str | None = None) -> dict[str, Any]:
        """`fabriques --json` / `GET /api/fabriques`: the cards this caller may read, filtered,
        and the filters (those applied, and the choices, from the cards this caller may read).

        ValueError (French, with the choices) for an unknown région or a malformed year.
        """
        from assistant import cards as C

        cards = self._fabrique_cards(caller)
        available = C.choices(cards)
        wanted_year = C.parse_year(year)
        wanted_region = C.resolve_region(region, available["regions"]) if region and region.strip() else None
        shown = C.filter_cards(cards, theme=theme, year=wanted_year, region=wanted_region)
        return {"fabriques": shown,
                "filters": {"theme": (theme or "").strip() or None, "year": wanted_year,
                            "region": wanted_region, "available": available}}

    def fabrique(self, caller: Caller, ref: str) -> dict[str, Any]:
        """`fabrique ID --json` / `GET /api/fabriques/{id}`: one card, the fabrique named by its id
        or its title (a unique word start will do), as `resolve_fabrique` reads every fabrique name.

        `cards.UnknownFabrique` (a ValueError, 404 over HTTP) when no fabrique this caller may
        read answers, with the ones it may; ValueError when several do.
        """
        from assistant import cards as C
        from assistant.catalog import resolve_fabrique

        cards = self._fabrique_cards(caller)
        known = {c["id"]: c["title"] for c in cards}
        try:
            fid = resolve_fabrique(ref, known)
        except ValueError as exc:
            if "plusieurs" in str(exc):  # ambiguous: the request must say more (400), not absent
                raise
            raise C.UnknownFabrique(str(exc)) from exc
        return next(c for c in cards if c["id"] == fid)

    @staticmethod
    def fabrique_labels() -> dict[str, dict[str, str]]:
        """French names of a card's fields and of the document types, in reading order."""
        from assistant.cards import FIELDS
        from assistant.catalog import DOC_TYPE_LABELS

        return {"fields": dict(FIELDS), "doc_types": dict(DOC_TYPE_LABELS)}


def _hide_paths(caller: Caller) -> bool:
    """A public caller is shown file names, never where the files live on the server."""
    return caller.audience == "public"


def _shown_to(caller: Caller, answer: Answer) -> Answer:
    if _hide_paths(caller):
        for item in [*answer.citations, *answer.leads]:
            item.source = Path(item.source).name
    return answer


def _check_territory(name: str, known: list[str]) -> None:
    """ValueError (French, the closest indexed names) when no territory this caller may see
    (`known`) answers to `name` under any of its names (the search filter's own resolution)."""
    from assistant.drafting.draft import UnknownTerritory
    from assistant.retriever import match_territory, near_territories

    if not match_territory(name, known).names:
        raise UnknownTerritory(name, near_territories(name, known), known=len(known))


def _check_question(text: str, limit: int) -> None:
    """A longer text is not a question: it would only slow the embedding down."""
    if not text or not text.strip():
        raise ValueError("la question est vide")
    if len(text) > limit:
        raise ValueError(f"question trop longue ({len(text)} caractères, au plus {limit})")


_SERVICES: dict[tuple[Any, ...], Service] = {}
_SERVICES_LOCK = threading.Lock()


def get_service(settings: Settings | None = None) -> Service:
    """One service per configuration and process: the model and the index are opened once."""
    s = settings or get_settings()
    key = (str(s.store), s.collection, s.embeddings, s.chroma_url, s.llm, s.openai_base_url, s.llm_model,
           s.decisions, s.audience)
    with _SERVICES_LOCK:
        if key not in _SERVICES:
            _SERVICES[key] = Service(s)
        service = _SERVICES[key]
    service.settings = s  # limits and other cheap settings follow the latest copy
    return service

