"""The French lexical (BM25) index, in the registry's SQLite file, switched with it atomically.

Dense retrieval misses what embeddings blur: a proper noun ("Châtellerault"), an acronym
("PCAET", "CCAS"), a rare technical word. BM25 on stemmed French words finds those exactly,
and the retriever fuses both rankings.

Why SQLite FTS5 rather than an in-memory BM25 library such as bm25s:

* ingest is incremental: one document is replaced or deleted at a time. FTS5 updates its
  inverted index row by row; bm25s would rebuild (or at least reload and re-save) the whole
  corpus matrix for each change.
* a query reads a few posting lists from disk; nothing is loaded per query or per process,
  so a CLI `search` stays fast and 1M passages never have to fit in memory.
* the index lives in the same SQLite file, on the same connection, as the document registry
  (`ingest.registry.connect`). `replace`/`delete` run *inside* the registry's transaction,
  so the lexical rows and the registry's "live version" switch together or not at all: a
  crash can never leave lexical rows of one version and a registry pointing to another.
  As a second guard, every row carries its content hash and queries join the registry, so
  a row of a version that is not live is never returned, whatever happened.

Words are analysed in Python (FTS5 has no French stemmer): lowercase, accents folded,
split on anything that is not a letter or digit, French stop words (elided forms l' d' qu'
included) dropped, then Snowball French stemming (PyStemmer). Folding *before* stemming
makes "aines" and "aînés" one term, as users often type without accents. The analysed terms
are what FTS5 indexes, so the same `analyse` must serve documents and queries. (FTS5's
default `detail=full` is kept: its bm25 runs 4-5x faster than with `detail=column`.)
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import Stemmer

from ingest.models import Chunk

# Folded (no accents) forms. Single letters are dropped anyway (l' d' j' m' n' s' t' c').
STOP_WORDS = frozenset(
    """
    a au aux avec ce ceci cela ca celle celles celui ceux ces cet cette chez comme contre
    dans de des du elle elles en entre et eux il ils je la le les leur leurs lui ma mais me
    meme memes mes moi mon ne ni nos notre nous on ou par pas pour qu que quel quelle quelles
    quels qui quoi sa sans se ses si son sous sur ta te tes toi ton tu un une unes uns vos
    votre vous y dont donc or car lorsque lorsqu puisque puisqu quoique quoiqu jusqu jusque
    quand parce afin lors selon vers via depuis pendant parmi hors apres avant aupres
    lequel laquelle lesquels lesquelles auquel auxquels auxquelles duquel desquels desquelles
    tout tous toute toutes autre autres chaque plusieurs certains certaines aucun aucune
    quelque quelques tres trop peu plus moins aussi ainsi alors deja encore ici puis enfin
    etre suis es est sommes etes sont etais etait etions etiez etaient fut furent sera
    serons serez seront serait seraient sois soit soient ete etant
    avoir ai as avons avez ont avais avait avions aviez avaient eu eue eus eut aura aurons
    aurez auront aurait auraient aie aies ait ayons ayez aient ayant
    cf etc ci
    """.split()
)

_TOKEN = re.compile(r"[^\W_]+")
_SPECIAL = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "’": "'"})
_MAX_QUERY_TERMS = 32
MAX_POSTINGS = 50_000  # passages one query may score (bounds latency at any corpus size)
HEAD_WEIGHT = 0.4  # a word of the title/section counts less than one of the passage itself


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return Stemmer.Stemmer("french")


def fold(text: str) -> str:
    """Lowercase, accents removed, ligatures spelled out ('Cœur' → 'coeur')."""
    text = unicodedata.normalize("NFKD", text.lower().translate(_SPECIAL))
    return "".join(c for c in text if not unicodedata.combining(c))


def analyse(text: str) -> list[str]:
    """The terms of a text as the index sees them (same function for documents and queries).

    'Les aînés de Lorient' → ['ain', 'lorient']. Numbers are kept whole ('2030', '3ds'):
    a year or a law name is often exactly what is searched.
    """
    words = []
    for token in _TOKEN.findall(fold(text)):
        if token in STOP_WORDS or (len(token) < 2 and not token.isdigit()):
            continue
        if token.endswith(("iere", "ieres")):
            # folded '-ière' escapes Snowball's rule: make 'foncière' stem like 'foncier'
            token = token[: token.rindex("iere")] + "ier"
        words.append(token)
    if not words:
        return []
    return [w if w.isdigit() else s for w, s in zip(words, _stemmer().stemWords(words), strict=True)]


@dataclass
class LexicalHit:
    """A passage found by BM25: `score` is -bm25 (higher is better)."""

    chunk_id: str
    doc_id: str
    page: int
    score: float


@dataclass
class _Row:
    chunk_id: str
    page: int
    fabrique: str
    doc_type: str
    year: int | None
    visibility: str
    territories: str
    body: str
    head: str


def _territories(names: Iterable[str]) -> str:
    """'|Lorient|Bagnolet|': one exact `instr` test per name, no JSON in SQL."""
    names = [n for n in names if n]
    return "|" + "|".join(names) + "|" if names else ""


def _row(chunk_id: str, text: str, page: int, section: str, meta: dict[str, Any]) -> _Row:
    year = meta.get("year")
    return _Row(
        chunk_id=chunk_id,
        page=int(page or 1),
        fabrique=str(meta.get("fabrique") or ""),
        doc_type=str(meta.get("doc_type") or ""),
        year=int(year) if year not in (None, "") else None,
        visibility=str(meta.get("visibility") or "public"),
        territories=_territories(meta.get("territories") or []),
        body=" ".join(analyse(text)),
        head=" ".join(analyse(f"{meta.get('title') or ''} {section or ''}")),
    )


SCHEMA = """
CREATE TABLE IF NOT EXISTS lexical_chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    page INTEGER NOT NULL DEFAULT 1,
    fabrique TEXT NOT NULL DEFAULT '',
    doc_type TEXT NOT NULL DEFAULT '',
    year INTEGER,
    visibility TEXT NOT NULL DEFAULT 'public',
    territories TEXT NOT NULL DEFAULT '',   -- '|Lorient|Bagnolet|'
    body TEXT NOT NULL,                     -- analysed terms of the passage
    head TEXT NOT NULL                      -- analysed terms of title and section
);
CREATE INDEX IF NOT EXISTS lexical_chunks_doc ON lexical_chunks(doc_id);
-- one row per document: which version the lexical rows are of (cheap backfill checks)
CREATE TABLE IF NOT EXISTS lexical_docs (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    chunks INTEGER NOT NULL DEFAULT 0
);
CREATE VIRTUAL TABLE IF NOT EXISTS lexical_fts USING fts5(
    body, head, content='lexical_chunks', content_rowid='id'
);
-- how many passages hold each term: lets a query skip terms too common to discriminate
CREATE VIRTUAL TABLE IF NOT EXISTS lexical_vocab USING fts5vocab(lexical_fts, 'row');
"""


def _filter_sql(fabrique: str | None = None, territories: list[str] | None = None,
                year_from: int | None = None, year_to: int | None = None, doc_type: str | None = None,
                visibility: str | None = None, exclude_fabrique: str | None = None
                ) -> tuple[list[str], list[Any]]:
    """SQL conditions on `lexical_chunks c` for the retriever's filters, and their arguments."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (("fabrique", fabrique), ("doc_type", doc_type), ("visibility", visibility)):
        if value:
            clauses.append(f"c.{column} = ?")
            args.append(value)
    if exclude_fabrique:
        clauses.append("c.fabrique != ?")
        args.append(exclude_fabrique)
    if year_from is not None:
        clauses.append("c.year >= ?")
        args.append(int(year_from))
    if year_to is not None:
        clauses.append("c.year <= ?")
        args.append(int(year_to))
    if territories:
        clauses.append("(" + " OR ".join("instr(c.territories, ?) > 0" for _ in territories) + ")")
        args.extend(f"|{t}|" for t in territories)
    return clauses, args


class Lexical:
    """BM25 over analysed French passages, on the registry's SQLite connection.

    Build it on `Registry.conn` (the Ingestor does): `replace` and `delete` then join the
    registry's open transaction instead of committing on their own.
    """

    def __init__(self, conn: sqlite3.Connection, max_postings: int = MAX_POSTINGS) -> None:
        self.conn = conn
        self.max_postings = max_postings
        if not self._has_schema():
            conn.executescript(SCHEMA)

    def _has_schema(self) -> bool:
        # executescript would COMMIT an open transaction: only run it when something is missing
        names = {
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE name IN "
                "('lexical_chunks', 'lexical_docs', 'lexical_fts', 'lexical_chunks_doc', 'lexical_vocab')"
            )
        }
        return len(names) == 5

    def _require_transaction(self) -> None:
        if not self.conn.in_transaction:
            raise RuntimeError(
                "Lexical.replace/delete doivent être appelés dans registry.transaction() "
                "pour changer en même temps que le registre"
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- writes (inside the caller's transaction) ---------------------------------------

    def replace(self, doc_id: str, chunks: list[Chunk], content_hash: str) -> None:
        """Make `chunks` (one version of one document) its only lexical rows."""
        self._require_transaction()
        rows = [
            _row(c.chunk_id, c.text, c.page, c.section, c.meta.__dict__) for c in chunks
        ]
        self._write(doc_id, content_hash, rows)

    def delete(self, doc_id: str) -> None:
        """Forget every lexical row of a document (all versions)."""
        self._require_transaction()
        # an external-content FTS5 table is told what it indexed, then the rows go
        self.conn.execute(
            "INSERT INTO lexical_fts(lexical_fts, rowid, body, head) "
            "SELECT 'delete', id, body, head FROM lexical_chunks WHERE doc_id = ?",
            (doc_id,),
        )
        self.conn.execute("DELETE FROM lexical_chunks WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM lexical_docs WHERE doc_id = ?", (doc_id,))

    def _write(self, doc_id: str, content_hash: str, rows: list[_Row]) -> None:
        self.delete(doc_id)
        self.conn.executemany(
            "INSERT INTO lexical_chunks(chunk_id, doc_id, content_hash, page, fabrique, doc_type,"
            " year, visibility, territories, body, head) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (r.chunk_id, doc_id, content_hash, r.page, r.fabrique, r.doc_type, r.year,
                 r.visibility, r.territories, r.body, r.head)
                for r in rows
            ],
        )
        self.conn.execute(
            "INSERT INTO lexical_fts(rowid, body, head) "
            "SELECT id, body, head FROM lexical_chunks WHERE doc_id = ?",
            (doc_id,),
        )
        self.conn.execute(
            "INSERT INTO lexical_docs(doc_id, content_hash, chunks) VALUES (?, ?, ?)",
            (doc_id, content_hash, len(rows)),
        )

    # -- catching up with an index built before the lexical side existed ----------------

    def backfill(self, store: Any) -> int:
        """Index lexically the live documents that have no (or stale) lexical rows.

        An index built before this module, or written by an Ingestor without a lexical
        index, would otherwise stay invisible to BM25 forever: unchanged files are skipped
        by ingest. Passages come back from the vector store, so nothing is re-embedded.
        Rows of documents the registry no longer knows are dropped. Returns the number of
        documents (re)indexed. Call it under the ingest lock (the Ingestor does).
        """
        todo = self.conn.execute(
            "SELECT d.doc_id, d.sha256 FROM documents d LEFT JOIN lexical_docs l"
            " ON l.doc_id = d.doc_id WHERE d.status != 'failed' AND d.doc_id IS NOT NULL"
            " AND d.sha256 IS NOT NULL AND (l.content_hash IS NULL OR l.content_hash != d.sha256)"
        ).fetchall()
        orphans = self.conn.execute(
            "SELECT l.doc_id FROM lexical_docs l WHERE NOT EXISTS (SELECT 1 FROM documents d"
            " WHERE d.doc_id = l.doc_id AND d.status != 'failed')"
        ).fetchall()
        for (doc_id,) in orphans:
            with self._transaction():
                self.delete(doc_id)
        for doc_id, sha in todo:
            hits = store.get(where={"$and": [{"doc_id": doc_id}, {"content_hash": sha}]})
            rows = [_row(h.chunk_id, h.text, h.meta.get("page", 1), h.meta.get("section", ""), h.meta)
                    for h in hits]
            with self._transaction():
                live = self.conn.execute(
                    "SELECT 1 FROM documents WHERE doc_id = ? AND sha256 = ?", (doc_id, sha)
                ).fetchone()
                if live:  # re-checked inside the transaction: never index a superseded version
                    self._write(doc_id, sha, rows)
        return len(todo)

    # -- reads ---------------------------------------------------------------------------

    def count(self) -> int:
        """Passages indexed (from the per-document counts: no scan of 1M rows)."""
        row = self.conn.execute("SELECT coalesce(sum(chunks), 0) FROM lexical_docs").fetchone()
        return int(row[0])

    def plan(self, terms: list[str]) -> list[str]:
        """The query terms worth scoring, rarest first, within the cost budget.

        FTS5 computes bm25 for every passage that matches any term (about 1-2 µs each), so
        an OR of common words over a million passages would take seconds. Words found in
        more than half the passages get an IDF of ~0 in FTS5's bm25 and are dropped at no
        loss. Then terms are kept from the rarest while their passages add up to at most
        `max_postings`: the words left out are the most common, the ones BM25 weighs least
        (and the dense side covers). When even the rarest is that common, nothing is left:
        BM25 has nothing discriminating to add to this query.
        """
        total = self.count()
        dfs = []
        for term in terms:
            row = self.conn.execute("SELECT doc FROM lexical_vocab WHERE term = ?", (term,)).fetchone()
            df = int(row[0]) if row else 0
            if 0 < df and 2 * df <= total:
                dfs.append((df, term))
        kept: list[str] = []
        budget = self.max_postings
        for df, term in sorted(dfs):
            if df > budget:
                break
            kept.append(term)
            budget -= df
        return kept

    def passing(self, chunk_ids: list[str], **filters: Any) -> set[str]:
        """Which of these passages pass the filters (`_filter_sql`'s), by the labels kept here
        beside each one.

        Lets a dense search over-fetched without a filter be filtered locally: asking Chroma
        for the labels of a thousand results costs more than the search itself.
        """
        return set(self._filtered("chunk_id", chunk_ids, filters))

    def chunk_ids(self, doc_ids: list[str], **filters: Any) -> list[str]:
        """The passages of these documents that pass the filters (labels kept here).

        Lets a narrow filtered search ask Chroma for these ids only, instead of letting it
        scan every passage's metadata.
        """
        return list(self._filtered("doc_id", doc_ids, filters))

    def _filtered(self, column: str, values: list[str], filters: dict[str, Any]) -> Iterator[str]:
        """Chunk ids whose `column` is one of `values` and whose labels pass the filters."""
        where, fargs = _filter_sql(**filters)
        for start in range(0, len(values), 500):
            part = values[start:start + 500]
            marks = ",".join("?" * len(part))
            sql = (f"SELECT c.chunk_id FROM lexical_chunks c WHERE c.{column} IN ({marks})"
                   + "".join(f" AND {w}" for w in where))
            yield from (row[0] for row in self.conn.execute(sql, [*part, *fargs]))

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        fabrique: str | None = None,
        territories: list[str] | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        doc_type: str | None = None,
        visibility: str | None = None,
        exclude_fabrique: str | None = None,
    ) -> list[LexicalHit]:
        """Best `k` live passages by BM25 for any of the query's terms, filters applied in SQL."""
        if k <= 0:
            return []
        asked = list(dict.fromkeys(analyse(query)))[:_MAX_QUERY_TERMS]
        where, fargs = _filter_sql(fabrique, territories, year_from, year_to, doc_type, visibility,
                                   exclude_fabrique)
        terms = self.plan(asked)
        if terms:
            match = " OR ".join(f'"{t}"' for t in terms)  # terms are [a-z0-9]+: quoting is safe
            return self._ranked(match, where, fargs, k)
        # Only common words: passages holding all of the rarest ones, at most `max_postings`
        # of them scored (a bounded sample, not the whole collection), fewer words if none.
        common = self.rarest(asked)
        for n in range(min(3, len(common)), 0, -1):
            match = " AND ".join(f'"{t}"' for t in common[:n])
            found = self._ranked(match, where, fargs, k, bound=self.max_postings)
            if found:
                return found
        return []

    def rarest(self, terms: list[str]) -> list[str]:
        """The query's indexed terms, rarest first (for the common-words fallback)."""
        dfs = []
        for term in terms:
            row = self.conn.execute("SELECT doc FROM lexical_vocab WHERE term = ?", (term,)).fetchone()
            if row and int(row[0]) > 0:
                dfs.append((int(row[0]), term))
        return [t for _, t in sorted(dfs)]

    def _ranked(self, match: str, where: list[str], fargs: list[Any], k: int,
                bound: int | None = None) -> list[LexicalHit]:
        """Best `k` live passages by BM25 for an FTS5 query; with `bound`, only among the
        first `bound` passages that match it (a common query cannot score a million)."""
        clauses = ["lexical_fts MATCH ?", *where]
        args: list[Any] = [match, *fargs]
        if bound is not None:
            # FTS5 yields matches in rowid order and stops early with LIMIT; the sample is then
            # a rowid range, which it scans cheaply (a `rowid IN (…)` list would be one seek each)
            last = self.conn.execute(
                "SELECT max(rowid) FROM (SELECT rowid FROM lexical_fts WHERE lexical_fts MATCH ? LIMIT ?)",
                (match, int(bound))).fetchone()[0]
            if last is None:
                return []
            clauses.append("lexical_fts.rowid <= ?")
            args.append(int(last))
        rank = f"bm25(lexical_fts, 1.0, {HEAD_WEIGHT})"
        sql = (
            f"SELECT c.chunk_id, c.doc_id, c.page, {rank} AS r"
            " FROM lexical_fts JOIN lexical_chunks c ON c.id = lexical_fts.rowid"
            " JOIN documents d ON d.doc_id = c.doc_id AND d.sha256 = c.content_hash"
            " AND d.status != 'failed'"
            f" WHERE {' AND '.join(clauses)} ORDER BY r LIMIT ?"
        )
        args.append(int(k))
        return [
            LexicalHit(row[0], row[1], int(row[2]), -float(row[3]))
            for row in self.conn.execute(sql, args)
        ]
