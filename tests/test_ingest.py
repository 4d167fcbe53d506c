"""Ingest end to end with the real model and a real embedded Chroma, on temp folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ingest.errors import StoreError
from ingest.pipeline import Ingestor, Limits
from ingest.registry import Registry, connect
from ingest.store import open_store

MD_DOC = """---
doc_id: cr-lorient-1
title: Compte rendu du séminaire local de Lorient
doc_type: seminaire_local
fabrique: villes-moyennes-transition-ecologique
year: 2019
territories: [Lorient]
partners: [Villes de France]
visibility: public
---
Document d'illustration — contenu fictif

# Séminaire local n°1

## Économie circulaire
Le groupe de travail a proposé une recyclerie portuaire qui collecte les filets de pêche usagés
et les transforme en mobilier urbain. La ressourcerie emploierait douze personnes en insertion.

## Mobilité
Une navette fluviale relierait les quartiers de la rade au centre-ville trois fois par heure.
"""

HTML_DOC = """<!doctype html><html><head><title>Synthèse intersites</title></head><body>
<nav><ul><li><a href="/">Accueil</a></li><li><a href="/menu">Menu principal du site</a></li></ul></nav>
<main><article><h1>Synthèse du séminaire intersites</h1>
<p>Les territoires ont comparé leurs démarches de sobriété foncière et de réemploi des friches
industrielles. La reconversion d'un site délaissé demande un portage foncier de long terme.</p>
<p>Les élus ont insisté sur la place des habitants dans la gouvernance des projets de transition,
et sur la nécessité d'une ingénierie partagée entre communes voisines.</p>
</article></main>
<footer>Mentions légales — Plan du site — Contact</footer>
</body></html>"""

TXT_DOC = (
    "Note sur le vieillissement à Nîmes.\n\nLes aînés des quartiers prioritaires souffrent "
    "d'isolement ; un réseau de visiteurs bénévoles a été imaginé avec le CCAS. "
) * 3


class SpyEmbeddings:
    """The real model, counting what it is asked to embed (to prove skips)."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.embedded = 0

    def embed_documents(self, texts):
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cr-lorient.md").write_text(MD_DOC, encoding="utf-8")
    (root / "synthese.html").write_text(HTML_DOC, encoding="utf-8")
    (root / "note nîmes.txt").write_text(TXT_DOC, encoding="utf-8")
    return root


def make(store_dir: Path, emb, **kw) -> Ingestor:
    store = open_store(store_dir, "fp_test", emb.model_id, emb.dim)
    return Ingestor(store_dir, store, emb, Limits(**kw.pop("limits", {})), **kw)


def search(ingestor: Ingestor, emb, query: str, k: int = 5):
    from assistant.retriever import Retriever

    return Retriever(ingestor.store, ingestor.registry, emb).search(query, k=k)


def test_ingest_mixed_folder_carries_metadata(tmp_path, store_dir, e5):
    root = write_corpus(tmp_path / "docs")
    ing = make(store_dir, e5)
    report = ing.run([root])
    assert len(report.added) == 3 and not report.failed
    hits = search(ing, e5, "recycler les filets de pêche")
    top = hits[0]
    assert top.meta["doc_id"] == "cr-lorient-1"
    assert top.meta["territories"] == ["Lorient"]
    assert top.meta["year"] == 2019
    assert top.meta["doc_type"] == "seminaire_local"
    assert top.meta["fabrique"] == "villes-moyennes-transition-ecologique"
    assert top.meta["section"] == "Économie circulaire"
    assert top.page == 1
    html_chunks = ing.store.get(where={"source": str((root / "synthese.html").resolve())})
    text = " ".join(h.text for h in html_chunks)
    assert "friches" in text and "Menu principal" not in text and "Mentions légales" not in text


def test_reingest_unchanged_embeds_nothing_and_changed_is_replaced(tmp_path, store_dir, e5):
    root = write_corpus(tmp_path / "docs")
    spy = SpyEmbeddings(e5)
    make(store_dir, spy).run([root])
    first = spy.embedded
    assert first > 0
    report = make(store_dir, spy).run([root])
    assert spy.embedded == first, "an unchanged folder must not be embedded again"
    assert len(report.unchanged) == 3 and not report.added and not report.updated

    (root / "cr-lorient.md").write_text(
        MD_DOC.replace("recyclerie portuaire", "conserverie coopérative de sardines"), encoding="utf-8"
    )
    ing = make(store_dir, spy)
    report = ing.run([root])
    assert [Path(p).name for p in report.updated] == ["cr-lorient.md"]
    texts = [h.text for h in ing.store.get(where={"doc_id": "cr-lorient-1"})]
    assert any("conserverie" in t for t in texts)
    assert not any("recyclerie portuaire" in t for t in texts), "old version must be gone"


def test_sync_drops_removed_files(tmp_path, store_dir, e5):
    root = write_corpus(tmp_path / "docs")
    make(store_dir, e5).run([root])
    (root / "note nîmes.txt").unlink()
    ing = make(store_dir, e5)
    assert not ing.run([root]).removed, "without --sync nothing is removed"
    report = ing.run([root], sync=True)
    assert len(report.removed) == 1 and report.documents == 2
    assert not [h for h in search(ing, e5, "visiteurs bénévoles aînés") if "nîmes" in h.source]


def test_bad_inputs_are_reported_and_the_rest_is_indexed(tmp_path, store_dir, e5):
    root = write_corpus(tmp_path / "docs")
    (root / "vide.pdf").write_bytes(b"")
    (root / "casse.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    (root / "tableur.xlsx").write_bytes(b"PK\x03\x04 not really")
    (root / "gros.md").write_text("# Gros\n" + "texte " * 5000, encoding="utf-8")
    (root / "latin.txt").write_bytes("Les élus de Bagnolet ont étudié l'habitat des aînés.".encode("utf-16"))
    ing = make(store_dir, e5, limits={"max_bytes": 20_000})
    report = ing.run([root])
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert set(failed) == {"vide.pdf", "casse.pdf", "tableur.xlsx", "gros.md"}
    assert "vide" in failed["vide.pdf"]
    assert "trop volumineux" in failed["gros.md"]
    assert all(name in msg for name, msg in failed.items()), "each message names its file"
    assert len(report.added) == 4
    # a later batch that fails does not cost earlier documents
    (root / "cr-lorient.md").write_bytes(bytes(range(256)) * 8)
    report = ing.run([root])
    assert "cr-lorient.md" in {Path(f["path"]).name for f in report.failed}
    assert search(ing, e5, "filets de pêche mobilier urbain")[0].meta["doc_id"] == "cr-lorient-1"


class Crash(BaseException):
    """Stands for a kill between two steps of an ingest."""


def test_crash_after_writing_new_chunks_keeps_old_version_live(tmp_path, store_dir, e5, monkeypatch):
    root = write_corpus(tmp_path / "docs")
    make(store_dir, e5).run([root])
    (root / "cr-lorient.md").write_text(
        MD_DOC.replace("recyclerie portuaire", "conserverie coopérative de sardines"), encoding="utf-8"
    )
    monkeypatch.setattr(Registry, "mark_written", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        make(store_dir, e5).run([root])
    monkeypatch.undo()
    ing = make(store_dir, e5)
    hits = search(ing, e5, "recyclerie portuaire filets de pêche", k=10)
    lorient = [h for h in hits if h.meta["doc_id"] == "cr-lorient-1"]
    assert lorient and all("conserverie" not in h.text for h in lorient)
    assert any("recyclerie" in h.text for h in lorient)
    # the rerun completes and leaves exactly one version
    report = ing.run([root])
    assert [Path(p).name for p in report.updated] == ["cr-lorient.md"]
    texts = [h.text for h in ing.store.get(where={"doc_id": "cr-lorient-1"})]
    assert any("conserverie" in t for t in texts) and not any("recyclerie" in t for t in texts)


def test_crash_before_old_chunks_deleted_is_cleaned_on_rerun(tmp_path, store_dir, e5, monkeypatch):
    from ingest.store import Store

    root = write_corpus(tmp_path / "docs")
    make(store_dir, e5).run([root])
    (root / "cr-lorient.md").write_text(
        MD_DOC.replace("recyclerie portuaire", "conserverie coopérative de sardines"), encoding="utf-8"
    )
    monkeypatch.setattr(Store, "delete_other_versions", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        make(store_dir, e5).run([root])
    monkeypatch.undo()
    ing = make(store_dir, e5)
    lorient = [h for h in search(ing, e5, "recyclerie portuaire", k=10) if h.meta["doc_id"] == "cr-lorient-1"]
    assert lorient and all("recyclerie" not in h.text for h in lorient), "stale chunks are never served"
    ing.run([root])
    texts = [h.text for h in ing.store.get(where={"doc_id": "cr-lorient-1"})]
    assert texts and not any("recyclerie" in t for t in texts)
    assert Registry(connect(store_dir)).by_doc_id("cr-lorient-1").status == "indexed"


def test_store_refuses_another_model(tmp_path, store_dir, e5):
    make(store_dir, e5).run([write_corpus(tmp_path / "docs")])
    with pytest.raises(StoreError, match="construit avec le modèle"):
        open_store(store_dir, "fp_test", "st:other/model", 384)


def test_second_ingest_waits_then_fails_clearly(tmp_path, store_dir, e5):
    from filelock import FileLock

    root = write_corpus(tmp_path / "docs")
    ing = make(store_dir, e5, lock_timeout=0.2)
    with FileLock(str(store_dir / "ingest.lock")):
        with pytest.raises(StoreError, match="Une autre indexation est en cours"):
            ing.run([root])
    assert len(ing.run([root]).added) == 3


def test_duplicate_content_under_two_names_is_indexed_once(tmp_path, store_dir, e5):
    root = write_corpus(tmp_path / "docs")
    shutil.copy(root / "synthese.html", root / "synthese copie.html")
    report = make(store_dir, e5).run([root])
    assert len(report.added) == 3
    (dup,) = report.duplicates
    assert {Path(dup["path"]).name, Path(dup["of"]).name} == {"synthese.html", "synthese copie.html"}
    assert "contenu identique" in dup["error"]


def test_symlink_outside_folder_is_refused(tmp_path, store_dir, e5):
    root = write_corpus(tmp_path / "docs")
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\nDonnées hors du dossier, à ne pas indexer du tout.", encoding="utf-8")
    (root / "lien.md").symlink_to(secret)
    report = make(store_dir, e5).run([root])
    assert any("lien symbolique" in f["error"] for f in report.failed)
    assert len(report.added) == 3


def test_cli_ingest_search_stats_json(tmp_path, env_store, capsys, e5):
    from assistant.cli import main

    root = write_corpus(tmp_path / "docs")
    (root / "casse.pdf").write_bytes(b"%PDF-1.4 broken")
    assert main(["ingest", str(root), "--json", "--quiet"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"added", "updated", "unchanged", "removed", "failed", "documents", "chunks"}
    assert out["added"] == 3 and out["documents"] == 3 and out["chunks"] > 3
    assert out["failed"][0]["path"].endswith("casse.pdf") and out["failed"][0]["error"]

    assert main(["search", "navette fluviale", "--json", "--k", "3", "--territory", "lorient"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and set(rows[0]) >= {"rank", "source", "page", "score", "text", "fabrique",
                                     "territories", "doc_type"}
    assert all(r["territories"] == ["Lorient"] for r in rows)
    assert "navette" in rows[0]["text"]

    assert main(["search", "navette", "--json", "--year", "2030"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["search", "navette", "--year", "deux mille"]) == 2

    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 3
    fab = {f["id"]: f for f in stats["fabriques"]}
    assert fab["villes-moyennes-transition-ecologique"]["documents"] == 1


def test_cli_bad_usage_exits_2(capsys):
    from assistant.cli import main

    assert main(["ingest"]) == 2
    assert main(["search", "x", "--type", "roman"]) == 2
