"""What the Streamlit pages show, computed without Streamlit (so tests call it directly).

The pages in `assistant/ui/` only lay things out; the choices made for the reader live here
(the index views shared with the CLI and the API are `assistant.catalog`): the index status
line, and the excerpt highlighting, which escapes the source text before marking words (a
document may contain HTML, and it is shown as text, never as markup).
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import re
from pathlib import Path

from assistant.answering.frtext import STOPWORDS, content_stems, fold, stem
from assistant.config import Settings


def empty_index_message(settings: Settings) -> str:
    """What to do when there is nothing to search yet (the exact command to run)."""
    return (
        "L'index est vide : aucun document n'a encore été indexé. Lancez "
        f"`fp-assistant ingest corpus --store {settings.store}` (ou `make run`), "
        "ou déposez des fichiers dans la page « Corpus »."
    )


# --------------------------------------------------------------------------- registry views




def mime_of(path: Path) -> str:
    if path.suffix.lower() == ".md":
        return "text/markdown"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


# --------------------------------------------------------------------------- status lines


def backend_label(settings: Settings) -> str:
    """The answering back-end in one line (users must know whether a model writes)."""
    if settings.llm == "openai":
        where = settings.openai_base_url or "API OpenAI"
        return f"Modèle de langage : `{settings.llm_model}` via {where}"
    return "Extractif : citations des documents, hors ligne (aucun modèle de langage)"


def index_location(settings: Settings) -> str:
    if settings.chroma_url:
        return f"Serveur Chroma {settings.chroma_url} (registre : `{settings.store}`)"
    return f"Dossier `{settings.store}`"


# --------------------------------------------------------------------------- text


_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿŒœÆæ]+")


def highlight(text: str, question: str) -> str:
    """HTML of `text` with the question's meaningful words in <mark>, everything escaped.

    Words match by French stem with accents folded (« aînés » marks « aîné »); stopwords
    never match, so « de la » is not lit up everywhere.
    """
    wanted = set(content_stems(question, generic=True))
    out: list[str] = []
    last = 0
    for m in _TOKEN.finditer(text):
        word = m.group(0)
        f = fold(word)
        key = f if f.isdigit() else stem(word)
        if wanted and f not in STOPWORDS and key in wanted:
            out.append(html.escape(text[last:m.start()]))
            out.append(f"<mark>{html.escape(word)}</mark>")
            last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]$<>|~#])")


def md_escape(text: str) -> str:
    """A document's title or a place name shown literally in a label (no emphasis, no link)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def safe_markdown(text: str) -> str:
    """Answer text for st.markdown: `$` would start LaTeX and `<` raw HTML (shown as text)."""
    return text.replace("$", "\\$").replace("<", "&lt;")


def pdf_page_link(data: bytes, page: int, label: str, key: str) -> str:
    """HTML + JS: a link opening the PDF at `page` in a new tab (#page=N).

    Browsers refuse to open a data: URL as a page, so the embedded bytes become a blob: URL
    when the link is drawn; the built-in PDF viewers honour #page there. The caller keeps
    this for small files (the whole file travels inside the page).
    """
    b64 = base64.b64encode(data).decode("ascii")
    anchor = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    return (
        f'<a id="{anchor}" class="fp-pdf-link" href="#" target="_blank" rel="noopener">'
        f"{html.escape(label)}</a>"
        "<script>(function(){"
        f"const a=document.getElementById({json.dumps(anchor)});if(!a||a.dataset.ready)return;"
        # no « < » in the script: the page's HTML sanitiser drops a script whose text has one
        f"const buf=Uint8Array.from(atob({json.dumps(b64)}),c=>c.charCodeAt(0));"
        "const url=URL.createObjectURL(new Blob([buf],{type:'application/pdf'}));"
        f"a.href=url+'#page={int(page)}';a.dataset.ready='1';"
        "})();</script>"
    )


def source_label(title: str, page: int, territories: list[str], fabrique_title: str = "") -> str:
    """« Titre — p. 3 (Lorient) », the one-line name of a source (also stored with feedback)."""
    where = ", ".join(territories) or fabrique_title
    return f"{title} — p. {page}" + (f" ({where})" if where else "")
