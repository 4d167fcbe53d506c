"""The Streamlit interface, in French, over `assistant/` (no index logic here)."""

from __future__ import annotations

import streamlit as st

from assistant.config import get_settings


@st.cache_resource(show_spinner="Chargement du modèle et de l'index…")
def _retriever():  # noqa: ANN202 - cached resource
    from assistant.index import open_index
    from assistant.retriever import Retriever
    from ingest.embeddings import get_embeddings

    settings = get_settings()
    store, registry = open_index(settings)
    return Retriever(store, registry, get_embeddings(settings.embeddings), settings.audience)


def main() -> None:
    st.set_page_config(page_title="Assistant Fabriques Prospectives", page_icon="📚", layout="wide")
    st.title("Assistant des Fabriques Prospectives")
    retriever = _retriever()
    n = retriever.store.count()
    if n == 0:
        st.info("L'index est vide : lancez `fp-assistant ingest corpus` ou `make run`.")
        return
    st.caption(f"Index : {n} passages · recherche sémantique hors ligne")
    query = st.text_input(
        "Votre question", placeholder="Comment les territoires ont-ils traité la mobilité des aînés ?"
    )
    if query:
        for p in retriever.search(query, k=5):
            m = p.meta
            with st.container(border=True):
                st.markdown(f"**[{p.rank}] {m.get('title')}** — p. {p.page}")
                st.caption(", ".join(m.get("territories") or []) or m.get("fabrique_title", ""))
                st.write(p.text)
