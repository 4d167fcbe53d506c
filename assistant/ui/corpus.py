"""« Corpus et avis »: what is indexed, adding files, reindexing, users' feedback.

ANCT teams need to see what the assistant knows (a document missing or failed explains a
bad answer; a fabrique or a year guessed from the text explains a wrong filter, hence the
source of each field and the alerts), to add a new seminar report without a terminal, and
to read what users said.
In public mode (FP_AUDIENCE=public) the table hides internal documents and failures, and the
actions that change the index or expose other users' questions are not offered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from assistant.catalog import STATUS_LABELS, corpus_stats, document_rows, filter_rows
from assistant.service import ACCEPTED_TYPES, StoreError

if TYPE_CHECKING:
    from assistant.ui.context import AppContext

PUBLIC_ONLY_NOTE = (
    "Réservé aux administrateurs : cette action n'est pas proposée à votre rôle "
    "(mode public, FP_AUDIENCE=public, ou clé sans droit d'écriture)."
)


def _progress_callbacks(bar: Any, verb: str) -> dict[str, Any]:
    """Ingest progress → an st.progress bar with the current file's name, and the page being
    read when a scanned PDF goes through OCR (seconds a page): `progress=`, `page_progress=`."""
    from pathlib import Path

    state = {"done": 0, "total": 0}

    def progress(done: int, total: int, path: str) -> None:
        state.update(done=done, total=total)
        frac = done / total if total else 1.0
        text = f"{verb} : {Path(path).name} ({done + 1}/{total})" if path else f"{verb} : terminé"
        bar.progress(min(max(frac, 0.0), 1.0), text=text)

    def page_progress(page: int, pages: int, path: str) -> None:
        done, total = state["done"], state["total"]
        frac = (done + page / max(pages, 1)) / total if total else 1.0
        text = f"{verb} : {Path(path).name} ({done + 1}/{total}) · OCR p. {min(page + 1, pages)}/{pages}"
        bar.progress(min(max(frac, 0.0), 1.0), text=text)

    return {"progress": progress, "page_progress": page_progress}


def run_upload(ctx: AppContext, files: list[tuple[str, bytes]]) -> Any:
    bar = st.progress(0.0, text="Vérification des fichiers…")
    result = ctx.service.upload(files, ctx.caller, **_progress_callbacks(bar, "Indexation"))
    bar.empty()
    return result


def show_upload_result(result: Any) -> None:
    if result.error:
        st.error(f"Indexation impossible : {result.error}", icon=":material/lock:")
    if result.indexed:
        lines = [f"- **{o.name}** : {o.status}" + (f" (enregistré sous « {o.saved_as} »)"
                                                      if o.saved_as and o.saved_as != o.name else "")
                 for o in result.indexed]
        st.success("Fichiers indexés :\n" + "\n".join(lines), icon=":material/check_circle:")
    for o in result.problems:
        (st.warning if o.status == "doublon" else st.error)(f"**{o.name}** — {o.status} : {o.message}")


def _documents_section(ctx: AppContext, rows: list[dict[str, Any]]) -> None:
    c1, c2, c3 = st.columns([2, 2, 2])
    text = c1.text_input("Rechercher", placeholder="titre, territoire, fichier…", key="corpus_q")
    fabs = c2.multiselect("Fabriques", sorted({r["Fabrique"] for r in rows if r["Fabrique"]}),
                          key="corpus_fab", placeholder="Toutes")
    types = c3.multiselect("Types", sorted({r["Type"] for r in rows if r["Type"]}), key="corpus_type",
                           placeholder="Tous")
    statuses = None
    if not ctx.public:
        statuses = st.multiselect("Statut", sorted(set(STATUS_LABELS.values())), key="corpus_status",
                                  placeholder="Tous")
    shown = filter_rows(rows, text, fabs, types, statuses)
    columns = list(rows[0]) if rows else []
    if ctx.public:
        columns = [c for c in columns if c not in ("Visibilité", "Erreur", "Statut")]
    st.caption(f"{len(shown)} document(s) affiché(s) sur {len(rows)}")
    st.dataframe(
        pd.DataFrame(shown, columns=columns), hide_index=True, width="stretch",
        column_config={
            "Année": st.column_config.NumberColumn(format="%d"),
            "Titre": st.column_config.TextColumn(width="large"),
            "Erreur": st.column_config.TextColumn(width="medium"),
            "Source des métadonnées": st.column_config.TextColumn(
                width="medium", help="d'où vient chaque champ : manifeste, fiche .meta.yaml, en-tête, "
                "propriétés du fichier ou déduit du texte"),
            "Alertes": st.column_config.TextColumn(
                width="medium", help="désaccords entre sources et problèmes relevés à l'indexation"),
        },
    )


def _n(value: int) -> str:
    """1100 → « 1 100 » (French thousands separator)."""
    return f"{value:,}".replace(",", "\u202f")


def _frame(counts: dict[str, int], label: str) -> pd.DataFrame:
    return pd.DataFrame({label: list(counts), "Documents": list(counts.values())})


def _stats_section(rows: list[dict[str, Any]]) -> None:
    stats = corpus_stats(rows)
    if not any(stats.values()):
        st.info("Aucun document indexé.")
        return
    st.markdown("**Par fabrique**")
    by_fab = _frame(stats["fabrique"], "Fabrique")
    by_fab["Passages"] = [stats["passages"][f] for f in stats["fabrique"]]
    st.table(by_fab, hide_index=True)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Par année**")
        st.bar_chart(_frame(stats["année"], "Année"), x="Année", y="Documents")
    with c2:
        st.markdown("**Par type de document**")
        st.table(_frame(stats["type"], "Type"), hide_index=True)


def _upload_section(ctx: AppContext) -> None:
    s = ctx.settings
    if not ctx.caller.can_write:
        st.info(PUBLIC_ONLY_NOTE)
        return
    limit_mb = s.upload_max_bytes / 1_000_000
    st.caption(
        f"PDF, DOCX, ODT, PPTX, ODP, HTML, Markdown ou texte ; {s.upload_max_files} fichiers au plus "
        f"par dépôt, {limit_mb:g} Mo au plus chacun. Le type est vérifié d'après le contenu du fichier. "
        f"Les fichiers sont conservés dans `{s.uploads_dir}` et indexés comme le reste du corpus."
    )
    nonce = st.session_state.setdefault("upload_nonce", 0)
    with st.form("upload_form"):
        files = st.file_uploader(
            "Fichiers à ajouter", type=list(ACCEPTED_TYPES), accept_multiple_files=True,
            key=f"uploader-{nonce}", max_upload_size=max(1, int(-(-limit_mb // 1))),
        )
        submitted = st.form_submit_button("Indexer les fichiers", type="primary")
    if submitted:
        if not files:
            st.warning("Choisissez d'abord un ou plusieurs fichiers.")
        else:
            result = run_upload(ctx, [(f.name, f.getvalue()) for f in files])
            st.session_state["upload_result"] = result
            st.session_state["upload_nonce"] = nonce + 1  # empty the uploader
            st.rerun()
    if st.session_state.get("upload_result") is not None:
        show_upload_result(st.session_state["upload_result"])


def _reindex_section(ctx: AppContext) -> None:
    s = ctx.settings
    if not ctx.caller.can_write:
        st.info(PUBLIC_ONLY_NOTE)
        return
    st.caption(
        f"Indexe les fichiers nouveaux ou modifiés de `{s.corpus_dir}` et des fichiers déposés, et retire "
        "de l'index ceux qui ont disparu. Les fichiers inchangés ne sont pas ré-encodés."
    )
    if st.button("Réindexer le corpus", icon=":material/sync:", key="reindex"):
        bar = st.progress(0.0, text="Recherche des fichiers…")
        try:
            report = ctx.service.reindex(ctx.caller, **_progress_callbacks(bar, "Réindexation"))
        except StoreError as exc:
            bar.empty()
            st.session_state["reindex_result"] = {"error": str(exc)}
        else:
            bar.empty()
            st.session_state["reindex_result"] = report.as_json()
        st.rerun()
    res = st.session_state.get("reindex_result")
    if res:
        if res.get("error"):
            st.error(f"Réindexation impossible : {res['error']}", icon=":material/lock:")
        else:
            st.success(
                f"Réindexation terminée : {res['added']} ajouté(s), {res['updated']} mis à jour, "
                f"{res['unchanged']} inchangé(s), {res['removed']} retiré(s), {len(res['failed'])} en échec. "
                f"Index : {res['documents']} documents, {res['chunks']} passages.",
                icon=":material/check_circle:",
            )
            for f in res["failed"]:
                st.error(f["error"])


def _feedback_section(ctx: AppContext) -> None:
    if not ctx.caller.can_write:
        st.info(PUBLIC_ONLY_NOTE)
        return
    counts = ctx.service.feedback_counts(ctx.caller)
    c1, c2, c3 = st.columns(3)
    c1.metric("Avis positifs", counts["positif"])
    c2.metric("Avis négatifs", counts["négatif"])
    c3.metric("Commentaires", counts["commentaires"])
    st.download_button(
        "Exporter les avis (CSV)", data=ctx.service.feedback_csv(ctx.caller),
        file_name="avis-fp-assistant.csv",
        mime="text/csv", key="feedback_csv", on_click="ignore", icon=":material/download:",
    )
    st.caption(f"Fichier : `{ctx.service.feedback_store.path}` · séparateur « ; », "
               "encodage UTF-8 (lisible par Excel).")


def render(ctx: AppContext) -> None:
    st.title("Corpus et avis")
    rows = document_rows(ctx.records, ctx.caller.audience)
    opts = ctx.options
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Documents", _n(opts.documents))
    c2.metric("Passages", _n(opts.passages))
    c3.metric("Fabriques", len(opts.fabriques))
    c4.metric("En échec", opts.failed if not ctx.public else "—")
    if ctx.ingest_running:
        st.warning("Une indexation est en cours : le tableau se complétera à la fin.",
                   icon=":material/hourglass_top:")
    tabs = st.tabs(["Documents", "Statistiques", "Ajouter des fichiers", "Réindexer",
                    "Avis des utilisateurs"])
    with tabs[0]:
        if rows:
            _documents_section(ctx, rows)
        else:
            st.info("Aucun document dans l'index : ajoutez des fichiers ou réindexez le corpus.")
    with tabs[1]:
        _stats_section(rows)
    with tabs[2]:
        _upload_section(ctx)
    with tabs[3]:
        _reindex_section(ctx)
    with tabs[4]:
        _feedback_section(ctx)
