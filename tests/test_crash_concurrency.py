"""A real `kill -9` in the middle of an ingest, and two ingests racing for the same index.

Why subprocesses: the crash tests in test_ingest.py raise an exception between two steps,
which runs every `finally` and never interrupts Chroma or SQLite mid-write. Only SIGKILL of
a real `fp-assistant ingest` shows that the order of writes (new chunks, then the registry
switch, then the removal of the old chunks) survives a process that simply vanishes, and
only two real processes show that the file lock serialises them.

All index access goes through the CLI in subprocesses while they run; the test process opens
the index itself only once they are all finished (an embedded Chroma client caches what it
read, so a client opened earlier would not see the other processes' writes).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.index import SAMPLE_MANIFEST
from ingest.chunker import chunk_document
from ingest.loaders import load
from ingest.metadata import Manifest, resolve
from ingest.pipeline import sha256_file
from ingest.registry import Registry, connect
from ingest.store import Store, open_store

COLLECTION = "fp_passages"  # what the CLI uses

TOWNS = [
    ("Lorient", "une recyclerie portuaire qui transforme les filets de pêche en mobilier urbain"),
    ("Nîmes", "un réseau de visiteurs bénévoles pour rompre l'isolement des aînés"),
    ("Quimper", "une légumerie collective qui fournit les cantines des écoles"),
    ("Alès", "la reconversion d'un carreau de mine en parc photovoltaïque"),
    ("Vierzon", "une halle de producteurs dans l'ancienne usine de porcelaine"),
    ("Guéret", "un service de transport à la demande pour les villages isolés"),
    ("Millau", "un atelier de ganterie qui forme des apprentis au travail du cuir"),
    ("Dieppe", "la protection des falaises de craie contre l'érosion marine"),
    ("Lunéville", "un tiers-lieu numérique dans les anciennes écuries du château"),
    ("Autun", "une chaufferie au bois qui alimente l'hôpital et le lycée"),
    ("Saumur", "le réemploi des caves troglodytiques comme champignonnières"),
    ("Figeac", "une navette ferroviaire pour les salariés de l'aéronautique"),
    ("Bar-le-Duc", "un programme de rénovation des façades de la ville haute"),
    ("Dole", "un jardin pédagogique au bord du canal du Rhône au Rhin"),
]


def doc_text(i: int, version: str = "") -> str:
    """A short document (one passage) about one town; `version` changes its content."""
    town, project = TOWNS[i]
    if version:
        project = f"{project}, remplacée en 2022 par une conserverie coopérative ({version})"
    body = (
        f"Les élus de {town} ont présenté {project}. Le projet associe les habitants, les "
        "associations et les entreprises du territoire ; un comité de suivi se réunit chaque "
        f"trimestre. À {town}, les premiers résultats seront présentés lors du séminaire "
        "intersites, avec un bilan des emplois créés et des économies réalisées. "
    )
    return f"# Compte rendu de {town}\n\n{body * 2}\n"


def _env(store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FP_")}
    env.update(
        FP_STORE=str(store), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False"
    )
    env.update(extra)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", *args]


def _run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (cwd outside the repo: no developer `.env` is read)."""
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _registry_rows(store: Path) -> dict[str, str]:
    """path -> status, read-only, while another process may be writing (WAL)."""
    db = store / "index.sqlite3"
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return dict(conn.execute("SELECT path, status FROM documents").fetchall())
        finally:
            conn.close()
    except sqlite3.OperationalError:  # schema not created yet, or a write in progress
        return {}


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the ingest ended (code {proc.returncode}) before the expected point")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the ingest to make progress")
        time.sleep(0.02)


def _search(query: str, store: Path, cwd: Path, k: int = 10) -> list[dict]:
    res = _run(_cli("search", query, "--json", "--k", str(k)), _env(store), cwd)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _expected_chunks(path: Path) -> int:
    """How many passages a fresh ingest makes of this file (no embedding needed)."""
    loaded = load(path)
    meta = resolve(path, loaded, Manifest.find(path, SAMPLE_MANIFEST), str(path.resolve()))
    return len(chunk_document(loaded, meta, sha256_file(path)))


def assert_consistent(store_dir: Path, files: list[Path], e5) -> tuple[Registry, Store]:
    """Every file indexed exactly once, at its current content, with no leftover passage."""
    registry = Registry(connect(store_dir))
    store = open_store(store_dir, COLLECTION, e5.model_id, e5.dim)
    records = {r.path: r for r in registry.all()}
    assert set(records) == {str(f.resolve()) for f in files}
    hits = store.get()
    ids = [h.chunk_id for h in hits]
    assert len(ids) == len(set(ids)), "duplicate chunk ids"
    for f in files:
        rec = records[str(f.resolve())]
        assert rec.status == "indexed", (f.name, rec.status, rec.error)
        assert rec.sha256 == sha256_file(f), f"{f.name}: registry not at the file's content"
        mine = [h for h in hits if h.meta["doc_id"] == rec.doc_id]
        assert {h.meta["content_hash"] for h in mine} == {rec.sha256}, f"{f.name}: stale passages left"
        assert len(mine) == rec.chunks == _expected_chunks(f), f.name
    assert len(hits) == sum(r.chunks for r in records.values()), "passages of no registered document"
    return registry, store


def test_kill_9_mid_ingest_then_rerun(tmp_path: Path, e5):
    """SIGKILL after the first new document is registered: the index stays usable, earlier
    documents answer (at one complete version each), and a rerun finishes without duplicates."""
    docs, store = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    first = docs / "a-lorient.md"  # sorted first: re-indexed (new version) before the kill
    last = docs / "z-nimes.md"  # sorted last: most likely still at its old version at the kill
    first.write_text(doc_text(0), encoding="utf-8")
    last.write_text(doc_text(1), encoding="utf-8")
    done = _run(_cli("ingest", str(docs), "--json", "--quiet"), _env(store), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 2

    first.write_text(doc_text(0, "v2"), encoding="utf-8")
    last.write_text(doc_text(1, "v2"), encoding="utf-8")
    new = [docs / f"m{i:02d}-{TOWNS[i][0].lower()}.md" for i in range(2, 8)]
    for i, path in enumerate(new, start=2):
        path.write_text(doc_text(i), encoding="utf-8")
    new_keys = {str(p.resolve()) for p in new}

    proc = subprocess.Popen(
        _cli("ingest", str(docs), "--json"), env=_env(store), cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: new_keys & set(_registry_rows(store)), proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = _registry_rows(store)
    assert len(new_keys & set(at_kill)) < len(new), "killed too late to test anything"

    # The index opens and answers; each document is served at exactly one complete version.
    # k is above the passage count, so every live passage comes back, leftovers included if
    # the retriever failed to drop them.
    rows = _search("visiteurs bénévoles pour rompre l'isolement des aînés", store, tmp_path, k=30)
    assert rows and rows[0]["source"] == str(last.resolve()), "the earlier document must still answer"
    nimes = [r for r in rows if r["source"] == str(last.resolve())]
    assert len({"v2" in r["text"] for r in nimes}) == 1, "never a mix of two versions"
    lorient = [r for r in rows if r["source"] == str(first.resolve())]
    assert lorient and all("v2" in r["text"] for r in lorient), "the switched document serves v2 only"

    rerun = _run(_cli("ingest", str(docs), "--json", "--quiet"), _env(store), tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert not report["failed"] and report["documents"] == 8
    registry, index = assert_consistent(store, [first, last, *new], e5)
    texts = [h.text for h in index.get(where={"doc_id": registry.get(str(last.resolve())).doc_id})]
    assert texts and all("v2" in t for t in texts), "the rerun serves the latest version only"


def test_two_ingests_at_once(tmp_path: Path, e5):
    """The second ingest waits FP_LOCK_TIMEOUT, then fails in French with exit code 3; the
    first completes; the index is consistent and the second succeeds when run again."""
    from ingest.pipeline import Ingestor

    big, small, store = tmp_path / "lot1", tmp_path / "lot2", tmp_path / "index"
    big.mkdir()
    small.mkdir()
    # Enough work that the first ingest outlasts the second one's start-up (model load,
    # ~4 s idle, ~7 s on a loaded machine) plus its 1 s wait: 7 documents of ~10 passages
    # remain after the first, ~20 s idle, and the margin scales with the load (embedding and
    # start-up slow down together). One-passage documents were too quick on an idle machine.
    many = [big / f"{i:02d}-{TOWNS[i][0].lower()}.md" for i in range(8)]
    for i, path in enumerate(many):
        path.write_text(doc_text(i) * 10, encoding="utf-8")
    alone = small / "dole.md"
    alone.write_text(doc_text(13), encoding="utf-8")
    keys = {str(p.resolve()) for p in many}

    p1 = subprocess.Popen(
        _cli("ingest", str(big), "--json", "--quiet"), env=_env(store), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for(lambda: keys & set(_registry_rows(store)), p1)  # p1 holds the lock now
        second = _run(_cli("ingest", str(small), "--json", "--quiet"),
                      _env(store, FP_LOCK_TIMEOUT="1"), tmp_path)
        still_running = p1.poll() is None
        out, err = p1.communicate(timeout=300)
    finally:
        if p1.poll() is None:
            p1.kill()
    assert still_running, "the first ingest ended before the second tried the lock"
    assert second.returncode == 3, (second.returncode, second.stderr)
    assert "Une autre indexation est en cours" in second.stderr
    assert "réessayez" in second.stderr and "Traceback" not in second.stderr
    assert p1.returncode == 0, err
    assert json.loads(out)["added"] == len(many)
    assert str(alone.resolve()) not in _registry_rows(store), "the refused ingest wrote nothing"

    assert_consistent(store, many, e5)
    store_obj = open_store(store, COLLECTION, e5.model_id, e5.dim)
    report = Ingestor(store, store_obj, e5, manifest_fallback=SAMPLE_MANIFEST).run([small])
    assert len(report.added) == 1 and not report.failed
    assert_consistent(store, [*many, alone], e5)
