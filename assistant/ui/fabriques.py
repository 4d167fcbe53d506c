"""« Fabriques »: one card per fabrique to scan, each value opening onto the sentence that says it.

ANCT teams meet a fabrique by its title, its edition, its territories and who worked on it;
the cards put those side by side, and a value is only worth trusting with its source, so
each one is a button whose popover names the document and page and quotes the sentence.
The cards are the service's (`Service.fabriques`, the JSON of `GET /api/fabriques` and of
`fp-assistant fabriques --json`): this page lays them out, it never decides what they say —
a public user reads only what public documents say, as everywhere.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.service import StoreError
from assistant.ui.support import md_escape

if TYPE_CHECKING:
    from assistant.ui.context import AppContext

ALL = ""  # the « no filter » choice of a selectbox
# The card's fields shown as rows of values (the lessons are sentences: shown under them).
ROW_FIELDS = ("theme", "year", "period", "territories", "prestataires", "associations", "partners")
EMPTY = "—"


def value_label(field: str, value: dict[str, Any]) -> str:
    """The value as its button reads: a territory with its département and région."""
    text = str(value.get("value") or "")
    if field == "territories":
        where = ", ".join(str(value[k]) for k in ("departement", "region") if value.get(k))
        text += f" ({where})" if where else ""
    return text


def source_line(evidence: dict[str, Any]) -> str:
    """« Titre du document, p. N », as the CLI writes it."""
    return f"{evidence.get('title') or evidence.get('source') or 'document'}, p. {evidence.get('page') or 1}"


def _evidence(value: dict[str, Any]) -> None:
    """Where a value is read: each document and page, and its sentence quoted as written."""
    evidence = value.get("evidence") or []
    if not evidence:
        st.caption("Source non renseignée.")
    for e in evidence:
        lock = " · :material/lock: interne" if e.get("visibility") == "interne" else ""
        st.markdown(f"**Source : {md_escape(source_line(e))}**{lock}")
        sentence = html.escape(str(e.get("sentence") or ""))
        st.markdown(f'<blockquote class="fp-excerpt">{sentence}</blockquote>', unsafe_allow_html=True)
        if e.get("source"):
            st.caption(f"Fichier : {md_escape(str(e['source']).rsplit('/', 1)[-1])}")


def _field_row(card_id: str, field: str, label: str, values: list[dict[str, Any]]) -> None:
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.markdown(f"**{label} :**", width="content")
        if not values:
            st.markdown(EMPTY, width="content")
        for n, value in enumerate(values):
            with st.popover(md_escape(value_label(field, value)), key=f"fab-{card_id}-{field}-{n}"):
                _evidence(value)


def render_card(card: dict[str, Any], labels: dict[str, dict[str, str]]) -> None:
    names, fields = labels["fields"], card["fields"]
    with st.container(border=True, key=f"fab-card-{card['id']}"):
        st.subheader(md_escape(card["title"]), anchor=False)
        st.caption(f"Identifiant : `{card['id']}`")
        for field in ROW_FIELDS:
            _field_row(card["id"], field, names.get(field, field), fields.get(field) or [])
        st.markdown("**Documents par type :**" + ("" if card["documents"] else f" {EMPTY}"))
        for doc_type, docs in card["documents"].items():
            listed = " ; ".join(
                md_escape(d["title"] or d["doc_id"]) + (f" ({d['year']})" if d["year"] else "") for d in docs)
            st.markdown(f"- {md_escape(labels['doc_types'].get(doc_type, doc_type))} : {listed}")
        lessons = fields.get("lessons") or []
        st.markdown(f"**{names.get('lessons', 'Enseignements')} :**" + ("" if lessons else f" {EMPTY}"))
        for n, value in enumerate(lessons):
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.markdown(f"- {md_escape(str(value.get('value') or ''))}")
                with st.popover("source", key=f"fab-{card['id']}-lessons-{n}", type="tertiary",
                                icon=":material/format_quote:"):
                    _evidence(value)


def render(ctx: AppContext) -> None:
    st.title("Fabriques")
    st.caption("Une fiche par fabrique. Cliquez sur une valeur pour lire sa source : le document, "
               "la page et la phrase qui la disent." +
               (" Mode public : seules les informations des documents publics sont montrées."
                if ctx.public else ""))
    try:
        every = ctx.service.fabriques(ctx.caller)
    except StoreError as exc:
        st.error(f"Les fiches ne peuvent pas être lues : {exc}")
        return
    if not every["fabriques"]:
        st.info("Aucune fiche de fabrique : elles sont écrites à chaque indexation ; relancez "
                "`fp-assistant ingest` si l'index date d'avant les fiches.")
        return
    available = every["filters"]["available"]
    for key, options in (("f_fab_year", available["years"]), ("f_fab_region", available["regions"])):
        if key in st.session_state and st.session_state[key] not in [ALL, *options]:
            del st.session_state[key]  # a choice the cards no longer offer goes back to « all »
    left, middle, right = st.columns([2, 1, 1])
    theme = left.text_input("Thème", key="f_fab_theme", placeholder="ex. mobilité, vieillissement")
    year = middle.selectbox("Année", [ALL, *available["years"]], key="f_fab_year",
                            format_func=lambda y: "Toutes les années" if y == ALL else str(y))
    region = right.selectbox("Région", [ALL, *available["regions"]], key="f_fab_region",
                             format_func=lambda r: "Toutes les régions" if r == ALL else r)
    result = every
    if theme.strip() or year != ALL or region != ALL:
        result = ctx.service.fabriques(ctx.caller, theme=theme or None, year=year or None,
                                       region=region or None)
    cards = result["fabriques"]
    total = len(every["fabriques"])
    st.caption(f"{len(cards)} fabrique(s) sur {total}")
    if not cards:
        st.info("Aucune fabrique ne correspond à ces filtres.")
        return
    labels = ctx.service.fabrique_labels()
    for card in cards:
        render_card(card, labels)
