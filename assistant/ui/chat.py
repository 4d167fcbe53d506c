"""The chat: Question and « Comparer les territoires » modes, sources, feedback.

One conversation for both modes (a comparison often follows a question on the same theme),
so follow-ups (« et à Lorient ? ») are rewritten with the whole history before retrieval;
the rewritten question is shown, discreetly, whenever it differs, because the user must
know what was actually searched. Answers are rendered from the `Answer` object kept in the
session, so a rerun (a filter changed, a vote) redraws them identically.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from assistant.catalog import doc_type_label, filters_summary
from assistant.service import LEAD_COMPARE, LEADS_TITLE, REFUSAL, Answer, fold
from assistant.ui.support import (
    highlight,
    md_escape,
    mime_of,
    pdf_page_link,
    safe_markdown,
    source_label,
)

if TYPE_CHECKING:
    from assistant.ui.context import AppContext

PLACEHOLDERS = {
    "answer": "Posez votre question (ex. : comment les territoires ont-ils traité la mobilité des aînés ?)",
    "compare": "Thème à comparer entre territoires (ex. : alimentation des familles modestes)",
}
FEEDBACK_THANKS = "Merci, votre avis est enregistré."


@dataclass
class SourceView:
    """What a source expander shows, for citations and for refusal leads alike."""

    n: int | None
    title: str
    page: int
    fabrique: str
    territories: list[str]
    doc_type: str
    year: int | None
    excerpt: str
    doc_id: str
    ocr: bool = False  # the page was read by OCR (scanned PDF)

    @classmethod
    def of(cls, item: Any, n: int | None = None) -> SourceView:
        return cls(
            n=n if n is not None else getattr(item, "n", None),
            title=str(getattr(item, "title", "") or getattr(item, "source", "")),
            page=int(getattr(item, "page", 1) or 1),
            fabrique=str(getattr(item, "fabrique_title", "") or getattr(item, "fabrique", "")),
            territories=list(getattr(item, "territories", []) or []),
            doc_type=str(getattr(item, "doc_type", "") or ""),
            year=getattr(item, "year", None),
            excerpt=str(getattr(item, "excerpt", "") or ""),
            doc_id=str(getattr(item, "doc_id", "") or ""),
            ocr=bool(getattr(item, "ocr", False)),
        )


# --------------------------------------------------------------------------- history


def history_pairs(messages: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(question, answer) pairs of the conversation so far, what `rewrite` expects."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for msg in messages:
        if msg["role"] == "user":
            pending = msg["content"]
        elif pending is not None:
            pairs.append((msg.get("rewritten") or pending, msg["content"]))
            pending = None
    return pairs


def ask(ctx: AppContext, question: str, mode: str, filters: Any,
        history: list[tuple[str, str]], on_piece: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Ask the service (follow-ups rewritten there); returns the assistant message to keep in
    the session. With an LLM the answer streams through `on_piece`; the extractive back-end
    answers at once."""
    service = ctx.service
    if service.settings.llm != "extractive" and on_piece is not None:
        stream = service.ask_stream(question, ctx.caller, mode=mode, filters=filters, history=history)
        for piece in stream:
            on_piece(piece)
        answer = stream.answer
    else:
        answer = service.ask(question, ctx.caller, mode=mode, filters=filters, history=history)
    return {
        "id": uuid.uuid4().hex,
        "role": "assistant",
        "mode": mode,
        "question": question,
        "rewritten": answer.question or question,
        "content": answer.text,
        "answer": answer,
        "filters": filters_summary(filters, ctx.options),
    }


# --------------------------------------------------------------------------- rendering


def render_source(ctx: AppContext, src: SourceView, question: str, key: str, pdf_link: bool) -> None:
    """One source in an expander: where it is, the excerpt (matched words marked), the file."""
    label = (f"[{src.n}] " if src.n is not None else "") + f"{md_escape(src.title)} — p. {src.page}"
    with st.expander(label):
        facts = []
        if src.fabrique:
            facts.append(f"Fabrique : {md_escape(src.fabrique)}")
        if src.territories:
            facts.append(("Territoires : " if len(src.territories) > 1 else "Territoire : ")
                         + md_escape(", ".join(src.territories)))
        if src.doc_type:
            facts.append(f"Type : {doc_type_label(src.doc_type)}")
        if src.year:
            facts.append(f"Année : {src.year}")
        facts.append(f"Page {src.page}" + (" (texte reconnu par OCR)" if src.ocr else ""))
        st.caption(" · ".join(facts))
        if src.excerpt:
            st.html(f'<blockquote class="fp-excerpt">{highlight(src.excerpt, question)}</blockquote>')
        path = ctx.service.document_file(ctx.caller, src.doc_id)
        if path is None:
            st.caption("Fichier original indisponible sur ce serveur.")
            return
        limit = ctx.settings.pdf_link_max_mb * 1_000_000
        with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
            st.download_button(
                "Télécharger le fichier original", data=_reader(path), file_name=path.name,
                mime=mime_of(path), key=f"dl-{key}", on_click="ignore", icon=":material/download:",
            )
            if pdf_link and path.suffix.lower() == ".pdf" and path.stat().st_size <= limit:
                st.html(pdf_page_link(path.read_bytes(), src.page, f"Ouvrir à la page {src.page} ↗",
                                      f"pdf-{key}"), unsafe_allow_javascript=True, width="content")


def _reader(path: Path) -> Callable[[], bytes]:
    """The file is read only when the user clicks (not on every rerun)."""
    return lambda: path.read_bytes()


def render_answer(ctx: AppContext, msg: dict[str, Any], latest: bool) -> None:
    answer: Answer = msg["answer"]
    question = msg.get("rewritten") or msg["question"]
    if msg.get("rewritten") and fold(msg["rewritten"]).strip() != fold(msg["question"]).strip():
        st.caption(f":material/search: Question comprise : « {md_escape(msg['rewritten'])} »")
    if answer.refused:
        st.markdown(f"**{REFUSAL}**")
        if answer.leads:
            st.markdown(LEADS_TITLE)
            for i, lead in enumerate(answer.leads):
                render_source(ctx, SourceView.of(lead, n=None), question, f"{msg['id']}-lead{i}", latest)
        _notes(answer)
        render_feedback(ctx, msg)
        return
    if answer.mode == "compare" and answer.rows:
        st.markdown(LEAD_COMPARE)
        st.table(compare_frame(answer.rows), hide_index=True)
    else:
        st.markdown(safe_markdown(answer.text))
    _notes(answer)
    if answer.citations:
        st.markdown("**Sources**")
        for c in answer.citations:
            render_source(ctx, SourceView.of(c), question, f"{msg['id']}-{c.n}", latest)
    render_feedback(ctx, msg)


def compare_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per territory: approach, key actions, sources (all keep their [n])."""
    return pd.DataFrame(
        [
            {
                "Territoire": r.get("territory", ""),
                "Approche": r.get("approach", ""),
                "Autres extraits": " ; ".join(r.get("actions") or []) or "—",
                "Sources": " ".join(f"[{n}]" for n in r.get("citations") or []),
            }
            for r in rows
        ]
    )


def _notes(answer: Answer) -> None:
    for note in answer.notes:
        st.caption(f":material/info: {note}")


# --------------------------------------------------------------------------- feedback


def _save_feedback(ctx: AppContext, msg: dict[str, Any], field: str) -> None:
    """Widget callback: store the vote or the comment with what was voted on."""
    answer: Answer = msg["answer"]
    if field == "rating":
        value = st.session_state.get(f"fb-{msg['id']}")
        if value is None:
            return
        kwargs: dict[str, Any] = {"rating": int(value)}
    else:
        kwargs = {"comment": str(st.session_state.get(f"fbc-{msg['id']}") or "")}
    ctx.service.record_feedback(
        ctx.caller,
        msg["id"],
        question=msg["question"],
        rewritten=msg.get("rewritten") or "",
        mode=msg["mode"],
        answer=answer.text,
        sources=[source_label(c.title, c.page, c.territories, c.fabrique_title) for c in answer.citations],
        backend=answer.backend,
        filters=msg.get("filters") or {},
        **kwargs,
    )
    msg["feedback_saved"] = True


def render_feedback(ctx: AppContext, msg: dict[str, Any]) -> None:
    """👍/👎 then, once voted, an optional comment."""
    key = f"fb-{msg['id']}"
    st.feedback("thumbs", key=key, on_change=_save_feedback, args=(ctx, msg, "rating"))
    if st.session_state.get(key) is not None:
        st.text_input(
            "Un commentaire ? (facultatif — Entrée pour l'envoyer)", key=f"fbc-{msg['id']}",
            on_change=_save_feedback, args=(ctx, msg, "comment"),
            placeholder="Ce qui manque, ce qui est faux, la source attendue…",
        )
        st.caption(FEEDBACK_THANKS)


# --------------------------------------------------------------------------- page


def render(ctx: AppContext, mode: str, filters: Any) -> None:
    messages: list[dict[str, Any]] = st.session_state.setdefault("messages", [])
    if messages:
        st.button("Nouvelle conversation", on_click=messages.clear, icon=":material/restart_alt:")
    else:
        st.caption(
            "Les réponses citent les documents du corpus [n] ; ouvrez les sources pour vérifier "
            "chaque affirmation. Les filtres de la barre latérale restreignent la recherche."
        )
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    for i, msg in enumerate(messages):
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(safe_markdown(msg["content"]))
                _filters_caption(msg.get("filters"))
            else:
                render_answer(ctx, msg, latest=i == last_assistant)

    prompt = st.chat_input(PLACEHOLDERS[mode], key="chat_input")
    if not prompt or not prompt.strip():
        return
    prompt = prompt.strip()
    history = history_pairs(messages)
    user_msg = {"role": "user", "content": prompt, "mode": mode,
                "filters": filters_summary(filters, ctx.options)}
    messages.append(user_msg)
    with st.chat_message("user"):
        st.markdown(safe_markdown(prompt))
        _filters_caption(user_msg["filters"])
    with st.chat_message("assistant"):
        placeholder = st.empty()
        streamed: list[str] = []

        def on_piece(piece: str) -> None:
            streamed.append(piece)
            placeholder.markdown(safe_markdown("".join(streamed)) + " ▌")

        try:
            with st.spinner("Recherche dans le corpus…"):
                msg = ask(ctx, prompt, mode, filters, history, on_piece)
        except Exception as exc:  # noqa: BLE001 - show the cause in French, keep the session
            messages.pop()
            st.error(f"La réponse n'a pas pu être construite : {exc}")
            return
        placeholder.empty()
        messages.append(msg)
        render_answer(ctx, msg, latest=True)


def _filters_caption(summary: dict[str, Any] | None) -> None:
    if summary:
        st.caption("Filtres : " + " · ".join(f"{k} {md_escape(str(v))}" for k, v in summary.items()))
