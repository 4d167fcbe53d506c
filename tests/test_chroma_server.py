"""Server mode: the same CLI (ingest, search, ask) against a real `chroma run` subprocess.

With FP_CHROMA_URL set, passages and vectors live on the Chroma server while the registry
and the lexical index stay in FP_STORE on local disk. These tests prove the split holds:
nothing Chroma-shaped is written locally, incremental ingest still skips unchanged files
(the registry is local, the chunks remote), replaced and removed documents are deleted on
the server by metadata, a registry that describes another storage is refused rather than
silently searched empty, and an unreachable server is a clear French error (exit 3).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import stop  # tests/processes.py

pytestmark = pytest.mark.slow

DOCS = {
    "cr-lorient.md": """---
doc_id: srv-lorient-1
title: Compte rendu du séminaire local de Lorient
doc_type: seminaire_local
fabrique: villes-moyennes-transition-ecologique
year: 2019
territories: [Lorient]
visibility: public
---
# Séminaire local n°1

## Économie circulaire
Le groupe de travail a proposé une recyclerie portuaire qui collecte les filets de pêche usagés
et les transforme en mobilier urbain. La ressourcerie emploierait douze personnes en insertion.

## Mobilité
Une navette fluviale relierait les quartiers de la rade au centre-ville trois fois par heure.
""",
    "note-nimes.md": """---
doc_id: srv-nimes-1
title: Note sur le vieillissement à Nîmes
doc_type: publication
fabrique: senior-petite-ville
year: 2020
territories: [Nîmes]
visibility: public
---
# Isolement des aînés

Les aînés des quartiers prioritaires souffrent d'isolement. Un réseau de visiteurs bénévoles a
été imaginé avec le CCAS, qui coordonne les appels hebdomadaires et les sorties collectives.
""",
    "feuille-chatellerault.md": """---
doc_id: srv-chatellerault-1
title: Feuille de route de Châtellerault
doc_type: feuille_de_route
fabrique: villes-moyennes-transition-ecologique
year: 2021
territories: [Châtellerault]
visibility: public
---
# Plan climat

Le PCAET intercommunal fixe la rénovation de quatre cents logements par an et la conversion
des chaufferies municipales au bois local d'ici 2026.
""",
}


def _free_port() -> int:
    """A port nothing listens on right now (bound then released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server on a free loopback port, for the whole module."""
    exe = Path(sys.executable).parent / "chroma"
    assert exe.exists(), f"{exe} introuvable : chromadb doit être installé dans ce venv"
    base = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (base / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(base / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while not _heartbeat(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"chroma run n'a pas démarré :\n{(base / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop(proc, timeout=15)
        log.close()


def _write_docs(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _point_at(monkeypatch: pytest.MonkeyPatch, store: Path, url: str | None, collection: str) -> None:
    """Settings (and so the CLI) on this store, server and collection; nothing else inherited."""
    from assistant.config import get_settings

    monkeypatch.setenv("FP_STORE", str(store))
    monkeypatch.setenv("FP_COLLECTION", collection)
    if url:
        monkeypatch.setenv("FP_CHROMA_URL", url)
    else:
        monkeypatch.delenv("FP_CHROMA_URL", raising=False)
    for var in ("FP_EMBEDDINGS", "FP_AUDIENCE", "FP_LLM", "FP_RERANKER"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from assistant.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _server_chunks(url: str, collection: str, where: dict | None = None) -> list[dict]:
    """What the server holds, read with a separate client (not through the code under test)."""
    import chromadb

    host, port = url.rsplit("//", 1)[1].split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    res = client.get_collection(collection).get(where=where, include=["metadatas"])
    return list(res["metadatas"])


def _count_embedded(monkeypatch: pytest.MonkeyPatch, e5) -> list[int]:
    """Count passages the (cached, shared) model embeds: the CLI gets this same object."""
    seen = [0]
    inner = e5.embed_documents

    def counting(texts):
        seen[0] += len(texts)
        return inner(texts)

    monkeypatch.setattr(e5, "embed_documents", counting)
    return seen


def test_cli_ingest_search_ask_on_server(tmp_path, monkeypatch, capsys, chroma_url, e5):
    from assistant.cli import main
    from ingest.store import make_client, open_store

    store = tmp_path / "index"
    _point_at(monkeypatch, store, chroma_url, "srv_cli")
    docs = _write_docs(tmp_path / "docs")

    assert main(["ingest", str(docs), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 3 and out["documents"] == 3 and not out["failed"]
    assert out["chunks"] >= 3
    # vectors on the server, registry and lexical index local
    assert not (store / "chroma").exists()
    assert (store / "index.sqlite3").exists()
    on_server = _server_chunks(chroma_url, "srv_cli")
    assert len(on_server) == out["chunks"]
    assert {m["doc_id"] for m in on_server} == {"srv-lorient-1", "srv-nimes-1", "srv-chatellerault-1"}

    assert main(["search", "navette fluviale", "--json", "--k", "3", "--territory", "lorient"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["territories"] == ["Lorient"] for r in rows)
    assert "navette" in rows[0]["text"] and rows[0]["source"].endswith("cr-lorient.md")

    # a rare acronym: found lexically (local FTS5), text and vector fetched from the server
    assert main(["search", "PCAET", "--json", "--k", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["doc_id"] == "srv-chatellerault-1" and "PCAET" in rows[0]["text"]

    assert main(["ask", "Que deviennent les filets de pêche usagés à Lorient ?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["grounded"] and answer["citations"], answer
    assert any(c["source"].endswith("cr-lorient.md") for c in answer["citations"])
    assert "[1]" in answer["answer"]

    # writes stay under the server's own limit
    client = make_client(store, chroma_url)
    opened = open_store(store, "srv_cli", e5.model_id, e5.dim, chroma_url)
    assert opened.batch <= client.get_max_batch_size()


def test_incremental_ingest_and_deletes_on_server(tmp_path, monkeypatch, capsys, chroma_url, e5):
    from assistant.cli import main

    store = tmp_path / "index"
    _point_at(monkeypatch, store, chroma_url, "srv_incr")
    docs = _write_docs(tmp_path / "docs")
    assert main(["ingest", str(docs), "--json", "--quiet"]) == 0
    capsys.readouterr()

    embedded = _count_embedded(monkeypatch, e5)
    assert main(["ingest", str(docs), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["unchanged"], out["added"], out["updated"]) == (3, 0, 0)
    assert embedded[0] == 0, "an unchanged file was re-embedded"

    # a changed file is replaced: its old chunks are deleted on the server (delete by where)
    lorient = docs / "cr-lorient.md"
    lorient.write_text(DOCS["cr-lorient.md"].replace("recyclerie portuaire", "conserverie solidaire"),
                       encoding="utf-8")
    # a removed file disappears from the server with --sync
    (docs / "note-nimes.md").unlink()
    assert main(["ingest", str(docs), "--sync", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["updated"], out["removed"], out["unchanged"]) == (1, 1, 1)
    assert embedded[0] > 0
    hashes = {m["content_hash"] for m in _server_chunks(chroma_url, "srv_incr", {"doc_id": "srv-lorient-1"})}
    assert len(hashes) == 1, "chunks of the old version are still on the server"
    assert not _server_chunks(chroma_url, "srv_incr", {"doc_id": "srv-nimes-1"})
    assert out["chunks"] == len(_server_chunks(chroma_url, "srv_incr"))

    assert main(["search", "conserverie", "--json", "--k", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert "conserverie" in rows[0]["text"]
    assert main(["search", "recyclerie portuaire", "--json", "--k", "5"]) == 0
    assert not any("recyclerie" in r["text"] for r in json.loads(capsys.readouterr().out))


def test_registry_of_an_embedded_index_is_refused_on_server(tmp_path, monkeypatch, capsys, chroma_url, e5):
    """Built embedded, then opened with FP_CHROMA_URL: the server has none of its passages.

    Without the guard every file would be 'unchanged' and every search empty.
    """
    from assistant.cli import main

    store = tmp_path / "index"
    docs = _write_docs(tmp_path / "docs")
    _point_at(monkeypatch, store, None, "srv_switch")
    assert main(["ingest", str(docs), "--json", "--quiet"]) == 0
    capsys.readouterr()

    _point_at(monkeypatch, store, chroma_url, "srv_switch")
    for argv in (["search", "navette"], ["ingest", str(docs), "--quiet"]):
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert "recense 3 documents" in err and "n'existe pas sur le serveur Chroma" in err
        assert "FP_STORE" in err and "Traceback" not in err
    # refused before creating anything on the server
    import chromadb

    host, port = chroma_url.rsplit("//", 1)[1].split(":")
    names = [getattr(c, "name", c) for c in chromadb.HttpClient(host=host, port=int(port)).list_collections()]
    assert "srv_switch" not in names

    # a folder of its own for the server works
    _point_at(monkeypatch, tmp_path / "index-server", chroma_url, "srv_switch")
    assert main(["ingest", str(docs), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 3


def test_unreachable_server_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    store = tmp_path / "index"
    _point_at(monkeypatch, store, f"http://127.0.0.1:{_free_port()}", "srv_down")
    docs = _write_docs(tmp_path / "docs")
    for argv in (["ingest", str(docs), "--quiet"], ["search", "navette", "--json"], ["ask", "navette ?"]):
        assert main(argv) == 3, argv
        captured = capsys.readouterr()
        assert "Serveur Chroma injoignable" in captured.err and "chroma run" in captured.err
        assert "Traceback" not in captured.err and captured.out == ""
    assert not (store / "index.sqlite3").exists(), "nothing is registered when the store is down"


# --------------------------------------------------------------------------- filtered search


def test_filtered_search_is_exact_whichever_route_it_takes(tmp_path, chroma_url):
    """`Store.search_filtered` post-filters an unfiltered search for broad filters, and for
    narrow ones lets Chroma search the ids the local labels list (or filter first). On a real
    server, whatever the route and even with a wrong estimate of the filter's share or stale
    labels: no passage outside the filter, never fewer than exist within it (up to k), and the
    same nearest passages as an exact search."""
    import numpy as np

    from ingest.store import open_store

    rng = np.random.default_rng(7)
    n, dim = 3000, 16
    vectors = rng.normal(size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    fabriques = rng.choice(["large", "moyenne", "petite", "rare"], size=n, p=[0.6, 0.25, 0.12, 0.03])
    metas = [{"doc_id": f"d{i // 10}", "content_hash": "h", "fabrique": str(fabriques[i]),
              "visibility": "interne" if i % 5 == 0 else "public", "year": 2018 + i % 6,
              "territories": [["Lorient"], ["Colmar", "Lorient"], ["Nîmes"]][i % 3]} for i in range(n)]
    store = open_store(tmp_path / "index", "filtres", "aleatoire-16", dim, chroma_url)
    ids = [f"c{i}" for i in range(n)]
    for start in range(0, n, 500):
        store.collection.add(ids=ids[start:start + 500], embeddings=vectors[start:start + 500].tolist(),
                             metadatas=metas[start:start + 500], documents=[f"passage {i}" for i in
                                                                          range(start, min(n, start + 500))])
    filters = [
        {"fabrique": "large"},
        {"$and": [{"visibility": "public"}, {"fabrique": "moyenne"}]},
        {"$and": [{"fabrique": "large"}, {"year": {"$gte": 2020}}, {"year": {"$lte": 2021}}]},
        {"$and": [{"visibility": "public"}, {"territories": {"$contains": "Colmar"}}]},
        {"$and": [{"fabrique": "rare"}, {"year": {"$gte": 2023}}]},
        {"fabrique": "inexistante"},
    ]
    from ingest.store import matches

    for where in filters:
        inside = set(store.collection.get(where=where, include=[])["ids"])  # Chroma's own reading
        assert inside == {ids[i] for i in range(n) if matches(metas[i], where)}  # same reading here
        true_share = len(inside) / n

        def passing(found: list[str], where=where) -> set[str]:  # the local copy of the labels
            return {cid for cid in found if matches(metas[int(cid[1:])], where)}

        def lying(found: list[str]) -> set[str]:  # stale labels: everything seems to pass
            return set(found)

        def allowed(where=where) -> list[str]:  # the local labels' list of passing passages
            return [ids[i] for i in range(n) if matches(metas[i], where)]

        def everything() -> list[str]:  # stale labels again, on the narrow route
            return list(ids)

        for k in (10, 40):
            query = rng.normal(size=dim)
            query /= np.linalg.norm(query)
            exact = sorted(inside, key=lambda cid: -float(vectors[int(cid[1:])] @ query))[:k]
            # right or far too broad estimate, unknown, no labels, stale labels; then the narrow
            # route (Chroma searches the listed ids): right, far too narrow an estimate, stale
            # list, empty list
            routes = [(true_share, passing, None), (0.9, passing, None), (None, passing, None),
                      (true_share, None, None), (0.9, lying, None), (true_share, passing, allowed),
                      (0.001, passing, allowed), (0.001, passing, everything), (0.001, None, list)]
            for share, labels, listed in routes:
                got = [h.chunk_id for h in store.search_filtered(query.tolist(), k, where, share, labels,
                                                                 allowed=listed)]
                assert set(got) <= inside, (where, share)
                assert len(got) == min(k, len(inside)), (where, share, len(got))
                if exact:
                    overlap = len(set(got) & set(exact)) / len(exact)
                    assert overlap >= 0.9, (where, share, overlap)
        if inside:  # the narrow route answers by itself: Chroma's own filter is not needed
            def no_filter_scan(*args, **kwargs):
                raise AssertionError("Chroma's filter ran although the listed ids sufficed")

            scan, store.search = store.search, no_filter_scan
            try:
                got = store.search_filtered(query.tolist(), 10, where, 0.001, passing, allowed=allowed)
            finally:
                store.search = scan
            assert len(got) == min(10, len(inside))
