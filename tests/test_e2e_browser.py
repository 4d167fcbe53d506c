"""The real app in a real browser: `streamlit run` + Debian's chromium driven by Playwright.

AppTest runs the script without a browser; what only a browser shows is tested here: the
page loads, the chat input takes a question and Enter, the answer arrives with its sources
over the websocket, and the « ouvrir à la page N » link of a PDF source is built by the
page's JavaScript (a blob: URL ending in #page=N). A screenshot is kept under
tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from processes import stop  # tests/processes.py

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
QUESTION = "Comment la mobilité des aînés est-elle organisée ?"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:]
            raise AssertionError(f"streamlit s'est arrêté (code {proc.returncode}) :\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200 and resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"streamlit ne répond pas sur {url} :\n{log.read_text()[-3000:]}")


@contextmanager
def _streamlit(root: Path, store: Path, docs: Path):
    """`streamlit run app.py` on a free port over `store`; yields its URL, stopped afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FP_", "OPENAI_"))}
    env.update({
        "FP_STORE": str(store), "FP_CORPUS_DIR": str(docs), "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "PYTHONUNBUFFERED": "1",
    })
    log = root / "streamlit.log"
    streamlit = shutil.which("streamlit", path=str(Path(sys.executable).parent)) or "streamlit"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [streamlit, "run", "app.py", "--server.headless", "true", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, timeout=20)


def _need_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium absent (/usr/bin/chromium) : test navigateur ignoré")
    pytest.importorskip("playwright.sync_api", reason="playwright absent du venv")


@pytest.fixture(scope="module")
def server(tmp_path_factory, e5):
    """`streamlit run app.py` on a free port over a small temp index; stopped afterwards."""
    _need_browser()
    from test_app import build_small_index

    root = tmp_path_factory.mktemp("e2e")
    store, docs = build_small_index(root)
    with _streamlit(root, store, docs) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


def _ask(page, question: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=120_000)
    box.fill(question)
    box.press("Enter")


def _wait_idle(page) -> None:
    """Until the script run is over (Streamlit's « running » indicator gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"],"
        " [data-testid=\"stStatusWidgetRunningManIcon\"]')"
    )


def test_chat_answer_with_sources_in_browser(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, locale="fr-FR")
    page.set_default_timeout(180_000)
    page.goto(server)
    page.get_by_text("Assistant des Fabriques Prospectives").first.wait_for()
    _ask(page, QUESTION)
    page.get_by_text("Sources", exact=True).wait_for()
    assert page.get_by_text("D'après les documents du corpus").count() >= 1
    answer = page.get_by_test_id("stChatMessage").last
    assert "[1]" in answer.inner_text()
    first = answer.get_by_test_id("stExpander").first
    assert first.inner_text().lstrip().startswith("[1]") or "[1]" in first.inner_text()
    _wait_idle(page)
    first.locator("summary").click()
    first.locator("mark").first.wait_for()  # the question's words highlighted in the excerpt
    first.get_by_text("Télécharger le fichier original").wait_for()
    page.get_by_test_id("stFeedback").last.wait_for()
    page.wait_for_timeout(1000)  # the expander's opening animation, for the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "e2e_chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def test_pdf_source_link_opens_at_page(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, locale="fr-FR")
    page.set_default_timeout(180_000)
    page.goto(server)
    _ask(page, "Que font les jardins partagés de Colmar avec les retraités et les écoliers ?")
    page.get_by_text("Sources", exact=True).wait_for()
    link = page.locator("a.fp-pdf-link").first
    link.wait_for(state="attached")
    page.wait_for_function(
        "() => [...document.querySelectorAll('a.fp-pdf-link')].some(a => a.href.startsWith('blob:'))"
    )
    hrefs = page.eval_on_selector_all("a.fp-pdf-link", "els => els.map(a => a.href)")
    assert any(h.startswith("blob:") and h.endswith("#page=2") for h in hrefs), hrefs
    page.close()


def test_chrome_is_clean_and_the_uploader_reads_in_french(server, browser):
    """No « Deploy » button nor developer menu (.streamlit/config.toml: toolbarMode minimal),
    and the upload zone's own words are French."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, locale="fr-FR")
    page.set_default_timeout(180_000)
    page.goto(server)
    page.get_by_text("Assistant des Fabriques Prospectives").first.wait_for()
    _wait_idle(page)
    assert page.get_by_test_id("stAppDeployButton").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    page.get_by_text("Corpus et avis").first.click()
    tab = page.get_by_role("tab", name="Ajouter des fichiers")
    tab.wait_for()
    _wait_idle(page)  # a click during the page's rerun would land on tabs about to be redrawn
    tab.click()
    # its words are computed styles: readable whether or not the panel has finished showing
    page.get_by_test_id("stFileUploaderDropzone").wait_for(state="attached")
    words = page.evaluate(
        """() => {
          const z = document.querySelector('[data-testid="stFileUploaderDropzone"]');
          const ins = z.querySelector('[data-testid="stFileUploaderDropzoneInstructions"] > div');
          const b = z.querySelector('button');
          return [getComputedStyle(ins, '::before').content, getComputedStyle(b, '::after').content,
                  getComputedStyle(b).fontSize];
        }"""
    )
    assert "Glissez-déposez" in words[0] and "Parcourir" in words[1] and words[2] == "0px", words
    page.close()


# --------------------------------------------------------------------------- the Fabriques page


@pytest.fixture(scope="module")
def fabriques_server(tmp_path_factory, e5):
    """The app over the cards tests' index (its ingest writes the cards); (url, store)."""
    _need_browser()
    from test_fabriques_faces import build_fabriques_index

    root = tmp_path_factory.mktemp("e2e-fabriques")
    store, docs = build_fabriques_index(root)
    with _streamlit(root, store, docs) as url:
        yield url, store


def test_fabriques_page_shows_a_card_and_a_territory_with_its_source(fabriques_server, browser):
    """The « Fabriques » page as a browser draws it: the card's title, a territory with its
    département and région, and, on a click, the document, page and sentence it is read in."""
    from test_fabriques_faces import FABRIQUE

    from assistant.config import Settings
    from assistant.service import Caller, Service

    url, store = fabriques_server
    card = Service(Settings(_env_file=None, store=store)).fabrique(Caller.local("interne"), FABRIQUE)
    assert card["fields"]["territories"], "aucun territoire sur la fiche : rien à montrer"
    territory = card["fields"]["territories"][0]
    label = f"{territory['value']} ({territory['departement']}, {territory['region']})"
    evidence = territory["evidence"][0]
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, locale="fr-FR")
    page.set_default_timeout(180_000)
    page.goto(url)
    page.get_by_text("Assistant des Fabriques Prospectives").first.wait_for()
    _wait_idle(page)
    page.get_by_test_id("stSidebar").get_by_text("Fabriques", exact=True).click()
    page.get_by_role("heading", name=card["title"]).wait_for()
    _wait_idle(page)
    button = page.get_by_role("button", name=label).first
    button.wait_for()
    button.click()
    popover = page.get_by_test_id("stPopoverBody").last
    popover.wait_for()
    # the quoted sentences are drawn a moment after the popover's frame
    popover.locator("blockquote").first.wait_for()
    shown = popover.inner_text()
    assert f"Source : {evidence['title']}, p. {evidence['page']}" in shown, shown
    assert evidence["sentence"] in " ".join(shown.split()), shown
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e_fabriques.png"), full_page=True)
    page.close()
