"""The sample corpus: complete, true to its manifest, and a valid ground truth for the gold set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CORPUS, REPO

from assistant.evaluation.gold import holds_term, load_gold
from ingest.loaders import load

NOTICE = "Document d'illustration — contenu fictif, inspiré du dispositif public des Fabriques Prospectives"
MANIFEST = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
DOCS = {d["doc_id"]: d for d in MANIFEST["documents"]}
# pages written as public pages are (no manifest entry: their metadata is read from their text)
PAGES = sorted(p for p in (CORPUS / "pages-publiques").iterdir() if p.is_file())
GOLD = load_gold(REPO / "tests" / "gold" / "questions.yaml")


def _pages(doc_id: str) -> list[str]:
    loaded = load(CORPUS / DOCS[doc_id]["path"])
    return [p.text for p in loaded.pages]


_TEXT_CACHE: dict[str, list[str]] = {}


def pages_of(doc_id: str) -> list[str]:
    if doc_id not in _TEXT_CACHE:
        _TEXT_CACHE[doc_id] = _pages(doc_id)
    return _TEXT_CACHE[doc_id]


def test_corpus_size_and_formats():
    docs = MANIFEST["documents"]
    assert len(MANIFEST["fabriques"]) == 13
    assert len(docs) >= 65
    pdf = [d for d in docs if d["path"].endswith(".pdf")]
    assert len(pdf) / len(docs) >= 0.6
    assert sum(d["pages"] for d in docs) >= 180
    assert {Path(d["path"]).suffix for d in docs} == {".pdf", ".docx", ".html", ".md"}
    assert sum(d["doc_type"] == "feuille_de_route" for d in docs) >= 8
    assert any(d["visibility"] == "interne" for d in docs)
    for fab in MANIFEST["fabriques"]:
        types = [d["doc_type"] for d in docs if d["fabrique"] == fab["id"]]
        assert "cahier_des_charges" in types and "publication" in types, fab["id"]
        assert "seminaire_intersites" in types and types.count("seminaire_local") >= 2, fab["id"]


@pytest.mark.parametrize("doc_id", sorted(DOCS))
def test_every_document_opens_with_the_illustration_notice(doc_id):
    first = pages_of(doc_id)[0]
    assert " ".join(NOTICE.split()) in " ".join(first.split())[:400]


def test_gold_set_shape():
    assert len(GOLD) >= 80
    kinds = {q.kind for q in GOLD}
    assert kinds >= {"factuel", "comparaison", "enseignement", "filtre", "paraphrase", "page", "hors_corpus"}
    assert sum(q.kind == "hors_corpus" for q in GOLD) >= 10
    assert len({q.id for q in GOLD}) == len(GOLD)
    assert any(q.expect_page and q.expect_page >= 2 for q in GOLD)


@pytest.mark.parametrize("q", [q for q in GOLD if q.answerable], ids=lambda q: q.id)
def test_gold_question_is_supported_by_its_sources(q):
    assert q.expect_sources and q.expect_terms
    for doc_id in q.expect_sources:
        assert doc_id in DOCS, f"{q.id}: unknown source {doc_id}"
    supporting = [d for d in q.expect_sources if holds_term("\n".join(pages_of(d)), q.expect_terms)]
    assert supporting, f"{q.id}: no expected source holds {q.expect_terms}"
    if q.expect_page:
        assert any(
            len(pages_of(d)) >= q.expect_page and holds_term(pages_of(d)[q.expect_page - 1], q.expect_terms)
            for d in supporting
        ), f"{q.id}: terms not on page {q.expect_page}"


def test_whole_corpus_ingests_and_manifest_fields_land_on_chunks(corpus_index):
    store_dir, ingestor, report = corpus_index
    assert report.failed == []
    assert report.documents == len(DOCS) + len(PAGES)
    chunks = ingestor.store.get()
    seen = set()
    for hit in chunks:
        m = hit.meta
        if "pages-publiques/" in m["source"]:
            continue
        d = DOCS[m["doc_id"]]
        seen.add(m["doc_id"])
        assert m["title"] == d["title"]
        assert m["doc_type"] == d["doc_type"]
        assert m["fabrique"] == d["fabrique"]
        assert m["year"] == d["year"]
        assert m["territories"] == list(d.get("territories") or [])
        assert m["partners"] == list(d.get("partners") or []) or not d.get("partners")
        assert m["visibility"] == d["visibility"]
        assert m["fabrique_title"]
        assert m["page"] >= 1 and m["source"].endswith(d["path"])
    assert seen == set(DOCS)


def test_stats_shows_the_13_fabriques(corpus_index, monkeypatch, capsys):
    from assistant.cli import main
    from assistant.config import get_settings

    store_dir, _, _ = corpus_index
    monkeypatch.setenv("FP_STORE", str(store_dir))
    get_settings.cache_clear()
    try:
        assert main(["stats"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    for fab in MANIFEST["fabriques"]:
        assert fab["id"] in out
