"""Fiches fabriques (issue #27): one card per fabrique, every value with the sentence that says it.

A card is what a user reads before asking anything: the fabrique's title, its edition, the
territories it accompanied, who ran it and who joined. Users bring documents nobody here has
seen, so nothing on a card may be guessed: each value is found in the indexed text and carries
its evidence (document, page, the sentence verbatim); a field without evidence stays empty; when
documents disagree (« Caisse des dépôts » here, « Banque des Territoires » there) both values are
shown, each with its own source.

Two steps, as everywhere the code decides on text:

- **candidates** come from general French cues (« accompagné par », « en partenariat avec »,
  « le cabinet », « Territoires accompagnés »), the official map of territories
  (`ingest.gazetteer`) and short reference lists of national bodies that are public knowledge
  (associations of élus, national operators). This step over-generates on purpose;
- **the choice** among candidates is a small logistic model per field, fitted on labelled rows
  by `assistant.evaluation.cards` (`fp-assistant eval --cards --fit`), its weights saved in
  `ingest/data/cards_model.json`, its threshold set for precision on held-out fabriques. A
  field without a fitted model stays empty rather than fall back on a rule.

Lessons are the exception: no truth exists to fit them, so they are the fabrique's own sentences
that say they are lessons (« enseignement », « retenir », « leçon ») in its publication or
synthesis documents, quoted as they are, never summarised.

Cards are built from the index alone (registry + passages), by text scanning only: no model is
embedded or called, so building them costs little beside an ingest run's embedding. They are
written atomically to `<store>/cards.json` at the end of every ingest run that changed something.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ingest.linear import LinearModel

VERSION = 1
CARDS_NAME = "cards.json"
MODEL_FILE = Path(__file__).resolve().parent / "data" / "cards_model.json"
FIELDS = ("title", "theme", "year", "period", "territories", "prestataires", "associations", "partners",
          "lessons")
FITTED_FIELDS = ("title", "year", "period", "territories", "prestataires", "associations", "partners")
SINGLE_VALUED = ("title", "year", "period")
MAX_EVIDENCE = 3  # sentences kept per value (the most telling first)
MAX_LESSONS = 5
MAX_SINGLE = 2  # a single-valued field shows at most this many disagreeing values

# ----------------------------------------------------------------------------- text


def fold(text: str) -> str:
    """Lowercase, accents removed, apostrophes straightened: how names are compared."""
    text = unicodedata.normalize("NFKD", text.lower().replace("œ", "oe").replace("æ", "ae"))
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


def key_of(text: str) -> str:
    """The folded words of a name, single-spaced: « Banque des Territoires » → 'banque des territoires'."""
    return " ".join(re.findall(r"[a-z0-9]+", fold(text)))


@dataclass
class DocInfo:
    doc_id: str
    title: str
    source: str
    doc_type: str
    year: int | None
    visibility: str
    fabrique: str
    sha: str = ""


@dataclass
class Sentence:
    doc: DocInfo
    page: int
    text: str
    section: str
    first: bool = False  # on the document's first page, before any section heading of its own

    @property
    def key(self) -> str:
        return f" {key_of(self.text)} "

    def evidence(self) -> dict[str, Any]:
        d = self.doc
        return {"doc_id": d.doc_id, "title": d.title, "source": d.source, "page": self.page,
                "sentence": self.text, "visibility": d.visibility}


_SENT_END = re.compile(r"(?<=[.!?…])\s+(?=[«\"“(A-ZÀ-ÖØ-Þ0-9])")


def _overlap(left: str, right: str, most: int = 400) -> int:
    """How many leading characters of `right` repeat the end of `left` (the chunker's overlap)."""
    for k in range(min(most, len(right), len(left)), 11, -1):
        if left.endswith(right[:k]):
            return k
    return 0


def page_sentences(doc: DocInfo, chunks: Sequence[tuple[int, int, str, str]]) -> list[Sentence]:
    """Sentences of a document from its passages (page, index, section, text), the chunker's
    overlaps removed so each sentence is quoted once and whole, as the page says it."""
    out: list[Sentence] = []
    pages: dict[int, list[tuple[int, str, str]]] = {}
    for page, index, section, text in chunks:
        pages.setdefault(page, []).append((index, section, text))
    for page in sorted(pages):
        segments: list[tuple[str, str]] = []  # (section, text) with the overlaps cut
        for _, section, text in sorted(pages[page]):
            if segments:
                cut = _overlap(segments[-1][1], text)
                text = text[cut:]
                if cut and segments[-1][0] == section:
                    segments[-1] = (section, segments[-1][1] + text)
                    continue
            segments.append((section, text))
        for section, text in segments:
            for line in text.split("\n"):
                for s in _SENT_END.split(line.strip()):
                    s = s.strip()
                    if len(s) >= 3 and any(c.isalpha() for c in s):
                        out.append(Sentence(doc, page, s, section, first=page == 1))
    return out


# ----------------------------------------------------------------------------- reading the index


@dataclass
class Corpus:
    """The text of the fabriques' documents, as the index holds it."""

    docs: dict[str, list[DocInfo]] = field(default_factory=dict)  # fabrique id → documents
    sentences: dict[str, list[Sentence]] = field(default_factory=dict)  # doc_id → sentences


def _registry_docs(store_dir: Path) -> list[DocInfo]:
    path = Path(store_dir) / "index.sqlite3"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT doc_id, sha256, meta FROM documents WHERE status != 'failed'"
                            " AND doc_id IS NOT NULL ORDER BY path").fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()
    out = []
    for doc_id, sha, meta_json in rows:
        m = json.loads(meta_json) if meta_json else {}
        if not m.get("fabrique"):
            continue
        year = m.get("year")
        out.append(DocInfo(doc_id, str(m.get("title") or doc_id), str(m.get("source") or ""),
                           str(m.get("doc_type") or "autre"), int(year) if isinstance(year, int) else None,
                           str(m.get("visibility") or "public"), str(m["fabrique"]), sha or ""))
    return out


def _open_collection(store_dir: Path, collection: str) -> Any:
    from ingest.store import make_client

    client = make_client(Path(store_dir))
    try:
        return client.get_collection(collection)
    except Exception:  # noqa: BLE001 - no collection: no passages, no cards
        return None


def read_corpus(store_dir: Path, store: Any = None, collection: str = "fp_passages",
                only: Iterable[str] | None = None) -> Corpus:
    """Documents grouped by fabrique, with their sentences read from the passage store
    (the live version only: passages of a replaced version that a crash left are skipped)."""
    corpus = Corpus()
    wanted = set(only) if only is not None else None
    docs = [d for d in _registry_docs(store_dir) if wanted is None or d.fabrique in wanted]
    for d in docs:
        corpus.docs.setdefault(d.fabrique, []).append(d)
    coll = store.collection if store is not None else _open_collection(store_dir, collection)
    if coll is None:
        return corpus
    for d in docs:
        res = coll.get(where={"doc_id": d.doc_id}, include=["documents", "metadatas"])
        chunks = []
        for text, meta in zip(res["documents"], res["metadatas"], strict=True):
            meta = meta or {}
            if d.sha and meta.get("content_hash") not in (None, d.sha):
                continue
            chunks.append((int(meta.get("page") or 1), int(meta.get("chunk_index") or 0),
                           str(meta.get("section") or ""), text or ""))
        corpus.sentences[d.doc_id] = page_sentences(d, chunks)
    return corpus


# ----------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    """One value a field could take, the sentences that state it, and what the model reads."""

    field: str
    value: str
    key: str
    evidence: list[Sentence] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    cues: int = 0  # evidence sentences where a cue of the field introduces it

    def add(self, s: Sentence, cue: bool = False) -> None:
        if not any(e.text == s.text and e.doc.doc_id == s.doc.doc_id for e in self.evidence):
            self.evidence.append(s)
        self.cues += int(cue)


_CDC = ("cahier_des_charges",)
_SYNTH = ("publication", "seminaire_intersites")
_LOCAL = ("seminaire_local", "feuille_de_route")


def _doc_features(ev: Sequence[Sentence], n_docs: int) -> dict[str, float]:
    """Where the value is said: how many documents, of which kinds, how early."""
    docs = {s.doc.doc_id: s.doc for s in ev}
    return {
        "doc_share": len(docs) / max(1, n_docs),
        "log_docs": math.log1p(len(docs)),
        "log_sent": math.log1p(len(ev)),
        "in_cdc": float(any(d.doc_type in _CDC for d in docs.values())),
        "in_synth": float(any(d.doc_type in _SYNTH for d in docs.values())),
        "in_local": float(any(d.doc_type in _LOCAL for d in docs.values())),
        "first_page": float(any(s.first for s in ev)),
    }


# --- title ------------------------------------------------------------------------------


def title_candidates(sents: Sequence[Sentence], n_docs: int) -> list[Candidate]:
    from ingest.fabriques import named_fabriques

    by: dict[str, Candidate] = {}
    for s in sents:
        if "fabrique" not in s.key:
            continue
        for name in named_fabriques(s.text):
            k = key_of(name)
            if len(k) < 8:
                continue
            c = by.setdefault(k, Candidate("title", name, k))
            c.add(s, cue="«" in s.text)
    out = list(by.values())
    most = max((len({e.doc.doc_id for e in c.evidence}) for c in out), default=1)
    longest = max((len(c.key.split()) for c in out), default=1)
    for c in out:
        f = _doc_features(c.evidence, n_docs)
        nd = len({e.doc.doc_id for e in c.evidence})
        words = len(c.key.split())
        f.update({
            "rel_docs": nd / max(1, most),
            "quoted": c.cues / max(1, len(c.evidence)),
            "question": float(c.value.rstrip().endswith("?")),
            # a title is written as a name (capital or quotes); « une Fabrique consacrée aux
            # mutations des modes… » describes the subject in lower case
            "as_name": sum(_written_as_name(c.value, e.text) for e in c.evidence) / max(1, len(c.evidence)),
            "log_words": math.log1p(words),
            "rel_words": words / max(1, longest),
        })
        c.features = f
    return out


def _written_as_name(value: str, text: str) -> bool:
    """Whether the sentence writes the name's first word with its capital (or after a quote)."""
    first = value.split()[0] if value.split() else ""
    return bool(first) and bool(re.search(rf"(?:^|[«\"“]\s*|\s){re.escape(first)}\b", text))


# --- year and period ---------------------------------------------------------------------

_MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
           "novembre", "decembre")
_MONTH_RE = "|".join(_MONTHS)
_YEAR_RE = re.compile(r"\b(20[12]\d)\b")
_LAUNCH_NEAR = re.compile(r"\b(?:lance\w*|lancement|demarr\w*|edition|consultation|notifi\w*|cadrage|"
                          r"appel a \w+|ouverture|debut\w*|conduite? (?:de|en|des)|menee? (?:de|en))\W+"
                          r"(?:[\w']+\W+){0,4}?(20[12]\d)")
# A launch said of something else than the fabrique (« Le programme Territoires d'industrie, lancé
# fin 2018 », « l'Agenda rural adopté en 2019 ») dates that thing, not the fabrique's edition.
_OTHER_SUBJECT = re.compile(r"\b(?:programme|plan|loi|agenda|strategie|dispositif|contrat|pacte|enquete|"
                            r"reforme|politique|schema|appel a projets)\b")
_OWN_SUBJECT = re.compile(r"\b(?:fabriques?|consultation|mission|demarche|prestation|marche|"
                          r"accompagnement)\b")
# A calendar line that dates the start: « Octobre 2019 : notification et cadrage. »,
# « Octobre 2020 : lancement de la Fabrique ».
_CALENDAR_START = re.compile(r"^(?:[\w'-]+\s+){0,3}?(20[12]\d)\s*[:–—-]\s*(?:\w+\s+){0,2}?"
                             r"(?:lancement|notification|cadrage|demarrage|reunion de lancement)\b")


def _launched(folded: str) -> set[str]:
    """The years a sentence says the fabrique was launched, started or notified in: a launch
    cue before the year whose clause is not about another programme, or a calendar line that
    opens with the date of the start."""
    out = set()
    for m in _LAUNCH_NEAR.finditer(folded):
        clause = re.split(r"[.;:!?]", folded[:m.start()])[-1]
        if _OTHER_SUBJECT.search(clause) and not _OWN_SUBJECT.search(clause):
            continue
        out.add(m.group(1))
    m = _CALENDAR_START.match(folded)
    if m:
        out.add(m.group(1))
    return out


_EDITION_CUE = re.compile(r"\b(lancee?s?|lancement|edition|conduite?s?|deroule|demarre|debute|promotion|"
                          r"laureats?|retenus?|appel a (?:candidatures|manifestation)|fabriques?)\b")
_QUAL = {"printemps": 4, "ete": 7, "automne": 10, "hiver": 1, "debut": 1, "fin": 12, "mi": 6}
_WHEN = (rf"(?:l'|le |la |(?:debut|fin|mi)[- ](?:de |d')?)?"
         rf"(?:{_MONTH_RE}|printemps|ete|automne|hiver|debut|fin|mi)")
_PERIOD_RE = re.compile(
    rf"(?:\b(?:de|d'|entre|depuis)\s+)?(?:(?P<m1>{_WHEN})[\s-]+)?(?P<y1>20[12]\d)?\s*"
    rf"(?:a|au|et|[-–—/])\s*(?:(?P<m2>{_WHEN})[\s-]+)?(?P<y2>20[12]\d)\b"
)


def _month(when: str | None) -> int:
    """Month number of « juin », « l'automne », « fin » (0 when none is said)."""
    if not when:
        return 0
    word = when.split()[-1].split("'")[-1]
    return _MONTHS.index(word) + 1 if word in _MONTHS else _QUAL.get(word, 0)


def _period_value(m1: str | None, y1: str, m2: str | None, y2: str) -> str:
    left = f"{m1} {y1}" if m1 else y1
    right = f"{m2} {y2}" if m2 else y2
    return f"{left} – {right}"


def period_parts(key: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(start (year, month or 0), end (year, month or 0)) of a period candidate's key."""
    m = re.fullmatch(r"(\d{4})-(\d\d)/(\d{4})-(\d\d)", key)
    if not m:
        return None
    return (int(m[1]), int(m[2])), (int(m[3]), int(m[4]))


def year_period_candidates(sents: Sequence[Sentence], n_docs: int) -> tuple[list[Candidate], list[Candidate]]:
    years: dict[str, Candidate] = {}
    periods: dict[str, Candidate] = {}
    for s in sents:
        f = fold(s.text)
        if not _YEAR_RE.search(f):
            continue
        cue = bool(_EDITION_CUE.search(f))
        launched = _launched(f)
        for y in dict.fromkeys(_YEAR_RE.findall(f)):
            c = years.setdefault(y, Candidate("year", y, y, extra={"launch": 0, "cdc": 0}))
            c.add(s, cue)
            c.extra["launch"] += int(y in launched)
            c.extra["cdc"] += int(s.doc.doc_type in _CDC)
        same = len(f) == len(s.text)  # folding kept the offsets: quote the period as written
        for m in _PERIOD_RE.finditer(f):
            y1, y2 = m.group("y1"), m.group("y2")
            m1, m2 = m.group("m1"), m.group("m2")
            if not y1:
                if not m1 or not _month(m1):
                    continue
                y1 = y2  # « de janvier à juin 2022 »
            if not (m1 or m2) and not re.search(r"\b(de|entre|depuis)\s", m.group(0)):
                continue  # a bare « 2022-2023 » is often a budget line
            a, b = (int(y1), _month(m1)), (int(y2), _month(m2))
            if not (a < b and b[0] - a[0] <= 3):
                continue
            if same:
                start = m.start("m1") if m1 else m.start("y1")
                left = s.text[start:m.end("y1") if m.group("y1") else m.end("m1")]
                right = s.text[m.start("m2") if m2 else m.start("y2"):m.end("y2")]
                value = f"{left.strip()} – {right.strip()}"
            else:
                value = _period_value(m1, y1, m2, y2)
            k = f"{a[0]}-{a[1]:02d}/{b[0]}-{b[1]:02d}"
            periods.setdefault(k, Candidate("period", value, k)).add(s, cue)
    ylist, plist = list(years.values()), list(periods.values())
    counts = {c.value: len({e.doc.doc_id for e in c.evidence}) for c in ylist}
    most = max(counts.values(), default=1)
    ymin = min((int(v) for v in counts), default=0)
    cdc_min = min((int(c.value) for c in ylist if c.extra["cdc"]), default=0)
    for c in ylist:
        f = _doc_features(c.evidence, n_docs)
        starts = sum(1 for p in plist if p.key.startswith(c.value))
        f.update({
            "rel_docs": counts[c.value] / max(1, most),
            "cue_share": c.cues / max(1, len(c.evidence)),
            "log_cue": math.log1p(c.cues),
            "is_min": float(int(c.value) == ymin),
            "after_min": float(int(c.value) - ymin),
            "starts_period": math.log1p(starts),
            "edition": float(any(_edition_year(e.text) == int(c.value) for e in c.evidence[:40])),
            "launch": math.log1p(c.extra["launch"]),
            "cdc_sent": math.log1p(c.extra["cdc"]),
            "cdc_min": float(int(c.value) == cdc_min),
        })
        c.features = f
    pmost = max((len(p.evidence) for p in plist), default=1)
    for c in plist:
        f = _doc_features(c.evidence, n_docs)
        parts = period_parts(c.key)
        months = 0
        if parts:
            (ya, ma), (yb, mb) = parts
            months = (yb - ya) * 12 + ((mb or 6) - (ma or 6))
        f.update({
            "rel_sent": len(c.evidence) / max(1, pmost),
            "cue_share": c.cues / max(1, len(c.evidence)),
            "has_months": float(bool(parts and parts[0][1] and parts[1][1])),
            "months": months / 12.0,
            # an edition runs across years (« fin 2018 – début 2019 »); a phase sits in one
            "years_span": float(parts[1][0] - parts[0][0]) if parts else 0.0,
            "fab_cue": float(any("fabrique" in e.key or "demarche" in e.key for e in c.evidence)),
            "starts_min": float(bool(parts) and parts[0][0] == ymin),
        })
        c.features = f
    return ylist, plist


def _edition_year(text: str) -> int | None:
    from ingest.infer import edition_year

    try:
        return edition_year(text)
    except Exception:  # noqa: BLE001 - another module's helper must not stop a card
        return None


# --- territories -------------------------------------------------------------------------

_TERR_CUE = re.compile(r"\b(territoires?|communes?|villes?|sites?|intercommunalites?|metropoles?|"
                       r"agglomerations?|collectivites?|quartiers?)\b.{0,40}\b(accompagne|laureat|retenu|"
                       r"participant|engage|selectionne|partenaire|pilote)")


def _gazetteer() -> Any:
    from ingest.gazetteer import Gazetteer

    return Gazetteer.default()


def _place_of(gaz: Any, name: str, code: str) -> Any:
    if not code:
        return None
    for p in gaz.lookup(name):
        if p.code == code:
            return p
    return None


def _forms(gaz: Any, name: str, kind: str) -> list[str]:
    """Folded forms a territory is written in: its name, and an EPCI's short names."""
    forms = [key_of(name)]
    if kind == "epci":
        try:
            forms += [key_of(c) for c in gaz.cores(name)]
        except Exception:  # noqa: BLE001
            pass
    return [f for f in dict.fromkeys(forms) if len(f) >= 3]


def territory_candidates(docs: Sequence[DocInfo], sents: dict[str, list[Sentence]],
                         n_docs: int) -> list[Candidate]:
    gaz = _gazetteer()
    groups: dict[str, Candidate] = {}
    stats: dict[str, dict[str, float]] = {}
    for d in docs:
        ss = sents.get(d.doc_id, [])
        if not ss:
            continue
        text = "\n".join(s.text for s in ss)
        head = "\n".join(s.text for s in ss if s.page == 1)
        try:
            # the document's title is left out: it may be declared metadata, and a card reads text only
            found = gaz.find(text, head=head if text.startswith(head) else "", limit=12)
        except Exception:  # noqa: BLE001 - the gazetteer is being reworked elsewhere; no territories then
            found = []
        listed = _listed_places(gaz, ss)
        for m in [*listed, *found]:
            if m.kind in ("region", "departement"):
                continue  # a fabrique accompanies communes and their groupings; a région is context
            k = m.code or key_of(m.name)
            c = groups.get(k)
            if c is None:
                place = _place_of(gaz, m.name, m.code)
                ctx = gaz.context(place) if place is not None else {}
                c = groups[k] = Candidate("territories", m.name, key_of(m.name), extra={
                    "departement": ctx.get("departement"), "region": ctx.get("region"), "kind": m.kind,
                    "forms": _forms(gaz, m.name, m.kind), "code": m.code})
                stats[k] = {"score": 0.0, "docs": 0.0, "titre": 0.0, "pattern": 0.0, "listed": 0.0}
            st = stats[k]
            if m in listed:
                st["listed"] += 1
                continue
            st["score"] = max(st["score"], m.score)
            st["docs"] += 1
            st["titre"] += float("titre" in m.evidence)
            st["pattern"] += float("motif" in m.evidence)
    all_sents = [s for d in docs for s in sents.get(d.doc_id, [])]
    for c in groups.values():
        forms = [f" {f} " for f in c.extra["forms"]]
        c.extra["heads"] = 0
        c.extra["venue"] = 0
        for s in all_sents:
            if any(f in s.key for f in forms) and _named_as_place(s.text, c.extra["forms"]):
                c.add(s, cue=bool(_TERR_CUE.search(fold(f"{s.section} {s.text}"))))
                c.extra["venue"] += int(bool(_VENUE.search(fold(s.text))))
                # named in the heading its passage sits under (« Séminaire local n°1 — Brest »)
                c.extra["heads"] += int(any(f in f" {key_of(s.section)} " for f in forms))
    out = [c for c in groups.values() if c.evidence]
    for c in out:
        st = stats[c.extra["code"] or c.key]
        f = _doc_features(c.evidence, n_docs)
        kind = c.extra["kind"]
        f.update({
            "gaz_score": st["score"] / 5.0,
            "found_share": st["docs"] / max(1, n_docs),
            "pattern": float(st["pattern"] > 0),
            "listed": math.log1p(st["listed"]),
            "venue_share": c.extra["venue"] / max(1, len(c.evidence)),
            "in_heading": math.log1p(c.extra["heads"]),
            "cue_share": c.cues / max(1, len(c.evidence)),
            "log_cue": math.log1p(c.cues),
            "epci": float(kind == "epci"),
            "commune": float(kind == "commune"),
            "unknown": float(kind == "collectivite" or not c.extra["code"]),
        })
        c.features = f
    return _merge_territories(gaz, out)


def _listed_places(gaz: Any, ss: Sequence[Sentence]) -> list[Any]:
    """The places a document lists as its territories, read as the ingest reads them
    (`ingest.infer`): the items of a section whose heading announces places (« Territoires
    accompagnés »), and enumerations a paragraph opens with or a lead announces (« Elle a réuni
    quatre intercommunalités, Decazeville Communauté, Ardenne Métropole, Dieppe-Maritime et la
    CARENE »). Text only: the document's declared metadata never reaches a card."""
    from ingest import infer

    blocks: list[tuple[str, str]] = []
    section = None
    for s in ss:
        if s.section != section:
            section = s.section
            blocks.append(("heading", section))
        blocks.append(("paragraph", s.text))
    out = []
    try:
        for item, _heading, _whole in infer._announced(blocks):
            # the item's head only: its comment names other places (« …, proche de Saintes »);
            # an item that is itself a list is read below as an enumeration
            out += gaz.find(item, title=item, limit=2)
        for kind, block in blocks:
            if kind == "paragraph":
                out += infer.enumeration(block, gaz) or infer.enumeration(infer._after_lead(block), gaz)
    except Exception:  # noqa: BLE001 - another module's reading must not stop a card
        return []
    text = "\n".join(s.text for s in ss)
    return [m for m in out if m.code or not _half_of_name(gaz, m.name, text)]


def _half_of_name(gaz: Any, name: str, text: str) -> bool:
    """Whether a name outside the official list is one half of an official name joined by « et »
    (« Vie » and « Boulogne » of the « communauté de communes Vie et Boulogne »): an enumeration
    cut it there, the place is the whole."""
    for m in re.finditer(rf"(?:[\w'’-]+ et {re.escape(name)}|{re.escape(name)} et [\w'’-]+)\b", text):
        try:
            if gaz.lookup(m.group(0)):
                return True
        except Exception:  # noqa: BLE001
            return False
    return False


# A meeting's venue (« Date et lieu : …, Revel », « rencontre nationale à Paris ») is where people
# met, not a territory the fabrique accompanied.
_VENUE = re.compile(r"\b(?:date et lieu|lieu\s*:|s'est tenue? a|se tiendra a|tenue? a|organisee? a|"
                    r"accueillie? a|reunion (?:a|du)|rencontre nationale)\b")
_CAPITALISED = re.compile(r"[A-ZÀ-Ý0-9]\w*")


def _named_as_place(text: str, forms: Sequence[str]) -> bool:
    """Whether a sentence names the place itself at least once, not as a word of a longer
    proper noun: « Université Jean Moulin Lyon 3 » or « Lauragais Revel Sorèzois » name an
    organisation or another territory, not Lyon or Revel. A place inside a longer run of
    capitalised words (or a number, « Lyon 3 ») is part of that run."""
    words = [(m.start(), m.end(), key_of(m.group(0))) for m in re.finditer(r"[^\W_]+", text)]
    keys = [w[2] for w in words]
    for form in forms:
        n = len(form.split())
        for i in range(len(words)):
            if " ".join(keys[i:i + n]) != form:
                continue
            before = text[words[i - 1][0]:words[i - 1][1]] if i > 0 else ""
            after = text[words[i + n][0]:words[i + n][1]] if i + n < len(words) else ""
            joined_before = i > 1 and not re.search(r"[,;:.()«»]", text[words[i - 1][1]:words[i][0]])
            joined_after = i + n < len(words) and not re.search(r"[,;:.()«»]",
                                                                 text[words[i + n - 1][1]:words[i + n][0]])
            if (joined_before and _CAPITALISED.fullmatch(before)) \
                    or (joined_after and _CAPITALISED.fullmatch(after)):
                continue
            return True
    return False


def _merge_territories(gaz: Any, cands: list[Candidate]) -> list[Candidate]:
    """A commune and its intercommunality named by the same documents are one territory: the
    more-cited name leads, the other's evidence joins it."""
    cands.sort(key=lambda c: (-len(c.evidence), c.value))
    kept: list[Candidate] = []
    for c in cands:
        home = None
        for k in kept:
            try:
                same = gaz.same_territory(k.value, c.value)
            except Exception:  # noqa: BLE001
                same = False
            if same:
                home = k
                break
        if home is None:
            kept.append(c)
            continue
        home.extra.setdefault("also", []).append(c.value)
        for e in c.evidence:
            home.add(e)
        for name, v in c.features.items():
            home.features[name] = max(home.features.get(name, 0.0), v)
    return kept


# --- organisations: prestataires, associations of élus, partners ---------------------------

# Associations of elected officials (national, public knowledge): canonical name → written forms.
ASSOCIATIONS = {
    "AMF": r"\bAMF\b|Association des maires de France",
    "France urbaine": r"France [Uu]rbaine",
    "Intercommunalités de France": r"Intercommunalit[ée]s de France|\bAdCF\b|\bADCF\b|"
                                   r"Assembl[ée]e des communaut[ée]s de France",
    "Villes de France": r"(?<!Petites )(?<!petites )\bVilles de France",
    "Petites Villes de France": r"\bAPVF\b|Association des [Pp]etites [Vv]illes de France|"
                                r"Petites [Vv]illes de France",
    "AMRF": r"\bAMRF\b|Association des maires ruraux de France|Maires ruraux de France",
    "Départements de France": r"D[ée]partements de France|Assembl[ée]e des d[ée]partements de France",
    "Régions de France": r"R[ée]gions de France",
    "ANEL": r"\bANEL\b|Association nationale des [ée]lus du littoral",
    "ANEM": r"\bANEM\b|Association nationale des [ée]lus de la montagne",
    "Ville & Banlieue": r"Ville (?:&|et) Banlieue",
    "ANPP": r"\bANPP\b|Association nationale des p[ôo]les territoriaux",
    "FNCCR": r"\bFNCCR\b",
}
# National operators, agencies and ministries (public knowledge).
BODIES = {
    "Banque des Territoires": r"Banque des [Tt]erritoires",
    "Caisse des dépôts": r"Caisse des [Dd][ée]p[ôo]ts(?: et consignations)?",
    "ADEME": r"\bADEME\b|\bAdeme\b|Agence de l'environnement et de la ma[îi]trise de l'[ée]nergie|"
             r"Agence de la transition [ée]cologique",
    "ANRU": r"\bANRU\b|Agence nationale pour la r[ée]novation urbaine",
    "Cerema": r"\bC[Ee][Rr][Ee][Mm][Aa]\b",
    "Anah": r"\bANAH\b|\bAnah\b|Agence nationale de l'habitat",
    "FNAU": r"\bFNAU\b|F[ée]d[ée]ration nationale des agences d'urbanisme",
    "OFB": r"\bOFB\b|Office fran[çc]ais de la biodiversit[ée]",
    "DGALN": r"\bDGALN\b|[Dd]irection g[ée]n[ée]rale de l'am[ée]nagement, du logement et de la nature",
    "DGOM": r"\bDGOM\b|[Dd]irection g[ée]n[ée]rale des outre-mer",
    "DGCL": r"\bDGCL\b|[Dd]irection g[ée]n[ée]rale des collectivit[ée]s locales",
    "DGE": r"\bDGE\b",
    "CGDD": r"\bCGDD\b|[Cc]ommissariat g[ée]n[ée]ral au d[ée]veloppement durable",
    "Bpifrance": r"\bBpifrance\b|\bBPI\b",
    "Atout France": r"Atout France",
    "CNFPT": r"\bCNFPT\b",
    "Santé publique France": r"Sant[ée] publique France",
    "Agence de l'eau": r"Agences? de l'eau(?: [A-ZÀ-Ý][\w-]+(?:[- ][A-ZÀ-Ý][\w-]+)*)?",
    "ministère": r"[Mm]inist[èe]re (?:de la |de l'|du |des |chargé )[^,.;:()]{3,70}?"
                 r"(?=[,.;:()]|\s+et\s+(?!de |du |des |d')|$)",
    "Caisse nationale": r"Caisse nationale [^,.;:()]{3,60}?(?=[,.;:()]|\s+et\s|$)",
}
_ASSOC_RE = [(k, re.compile(v)) for k, v in ASSOCIATIONS.items()]
_BODY_RE = [(k, re.compile(v)) for k, v in BODIES.items()]
_ORGANISER = re.compile(r"\bANCT\b|Agence nationale de la coh[ée]sion des territoires|\bl'Agence\b|\bCGET\b|"
                        r"Commissariat g[ée]n[ée]ral [àa] l'[ée]galit[ée] des territoires")
# a unit of the organiser (« Innovation de l'ANCT », « pôle Prospective du CGET ») is the organiser
_OF_ORGANISER = re.compile(r"(?:de l'|du )(?:ANCT|CGET|Agence)$")

# Cues that introduce who ran or joined the fabrique (folded).
_CUES = {
    "presta": r"(?:accompagn[ée]e?s?|anim[ée]e?s?|co-?anim[ée]e?s?|assur[ée]e?s?|men[ée]e?s?|conduite?s?|"
              r"r[ée]alis[ée]e?s?|r[ée]dig[ée]e?s?|pilot[ée]e?s?|facilit[ée]e?s?|outill[ée]e?s?)\s+"
              r"(?:\w+\s+){0,3}?par|\b(?:le|du|au) cabinet|\bl'agence(?= (?-i:[A-ZÀ-Ý]))|bureau d'[ée]tudes?|"
              r"prestataires?|consortium|groupement|[ée]quipe d'accompagnement|titulaire",
    # the cue stops before « de / du / d' », which the item's leading words drop: « avec l'appui du
    # cabinet Acadie » gives « cabinet Acadie », not « u cabinet Acadie »
    "partner": r"en partenariat avec|partenaires?(?: nationaux| associ[ée]s)?\s*(?::|sont|:)|"
               r"avec (?:le concours|l'appui|l'aide|la participation|le soutien)(?=\s+d)|"
               r"aux c[ôo]t[ée]s(?=\s+d)|associant|en lien avec|soutenue? par|appui[ée]e? par|"
               # « conduite de juin 2021 à juillet 2022 avec France urbaine, … »: who it was run with
               # (« conduite par X avec Y » is read by the prestataire cue, X before « avec »)
               r"\b(?:conduite?s?|men[ée]e?s?)\s(?:(?!par\b)[^.;:()]){0,80}?\bavec\b",
    "copil": r"comit[ée] de pilotage(?: national)?,?(?: [^.;:]{0,30}?)?\s"
             r"(?:associe|r[ée]unit|comprend|rassemble|est compos[ée]|:)|\bpr[ée]sents\s*:|"
             r"comit[ée] de pilotage(?: national)?\s*(?=\()|"
             r"partenaires de la fabrique\s*:|membres du comit[ée]",
    "fund": r"co-?financ[ée]e?s?(?: par)?|financ[ée]e?s? par|financement(?=\s+d)|cofinanceurs?|financeurs?|"
            r"contribution financi[èe]re(?=\s+d)",
}
_CUE_RE = {k: re.compile(v, re.IGNORECASE) for k, v in _CUES.items()}
# A cue whose names come before it: « Le ministère des Solidarités et de la Santé et le ministère de
# la Transition écologique sont associés à la démarche. »
_CUE_BEFORE = re.compile(r"\b(?:sont|est|ont été|a été)\s+(?:\w+\s+)?associ[ée]e?s?\s+(?:[àa]|au|aux)\b",
                         re.IGNORECASE)
# A short aside in parentheses (« l'Office français de la biodiversité (OFB), qui… »): an acronym or a
# remark on the item before, not a stop of the enumeration.
_ASIDE = re.compile(r"\s*\([^()]{1,60}\)")
_GOV_SECTION = re.compile(r"pilotage|gouvernance|partenariat|partenaires|financement")
_ITEM_SPLIT = re.compile(r",\s*|\s+ainsi que\s+|\s*;\s*|\s+avec\s+")
_AND = re.compile(r"\s+et\s+(?!(?:de|du|des)\s|d['’])")  # not before a complement: one name
_ARTICLE = re.compile(r"(?:le|la|les|l['’]|un|une)\s*\w", re.IGNORECASE)
_GENERIC_LEAD = re.compile(r"^(?:(?:le|la|l'|du|au)\s*)?(?:cabinet|scop|bureau d'[ée]tudes?|"
                           r"coop[ée]rative|agence|soci[ée]t[ée]|groupement conduit par|"
                           r"consortium|titulaire)\b",
                           re.IGNORECASE)
_LEADING = re.compile(r"^(?:(?:le|la|les|l'|l’|du|de la|de l'|des|de|d'|d’|au|aux|par|avec|un|une|"
                      r"associant|r[ée]unissant|comprenant|dont|notamment|et)\s+|"
                      r"l['’]|d['’])+", re.IGNORECASE)
# a person of an organisation stands for it in a list of members: « un représentant de la direction
# générale des entreprises », « un enseignant-chercheur de l'Université… », « représentants de l'AMF »
_ROLE = re.compile(r"^(?:(?:deux|trois|quatre|cinq|six|\d+)\s+)?(?:repr[ée]sentante?s?|membres?|"
                   r"d[ée]l[ée]gu[ée]e?s?|(?:enseignante?s?-)?chercheu(?:r|se)s?|conseill[eè]re?s?|"
                   r"charg[ée]e?s? de mission)\s+(?=d[eu'’ ]|des\s)", re.IGNORECASE)
# a word of the trade before a name (« cabinet Oxalis », « Scop Ellyx ») is not part of the name
_TRADE = re.compile(r"^(?:cabinet|scop|soci[ée]t[ée]|coop[ée]rative(?: de conseil)?|bureau d'[ée]tudes?|"
                    r"groupement conduit par|consortium|[ée]quipe d['’]|[ée]quipe de)\s*(?=[A-ZÀ-Ý])|"
                    # « le réseau Terres en villes » is Terres en villes; « réseau des agences
                    # régionales de santé » is a name
                    r"^r[ée]seau\s+(?=(?-i:[A-ZÀ-Ý]))",
                    re.IGNORECASE)
# words an organisation's name may start with in lower case (« direction générale des entreprises »)
_ORG_HEAD = re.compile(r"^(?:direction|d[ée]l[ée]gation|[ée]quipe|r[ée]seau|programme|minist[èe]re|agence|"
                       r"office|institut|universit[ée]|f[ée]d[ée]ration|association|caisse|commissariat|conseil|"
                       r"[ée]tablissement|secr[ée]tariat|mission|centre|chambre|union|observatoire)\b")
_ORG_TAIL = re.compile(r"\s+(?:qui|pour|dans|sur|afin|lors|depuis|a|à|avait|a été|est|sont|ont|suivait|"
                       r"était|sera|participe|participait|a participé|"
                       r"en (?:\d|d[ée]but|fin|janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[ûu]t|"
                       r"septembre|octobre|novembre|d[ée]cembre))\b")
_STOP_ORGS = {key_of(w) for w in (
    "Fabrique", "Fabrique Prospective", "Fabriques Prospectives", "Petites Villes de demain",
    "Action coeur de ville", "Territoires d'industrie", "Etat", "État", "Europe", "France", "Les", "Le", "La",
    "Elle", "Il", "Ils", "Elles",
    "Ce", "Cette", "Nous", "Chaque", "Document", "Comité", "Séminaire", "Feuille de route")}


# An enumeration's items are noun phrases: a piece that opens on a finite verb is a new clause.
_CLAUSE_VERB = re.compile(r"(?:r[ée]unit|r[ée]unissent|associe|associent|comprend|comprennent|rassemble|"
                          r"rassemblent|est|sont|a|ont|sera|seront|[ée]tait|[ée]taient|fait|font|anime|"
                          r"animent|pilote|pilotent|assure|assurent|accompagne|accompagnent)\b")


def _cut_tail(item: str) -> str:
    """The name without the clause that follows it (« Université Jean Moulin Lyon 3 pour l'apport
    scientifique », « ANRU en juin 2021 »). « pour » after a lower-case word continues the name
    (« Agence nationale pour la rénovation urbaine »): a name ends on its proper noun."""
    for m in _ORG_TAIL.finditer(item):
        before = item[:m.start()].split()
        if m.group(0).strip() == "pour" and before and before[-1][:1].islower():
            continue
        return item[:m.start()]
    return item


def _org_items(region: str) -> list[tuple[str, bool, str]]:
    """Names listed after a cue (« accompagnée par Vertigo Lab, EY et Atopia. »), each with
    whether a word of the trade introduced it (« le cabinet », « la Scop »).

    French grammar decides where « et » ends a name. An enumeration puts « et » before its last
    item only, so an « et » inside an earlier item binds one name (« Sol et Civilisation, Ollagnon
    Stratégies émergentes et l'Association… »); « et » before a complement (« ministère des
    Solidarités et de la Santé ») binds one name too; « et » before an article (« … et l'Association
    Patrimoniale ») starts a second name, so the whole is not offered. Otherwise the last item is
    given whole and in parts (« EY et Atopia » may be two names or one). The article rule holds in
    every item, not only the last: « la Scop Ellyx et le cabinet Oxalis, chacune sur un quartier »
    is two names before a comment.

    A person stands for the body named after them (« un représentant de la direction générale des
    entreprises »)."""
    out = []
    pieces = _ITEM_SPLIT.split(region)
    for i, piece in enumerate(pieces):
        if _CLAUSE_VERB.match(piece.strip()):
            break  # « animé par l'ANCT, réunit France urbaine… »: a verb opens another clause
        parts = [piece]
        if _AND.search(piece):
            rest = _AND.split(piece)
            if any(_ARTICLE.match(r) for r in rest[1:]):
                parts = rest
            elif i == len(pieces) - 1:
                parts = [piece, *rest]
        for n, item in enumerate(parts):
            item = item.strip(" «»\"“”()")
            item = _LEADING.sub("", _ROLE.sub("", _LEADING.sub("", item)))
            strong = bool(_GENERIC_LEAD.match(item))
            item = _TRADE.sub("", _LEADING.sub("", item))
            item = _cut_tail(item).strip(" «»\"“”().:")
            if not item or not (item[0].isupper() or item[0].isdigit() or _ORG_HEAD.match(item)):
                continue
            if len(item.split()) > 7:
                continue
            whole_given = len(parts) > len(_AND.split(piece))
            split = "" if len(parts) == 1 else "and_whole" if whole_given and n == 0 else "and_part"
            out.append((item, strong, split))
    return out


def _cue_region(text: str, m: re.Match[str]) -> str:
    """The words a cue introduces: up to the end of its clause, or the list in parentheses right
    after it (« comité de pilotage national (ANCT, Villes de France, …) »). Short asides are
    dropped (an acronym after its name); a list announced by a colon runs across semicolons
    (« Présents : pôle Prospective ; programme Action cœur de ville ; Villes de France »)."""
    after = text[m.end():]
    inner = re.match(r"\s*\(([^()]*)\)", after)
    if inner:
        return inner.group(1)
    after = _ASIDE.sub("", after)
    stop = r"[.!?()]|\s[–—-]\s" if m.group(0).rstrip().endswith(":") else r"[.;:!?()]|\s[–—-]\s"
    return re.split(stop, after, maxsplit=1)[0]


_PARTICIPLE = re.compile(r"(?:conduit|men[ée]|soutenu|appuy[ée])", re.IGNORECASE)


def _of_other_subject(name: str, text: str, m: re.Match[str]) -> bool:
    """Whether a participle cue (« menée par », « financé par », « conduite … avec ») is said of
    something else than the fabrique: « une enquête menée par l'ANRU », « le programme Territoires
    d'industrie, copiloté par l'ANCT et la DGE » (as a launch is, for the year). A list a cue
    announces (« partenaires nationaux : », « le comité de pilotage réunit ») is no participle."""
    if name == "copil" or (name == "partner" and not _PARTICIPLE.match(m.group(0))):
        return False
    clause = fold(re.split(r"[.;:!?]", text[:m.start()])[-1])
    return bool(_OTHER_SUBJECT.search(clause)) and not _OWN_SUBJECT.search(clause)


def org_candidates(sents: Sequence[Sentence], n_docs: int) -> list[Candidate]:
    """Organisations written in the text: reference-list bodies wherever they are named, other
    names where a cue introduces them. One candidate per written name (« Caisse des dépôts » and
    « Banque des Territoires » stay two)."""
    by: dict[str, Candidate] = {}
    cue_counts: dict[str, dict[str, int]] = {}

    def note(value: str, s: Sentence, kind: str, ref: str, cues: set[str]) -> None:
        k = key_of(value)
        if not k or k in _STOP_ORGS or _ORGANISER.fullmatch(value) or _OF_ORGANISER.search(value):
            return
        c = by.get(k)
        if c is None:
            c = by[k] = Candidate("orgs", value, k, extra={"ref": ref, "kinds": set()})
            cue_counts[k] = {"presta": 0, "partner": 0, "fund": 0, "copil": 0, "near_presta": 0,
                             "near_partner": 0, "near_fund": 0, "near_copil": 0, "strong": 0, "sec_gov": 0,
                             "and_part": 0, "and_whole": 0, "gov": 0, "gov_local": 0, "near_gov": 0,
                             "near_gov_local": 0}
        c.extra["kinds"].add(kind)
        c.add(s, cue=bool(cues))
        for cue in cues:
            cue_counts[k][cue] += 1
        # who joined, funded or sat on a committee, said by a document of the whole fabrique, or by
        # a territory's own (« Un comité de pilotage local associe la ville, le centre social… »
        # is a territory's committee, not the fabrique's)
        local = "_local" if s.doc.doc_type in _LOCAL else ""
        if cues & {"partner", "copil", "fund"}:
            cue_counts[k][f"gov{local}"] += 1
        elif cues & {"near_partner", "near_copil", "near_fund"}:
            cue_counts[k][f"near_gov{local}"] += 1
        if _GOV_SECTION.search(fold(s.section)):
            cue_counts[k]["sec_gov"] += 1

    for s in sents:
        text = s.text
        near = {name for name, rx in _CUE_RE.items()
                if any(not _of_other_subject(name, text, m) for m in rx.finditer(text))}
        # a list item that is a piece of a reference body's name written here (« Direction générale
        # de l'aménagement », cut at the comma of « …, du logement et de la nature ») is that body
        bodies = [m.group(0) for _, rx in _BODY_RE for m in rx.finditer(text)]
        for canon, rx in _ASSOC_RE:
            for m in rx.finditer(text):
                note(m.group(0), s, "association", canon, {f"near_{n}" for n in near})
        for canon, rx in _BODY_RE:
            for m in rx.finditer(text):
                note(_cut_tail(m.group(0)).strip(), s, "body", canon, {f"near_{n}" for n in near})
        for name, rx in _CUE_RE.items():
            for m in rx.finditer(text):
                if _of_other_subject(name, text, m):
                    continue
                region = _cue_region(text, m)
                if name == "presta":
                    # « conduite par l'Agence … avec l'AMF et l'Université … »: who ran it comes
                    # before « avec »; those after it joined (the partner cue reads them)
                    region = re.split(r"\s+avec\s+", region, maxsplit=1)[0]
                for item, strong, split in _org_items(region)[:8]:
                    if any(item != b and b.startswith(item) for b in bodies):
                        continue
                    note(item, s, "cue", "", {name} | ({"strong"} if strong else set()) | ({split} - {""}))
        for m in _CUE_BEFORE.finditer(text):
            region = re.split(r"[.;:!?()]", text[:m.start()])[-1]
            for item, strong, split in _org_items(region)[-8:]:
                note(item, s, "cue", "", {"partner"} | ({"strong"} if strong else set()) | ({split} - {""}))
    out = list(by.values())
    for c in out:
        f = _doc_features(c.evidence, n_docs)
        cc = cue_counts[c.key]
        words = c.value.split()
        f.update({
            "assoc_list": float("association" in c.extra["kinds"]),
            "body_list": float("body" in c.extra["kinds"]),
            "from_cue": float("cue" in c.extra["kinds"]),
            "presta": math.log1p(cc["presta"]),
            "partner": math.log1p(cc["partner"]),
            "fund": math.log1p(cc["fund"]),
            "near_presta": math.log1p(cc["near_presta"]),
            "near_partner": math.log1p(cc["near_partner"]),
            "near_fund": math.log1p(cc["near_fund"]),
            "copil": math.log1p(cc["copil"]),
            "near_copil": math.log1p(cc["near_copil"]),
            "strong": math.log1p(cc["strong"]),
            "sec_gov": math.log1p(cc["sec_gov"]),
            "gov": math.log1p(cc["gov"]),
            "gov_local": math.log1p(cc["gov_local"]),
            "near_gov": math.log1p(cc["near_gov"]),
            "near_gov_local": math.log1p(cc["near_gov_local"]),
            "and_part": math.log1p(cc["and_part"]),
            "and_whole": math.log1p(cc["and_whole"]),
            "local_share": sum(e.doc.doc_type in _LOCAL for e in c.evidence) / max(1, len(c.evidence)),
            "cdc_share": sum(e.doc.doc_type in _CDC for e in c.evidence) / max(1, len(c.evidence)),
            "acronym": float(len(words) == 1 and words[0].isupper() and len(words[0]) >= 2),
            "log_words": math.log1p(len(words)),
        })
        c.extra["kinds"] = sorted(c.extra["kinds"])
        c.features = f
    return out


# --- theme and lessons (rule-read, not fitted: no truth exists for them) --------------------

_THEME_RE = re.compile(r"\b(?:sur le|autour du|pour) th[èe]me (?:de la |de l'|du |des |de |d'|:\s*)?"
                       r"[«\"“]?\s*([^».;:\"”()]{4,120})", re.IGNORECASE)
_LESSON_CUE = re.compile(r"\b(enseignements?|retenir|le[çc]ons?)\b", re.IGNORECASE)
_ORDINAL_LESSON = re.compile(r"^(?:premier|deuxi[èe]me|troisi[èe]me|quatri[èe]me|cinqui[èe]me|sixi[èe]me|"
                             r"septi[èe]me|\d+(?:er|e|ème)?)\s+(?:enseignement|le[çc]on)\s*:\s*\S|"
                             r"^(?:enseignement|le[çc]on)\s+(?:n°\s*)?\d+\s*[:—–.-]\s*\S", re.IGNORECASE)


def theme_candidates(sents: Sequence[Sentence]) -> list[Candidate]:
    by: dict[str, Candidate] = {}
    for s in sents:
        for m in _THEME_RE.finditer(s.text):
            value = m.group(1).strip()
            value = value[:1].upper() + value[1:]
            by.setdefault(key_of(value), Candidate("theme", value, key_of(value))).add(s, True)
    return sorted(by.values(), key=lambda c: -len(c.evidence))


def lesson_sentences(sents: Sequence[Sentence]) -> list[Sentence]:
    """The sentences of synthesis documents that state a lesson: an « N-ième enseignement : … »
    heading first, then sentences the text itself marks as lessons."""
    ranked: list[tuple[int, int, Sentence]] = []
    for i, s in enumerate(sents):
        if s.doc.doc_type not in (*_SYNTH, "autre", "note") or len(s.text) < 25:
            continue
        if _ORDINAL_LESSON.match(s.text):
            ranked.append((0, i, s))
        elif _LESSON_CUE.search(s.text) and len(s.text) >= 60 and s.doc.doc_type in _SYNTH:
            ranked.append((1 + (s.doc.doc_type != "publication"), i, s))
    seen: set[str] = set()
    out = []
    for _, _, s in sorted(ranked, key=lambda t: (t[0], t[1])):
        k = key_of(s.text)
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out[:MAX_LESSONS]


# ----------------------------------------------------------------------------- candidates per fabrique


def fabrique_candidates(docs: Sequence[DocInfo],
                        sents: dict[str, list[Sentence]]) -> dict[str, list[Candidate]]:
    """Every field's candidates for one fabrique (organisations serve three fields; the
    model of each decides)."""
    all_sents = [s for d in docs for s in sents.get(d.doc_id, [])]
    n = len(docs)
    years, periods = year_period_candidates(all_sents, n)
    orgs = org_candidates(all_sents, n)
    out = {
        "title": title_candidates(all_sents, n),
        "year": years,
        "period": periods,
        "territories": territory_candidates(docs, sents, n),
        "prestataires": orgs,
        "associations": orgs,
        "partners": orgs,
        "theme": theme_candidates(all_sents),
    }
    for name in ("title", "year", "period", "territories"):
        _relative(out[name], _RELATIVE)
    _relative(orgs, _RELATIVE_ORG)
    return out


# Features also read relative to the fabrique's best candidate: « the most launched year of this
# fabrique » says more than a count whose scale depends on how many documents it has.
_RELATIVE = ("log_sent", "log_docs", "log_cue", "launch", "starts_period", "cue_share", "gaz_score",
             "rel_sent")
_RELATIVE_ORG = ("log_sent", "log_docs", "presta", "partner", "copil", "strong", "fund")


def _relative(cands: Sequence[Candidate], names: Sequence[str]) -> None:
    for f in names:
        if not cands or f not in cands[0].features:
            continue
        top = max(c.features.get(f, 0.0) for c in cands)
        for c in cands:
            c.features[f"top_{f}"] = float(top > 0 and c.features.get(f, 0.0) >= top)


# ----------------------------------------------------------------------------- the fitted choice


@dataclass
class FieldModel(LinearModel):
    """A field's model: a value is kept from `threshold` up."""

    # a single-valued field's second value (documents that disagree) must clear this bar too
    second: float = 1.01

    def prob(self, x: dict[str, float]) -> float:
        # a candidate carries only the cues it met: an absent one is 0
        return super().prob({f: x.get(f, 0.0) for f in self.features})


@lru_cache(maxsize=4)
def _load_models(path: str, mtime: float) -> dict[str, FieldModel]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: FieldModel.from_json(v) for k, v in (data.get("fields") or {}).items()}


def load_models(path: Path | None = None) -> dict[str, FieldModel]:
    """The fitted field models; none (every fitted field empty) when the file is missing."""
    path = path or MODEL_FILE
    try:
        return _load_models(str(path), path.stat().st_mtime)
    except (OSError, ValueError, KeyError):
        return {}


def model_digest(path: Path | None = None) -> str:
    """Which weights built a card: new weights rebuild every card."""
    path = path or MODEL_FILE
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return ""


def _order(ev: Sequence[Sentence]) -> list[Sentence]:
    """Public evidence before internal, then synthesis documents, then where it was first said."""
    rank = {"cahier_des_charges": 0, "publication": 1, "seminaire_intersites": 2}
    return sorted(ev, key=lambda s: (s.doc.visibility != "public", rank.get(s.doc.doc_type, 3)))


def _value(c: Candidate, p: float | None, field_name: str) -> dict[str, Any]:
    ev = _order(c.evidence)
    out: dict[str, Any] = {"value": c.value, "confidence": None if p is None else round(p, 3),
                           "evidence": [e.evidence() for e in ev[:MAX_EVIDENCE]],
                           "departement": c.extra.get("departement") if field_name == "territories" else None,
                           "region": c.extra.get("region") if field_name == "territories" else None}
    if c.extra.get("ref"):
        out["canonical"] = c.extra["ref"]
    if c.extra.get("also"):
        out["also"] = list(c.extra["also"])
    out["visibility"] = "public" if any(e.doc.visibility == "public" for e in c.evidence) else "interne"
    return out


def _merge_same(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One value per body: « AdCF » and « Assemblée des communautés de France » are the same
    association (one reference name): the card names it once, by the first name kept, the
    others under `also`, with the evidence of all (public first)."""
    out: list[dict[str, Any]] = []
    by_ref: dict[str, dict[str, Any]] = {}
    for v in values:
        ref = v.get("canonical")
        first = by_ref.get(ref) if ref else None
        if first is None:
            out.append(v)
            if ref:
                by_ref[ref] = v
            continue
        first["also"] = [*first.get("also", []), v["value"], *v.get("also", [])]
        seen = {(e["doc_id"], e["sentence"]) for e in first["evidence"]}
        extra = [e for e in v["evidence"] if (e["doc_id"], e["sentence"]) not in seen]
        merged = sorted(first["evidence"] + extra, key=lambda e: e.get("visibility") != "public")
        first["evidence"] = merged[:MAX_EVIDENCE]
        if v.get("visibility") == "public":
            first["visibility"] = "public"
    return out


def choose(field_name: str, cands: Sequence[Candidate],
           models: dict[str, FieldModel]) -> list[tuple[Candidate, float]]:
    """The candidates the field's model keeps, most probable first (two at most for a
    single-valued field: documents that disagree)."""
    model = models.get(field_name)
    if model is None:
        return []
    scored = [(c, model.prob(c.features)) for c in cands if c.evidence]
    return keep(field_name, scored, model.threshold, model.second)


def keep(field_name: str, scored: Sequence[tuple[Any, float]], threshold: float,
         second: float = 1.01) -> list[tuple[Any, float]]:
    """What a card keeps of scored candidates: those from `threshold` up, most probable first;
    for a single-valued field, a second value only from `second` up (both fitted for precision)."""
    kept = sorted([(c, p) for c, p in scored if p >= threshold], key=lambda t: (-t[1], t[0].value))
    if field_name in SINGLE_VALUED:
        # a second value is a disagreement: one saying the same thing as the first (« juin 2021 –
        # juillet 2022 » and « octobre 2021 – juin 2022 » both say 2021–2022) adds nothing
        kept = kept[:1] + [(c, p) for c, p in kept[1:] if _said(c.value) != _said(kept[0][0].value)]
        kept = kept[:1] + [(c, p) for c, p in kept[1:MAX_SINGLE] if p >= max(second, threshold)]
    elif field_name == "territories":
        kept = kept[:24]
    return kept


def _said(value: str) -> str:
    """What a single value says, as compared for disagreement: a period's first and last years,
    else its folded words."""
    years = _YEAR_RE.findall(value)
    return f"{years[0]}-{years[-1]}" if years else key_of(value)


def build_card(fid: str, docs: Sequence[DocInfo], sents: dict[str, list[Sentence]],
               models: dict[str, FieldModel] | None = None) -> dict[str, Any]:
    models = load_models() if models is None else models
    cands = fabrique_candidates(docs, sents)
    fields: dict[str, list[dict[str, Any]]] = {f: [] for f in FIELDS}
    for name in FITTED_FIELDS:
        fields[name] = _merge_same([_value(c, p, name) for c, p in choose(name, cands[name], models)])
    fields["theme"] = [_value(c, None, "theme") for c in cands["theme"][:1]]
    all_sents = [s for d in docs for s in sents.get(d.doc_id, [])]
    fields["lessons"] = [_value(Candidate("lessons", s.text, key_of(s.text), [s]), None, "lessons")
                         for s in lesson_sentences(all_sents)]
    return {
        "id": fid,
        "fields": fields,
        "documents": [{"doc_id": d.doc_id, "title": d.title, "doc_type": d.doc_type,
                       "year": str(d.year) if d.year else None, "visibility": d.visibility,
                       "source": d.source}
                      for d in sorted(docs, key=lambda d: (d.doc_type, d.title))],
        "digest": _fabrique_digest(docs),
    }


@lru_cache(maxsize=1)
def _code_digest() -> str:
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    except OSError:
        return ""


def _fabrique_digest(docs: Sequence[DocInfo]) -> str:
    """What a card depends on: its documents' versions and labels, the model, and this code."""
    h = hashlib.sha256(model_digest().encode() + _code_digest().encode())
    for d in sorted(docs, key=lambda d: d.doc_id):
        h.update(json.dumps([d.doc_id, d.sha, d.title, d.doc_type, d.visibility, d.source]).encode())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- the file


def load_cards(store_dir: Path) -> dict[str, Any]:
    """The cards of an index; an empty set when none were built yet (or the file is unreadable)."""
    try:
        data = json.loads((Path(store_dir) / CARDS_NAME).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("fabriques"), list):
            return data
    except (OSError, ValueError):
        pass
    return {"version": VERSION, "fabriques": []}


def build_cards(store_dir: Path, store: Any = None, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """All cards of an index. A fabrique whose documents (versions, labels) and model did not
    change since `previous` keeps its card without reading its text again."""
    store_dir = Path(store_dir)
    docs = _registry_docs(store_dir)
    by_fab: dict[str, list[DocInfo]] = {}
    for d in docs:
        by_fab.setdefault(d.fabrique, []).append(d)
    old = {c.get("id"): c for c in (previous or {}).get("fabriques", []) if isinstance(c, dict)}
    stale = [fid for fid, ds in by_fab.items() if (old.get(fid) or {}).get("digest") != _fabrique_digest(ds)]
    corpus = read_corpus(store_dir, store, only=stale) if stale else Corpus()
    models = load_models()
    cards = []
    for fid in sorted(by_fab):
        if fid in stale:
            cards.append(build_card(fid, by_fab[fid], corpus.sentences, models))
        else:
            cards.append(old[fid])
    return {"version": VERSION, "model": model_digest(), "fabriques": cards}


def write_cards(store_dir: Path, store: Any = None) -> Path:
    """Build and write `<store>/cards.json` atomically: a crash leaves the previous file whole."""
    store_dir = Path(store_dir)
    data = build_cards(store_dir, store, previous=load_cards(store_dir))
    target = store_dir / CARDS_NAME
    fd, tmp = tempfile.mkstemp(prefix=".cards-", suffix=".json.tmp", dir=store_dir)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # readable as any file the index writes, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
