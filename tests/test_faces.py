"""The three faces over one service: the CLI, the Streamlit app and the HTTP API give the same
answer to the same question, and the app applies the same roles as the API when it is
protected by keys (`FP_APP_ACCESS=key`)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from processes import serving
from test_app import APP, DOCS, QUESTION, TIMEOUT, _env

pytestmark = pytest.mark.slow

INTERNE_WORD = "confidentiel"  # only the internal Quimper note says it


@pytest.fixture(scope="module")
def index(tmp_path_factory, e5):
    from test_app import build_small_index

    return build_small_index(tmp_path_factory.mktemp("faces"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api(index, monkeypatch):
    """The HTTP API on a loopback port, with an interne key; (base url, key)."""

    from assistant.api.app import create_app
    from assistant.config import get_settings
    from assistant.service import Service

    store, docs = index
    _env(monkeypatch, store, docs)
    settings = get_settings()
    _info, secret = Service(settings).keys.add(f"faces-{time.monotonic_ns()}", "interne")
    port = _free_port()
    try:
        with serving(create_app(settings), port) as url:
            yield url, secret
    finally:
        get_settings.cache_clear()


def test_cli_app_and_api_give_the_same_answer(index, api, monkeypatch, capsys):
    import httpx
    from streamlit.testing.v1 import AppTest

    from assistant.cli import main

    url, secret = api
    assert main(["ask", QUESTION, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["citations"] and "[1]" in cli["answer"]

    reply = httpx.post(f"{url}/api/ask", json={"question": QUESTION},
                       headers={"Authorization": f"Bearer {secret}"}, timeout=120)
    assert reply.status_code == 200, reply.text
    api_json = reply.json()

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.chat_input(key="chat_input").set_value(QUESTION).run()
    assert not at.exception, at.exception
    app_answer = at.session_state["messages"][-1]["answer"]

    assert api_json["answer"] == cli["answer"] == app_answer.text
    sources = [(c["source"], c["page"]) for c in cli["citations"]]
    assert [(c["source"], c["page"]) for c in api_json["citations"]] == sources
    assert [(c.source, c.page) for c in app_answer.citations] == sources


# --------------------------------------------------------------------------- the app behind keys


@pytest.fixture
def keyed_app(index, monkeypatch):
    """The app with FP_APP_ACCESS=key, and one key per role."""
    from assistant.config import get_settings
    from assistant.service import Service

    store, docs = index
    _env(monkeypatch, store, docs, FP_APP_ACCESS="key")
    keys = Service(get_settings()).keys
    stamp = time.monotonic_ns()
    secrets = {role: keys.add(f"app-{role}-{stamp}", role)[1] for role in ("public", "admin")}
    yield secrets
    get_settings.cache_clear()


def _login(secret: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.text_input(key="login_key").set_value(secret)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_a_keyed_app_asks_for_a_key_and_refuses_a_wrong_one(keyed_app):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert any("clé d'accès" in i.value for i in at.info)
    assert len(at.chat_input) == 0  # nothing can be asked before signing in
    at = _login("fpa_pas-une-vraie-cle")
    assert any("Clé inconnue ou révoquée" in e.value for e in at.error)
    assert len(at.chat_input) == 0


def test_a_public_key_reads_public_documents_only_and_cannot_write(keyed_app):
    at = _login(keyed_app["public"])
    assert len(at.chat_input) == 1
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert f"{len(DOCS)} documents" in sidebar  # the internal note is not counted
    assert "Mode public" in sidebar
    question = "Que dit la note sur le budget de la navette de Quimper ?"
    at.chat_input(key="chat_input").set_value(question).run()
    answer = at.session_state["messages"][-1]["answer"]
    seen = answer.text + " ".join(c.excerpt for c in answer.citations) + " ".join(
        lead.excerpt for lead in answer.leads)
    assert INTERNE_WORD not in seen
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    assert not at.exception, at.exception
    assert any("Réservé aux administrateurs" in i.value for i in at.info)
    assert not any(b.label == "Réindexer le corpus" for b in at.button)


def test_an_admin_key_may_reindex(keyed_app):
    at = _login(keyed_app["admin"])
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert f"{len(DOCS) + 1} documents" in sidebar
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    assert not at.exception, at.exception
    assert any(b.label == "Réindexer le corpus" for b in at.button)
