"""The Streamlit interface, in French, over `assistant/` (no index logic here).

Layout: a sidebar (page choice, search filters, back-end and index status) and two pages:
« Assistant » (three modes: Question, Comparer les territoires, Rédiger une feuille de route;
see `ui_chat` and `ui_draft`) and « Corpus et avis » (`ui_corpus`).

Start-up cost is the embedding model and the Chroma client: both are built once per process
(`st.cache_resource`). The registry's SQLite connection is opened per run instead, because
Streamlit runs each rerun in a new thread and a sqlite3 connection belongs to its thread;
opening it costs a millisecond and always shows the index as it is now (after an upload).
"""

from __future__ import annotations

import streamlit as st

from assistant.access import ROLE_LABELS, Caller
from assistant.catalog import IndexOptions, doc_type_label
from assistant.config import Settings, get_settings
from assistant.service import Filters, StoreError
from assistant.ui.context import AppContext, open_context, service_for
from assistant.ui.support import backend_label, empty_index_message, index_location

PAGE_ASSISTANT = "Assistant"
PAGE_CORPUS = "Corpus et avis"
PAGE_FABRIQUES = "Fabriques"
MODES = {
    "answer": "Question",
    "compare": "Comparer les territoires",
    "draft": "Rédiger une feuille de route",
}
ALL = ""  # the « no filter » choice of a selectbox
YEAR_HELP = ("Année où le document est daté : réunion d'un compte rendu, validation d'une feuille de route, "
             "parution d'une publication ; l'année de lancement d'une fabrique, quand elle est connue, "
             "suit son titre dans le filtre Fabrique.")

_CSS = """
<style>
blockquote.fp-excerpt {border-left: 3px solid #c9d3e0; margin: 0.2rem 0 0.6rem 0;
  padding: 0.3rem 0.8rem; color: inherit; font-size: 0.92rem; white-space: pre-wrap;}
blockquote.fp-excerpt mark {background: #fde68a; color: #111; padding: 0 0.1rem; border-radius: 2px;}
a.fp-pdf-link {font-size: 0.9rem;}
/* Streamlit writes its uploader's words in English and offers no setting for them: the
   French ones are drawn over them (the limits are spelled out in French above the form). */
[data-testid="stFileUploaderDropzoneInstructions"] > div > span {display: none;}
[data-testid="stFileUploaderDropzoneInstructions"] > div::before {
  content: "Glissez-déposez vos fichiers ici ou choisissez-les";}
[data-testid="stFileUploaderDropzone"] button {font-size: 0 !important;}
[data-testid="stFileUploaderDropzone"] button::after {content: "Parcourir"; font-size: 0.95rem;}
</style>
"""


# --------------------------------------------------------------------------- sidebar


KEPT_PREFIXES = ("f_", "fb-", "fbc-")


def keep_widget_state() -> None:
    """Keep filters, mode and votes while the other page is shown.

    Streamlit forgets the state of a widget that a run does not draw; re-assigning it makes
    it plain session state, so the Assistant page comes back as it was left.
    """
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and (key == "mode" or key.startswith(KEPT_PREFIXES)):
            st.session_state[key] = st.session_state[key]


def _valid_choice(key: str, options: list[str]) -> None:
    """A kept choice that the index no longer offers (document removed) goes back to « all »."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


def _reset_filters() -> None:
    for key in ("f_fabrique", "f_years", "f_years_bounds", "f_territory", "f_type"):
        st.session_state.pop(key, None)


def _fabrique_label(options: IndexOptions, fabrique: str) -> str:
    """Its title, and its edition when known: the year filter is the documents' own."""
    title = options.fabriques.get(fabrique, fabrique)
    year = options.fabrique_years.get(fabrique)
    return f"{title} ({year})" if year else title


def sidebar_filters(options: IndexOptions) -> Filters:
    """Search filters, with choices taken from the documents this audience can see."""
    sb = st.sidebar
    sb.subheader("Filtres")
    _valid_choice("f_fabrique", [ALL, *options.fabriques])
    _valid_choice("f_territory", [ALL, *options.territories])
    _valid_choice("f_type", [ALL, *options.doc_types])
    fabrique = sb.selectbox(
        "Fabrique", [ALL, *options.fabriques], key="f_fabrique",
        format_func=lambda f: "Toutes les fabriques" if f == ALL else _fabrique_label(options, f),
    )
    year_from = year_to = None
    if len(options.years) > 1:
        lo, hi = options.years[0], options.years[-1]
        kept = st.session_state.get("f_years")
        if kept is not None:
            if tuple(kept) == st.session_state.get("f_years_bounds"):
                kept = (lo, hi)  # « all years » stays all years when the index gains one
            # a kept range is clamped to the years the index has now
            st.session_state["f_years"] = (max(lo, min(kept[0], hi)), min(hi, max(kept[1], lo)))
        st.session_state["f_years_bounds"] = (lo, hi)
        chosen = sb.slider("Année", min_value=lo, max_value=hi, step=1, key="f_years", help=YEAR_HELP,
                           **({} if kept is not None else {"value": (lo, hi)}))
        if tuple(chosen) != (lo, hi):
            year_from, year_to = int(chosen[0]), int(chosen[1])
    elif options.years:
        sb.caption(f"Année : {options.years[0]} (une seule année dans l'index)")
    territory = sb.selectbox(
        "Territoire", [ALL, *options.territories], key="f_territory",
        format_func=lambda t: "Tous les territoires" if t == ALL else t,
    )
    doc_type = sb.selectbox(
        "Type de document", [ALL, *options.doc_types], key="f_type",
        format_func=lambda t: "Tous les types" if t == ALL else doc_type_label(t),
    )
    sb.button("Réinitialiser les filtres", on_click=_reset_filters, width="stretch")
    return Filters(
        fabrique=fabrique or None, territory=territory or None, year_from=year_from, year_to=year_to,
        doc_type=doc_type or None,
    )


def sidebar_status(ctx: AppContext | None, settings: Settings) -> None:
    """Which back-end answers and which index is read: users must know what they query."""
    sb = st.sidebar
    sb.divider()
    sb.markdown("**Moteur de réponse**")
    sb.caption(backend_label(settings))
    sb.markdown("**Index**")
    if ctx is not None:
        docs = f"{ctx.options.documents:,}".replace(",", " ")
        chunks = f"{ctx.options.passages:,}".replace(",", " ")
        sb.caption(f"{docs} documents · {chunks} passages")
        if ctx.ingest_running:
            sb.warning("Indexation en cours : l'index se complète.", icon=":material/hourglass_top:")
    sb.caption(index_location(settings))
    if ctx is not None and ctx.public:
        sb.caption("Mode public : les documents internes sont masqués.")
    if ctx is not None and settings.app_access == "key":
        sb.caption(f"Connecté : {ctx.caller.name} ({ROLE_LABELS.get(ctx.caller.role, ctx.caller.role)})")
        sb.button("Se déconnecter", on_click=lambda: st.session_state.pop("caller", None), key="logout")


def current_caller(settings: Settings) -> Caller | None:
    """Who uses the app: the configured audience (`FP_APP_ACCESS=local`), or the role of the
    API key the user typed (`FP_APP_ACCESS=key`); None while nobody is signed in."""
    if settings.app_access == "local":
        return Caller.local(settings.audience)
    caller = st.session_state.get("caller")
    if isinstance(caller, Caller):
        return caller
    st.title("Assistant des Fabriques Prospectives")
    st.info("Cette instance est protégée : saisissez la clé d'accès que l'équipe vous a remise "
            "(elle commence par « fpa_ »).", icon=":material/key:")
    with st.form("login"):
        secret = st.text_input("Clé d'accès", type="password", key="login_key")
        if st.form_submit_button("Se connecter", type="primary"):
            found = service_for(settings).authenticate(secret.strip())
            if found is None:
                st.error("Clé inconnue ou révoquée.")
            else:
                st.session_state["caller"] = found
                st.rerun()
    return None


# --------------------------------------------------------------------------- entry point


def main() -> None:
    st.set_page_config(page_title="Assistant Fabriques Prospectives", page_icon="📚", layout="wide")
    st.html(_CSS)
    keep_widget_state()
    settings = get_settings()
    page = st.sidebar.radio("Page", [PAGE_ASSISTANT, PAGE_FABRIQUES, PAGE_CORPUS], key="page",
                            label_visibility="collapsed")
    caller = current_caller(settings)
    if caller is None:
        return
    try:
        ctx = open_context(settings, caller)
    except StoreError as exc:
        sidebar_status(None, settings)
        st.title("Assistant des Fabriques Prospectives")
        st.error(f"L'index ne peut pas être ouvert : {exc}")
        st.stop()
        return

    if page == PAGE_CORPUS:
        from assistant.ui import corpus as ui_corpus

        sidebar_status(ctx, settings)
        ui_corpus.render(ctx)
        return

    if page == PAGE_FABRIQUES:
        from assistant.ui import fabriques as ui_fabriques

        sidebar_status(ctx, settings)
        ui_fabriques.render(ctx)
        return

    st.title("Assistant des Fabriques Prospectives")
    if ctx.options.empty:
        sidebar_status(ctx, settings)
        if ctx.ingest_running:
            st.info("L'index est en cours de construction : les documents apparaîtront dès qu'ils "
                    "seront indexés. Rechargez la page dans un instant.", icon=":material/hourglass_top:")
        st.info(empty_index_message(settings))
        return
    filters = sidebar_filters(ctx.options)
    sidebar_status(ctx, settings)
    mode = st.radio("Mode", list(MODES), format_func=MODES.__getitem__, horizontal=True, key="mode",
                    label_visibility="collapsed")
    if mode == "draft":
        from assistant.ui import draft as ui_draft

        ui_draft.render(ctx)
    else:
        from assistant.ui import chat as ui_chat

        ui_chat.render(ctx, mode, filters)
