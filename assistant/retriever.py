"""Find the passages that answer a question, within the user's filters and audience.

Filters (fabrique, territory, year or range, document type) and the audience rule
(`public` never sees `interne` documents) are enforced here, inside retrieval, on both the
dense and the lexical side, so no caller can forget them. Passages of a document version
that is no longer live (left by a crash mid-ingest) are dropped by comparing their hash
with the registry's.

`search` is hybrid: dense (e5 in Chroma) finds paraphrases, BM25 (`ingest.lexical`) finds
exact rare words (a place, an acronym like PCAET) that embeddings blur. Two fusions
(`FP_FUSION`): `rrf`, reciprocal rank fusion, which needs no score calibration; and
`relative` (the default), the mean of the two scores each min-max scaled over the
candidate pool, which keeps how far ahead a passage is, not just its rank. On the gold
set relative fusion puts the right document first more often (MRR 0.90 against 0.88 for
RRF, 0.90 for dense alone), with the same recall; `fp-assistant eval` reports both.
Then at most `per_doc` passages per document are kept so that several territories
surface instead of one long document filling the list. `dense` stays the dense-only
baseline the evaluation compares against.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ingest.errors import StoreError
from ingest.lexical import Lexical, LexicalHit, fold
from ingest.registry import Registry, active_hashes
from ingest.store import Hit, Store, meta_lists

RRF_K = 60  # the usual reciprocal-rank-fusion constant: flattens the head of each ranking
PER_DOC = 2  # default diversity cap (passages per document)
DENSE_WEIGHT = 0.5  # relative fusion: equal say to the dense and the lexical score
FUSIONS = ("relative", "rrf")


def other_fusion(fusion: str) -> str:
    """The fusion not in use, reported beside it by the evaluation."""
    return "rrf" if fusion != "rrf" else "relative"


@dataclass
class Filters:
    fabrique: str | None = None
    territory: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    doc_type: str | None = None
    # leave one fabrique out: how the assistant behaves on a fabrique it has never seen
    # (the held-out evaluation; not offered to users)
    exclude_fabrique: str | None = None

    @staticmethod
    def parse_year(value: str | None) -> tuple[int | None, int | None]:
        """'2019' → (2019, 2019); '2019-2021' → (2019, 2021); '' → (None, None)."""
        if not value:
            return None, None
        m = re.fullmatch(r"\s*(\d{4})\s*(?:[-–:]\s*(\d{4})\s*)?", str(value))
        if not m:
            raise ValueError(f"année invalide : {value!r} (attendu 2019 ou 2019-2021)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        return min(lo, hi), max(lo, hi)


@dataclass
class Passage:
    """One retrieved passage.

    `score` is always the cosine similarity of the passage to the query (also for passages
    only BM25 found), so a caller's relevance threshold means the same thing for `search`
    and `dense`; the order comes from `rank`. `fused` is the reciprocal-rank-fusion score,
    `bm25` the lexical score when BM25 matched, `rerank` the cross-encoder score when one
    is configured. (`lexical_search`, the BM25-only baseline, puts the BM25 score in `score`.)
    """

    rank: int
    chunk_id: str
    text: str
    score: float
    meta: dict[str, Any]
    fused: float = 0.0
    bm25: float | None = None
    rerank: float | None = None

    @property
    def source(self) -> str:
        return str(self.meta.get("source", ""))

    @property
    def page(self) -> int:
        return int(self.meta.get("page", 1))

    def as_json(self) -> dict[str, Any]:
        """The public `search --json` row."""
        m = self.meta
        return {
            "rank": self.rank,
            "source": self.source,
            "page": self.page,
            "score": round(self.score, 4),
            "text": self.text,
            "title": m.get("title", ""),
            "doc_id": m.get("doc_id", ""),
            "section": m.get("section", ""),
            "fabrique": m.get("fabrique", ""),
            "territories": list(m.get("territories") or []),
            "doc_type": m.get("doc_type", ""),
            "year": m.get("year"),
            "ocr": bool(m.get("ocr", False)),  # text recognised from a scanned page
        }


@lru_cache(maxsize=2)
def load_cross_encoder(path: str) -> Any:
    """Load a local CrossEncoder once per process (imports torch: only when configured)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise StoreError(f"Modèle de reclassement (FP_RERANKER) introuvable : {folder}")
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device="cpu", local_files_only=True)


def cap_per_document(
    items: list[Any], per_doc: int | None, k: int, doc_of: Callable[[Any], str]
) -> list[Any]:
    """The first `k` items with at most `per_doc` from one document, in order.

    The cap is for diversity, not to starve an answer: when the filters leave too few
    documents to fill `k`, the passages held back are appended (still in order).
    """
    if not per_doc:
        return items[:k]
    kept: list[Any] = []
    held: list[Any] = []
    seen: dict[str, int] = {}
    for item in items:
        doc = doc_of(item)
        if seen.get(doc, 0) < per_doc:
            seen[doc] = seen.get(doc, 0) + 1
            kept.append(item)
            if len(kept) == k:
                return kept
        else:
            held.append(item)
    return (kept + held)[:k]


def _cosine(a: Any, b: Any) -> float:
    va, vb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    return float(va @ vb) / (na * nb) if na and nb else 0.0


def rrf_fuse(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings a passage is in."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
    return fused


def relative_fuse(scores: list[dict[str, float]], weights: list[float]) -> dict[str, float]:
    """Weighted mean of min-max scaled scores (0 where a side did not find the passage).

    A cosine and a BM25 score live on different scales; scaling each over this query's
    candidates makes them comparable while keeping the gaps a rank would flatten.
    """
    fused: dict[str, float] = {}
    for side, weight in zip(scores, weights, strict=True):
        if not side:
            continue
        lo, hi = min(side.values()), max(side.values())
        for cid, value in side.items():
            scaled = (value - lo) / (hi - lo) if hi > lo else 1.0
            fused[cid] = fused.get(cid, 0.0) + weight * scaled
    return fused


# --------------------------------------------------------------------------- territory names

# The kind of an intercommunality in front of its name: « CU d'Arras », « Communauté
# d'agglomération du Grand Angoulême », « CC du Val de Brume », « Lorient Agglomération ».
_EPCI_KIND = re.compile(
    r"^(?:communaute (?:urbaine|d agglomeration|de communes)|metropole|eurometropole"
    r"|etablissement public territorial|agglomeration|agglo|cu|ca|cc|ept)"
    r"(?: (?:de la|de l|du|des|de|d|l))? "
)
_EPCI_TAIL = re.compile(r" (?:agglomeration|agglo|metropole|communaute)$")


def territory_key(name: str) -> str:
    """Folded, hyphens, apostrophes and spaces alike: « Saint-Ouen » = « saint ouen »."""
    return re.sub(r"[\s\-–—'’_.]+", " ", fold(name)).strip()


def territory_core(name: str) -> str:
    """The key without an intercommunality's kind: « CU d'Arras » → « arras ».

    What two labels of the same place share when no gazetteer knows them. « Grand » stays:
    « Grand Reims » is not the commune of Reims.
    """
    key = territory_key(name)
    core = _EPCI_TAIL.sub("", _EPCI_KIND.sub("", key))
    return core or key


@lru_cache(maxsize=1)
def place_gazetteer() -> Any | None:
    """The territorial gazetteer (`ingest.gazetteer`, official names of communes and EPCI),
    or None when this installation lacks it or its data cannot be read: matching then falls
    back to folded names and their core (`territory_core`)."""
    try:
        from ingest.gazetteer import Gazetteer
    except ImportError:
        return None
    try:
        return Gazetteer.default()
    except Exception:  # noqa: BLE001 - a broken data file only loses the official names
        return None


def same_territory(a: str, b: str) -> bool:
    """Do two names denote the same territory (or one the intercommunality of the other)?

    The gazetteer knows « Arras » ↔ « CU d'Arras » from the official map and never pairs
    two sibling communes. The core rule (names that are the same once the
    intercommunality's kind is removed: « Communauté de communes du Val de Brume » ↔ « Val
    de Brume ») also holds for the spellings users type and the data lacks (« communaute
    urbaine d arras »), and is all there is without the gazetteer.
    """
    if territory_key(a) == territory_key(b):
        return True
    core_a = territory_core(a)
    if core_a and core_a == territory_core(b):
        return True
    gz = place_gazetteer()
    if gz is None:
        return False
    try:
        return bool(gz.same_territory(a, b))
    except Exception:  # noqa: BLE001 - an odd name must not break a search
        return False


@dataclass
class TerritoryMatch:
    """How a typed name matches the indexed territory names.

    `exact`: same name once folded; `same`: another name of the same territory (gazetteer,
    core name, or a caller's alias); `partial`: names with a word starting with what was
    typed, used only when nothing else matched and they all denote one territory
    (`ambiguous` otherwise).
    """

    exact: list[str] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    ambiguous: bool = False

    @property
    def names(self) -> list[str]:
        """Every indexed name a filter should accept (empty when none, or ambiguous)."""
        if self.exact or self.same:
            return list(dict.fromkeys(self.exact + self.same))
        return [] if self.ambiguous else list(self.partial)


def match_territory(name: str, known: list[str], aliases: dict[str, str] | None = None) -> TerritoryMatch:
    """Match what the user typed to the indexed territory names (`known`).

    Folded equality first; then every known name the gazetteer (or the core rule) says is
    the same territory, plus `aliases` (folded key → indexed name); then, only when both
    found nothing, the names with a word starting with the typed text: accepted when they
    are one territory (« lorien » → « Lorient »), refused as ambiguous otherwise (« Saint »),
    so a filter never widens to sibling communes.
    """
    match = TerritoryMatch()
    want = territory_key(name)
    if not want:
        return match
    match.exact = [t for t in known if territory_key(t) == want]
    alias = (aliases or {}).get(want)
    match.same = [alias] if alias in known and alias not in match.exact else []
    # the indexed spelling of an exact match is the gazetteer's best clue (typed « cu d arras »)
    probes = list(dict.fromkeys([name, *match.exact]))
    match.same += [t for t in known if t not in match.exact and t != alias
                   and any(same_territory(q, t) for q in probes)]
    if match.exact or match.same:
        return match
    starts = re.compile(rf"(?<!\w){re.escape(want)}")  # from a word's start: « rras » is not Arras
    match.partial = [t for t in known if starts.search(territory_key(t))]
    first = match.partial[0] if match.partial else ""
    match.ambiguous = any(not same_territory(first, t) for t in match.partial[1:])
    return match


def near_territories(name: str, known: Sequence[str], n: int = 5) -> list[str]:
    """Indexed territory names close to a mistyped one (« Colmer » → Colmar), closest first."""
    keyed = {territory_key(t): t for t in known}
    return [keyed[k] for k in difflib.get_close_matches(territory_key(name), list(keyed), n=n, cutoff=0.6)]


class Retriever:
    """Dense, lexical and hybrid search over one index, for one audience.

    `lexical` defaults to the BM25 index in the registry's SQLite file; `reranker` is a
    local CrossEncoder folder (default: the `FP_RERANKER` setting, empty = none); `per_doc`
    caps passages per document in `search` (None = no cap); `fusion` is `relative` or `rrf`
    (default: the `FP_FUSION` setting).
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        embeddings: Embeddings,
        audience: str = "interne",
        lexical: Lexical | None = None,
        reranker: str | None = None,
        per_doc: int | None = PER_DOC,
        fusion: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.embeddings = embeddings
        self.audience = audience
        self.lexical = lexical if lexical is not None else Lexical(registry.conn)
        if reranker is None or fusion is None:
            from assistant.config import get_settings

            settings = get_settings()
            reranker = settings.reranker if reranker is None else reranker
            fusion = settings.fusion if fusion is None else fusion
        if fusion not in FUSIONS:
            raise ValueError(f"fusion inconnue : {fusion!r} (attendu {' ou '.join(FUSIONS)})")
        self.reranker = reranker or ""
        self.per_doc = per_doc
        self.fusion = fusion
        self._territories: tuple[tuple[int, int], list[str]] | None = None
        self._resolved: dict[str, list[str]] = {}

    def own_territories(self, fabrique: str) -> list[str]:
        """The territories of a fabrique that have documents of their own (reports, roadmaps)
        this audience may see, most passages first."""
        counts: dict[str, int] = {}
        for (fab, doc_type, _year, visibility, terrs), (chunks, _docs) in _label_sets(self.registry).items():
            if fab != fabrique or (self.audience == "public" and visibility != "public"):
                continue
            terr = own_territory({"territories": list(terrs), "doc_type": doc_type})
            if terr:
                counts[terr] = counts.get(terr, 0) + chunks
        return sorted(counts, key=lambda t: (-counts[t], t))

    def known_territories(self) -> list[str]:
        """Territory names of the documents this audience may see, re-read only when the
        registry changed (a filtered search resolves the name twice, once per side).

        Public mode leaves out the territories only internal documents carry: the draft's
        « territoire inconnu » suggestions must not reveal them.
        """
        version = self.registry.conn.total_changes, self._data_version()
        if self._territories is None or self._territories[0] != version:
            names: set[str] = set()
            for rec in self.registry.all():
                if rec.status == "failed":
                    continue
                if self.audience == "public" and rec.meta.get("visibility", "public") != "public":
                    continue
                names.update(str(t) for t in rec.meta.get("territories") or [])
            self._territories = (version, sorted(names))
            self._resolved = {}
        return self._territories[1]

    def filter_share(self, filters: Filters | None) -> float | None:
        """The share of the collection's passages a filter (with this audience's rule) keeps,
        estimated from the registry.

        It lets `Store.search_filtered` post-filter an unfiltered search when the filter is
        broad (cheap) instead of letting Chroma scan metadata first (slow at scale). Only an
        estimate: a wrong one costs time, never results (the store falls back to its own
        filter). Passage counts per distinct label set are kept per registry state, shared by
        the retrievers of a process (the service builds one per request).
        """
        if self.where(filters) is None:
            return None
        sets = _label_sets(self.registry)
        return _share(sets, self._passing_label_sets(filters, sets))

    def _passing_label_sets(self, filters: Filters | None, sets: _Labels) -> list[tuple[Any, ...]]:
        """The registry's label sets that the filters and this audience's rule keep."""
        f = filters or Filters()
        names = set(self.resolve_territory(f.territory)) if f.territory else None
        return [
            key for key in sets
            if not ((self.audience == "public" and key[3] != "public")
                    or (f.fabrique and key[0] != f.fabrique) or (f.doc_type and key[1] != f.doc_type)
                    or (f.exclude_fabrique and key[0] == f.exclude_fabrique)
                    or (f.year_from is not None and (key[2] is None or key[2] < f.year_from))
                    or (f.year_to is not None and (key[2] is None or key[2] > f.year_to))
                    or (names is not None and not names & set(key[4])))
        ]

    def _dense(self, vector: list[float], k: int, filters: Filters | None) -> list[Hit]:
        """Nearest passages within the filters (and the audience rule), by the route the
        store finds cheaper for this filter's share of the collection.

        The label sets the filter keeps give both its share and, for a narrow filter, the
        documents whose passages Chroma should search (read through the lexical table's
        doc_id index, not by a scan of the collection).
        """
        where = self.where(filters)
        if where is None:
            return self.store.search(vector, k)
        sets = _label_sets(self.registry)
        keys = self._passing_label_sets(filters, sets)
        lexical = self.lexical_filters(filters)
        return self.store.search_filtered(
            vector, k, where, _share(sets, keys),
            passing=lambda ids: self.lexical.passing(ids, **lexical),
            allowed=lambda: self.lexical.chunk_ids(_documents(sets, keys), **lexical),
        )

    def _data_version(self) -> int:
        """SQLite's counter of commits by other connections (another process's ingest)."""
        return int(self.registry.conn.execute("PRAGMA data_version").fetchone()[0])

    def resolve_territory(self, name: str) -> list[str]:
        """The indexed names that denote the territory the user typed.

        « Arras » finds the documents labelled « CU d'Arras » or « Communauté urbaine
        d'Arras » and the reverse (see `match_territory`); never a sibling commune. A name
        that matches nothing stays as typed, so the filter finds nothing rather than
        everything. Memoised per registry version: the gazetteer is asked once per name.
        """
        known = self.known_territories()
        if name not in self._resolved:
            self._resolved[name] = match_territory(name, known).names or [name]
        return list(self._resolved[name])

    def where(self, filters: Filters | None) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        f = filters or Filters()
        if self.audience == "public":
            clauses.append({"visibility": "public"})
        if f.fabrique:
            clauses.append({"fabrique": f.fabrique})
        if f.doc_type:
            clauses.append({"doc_type": f.doc_type})
        if f.exclude_fabrique:
            clauses.append({"fabrique": {"$ne": f.exclude_fabrique}})
        if f.year_from is not None:
            clauses.append({"year": {"$gte": f.year_from}})
        if f.year_to is not None:
            clauses.append({"year": {"$lte": f.year_to}})
        if f.territory:
            names = self.resolve_territory(f.territory)
            ors = [{"territories": {"$contains": n}} for n in names]
            clauses.append(ors[0] if len(ors) == 1 else {"$or": ors})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def live(self, hits: list[Hit]) -> list[Hit]:
        """Drop passages of versions the registry no longer points to."""
        hashes = active_hashes(self.registry.conn, sorted({h.meta.get("doc_id", "") for h in hits}))
        return [h for h in hits if hashes.get(h.meta.get("doc_id")) == h.meta.get("content_hash")]

    def lexical_filters(self, filters: Filters | None) -> dict[str, Any]:
        """The same filters and audience rule as `where`, as `Lexical.search` arguments."""
        f = filters or Filters()
        return {
            "fabrique": f.fabrique,
            "doc_type": f.doc_type,
            "year_from": f.year_from,
            "year_to": f.year_to,
            "territories": self.resolve_territory(f.territory) if f.territory else None,
            "visibility": "public" if self.audience == "public" else None,
            "exclude_fabrique": f.exclude_fabrique,
        }

    def _fetch(self, ids: list[str], vectors: bool = False) -> dict[str, tuple[Hit, Any]]:
        """Text, metadata (and vector) of passages by id, live versions only."""
        if not ids:
            return {}
        include = ["documents", "metadatas", "embeddings"] if vectors else ["documents", "metadatas"]
        res = self.store.collection.get(ids=ids, include=include)
        embs = res.get("embeddings") if vectors else None
        rows: dict[str, tuple[Hit, Any]] = {}
        for i, cid in enumerate(res["ids"]):
            hit = Hit(cid, res["documents"][i] or "", meta_lists(res["metadatas"][i] or {}), 0.0)
            rows[cid] = (hit, embs[i] if embs is not None else None)
        live = {h.chunk_id for h in self.live([h for h, _ in rows.values()])}
        return {cid: row for cid, row in rows.items() if cid in live}

    def lexical_search(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Passage]:
        """BM25 only (the lexical baseline); `score` and `bm25` are the BM25 score."""
        found = self.lexical.search(query, k, **self.lexical_filters(filters))
        rows = self._fetch([h.chunk_id for h in found])
        out = [(h, rows[h.chunk_id][0]) for h in found if h.chunk_id in rows]
        return [
            Passage(i + 1, hit.chunk_id, hit.text, lh.score, hit.meta, bm25=lh.score)
            for i, (lh, hit) in enumerate(out)
        ]

    def dense(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Passage]:
        """Dense only (the baseline): nearest e5 passages, no fusion, no diversity cap."""
        vector = self.embeddings.embed_query(query)
        hits = self.live(self._dense(vector, k * 2 + 5, filters))[:k]
        return [Passage(i + 1, h.chunk_id, h.text, h.score, h.meta) for i, h in enumerate(hits)]

    def search(self, query: str, k: int = 10, filters: Filters | None = None, *,
               per_doc: int | None | str = "default", fusion: str | None = None) -> list[Passage]:
        """Hybrid: dense + BM25 fused (`fusion`, default the retriever's), optionally reranked,
        at most `per_doc` passages per document (default the retriever's; None = no cap)."""
        if k <= 0:
            return []
        cap = self.per_doc if per_doc == "default" else per_doc
        fusion = fusion or self.fusion
        pool = max(4 * k, 40)
        vector = self.embeddings.embed_query(query)
        dense_hits = self.live(self._dense(vector, pool, filters))
        lexical_hits: list[LexicalHit] = self.lexical.search(
            query, pool, **self.lexical_filters(filters)
        )
        bm25 = {h.chunk_id: h.score for h in lexical_hits}
        if fusion == "rrf":
            fused = rrf_fuse([[h.chunk_id for h in dense_hits], [h.chunk_id for h in lexical_hits]])
        else:
            fused = relative_fuse([{h.chunk_id: h.score for h in dense_hits}, bm25],
                                  [DENSE_WEIGHT, 1.0 - DENSE_WEIGHT])
        cands: dict[str, Passage] = {
            h.chunk_id: Passage(0, h.chunk_id, h.text, h.score, h.meta) for h in dense_hits
        }
        missing = [cid for cid in bm25 if cid not in cands]
        for cid, (hit, vec) in self._fetch(missing, vectors=True).items():
            score = _cosine(vector, vec) if vec is not None else 0.0
            cands[cid] = Passage(0, cid, hit.text, score, hit.meta)
        for cid, p in cands.items():
            p.fused = fused[cid]
            p.bm25 = bm25.get(cid)
        ordered = sorted(cands.values(), key=lambda p: (-p.fused, -p.score, p.chunk_id))
        if self.reranker:
            ordered = self._rerank(query, ordered, max(3 * k, 20))
        top = cap_per_document(ordered, cap, k, lambda p: str(p.meta.get("doc_id", "")))
        for i, p in enumerate(top, start=1):
            p.rank = i
        return top

    def neighbours(self, passages: list[Passage], top: int = 5) -> list[Passage]:
        """The passages just before and after the `top` first ones in their document.

        The chunker cuts a list or an argument where the size says, not where the meaning
        ends: the items announced at the end of one passage are often in the next. Same
        document, same version, so the same filters and audience rule already hold.
        """
        have = {p.chunk_id for p in passages}
        clauses = []
        for p in passages[:top]:
            idx = p.meta.get("chunk_index")
            if idx is None:
                continue
            clauses.append({"$and": [{"doc_id": p.meta.get("doc_id", "")},
                                     {"content_hash": p.meta.get("content_hash", "")},
                                     {"chunk_index": {"$in": [int(idx) - 1, int(idx) + 1]}}]})
        if not clauses:
            return []
        found = self.store.get(where=clauses[0] if len(clauses) == 1 else {"$or": clauses})
        hits = [h for h in found if h.chunk_id not in have]
        source = {(p.meta.get("doc_id"), p.meta.get("chunk_index")): p for p in passages[:top]}
        out = []
        for h in self.live(hits):
            idx = int(h.meta.get("chunk_index", 0))
            near = source.get((h.meta.get("doc_id"), idx - 1)) or source.get((h.meta.get("doc_id"), idx + 1))
            # ranked just after the passage it continues, a little below it
            fused = 0.9 * near.fused if near else 0.0
            out.append(Passage(0, h.chunk_id, h.text, near.score if near else 0.0, h.meta, fused=fused))
        out.sort(key=lambda p: (-p.fused, p.chunk_id))
        return out

    def _rerank(self, query: str, ordered: list[Passage], n: int) -> list[Passage]:
        """Reorder the fused head with the cross-encoder; the tail keeps its fused order."""
        head, tail = ordered[:n], ordered[n:]
        if not head:
            return ordered
        scores = load_cross_encoder(self.reranker).predict([(query, p.text) for p in head])
        for p, s in zip(head, scores, strict=True):
            p.rerank = float(s)
        return sorted(head, key=lambda p: -(p.rerank or 0.0)) + tail


_Labels = dict[tuple[Any, ...], tuple[int, list[str]]]
_LABELS: dict[str, tuple[tuple[Any, ...], _Labels]] = {}
_LABELS_LOCK = threading.Lock()


def _label_sets(registry: Registry) -> _Labels:
    """Live passages and documents per (fabrique, type, year, visibility, territories), per
    registry state."""
    conn = registry.conn
    path = str(conn.execute("PRAGMA database_list").fetchone()[2])
    state = tuple(conn.execute(
        "SELECT count(*), max(ingested_at), total(chunks) FROM documents WHERE status != 'failed'"
    ).fetchone())
    with _LABELS_LOCK:
        cached = _LABELS.get(path)
        if cached and cached[0] == state:
            return cached[1]
    sets: _Labels = {}
    for rec in registry.all():
        if rec.status == "failed":
            continue
        m = rec.meta
        year = m.get("year") if isinstance(m.get("year"), int) else None
        key = (str(m.get("fabrique") or ""), str(m.get("doc_type") or ""), year,
               str(m.get("visibility") or "public"),
               tuple(sorted(str(t) for t in m.get("territories") or [])))
        chunks, docs = sets.get(key, (0, []))
        if rec.doc_id:
            docs.append(rec.doc_id)
        sets[key] = (chunks + int(rec.chunks or 0), docs)
    with _LABELS_LOCK:
        _LABELS[path] = (state, sets)
    return sets


def _share(sets: _Labels, keys: list[tuple[Any, ...]]) -> float | None:
    """The share of all live passages (what an unfiltered search runs over) in these sets."""
    total = sum(chunks for chunks, _docs in sets.values())
    return sum(sets[key][0] for key in keys) / total if total else None


def _documents(sets: _Labels, keys: list[tuple[Any, ...]]) -> list[str]:
    return [doc for key in keys for doc in sets[key][1]]


def _label_counts(registry: Registry) -> dict[tuple[Any, ...], int]:
    """Live passages per (fabrique, type, year, visibility, territories), per registry state."""
    return {key: chunks for key, (chunks, _docs) in _label_sets(registry).items()}


# Kinds of document that speak for the whole fabrique, even when their metadata list one territory
# (the senior fabrique's synthesis is filed under Jonzac alone but sums up all its towns).
FABRIQUE_WIDE = frozenset({"seminaire_intersites", "publication", "cahier_des_charges"})


def own_territory(meta: dict[str, Any]) -> str | None:
    """The territory a document belongs to: its only territory, unless it speaks for the whole
    fabrique by its kind (synthesis, publication, terms of reference)."""
    terrs = [str(t).strip() for t in meta.get("territories") or [] if str(t).strip()]
    if len(terrs) == 1 and meta.get("doc_type") not in FABRIQUE_WIDE:
        return terrs[0]
    return None


def compare_context(retriever: Retriever, question: str, filters: Filters | None, settings: Any,
                    k: int | None = None) -> list[Passage]:
    """The passages a comparison is read from: those of an answer, plus, for every territory of
    the fabriques that answer (those of the best `compare_scope` passages; the ones the
    question names, if it names some), the best passages of its own documents
    (`compare_per_territory`), when none was read.

    A comparison asks how each territory did; one search ranks by closeness to the question,
    so a synthesis that sums up every site, or the one roadmap that uses the question's words,
    fills the list and the other territories get no row although their reports speak of the
    theme in their own words.
    """
    passages = answer_context(retriever, question, filters, settings, k)
    base = filters or Filters()
    if base.territory or settings.compare_per_territory <= 0:
        return passages  # one territory asked: nothing to compare it with
    fabriques = [base.fabrique] if base.fabrique else list(dict.fromkeys(
        str(p.meta.get("fabrique") or "") for p in passages[:settings.compare_scope]))
    have = {p.chunk_id for p in passages}
    read = {own_territory(p.meta) for p in passages} - {None}
    extra: list[Passage] = []
    asked = f" {territory_key(question)} "
    for fabrique in (f for f in fabriques if f):
        sites = retriever.own_territories(fabrique)
        # « … à Lorient et à Colmar ? »: the territories the question names, not all of them
        named = [t for t in sites if f" {territory_core(t)} " in asked]
        for terr in named or sites:
            if terr in read:
                continue
            # the fabrique's syntheses name every territory: at most `compare_per_territory`
            # passages per document leaves room for the territory's own reports
            found = retriever.search(question, k=4 * settings.compare_per_territory + 4,
                                     per_doc=settings.compare_per_territory,
                                     filters=Filters(**{**base.__dict__, "fabrique": fabrique,
                                                        "territory": terr}))
            own = [p for p in found if own_territory(p.meta) == terr and p.chunk_id not in have]
            for p in own[:settings.compare_per_territory]:
                # ranked by another search: its fused score says nothing beside the others'
                p.fused = 0.0
                have.add(p.chunk_id)
                extra.append(p)
            read.add(terr)
    for i, p in enumerate(passages + extra, start=1):
        p.rank = i
    return passages + extra


def answer_context(retriever: Retriever, question: str, filters: Filters | None, settings: Any,
                   k: int | None = None) -> list[Passage]:
    """The passages an answer is read from: more of them, and up to `answer_per_doc` per
    document, than a search list shows, because the sentence that answers is often the
    third passage of the right document (a list of results wants variety, an answer wants
    the evidence); plus the passages around the `answer_neighbours` best ones."""
    passages = retriever.search(question, k=k or settings.answer_k, filters=filters,
                                per_doc=settings.answer_per_doc)
    extra = retriever.neighbours(passages, settings.answer_neighbours) if settings.answer_neighbours else []
    for i, p in enumerate(passages + extra, start=1):
        p.rank = i
    return passages + extra
