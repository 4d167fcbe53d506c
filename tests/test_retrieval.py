"""Hybrid retrieval (e5 in Chroma + French BM25 in SQLite FTS5) with the real model, on temp folders.

Documents are small Markdown files with front matter (fast to load); each section is long
enough to be its own passage, so ranks and per-document caps are meaningful.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ingest.lexical import Lexical, analyse
from ingest.pipeline import Ingestor, Limits
from ingest.registry import Registry, connect
from ingest.store import open_store

FAB_VM = "villes-moyennes-transition-ecologique"
FAB_VIEIL = "vieillissement-periurbain-qpv"
FAB_RURAL = "nature-attractivite-territoires-ruraux"


def md(front: dict, sections: dict[str, str]) -> str:
    head = "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items())
    body = "\n\n".join(f"## {title}\n{text}" for title, text in sections.items())
    return f"---\n{head}\n---\n# {front['title']}\n\n{body}\n"


CLIMATE = {
    "Plan climat et énergie": (
        "L'agglomération s'est engagée dans un plan climat ambitieux : réduire de moitié les "
        "émissions de gaz à effet de serre d'ici 2030, développer les énergies renouvelables "
        "et accompagner la rénovation énergétique des logements anciens du centre-ville."
    ),
    "Énergies renouvelables": (
        "Les élus prévoient des centrales solaires sur les toitures des équipements publics, un "
        "réseau de chaleur alimenté au bois local et un soutien aux coopératives citoyennes "
        "d'énergie. Le plan fixe des objectifs chiffrés de production renouvelable par quartier."
    ),
    "Adaptation au changement climatique": (
        "Le plan prévoit la désimperméabilisation des cours d'école, la plantation d'arbres "
        "pour lutter contre les îlots de chaleur et une gestion des eaux pluviales à la parcelle "
        "afin d'adapter la ville aux canicules et aux fortes pluies à venir."
    ),
    "Restauration scolaire": (
        "Les cantines des écoles servent désormais un repas végétarien par semaine et 40 % de "
        "produits locaux, achetés aux maraîchers du pays de Lorient. Ce volet figure dans le PCAET "
        "voté en conseil communautaire, aux côtés des menus anti-gaspillage."
    ),
}

DOCS: dict[str, str] = {
    "fdr-lorient.md": md(
        {"doc_id": "fdr-lorient", "title": "Feuille de route de Lorient", "doc_type": "feuille_de_route",
         "fabrique": FAB_VM, "year": 2020, "territories": ["Lorient"], "visibility": "public"},
        CLIMATE,
    ),
    "cr-bagnolet.md": md(
        {"doc_id": "cr-bagnolet", "title": "Séminaire local de Bagnolet", "doc_type": "seminaire_local",
         "fabrique": FAB_VIEIL, "year": 2021, "territories": ["Bagnolet"], "visibility": "public"},
        {
            "Isolement des aînés": (
                "Dans les quartiers prioritaires, les aînés vivent souvent seuls. Un réseau de "
                "visiteurs bénévoles, coordonné par le CCAS, passe chaque semaine chez les personnes "
                "âgées isolées et signale les situations de fragilité aux travailleurs sociaux."
            ),
            "Mobilités douces": (
                "Les mobilités douces sont pensées pour les seniors : bancs tous les cent mètres, "
                "trottoirs élargis, traversées plus longues aux feux et une navette de quartier "
                "gratuite qui dessert le marché, la mairie et le centre de santé deux fois par jour."
            ),
        },
    ),
    "cr-nimes.md": md(
        {"doc_id": "cr-nimes", "title": "Séminaire local de Nîmes", "doc_type": "seminaire_local",
         "fabrique": FAB_VIEIL, "year": 2022, "territories": ["Nîmes"], "visibility": "public"},
        {
            "Vieillir dans son logement": (
                "Le bailleur social adapte les salles de bain et installe des douches de plain-pied "
                "pour que les locataires âgés puissent rester chez eux. Un ergothérapeute conseille "
                "les familles et les aidants sur l'aménagement du logement et les aides financières."
            ),
            "Transport à la demande": (
                "La communauté d'agglomération a ouvert un transport à la demande réservé aux plus "
                "de 75 ans, réservable par téléphone la veille. La navette les conduit aux rendez-vous "
                "médicaux et aux commerces ; elle complète les lignes régulières de bus du réseau."
            ),
        },
    ),
    "note-interne.md": md(
        {"doc_id": "note-interne", "title": "Note interne du comité de pilotage", "doc_type": "autre",
         "fabrique": FAB_VIEIL, "year": 2021, "territories": ["Bagnolet"], "visibility": "interne"},
        {
            "Arbitrages budgétaires": (
                "Le comité de pilotage a arbitré le budget du projet Zorglub : la navette de quartier "
                "pour les aînés sera financée à parts égales par la ville et le département, sous "
                "réserve du vote de l'assemblée départementale prévu à l'automne prochain."
            ),
        },
    ),
    "cr-quimperle.md": md(
        {"doc_id": "cr-quimperle", "title": "Séminaire local de Quimperlé", "doc_type": "seminaire_local",
         "fabrique": FAB_RURAL, "year": 2019, "territories": ["Quimperlé"], "visibility": "public"},
        {
            "Sentiers et paysages": (
                "Quimperlé Communauté valorise ses sentiers de randonnée le long de la Laïta et de "
                "l'Isole. Les habitants ont proposé des circuits de découverte du bocage, balisés avec "
                "les associations locales, pour faire connaître les paysages ruraux aux visiteurs."
            ),
        },
    ),
    "plans-climat.md": md(
        {"doc_id": "plans-climat", "title": "Les plans climat des villes moyennes", "doc_type": "publication",
         "fabrique": FAB_VM, "year": 2022, "territories": ["Brest", "Nîmes"], "visibility": "public"},
        {
            f"Plan climat de {city}": (
                f"À {city}, le plan climat-air-énergie territorial fixe des objectifs de réduction des "
                f"émissions de gaz à effet de serre, de sobriété énergétique et de production d'énergie "
                f"renouvelable ; il prévoit aussi la rénovation thermique de {n} logements par an."
            )
            for city, n in (("Brest", 800), ("Nîmes", 650), ("Albi", 300), ("Cahors", 250), ("Rodez", 200))
        },
    ),
    "etude-navette.md": md(
        {"doc_id": "etude-navette", "title": "Étude sur la navette fluviale de Brest",
         "doc_type": "publication",
         "fabrique": FAB_VM, "year": 2021, "territories": ["Brest"], "visibility": "public"},
        {
            f"Navette fluviale, volet {i}": (
                f"La navette fluviale relierait les deux rives de la rade en moins de dix minutes. "
                f"Le volet {i} de l'étude détaille la fréquence des passages, le coût d'exploitation "
                f"de la navette, les pontons à construire et la fréquentation attendue des usagers."
            )
            for i in range(1, 7)
        },
    ),
}


def write_docs(root: Path, names: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        if names is None or name in names:
            (root / name).write_text(text, encoding="utf-8")
    return root


def make(store_dir: Path, emb, **kw) -> Ingestor:
    store = open_store(store_dir, "fp_test", emb.model_id, emb.dim)
    return Ingestor(store_dir, store, emb, Limits(chunk_size=400, chunk_overlap=50), **kw)


def retriever(store_dir: Path, emb, audience: str = "interne", **kw):
    """A retriever opened from disk, as the CLI and the app do (no shared connection)."""
    from assistant.retriever import Retriever

    store = open_store(store_dir, "fp_test", emb.model_id, emb.dim)
    return Retriever(store, Registry(connect(store_dir)), emb, audience, reranker="", **kw)


def lexical_rows(store_dir: Path, doc_id: str) -> int:
    conn = connect(store_dir)
    return conn.execute("SELECT count(*) FROM lexical_chunks WHERE doc_id = ?", (doc_id,)).fetchone()[0]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, e5) -> Path:
    """One index of DOCS for the tests that only read it (ingest under load is slow)."""
    base = tmp_path_factory.mktemp("shared")
    report = make(base / "index", e5).run([write_docs(base / "docs")])
    assert len(report.added) == len(DOCS) and not report.failed
    return base / "index"


@pytest.fixture
def indexed(tmp_path, store_dir, e5) -> Path:
    """A fresh index of DOCS for the tests that change files; returns the docs folder."""
    root = write_docs(tmp_path / "docs")
    report = make(store_dir, e5).run([root])
    assert len(report.added) == len(DOCS) and not report.failed
    return root


# -- French analysis -------------------------------------------------------------------


def test_analysis_folds_accents_stems_and_drops_stop_words():
    assert analyse("Les aînés") == analyse("les aines") == analyse("AÎNÉ") == ["ain"]
    assert analyse("mobilités") == analyse("mobilité") == analyse("Mobilite")
    assert analyse("foncière") == analyse("foncier")
    assert analyse("le la les de du des et ou où qu'il l'habitat d'été") == analyse("habitat")
    assert analyse("Cœur de ville") == analyse("coeur ville")
    assert analyse("PCAET 2030") == ["pcaet", "2030"]
    assert analyse("") == [] and analyse("de la, à l'…") == []


def test_lexical_writes_refuse_to_run_outside_a_transaction(store_dir):
    registry = Registry(connect(store_dir))
    lexical = Lexical(registry.conn)
    with pytest.raises(RuntimeError, match="transaction"):
        lexical.delete("x")
    with registry.transaction():
        lexical.delete("x")  # inside the registry's transaction it is fine


# -- lexical index kept in step with ingest ------------------------------------------


def test_lexical_matches_stems_and_accents(shared, e5):
    r = retriever(shared, e5)
    for query in ("aines isoles", "les aînés isolés"):
        hits = r.lexical_search(query, k=3)
        assert hits and hits[0].meta["doc_id"] == "cr-bagnolet"
        assert "aînés" in hits[0].text
    hits = r.lexical_search("mobilite", k=3)
    assert hits[0].meta["doc_id"] == "cr-bagnolet" and "mobilités" in hits[0].text.lower()
    assert r.lexical_search("de la les", k=3) == [], "a query of stop words matches nothing"


def test_reingest_changed_file_replaces_lexical_rows(indexed, store_dir, e5):
    r = retriever(store_dir, e5)
    assert r.lexical_search("Zorglub", k=3)
    path = indexed / "note-interne.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Zorglub", "Hirondelle"), encoding="utf-8")
    report = make(store_dir, e5).run([indexed])
    assert [Path(p).name for p in report.updated] == ["note-interne.md"]
    assert r.lexical_search("Zorglub", k=3) == [], "the old version's words are gone"
    assert not [p for p in r.search("projet Zorglub", k=10) if "Zorglub" in p.text]
    hits = r.lexical_search("Hirondelle", k=3)
    assert [h.meta["doc_id"] for h in hits] == ["note-interne"]
    assert lexical_rows(store_dir, "note-interne") == 1, "one version's rows only"


def test_sync_removal_removes_lexical_rows(indexed, store_dir, e5):
    assert lexical_rows(store_dir, "cr-quimperle") > 0
    (indexed / "cr-quimperle.md").unlink()
    report = make(store_dir, e5).run([indexed], sync=True)
    assert len(report.removed) == 1
    assert lexical_rows(store_dir, "cr-quimperle") == 0
    assert retriever(store_dir, e5).lexical_search("Quimperlé sentiers", k=5) == []


class Crash(BaseException):
    """Stands for a kill between two steps of an ingest."""


def test_crash_inside_the_switch_rolls_back_the_lexical_rows(indexed, store_dir, e5, monkeypatch):
    path = indexed / "note-interne.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Zorglub", "Hirondelle"), encoding="utf-8")
    monkeypatch.setattr(Registry, "mark_written", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        make(store_dir, e5).run([indexed])
    monkeypatch.undo()
    r = retriever(store_dir, e5)
    assert r.lexical_search("Zorglub", k=3), "the old version stays live lexically"
    assert r.lexical_search("Hirondelle", k=3) == [], "the half-written version is not served"
    make(store_dir, e5).run([indexed])
    assert r.lexical_search("Hirondelle", k=3) and not r.lexical_search("Zorglub", k=3)


def test_index_without_lexical_rows_is_backfilled_without_reembedding(tmp_path, store_dir, e5):
    root = write_docs(tmp_path / "docs")
    make(store_dir, e5, lexical=False).run([root])
    assert retriever(store_dir, e5).lexical_search("PCAET", k=3) == []

    class Spy:
        model_id, dim = e5.model_id, e5.dim
        embedded = 0

        def embed_documents(self, texts):
            Spy.embedded += len(texts)
            return e5.embed_documents(texts)

        def embed_query(self, text):
            return e5.embed_query(text)

    report = make(store_dir, Spy()).run([root])
    assert len(report.unchanged) == len(DOCS) and Spy.embedded == 0
    hits = retriever(store_dir, e5).lexical_search("PCAET", k=3)
    assert [h.meta["doc_id"] for h in hits] == ["fdr-lorient"]


def test_lexical_index_survives_reopening(shared, e5):
    conn = connect(shared)
    n = conn.execute("SELECT count(*) FROM lexical_chunks").fetchone()[0]
    conn.close()
    assert n > len(DOCS)
    fresh = retriever(shared, e5)
    assert fresh.lexical.count() == n
    assert fresh.lexical_search("Laïta", k=2)[0].meta["doc_id"] == "cr-quimperle"


def test_query_cost_is_bounded_by_skipping_the_commonest_terms(shared):
    conn = Registry(connect(shared)).conn
    query = "navette fluviale Laïta"
    assert set(Lexical(conn).plan(analyse(query))) == set(analyse(query)), "small index: exact BM25"
    tight = Lexical(conn, max_postings=3)  # 'navette' and 'fluviale' each fill 6+ passages
    assert tight.plan(analyse(query)) == analyse("Laïta")
    assert {h.doc_id for h in tight.search(query, 10)} == {"cr-quimperle"}
    assert tight.plan(analyse("navette")) == [], "only over-common words: no full BM25"


def test_a_query_of_common_words_still_gets_bounded_lexical_results(shared):
    """At a million passages every word of « navette fluviale » may be too common to score
    them all: passages holding all the rarest words are scored among a bounded sample."""
    conn = Registry(connect(shared)).conn
    tight = Lexical(conn, max_postings=3)
    assert tight.plan(analyse("navette fluviale")) == []
    found = tight.search("navette fluviale", 10)
    assert 0 < len(found) <= 3  # never more scored than the budget
    for hit in found:
        body = conn.execute("SELECT body FROM lexical_chunks WHERE chunk_id = ?",
                            (hit.chunk_id,)).fetchone()[0]
        assert set(analyse("navette fluviale")) <= set(body.split()), "all the rarest words"


# -- filters and audience on both sides ------------------------------------------------


def test_filters_apply_to_the_lexical_side_too(shared, e5):
    from assistant.retriever import Filters

    r = retriever(shared, e5)
    assert r.lexical_search("Quimperlé sentiers Laïta", k=5)[0].meta["doc_id"] == "cr-quimperle"
    for f in (
        Filters(fabrique=FAB_VIEIL),
        Filters(territory="bagnolet"),
        Filters(year_from=2020, year_to=2022),
        Filters(doc_type="feuille_de_route"),
    ):
        lex = r.lexical_search("Quimperlé sentiers Laïta randonnée", k=10, filters=f)
        hyb = r.search("Quimperlé sentiers Laïta randonnée", k=10, filters=f)
        assert all(p.meta["doc_id"] != "cr-quimperle" for p in lex + hyb), f
        assert hyb, "the dense side still answers within the filter"
    bag = r.search("navette", k=10, filters=Filters(territory="Bagnolet"))
    assert bag and all(p.meta["territories"] == ["Bagnolet"] for p in bag)
    years = r.search("navette", k=10, filters=Filters(year_from=2021, year_to=2021))
    assert years and all(p.meta["year"] == 2021 for p in years)


def test_every_dense_route_keeps_what_chromas_own_filter_keeps(shared, e5, monkeypatch):
    """Whatever route the share of a filter picks (Chroma searching the ids the labels list,
    an unfiltered search filtered here, Chroma's own filter), a filtered dense search gives
    the passages Chroma's own filter gives."""
    import ingest.store as store_module
    from assistant.retriever import Filters

    r = retriever(shared, e5, "public")
    vector = e5.embed_query("navette sentiers et mobilité")
    chroma_filter = r.store.search
    scans: list[dict] = []

    def counted(vector, k, where=None):
        scans.append(where)
        return chroma_filter(vector, k, where)

    for f in (Filters(fabrique=FAB_VIEIL), Filters(territory="Bagnolet"),
              Filters(year_from=2020, year_to=2022), Filters(doc_type="feuille_de_route")):
        where = r.where(f)
        truth = {h.chunk_id for h in chroma_filter(vector, 5, where)}
        assert truth, f
        for broad in (2.0, 0.0):  # every filter narrow, then every filter broad
            monkeypatch.setattr(store_module, "BROAD_SHARE", broad)
            monkeypatch.setattr(r.store, "search", counted)
            assert {h.chunk_id for h in r._dense(vector, 5, f)} == truth, (f, broad)
            # the listed ids suffice; an over-fetch that finds fewer than k asks Chroma to confirm
            if broad or len(truth) == 5:
                assert scans == [], ("the route fell back to Chroma's filter", f, broad)
            scans.clear()


def test_public_audience_excludes_interne_documents_from_both_sides(shared, e5):
    internal = retriever(shared, e5, "interne")
    assert internal.lexical_search("Zorglub", k=3)[0].meta["doc_id"] == "note-interne"
    assert internal.search("projet Zorglub budget", k=3)[0].meta["doc_id"] == "note-interne"
    public = retriever(shared, e5, "public")
    assert public.lexical_search("Zorglub", k=10) == []
    for query in ("projet Zorglub budget", "arbitrages budgétaires du comité de pilotage"):
        assert all(p.meta["visibility"] == "public" for p in public.search(query, k=20))
        assert all(p.meta["visibility"] == "public" for p in public.dense(query, k=20))


# -- fusion, diversity, scores -----------------------------------------------------------


def test_hybrid_finds_a_rare_acronym_that_dense_ranks_low(shared, e5):
    r = retriever(shared, e5)
    query = "objectifs climatiques du PCAET"
    target = r.lexical_search(query, k=1)[0]
    assert "PCAET" in target.text, "BM25 puts the only passage with the acronym first"
    dense_ids = [p.chunk_id for p in r.dense(query, k=5)]
    assert target.chunk_id not in dense_ids, "premise: climate passages crowd it out of dense"
    hybrid = r.search(query, k=3)
    found = [p for p in hybrid if p.chunk_id == target.chunk_id]
    assert found and found[0].bm25 and found[0].fused > 0


def test_diversity_cap_surfaces_several_documents(shared, e5):
    r = retriever(shared, e5)
    query = "navette fluviale rade fréquence des passages"
    dense = r.dense(query, k=6)
    assert sum(p.meta["doc_id"] == "etude-navette" for p in dense) > 2, "premise: one document dominates"
    hits = r.search(query, k=6)
    per_doc: dict[str, int] = {}
    for p in hits:
        per_doc[p.meta["doc_id"]] = per_doc.get(p.meta["doc_id"], 0) + 1
    assert len(hits) == 6 and max(per_doc.values()) <= 2 and len(per_doc) >= 3
    assert [p.rank for p in hits] == list(range(1, 7))
    # the cap never starves an answer: filtered to one document, k passages still come back
    from assistant.retriever import Filters

    one = r.search(query, k=5, filters=Filters(territory="Brest", year_from=2021, year_to=2021))
    assert len(one) == 5 and {p.meta["doc_id"] for p in one} == {"etude-navette"}
    assert len(retriever(shared, e5, per_doc=None).search(query, k=6)) == 6


def test_both_fusions_find_the_acronym_and_unknown_fusion_is_refused(shared, e5):
    """`relative` (default) and `rrf` are both real fusions of the two sides, chosen by setting."""
    for fusion in ("relative", "rrf"):
        r = retriever(shared, e5, fusion=fusion)
        assert r.fusion == fusion
        hits = r.search("objectifs climatiques du PCAET", k=3)
        assert any("PCAET" in p.text for p in hits), fusion
        assert [p.fused for p in hits] == sorted((p.fused for p in hits), reverse=True)
    default = retriever(shared, e5)
    assert default.fusion == "relative"
    assert default.search("PCAET", k=3, fusion="rrf")[0].fused < 0.05  # 1/(60+1) + 1/(60+1) at most
    with pytest.raises(ValueError, match="fusion inconnue"):
        retriever(shared, e5, fusion="moyenne")


def test_relative_fusion_keeps_the_gap_a_rank_would_flatten():
    from assistant.retriever import relative_fuse, rrf_fuse

    dense = {"a": 0.90, "b": 0.89, "d": 0.71, "c": 0.70}
    bm25 = {"d": 12.0, "a": 11.5, "b": 11.0, "e": 1.0}
    rel = relative_fuse([dense, bm25], [0.5, 0.5])
    # each side scaled over this query's candidates; a side that did not find a passage adds 0
    assert rel["c"] == pytest.approx(0.0) and rel["e"] == pytest.approx(0.0)
    assert rel["a"] > rel["b"] > rel["d"]
    # b is close to the top on both sides, d tops BM25 but barely passes on the dense side:
    # ranks alone (RRF) put d ahead of b
    rrf = rrf_fuse([sorted(dense, key=dense.get, reverse=True), sorted(bm25, key=bm25.get, reverse=True)])
    assert rrf["a"] > rrf["d"] > rrf["b"]
    assert relative_fuse([{}, {"x": 3.0}], [0.5, 0.5]) == {"x": 0.5}


def test_answer_context_reads_more_of_the_best_document(shared, e5):
    """A results list shows 2 passages per document; an answer reads up to FP_ANSWER_PER_DOC."""
    from assistant.config import Settings
    from assistant.retriever import answer_context

    r = retriever(shared, e5)
    query = "navette fluviale rade fréquence des passages"
    settings = Settings(answer_k=6, answer_per_doc=3, answer_neighbours=0)
    ctx = answer_context(r, query, None, settings)
    listed = r.search(query, k=6)
    count = sum(p.meta["doc_id"] == "etude-navette" for p in ctx)
    assert len(ctx) == 6 and count == 3
    assert sum(p.meta["doc_id"] == "etude-navette" for p in listed) == 2
    assert len(answer_context(r, query, None, settings, k=2)) == 2


def test_neighbours_are_the_passages_around_the_best_ones(shared, e5):
    """A list cut by the chunker continues in the next passage: answers read it too."""
    from assistant.config import Settings
    from assistant.retriever import answer_context

    r = retriever(shared, e5)
    top = r.search("navette fluviale rade fréquence des passages", k=1, per_doc=None)[0]
    idx = top.meta["chunk_index"]
    around = r.neighbours([top])
    assert around and all(p.meta["doc_id"] == top.meta["doc_id"] for p in around)
    assert {p.meta["chunk_index"] for p in around} <= {idx - 1, idx + 1}
    assert all(p.meta["content_hash"] == top.meta["content_hash"] for p in around)
    assert top.chunk_id not in {p.chunk_id for p in around}
    assert all(0 < p.fused < top.fused for p in around)
    ctx = answer_context(r, "navette fluviale rade fréquence des passages", None,
                         Settings(answer_k=3, answer_per_doc=1, answer_neighbours=1))
    assert len(ctx) > 3 and [p.rank for p in ctx] == list(range(1, len(ctx) + 1))
    assert len({p.chunk_id for p in ctx}) == len(ctx)
    assert len(answer_context(r, "navette", None, Settings(answer_k=3, answer_neighbours=0))) == 3


def test_scores_stay_cosine_similarities(shared, e5):
    r = retriever(shared, e5)
    query = "Que prévoit le PCAET pour les cantines ?"
    dense = {p.chunk_id: p.score for p in r.dense(query, k=50)}
    hybrid = r.search(query, k=8)
    assert hybrid
    for p in hybrid:
        assert p.score == pytest.approx(dense[p.chunk_id], abs=1e-3), p.chunk_id
    fused = [p.fused for p in hybrid]
    assert fused == sorted(fused, reverse=True)


def test_reranker_when_configured_reorders_the_fused_head(shared, e5, monkeypatch):
    import assistant.retriever as mod

    class FakeCrossEncoder:
        def predict(self, pairs):
            return [1.0 if "Laïta" in text else 0.0 for _, text in pairs]

    monkeypatch.setattr(mod, "load_cross_encoder", lambda path: FakeCrossEncoder())
    r = retriever(shared, e5)
    r.reranker = "/models/fake-cross-encoder"
    hits = r.search("navette fluviale", k=4)
    assert hits[0].meta["doc_id"] == "cr-quimperle" and hits[0].rerank == 1.0


def test_missing_reranker_folder_is_a_clear_error(tmp_path):
    from assistant.retriever import load_cross_encoder
    from ingest.errors import StoreError

    with pytest.raises(StoreError, match="FP_RERANKER"):
        load_cross_encoder(str(tmp_path / "pas-de-modele"))


def test_cli_search_is_hybrid(env_store, shared, capsys, e5, monkeypatch):
    from assistant.cli import main
    from assistant.config import get_settings

    monkeypatch.setenv("FP_COLLECTION", "fp_test")
    monkeypatch.delenv("FP_RERANKER", raising=False)
    get_settings.cache_clear()
    assert main(["search", "PCAET", "--json", "--k", "3", "--store", str(shared)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert "PCAET" in rows[0]["text"] and rows[0]["doc_id"] == "fdr-lorient"


def test_latency(shared, e5, capsys):
    """Not a benchmark: a guard that lexical and hybrid retrieval stay interactive.

    The query embedding is timed apart (it is the model's cost, shared with dense-only
    search, and swings with CPU load); the retrieval itself is timed with a cached vector.
    """
    query = "mobilité des aînés navette"
    t0 = time.perf_counter()
    vector = e5.embed_query(query)
    embed_ms = (time.perf_counter() - t0) * 1000

    class Cached:
        model_id, dim = e5.model_id, e5.dim

        def embed_query(self, text):
            return vector

    r = retriever(shared, Cached())
    r.search(query, k=5)  # warm up
    t0 = time.perf_counter()
    for _ in range(20):
        r.lexical.search(query, 20)
    lexical_ms = (time.perf_counter() - t0) / 20 * 1000
    t0 = time.perf_counter()
    for _ in range(10):
        r.search(query, k=5)
    hybrid_ms = (time.perf_counter() - t0) / 10 * 1000
    with capsys.disabled():
        print(f"\n[latency] lexical query {lexical_ms:.2f} ms · hybrid search {hybrid_ms:.1f} ms"
              f" + query embedding {embed_ms:.0f} ms")
    assert lexical_ms < 100 and hybrid_ms < 500
