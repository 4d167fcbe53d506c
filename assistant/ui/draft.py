"""« Rédiger une feuille de route »: a form, a preview, DOCX and Markdown downloads.

The draft itself is the service's `draft` (every line cited, « à compléter » where
the corpus is silent) and the files are `assistant.drafting.export`; this page only collects the
choices and keeps the last draft in the session, so downloading it does not redraft it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.service import sanitize_filename
from assistant.ui.support import safe_markdown

if TYPE_CHECKING:
    from assistant.ui.context import AppContext

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
AUTO = ""  # « the territory's own fabrique »


def build_draft(
    ctx: AppContext, territory: str, fabrique: str, theme: str, sections: list[str]
) -> dict[str, Any]:
    """Draft, then render both files once (they are downloaded from the session afterwards)."""
    service = ctx.service
    roadmap = service.draft(territory, ctx.caller, fabrique=fabrique or None, theme=theme or None,
                            sections=sections)
    markdown = service.export(roadmap, "md").decode("utf-8")
    docx = service.export(roadmap, "docx")
    stem = sanitize_filename(f"feuille-de-route-{roadmap.territory}").removesuffix(".")
    return {"roadmap": roadmap, "markdown": markdown, "docx": docx, "stem": stem}


def render(ctx: AppContext) -> None:
    sections_titles = ctx.service.draft_sections()
    opts = ctx.options
    st.caption(
        "Un premier jet à relire : chaque phrase cite sa source [n] ; ce que le corpus ne dit pas "
        "est marqué « à compléter ». Les filtres de la barre latérale ne s'appliquent pas ici."
    )
    with st.form("draft_form"):
        territory = st.selectbox("Territoire", opts.territories, index=None,
                                 placeholder="Choisissez un territoire", key="draft_territory")
        fabrique = st.selectbox(
            "Fabrique", [AUTO, *opts.fabriques], key="draft_fabrique",
            format_func=lambda f: "Celle du territoire (automatique)" if f == AUTO
            else opts.fabriques.get(f, f),
        )
        theme = st.text_input("Thème", placeholder="Par défaut : le thème de la fabrique", key="draft_theme")
        sections = st.multiselect(
            "Sections", list(sections_titles), default=list(sections_titles), key="draft_sections",
            format_func=lambda s: sections_titles[s],
        )
        submitted = st.form_submit_button("Rédiger le projet", type="primary")
    if submitted:
        if not territory:
            st.warning("Choisissez d'abord un territoire.")
        elif not sections:
            st.warning("Choisissez au moins une section.")
        else:
            try:
                with st.spinner(f"Rédaction de la feuille de route de {territory}…"):
                    st.session_state["draft"] = build_draft(ctx, territory, fabrique, theme.strip(), sections)
            except ValueError as exc:  # unknown territory or section
                st.error(f"Impossible de rédiger : {exc}")
    draft = st.session_state.get("draft")
    if not draft:
        return
    roadmap = draft["roadmap"]
    st.subheader(f"Projet de feuille de route — {roadmap.territory}")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.download_button("Télécharger en DOCX", data=draft["docx"], file_name=f"{draft['stem']}.docx",
                           mime=DOCX_MIME, key="draft_docx", on_click="ignore", icon=":material/description:",
                           type="primary")
        st.download_button("Télécharger en Markdown", data=draft["markdown"],
                           file_name=f"{draft['stem']}.md", mime="text/markdown", key="draft_md",
                           on_click="ignore", icon=":material/download:")
        st.caption(f"{len(roadmap.sources)} sources citées · {len(roadmap.actions)} actions proposées · "
                   f"moteur : {'modèle de langage' if roadmap.backend == 'llm' else 'extractif'}")
    with st.container(border=True):
        st.markdown(safe_markdown(draft["markdown"]))
