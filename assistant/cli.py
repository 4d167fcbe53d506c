"""`fp-assistant`: the command line users script against.

Exit codes: 0 all went well; 1 some files failed (the rest was indexed); 2 bad usage;
3 the index cannot be used (locked by another ingest, built with another model, server
unreachable). Output fields only ever grow. Heavy modules are imported inside the
commands so that `--help` and bad usage answer at once.

Filters learn from the index: `--fabrique` takes the id or the title of any fabrique the
registry holds (also ones discovered in new documents), `--territory` any name of a
territory (« Arras », « CU d'Arras »), `--type` an id or its French name. `docs` lists what is
indexed and where each piece of metadata came from, so a surprising filter can be explained.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ingest.models import DOC_TYPES  # the one list of types (a light module: dataclasses only)

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INDEX = 0, 1, 2, 3
NO_FABRIQUE = "non renseignée"  # how a document whose fabrique nobody could tell is shown
NO_FABRIQUE_ID = "(sans fabrique)"  # its pseudo-id in `stats --json` (public contract)


def _settings(args: argparse.Namespace) -> Any:
    from assistant.config import get_settings

    settings = get_settings()
    if getattr(args, "store", None):
        settings = settings.model_copy(update={"store": Path(args.store)})
    return settings


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from assistant.index import make_ingestor

    settings = _settings(args)
    ingestor = make_ingestor(settings)
    bar = tqdm(total=0, unit="fichier", file=sys.stderr, disable=args.quiet, desc="Indexation")

    def progress(done: int, total: int, path: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(Path(path).name[:40] if path else "terminé", refresh=False)
        bar.refresh()

    try:
        report = ingestor.run([Path(p) for p in args.paths], sync=args.sync, progress=progress)
    finally:
        bar.close()
    if args.json:
        _print_json(report.as_json())
    else:
        print(
            f"Ajoutés : {len(report.added)} · mis à jour : {len(report.updated)} · "
            f"inchangés : {len(report.unchanged)} · retirés : {len(report.removed)} · "
            f"en échec : {len(report.failed)}"
        )
        for dup in report.duplicates:
            print(f"  doublon : {dup['error']}")
        for fail in report.failed:
            print(f"  ÉCHEC {fail['error']}", file=sys.stderr)
        print(f"Index : {report.documents} documents, {report.chunks} passages ({settings.store})")
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _filters(args: argparse.Namespace) -> Any:
    """Year and type as typed, checked before the index is opened (ValueError: bad usage).

    `--type` takes an id of `ingest.models.DOC_TYPES` or its French name (« compte rendu »).
    """
    from assistant.retriever import Filters

    lo, hi = Filters.parse_year(args.year)
    doc_type = None
    if args.type:
        from assistant.ui_support import resolve_doc_type

        doc_type = resolve_doc_type(args.type)
    return Filters(
        fabrique=args.fabrique, territory=args.territory, year_from=lo, year_to=hi, doc_type=doc_type
    )


def known_fabriques(records: list[Any], audience: str) -> dict[str, str]:
    """id → title of the fabriques of the documents this audience may see, as indexed
    (discovered ones included; the title falls back to the id)."""
    from assistant.ui_support import visible_records

    out: dict[str, str] = {}
    for r in visible_records(records, audience):
        fid = str(r.meta.get("fabrique") or "")
        if fid and r.status != "failed":
            out[fid] = out.get(fid) or str(r.meta.get("fabrique_title") or "")
    return {fid: title or fid for fid, title in out.items()}


def _name_key(text: str) -> str:
    from assistant.frtext import fold

    return " ".join(re.split(r"[\s_\-'’«»\"]+", fold(text))).strip()


def resolve_fabrique(value: str, fabriques: dict[str, str], allow_none: bool = False) -> str:
    """The id of the fabrique the user means: its id or its title, case, accents and
    separators ignored, or a unique word start of either (« littoral », « cyber »).

    Users meet a fabrique by its title in answers and in `stats`; ids of discovered fabriques
    (« fp-cybersecurite-des-collectivites ») are not typed by hand. With `allow_none`,
    « non renseignée » (or « aucune ») means the documents without a fabrique ("").
    Raises ValueError in French, with the choices, for an unknown or ambiguous name.
    """
    want = _name_key(value)
    if allow_none and want in (_name_key(NO_FABRIQUE), "aucune", "sans fabrique", ""):
        return ""
    for fid, title in fabriques.items():
        if want in (_name_key(fid), _name_key(title)):
            return fid
    starts = re.compile(rf"(?<!\w){re.escape(want)}")  # from a word's start: « cyber », « littoral »
    partial = [fid for fid, title in fabriques.items()
               if want and (starts.search(_name_key(fid)) or starts.search(_name_key(title)))]
    if len(partial) == 1:
        return partial[0]

    def named(ids: list[str]) -> str:
        return " ; ".join(f"« {fabriques[f]} » ({f})" if fabriques[f] != f else f for f in ids)

    if partial:
        raise ValueError(f"« {value} » désigne plusieurs fabriques : {named(partial)}. Précisez.")
    if not fabriques:
        raise ValueError(f"fabrique inconnue : « {value} » (aucune fabrique dans l'index)")
    raise ValueError(f"fabrique inconnue dans l'index : « {value} ». Fabriques indexées : "
                     f"{named(sorted(fabriques, key=lambda f: _name_key(fabriques[f])))}")


def _open_filtered(args: argparse.Namespace, settings: Any) -> tuple[Any, Any]:
    """The retriever and the filters, `--fabrique` resolved against the index (ValueError:
    bad usage; year and type are checked before the index is opened)."""
    filters = _filters(args)
    retriever = _retriever(settings)
    if filters.fabrique:
        filters.fabrique = resolve_fabrique(
            filters.fabrique, known_fabriques(retriever.registry.all(), settings.audience))
    return retriever, filters


def _retriever(settings: Any) -> Any:
    from assistant.index import open_index
    from assistant.retriever import Retriever
    from ingest.embeddings import get_embeddings

    store, registry = open_index(settings)
    return Retriever(store, registry, get_embeddings(settings.embeddings), settings.audience)


def cmd_search(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        retriever, filters = _open_filtered(args, settings)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    passages = retriever.search(args.query, k=args.k, filters=filters)
    if args.json:
        _print_json([p.as_json() for p in passages])
        return EXIT_OK
    if not passages:
        print("Aucun passage trouvé (index vide ou filtres trop restrictifs).")
    for p in passages:
        m = p.meta
        where = ", ".join(m.get("territories") or []) or m.get("fabrique_title") or ""
        print(f"[{p.rank}] {m.get('title')} — p. {p.page} ({where}) score {p.score:.3f}")
        print(f"    {p.text[:300].replace(chr(10), ' ')}")
    return EXIT_OK


def collect_stats(settings: Any) -> dict[str, Any]:
    """Documents and passages per fabrique, type and year, from the registry.

    Every fabrique the index holds is listed with its title, the ones found in new documents
    too; the documents whose fabrique is unknown form the last row (id "", « non renseignée »).
    """
    from ingest.registry import Registry, connect

    registry = Registry(connect(settings.store))
    records = registry.all()
    ok = [r for r in records if r.status != "failed"]
    fabriques: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"title": "", "documents": 0, "chunks": 0, "doc_types": Counter()}
    )
    by_type: Counter[str] = Counter()
    by_year: Counter[str] = Counter()
    for r in ok:
        fid = str(r.meta.get("fabrique") or "")
        f = fabriques[fid]
        f["title"] = f["title"] or str(r.meta.get("fabrique_title") or "")
        f["documents"] += 1
        f["chunks"] += r.chunks
        f["doc_types"][r.meta.get("doc_type", "autre")] += 1
        by_type[r.meta.get("doc_type", "autre")] += 1
        by_year[str(r.meta.get("year") or "inconnue")] += 1
    return {
        "documents": len(ok),
        "chunks": sum(r.chunks for r in ok),
        "pages": sum(r.pages for r in ok),
        "failed": [{"path": r.path, "error": r.error} for r in records if r.status == "failed"],
        "fabriques": [
            # documents without fabrique keep the pseudo-id of the JSON contract, "(sans fabrique)"
            {"id": fid or NO_FABRIQUE_ID, "title": f["title"] or fid or NO_FABRIQUE_ID,
             "documents": f["documents"], "chunks": f["chunks"], "doc_types": dict(f["doc_types"])}
            for fid, f in sorted(fabriques.items(), key=lambda kv: (not kv[0], kv[0]))
        ],
        "doc_types": dict(sorted(by_type.items())),
        "years": dict(sorted(by_year.items())),
        "store": str(settings.store),
    }


def cmd_stats(args: argparse.Namespace) -> int:
    stats = collect_stats(_settings(args))
    if args.json:
        _print_json(stats)
        return EXIT_OK
    print(f"Index {stats['store']} : {stats['documents']} documents, {stats['chunks']} passages, "
          f"{stats['pages']} pages")
    named = [f for f in stats["fabriques"] if f["id"] != NO_FABRIQUE_ID]
    print(f"\nPar fabrique ({len(named)}) :")
    for f in stats["fabriques"]:
        types = ", ".join(f"{k} {v}" for k, v in sorted(f["doc_types"].items()))
        counts = f"{f['documents']:>3} doc. {f['chunks']:>5} passages  ({types})"
        if f["id"] == NO_FABRIQUE_ID:
            print(f"  {'Fabrique ' + NO_FABRIQUE:<50} {counts}")
            continue
        print(f"  {f['id']:<50} {counts}")
        if f["title"] != f["id"]:
            print(f"      « {f['title']} »")
    print("\nPar type : " + ", ".join(f"{k} {v}" for k, v in stats["doc_types"].items()))
    print("Par année : " + ", ".join(f"{k} {v}" for k, v in stats["years"].items()))
    if stats["failed"]:
        print(f"\nEn échec ({len(stats['failed'])}) :")
        for f in stats["failed"]:
            print(f"  {f['error']}")
    return EXIT_OK


# Fields `docs` shows, in order, with their French label.
_DOC_FIELDS = (("title", "Titre"), ("fabrique", "Fabrique"), ("doc_type", "Type"), ("year", "Année"),
               ("territories", "Territoires"), ("visibility", "Visibilité"))


def document_row(r: Any) -> dict[str, Any]:
    """One document of `docs --json`: a public contract, flat, fields only ever added.

    `provenance` maps a field to where its value came from (« manifeste », « fiche
    .meta.yaml », « en-tête YAML », « propriétés du fichier », « déduit du texte », "" when
    absent); `conflicts` and `problems` are French sentences. An index built before they
    were recorded gives {} and [] (never a missing key). `error` is a failed file's cause.
    """
    m = r.meta or {}
    prov = m.get("provenance") if isinstance(m.get("provenance"), dict) else {}

    def sentences(key: str) -> list[str]:
        value = m.get(key) or []
        return [str(v) for v in ([value] if isinstance(value, str) else value) if v]

    return {
        "doc_id": str(r.doc_id or m.get("doc_id") or ""),
        "path": r.path,
        "title": str(m.get("title") or ""),
        "fabrique": str(m.get("fabrique") or ""),
        "fabrique_title": str(m.get("fabrique_title") or ""),
        "doc_type": str(m.get("doc_type") or ""),
        "year": m.get("year") if isinstance(m.get("year"), int) else None,
        "territories": [str(t) for t in m.get("territories") or []],
        "visibility": str(m.get("visibility") or ""),
        "status": r.status,
        "chunks": int(r.chunks or 0),
        "pages": int(r.pages or 0),
        "provenance": {str(k): str(v or "") for k, v in (prov or {}).items()},
        "conflicts": sentences("conflicts"),
        "problems": sentences("problems"),
        "error": str(r.error or ""),
    }


def collect_documents(settings: Any, fabrique: str | None = None,
                      territory: str | None = None) -> list[dict[str, Any]]:
    """The documents this audience may see (`document_row` each), optionally those of one
    fabrique (id, title, or « non renseignée ») or of one territory (any of its names, as the
    search filter resolves it). ValueError (French) for an unknown fabrique; StoreError when
    the registry cannot be read. An index never built lists nothing (and is not created)."""
    import sqlite3

    from assistant.ui_support import visible_records
    from ingest.errors import StoreError
    from ingest.registry import Registry, connect

    if not (Path(settings.store) / "index.sqlite3").is_file():
        records: list[Any] = []
    else:
        try:
            records = visible_records(Registry(connect(Path(settings.store))).all(), settings.audience)
        except sqlite3.Error as exc:
            raise StoreError(f"registre de l'index illisible ({settings.store}) : {exc}") from exc
    if fabrique is not None:
        fid = resolve_fabrique(fabrique, known_fabriques(records, settings.audience), allow_none=True)
        records = [r for r in records if r.status != "failed" and str(r.meta.get("fabrique") or "") == fid]
    if territory is not None:
        from assistant.retriever import match_territory

        known = sorted({str(t) for r in records for t in r.meta.get("territories") or []})
        names = set(match_territory(territory, known).names)
        records = [r for r in records if names & {str(t) for t in r.meta.get("territories") or []}]
    return [document_row(r) for r in records]


def _print_document(n: int, d: dict[str, Any]) -> None:
    """One block of `docs`: each field followed by [where it came from]."""
    from assistant.ui_support import STATUS_LABELS, doc_type_label

    shown = {
        "title": d["title"] or "sans titre",
        "fabrique": (f"{d['fabrique_title']} ({d['fabrique']})" if d["fabrique_title"]
                     and d["fabrique_title"] != d["fabrique"] else d["fabrique"]) or NO_FABRIQUE,
        "doc_type": f"{doc_type_label(d['doc_type'])} ({d['doc_type']})" if d["doc_type"] else "",
        "year": str(d["year"]) if d["year"] else "inconnue",
        "territories": ", ".join(d["territories"]) or "aucun",
        "visibility": d["visibility"],
    }
    print(f"[{n}] {d['path']}")
    status = STATUS_LABELS.get(d["status"], d["status"])
    print(f"    Identifiant : {d['doc_id'] or '—'} · statut : {status} · "
          f"{d['pages']} page(s), {d['chunks']} passage(s)")
    if d["status"] == "failed":
        print(f"    Erreur : {d['error']}")
        return
    for key, label in _DOC_FIELDS:
        source = d["provenance"].get(key, "")
        print(f"    {label} : {shown[key]}" + (f" [{source}]" if source else ""))
    for c in d["conflicts"]:
        print(f"    Conflit : {c}")
    for pb in d["problems"]:
        print(f"    Problème : {pb}")


def cmd_docs(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        docs = collect_documents(settings, args.fabrique, args.territory)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _print_json(docs)
        return EXIT_OK
    if not docs:
        print("Aucun document (index vide ou filtres trop restrictifs).")
        return EXIT_OK
    for n, d in enumerate(docs, start=1):
        if n > 1:
            print()
        _print_document(n, d)
    print(f"\n{len(docs)} document(s) — index {settings.store}")
    return EXIT_OK


def _answerer(settings: Any) -> Any:
    from assistant.answer import get_answerer
    from ingest.embeddings import get_embeddings

    return get_answerer(settings, get_embeddings(settings.embeddings))


def cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        retriever, filters = _open_filtered(args, settings)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    from assistant.retriever import answer_context

    passages = answer_context(retriever, args.question, filters, settings, args.k)
    result = _answerer(settings).answer(args.question, passages, mode=args.mode)
    if args.json:
        _print_json(result.as_json())
        return EXIT_OK
    print(result.text)
    if result.citations:
        print("\nSources :")
        for c in result.citations:
            where = ", ".join(c.territories) or c.fabrique
            print(f"  [{c.n}] {c.title} — p. {c.page} ({where}) — {c.source}")
    for lead in result.leads:
        print(f"  piste : {lead.title} — p. {lead.page} : {lead.excerpt}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.answer import effective_score
    from assistant.evaluate import evaluate, load_gold, sweep_threshold
    from assistant.retriever import answer_context, other_fusion

    settings = _settings(args)
    retriever = _retriever(settings)
    questions = load_gold(Path(args.gold))
    answerer = None if args.no_answers else _answerer(settings)

    def context(q: Any) -> Any:
        return answer_context(retriever, q.question, q.to_filters(), settings, args.k)

    def answer_fn(q: Any) -> Any:
        return answerer.answer(q.question, context(q))

    report = evaluate(retriever, questions, answer_fn if answerer else None)
    if args.sweep and answerer:
        report["threshold"] = sweep_threshold(
            questions,
            lambda q: effective_score(answerer.evidence(q.question, context(q))),
        )
        report["threshold"]["configured"] = settings.refusal_threshold
    if args.holdout:
        _holdout(args, settings, retriever, questions, report)
    if args.json:
        _print_json(report)
        return EXIT_OK
    print(f"Questions gold : {report['gold']} ({args.gold})")
    other = other_fusion(report["fusion"])
    heads = (f"hybride ({report['fusion']})", "dense seul", f"hybride ({other})")
    print(f"{'':<18}" + "".join(f"{h:>20}" for h in heads))
    for key in ("recall@5", "recall@10", "mrr", "page_accuracy", "search_p50_s"):
        row = (report["hybrid"][key], report["dense"][key], report[other][key])
        print(f"{key:<18}" + "".join(f"{v!s:>20}" for v in row))
    if "answers" in report:
        a = report["answers"]
        print(f"validité des citations : {a['citation_validity']}  ·  refus justes (hors corpus) : "
              f"{a['refusal_accuracy']}  ·  refus à tort : {a['false_refusal_rate']}")
    if "threshold" in report:
        b = report["threshold"]["best"]
        print(f"seuil de refus conseillé : {b['threshold']} (refus justes {b['refusal_accuracy']}, "
              f"répondues {b['answered']}) ; configuré : {settings.refusal_threshold}")
    if report["hybrid"]["misses"]:
        print("non trouvées (top 10, hybride) : " + ", ".join(report["hybrid"]["misses"]))
    if args.holdout:
        _print_holdout(report)
    return EXIT_OK


def _holdout(args: argparse.Namespace, settings: Any, retriever: Any, questions: list[Any],
             report: dict[str, Any]) -> None:
    """Leave-one-fabrique-out figures: metadata of unseen documents, answers on unseen
    fabriques (parameters calibrated on the others), and the separate unanswerable set."""
    from assistant.holdout import evaluate_holdout_answers, load_unanswerable
    from assistant.metadata_eval import evaluate_holdout

    bar = _progress_bar("Évaluation par fabrique retirée", "question")
    report["metadata_holdout"] = evaluate_holdout(Path(args.corpus))
    if not args.no_answers:
        report["answers_holdout"] = evaluate_holdout_answers(
            retriever, _answerer(settings), settings, questions, load_unanswerable(Path(args.unanswerable)),
            progress=bar,
        )


def _progress_bar(label: str, unit: str) -> Any:
    """A tqdm bar on stderr (long evaluations show progress), as `ingest` does."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int, item: str) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False)
        state["bar"].n = done
        state["bar"].set_postfix_str(item[-40:])
        state["bar"].refresh()

    return update


def _print_holdout(report: dict[str, Any]) -> None:
    from assistant.metadata_eval import render

    print("\nMétadonnées, une fabrique retirée à la fois (texte seul, sans manifeste ni propriétés) :")
    print(render(report["metadata_holdout"]))
    a = report.get("answers_holdout")
    if not a:
        return
    print("\nRéponses, une fabrique retirée à la fois :")
    print(f"{'':<34}{'retenue (held-out)':>20}{'dev (calé sur tout)':>22}")
    rows = (("refusal_accuracy", "refus justes (fabrique absente)"),
            ("false_refusal_rate", "refus à tort (index complet)"), ("lead", "lead (1re citation)"))
    for key, label in rows:
        print(f"{label:<34}{a['held_out'][key]!s:>20}{a['dev'][key]!s:>22}")
    print(f"couverture des comparaisons (questions gold, dev) : {a['compare']['coverage']} "
          f"sur {a['compare']['questions']} questions")
    c = a["calibrated"]
    u = a["unanswerable"]
    print(f"paramètres calés sur tout : seuil {c['threshold']}, soutien des termes {c['term_support']}, "
          f"proximité de la question {c['question_support']}")
    print(f"questions sans réponse (jeu séparé, jamais calé) : {u['refusal_accuracy']} refusées "
          f"sur {u['questions']} ({', '.join(f'{k} {v}' for k, v in u['by_kind'].items())})")


def _cmd_draft(args: argparse.Namespace) -> int:
    """`draft`: `--fabrique` by id or title like the other commands; the territory is
    resolved by the drafting module (any indexed name of it)."""
    from assistant.draft import draft_command

    if getattr(args, "fabrique", None):
        from ingest.registry import Registry, connect

        settings = _settings(args)
        try:
            args.fabrique = resolve_fabrique(
                args.fabrique, known_fabriques(Registry(connect(settings.store)).all(), settings.audience))
        except ValueError as exc:
            print(f"Erreur : {exc}", file=sys.stderr)
            return EXIT_USAGE
    return draft_command(args)


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="dossier de l'index (défaut : FP_STORE ou data/index)")


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fabrique", help="fabrique : identifiant ou intitulé, même partiel (voir `stats`)")
    p.add_argument("--territory", help="territoire, sous n'importe quel nom (ex. Arras, « CU d'Arras »)")
    p.add_argument("--year", help="année ou intervalle (2019 ou 2019-2021)")
    p.add_argument("--type", help=f"type de document : {', '.join(DOC_TYPES)} ou son nom (« compte rendu »)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fp-assistant",
        description="Assistant documentaire des Fabriques Prospectives (ANCT), hors ligne.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="indexer des fichiers ou dossiers")
    p.add_argument("paths", nargs="+", help="fichiers ou dossiers (PDF, DOCX, HTML, MD, TXT)")
    _add_store(p)
    p.add_argument("--sync", action="store_true", help="retirer les documents dont le fichier a disparu")
    p.add_argument("--json", action="store_true", help="rapport JSON sur la sortie standard")
    p.add_argument("--quiet", action="store_true", help="sans barre de progression")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="chercher des passages")
    p.add_argument("query")
    _add_store(p)
    p.add_argument("--k", type=int, default=5, help="nombre de passages (défaut 5)")
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="poser une question ; réponse citée")
    p.add_argument("question")
    _add_store(p)
    p.add_argument("--k", type=int, default=None,
                   help="passages lus pour répondre (défaut FP_ANSWER_K, 15)")
    p.add_argument("--mode", choices=("answer", "compare"), default="answer",
                   help="answer : réponse ; compare : une ligne par territoire")
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("draft", help="rédiger un projet de feuille de route, chaque ligne sourcée")
    p.add_argument("--territory", required=True, help="territoire, sous n'importe quel nom (ex. Jonzac)")
    p.add_argument("--fabrique", help="fabrique : identifiant ou intitulé (déduite du territoire sinon)")
    p.add_argument("--theme", help="thème à privilégier (ex. mobilité)")
    p.add_argument("--sections", help="sections séparées par des virgules : contexte,enjeux,vision,axes,"
                   "actions,gouvernance,suivi,sources")
    p.add_argument("--out", help="fichier .docx ou .md (sinon Markdown sur la sortie standard)")
    _add_store(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_draft)

    p = sub.add_parser("eval", help="mesurer la recherche et les réponses sur les questions gold")
    _add_store(p)
    p.add_argument("--gold", default="tests/gold/questions.yaml")
    p.add_argument("--k", type=int, default=None, help="passages lus pour répondre (défaut FP_ANSWER_K)")
    p.add_argument("--no-answers", action="store_true", help="seulement la recherche")
    p.add_argument("--sweep", action="store_true", help="calibrer le seuil de refus")
    p.add_argument("--holdout", action="store_true",
                   help="mesurer sur des fabriques retirées une à une (métadonnées et réponses)")
    p.add_argument("--corpus", default="corpus", help="corpus d'exemple avec son manifeste (--holdout)")
    p.add_argument("--unanswerable", default="tests/gold/unanswerable.yaml",
                   help="questions sans réponse, jamais utilisées pour caler (--holdout)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("docs", help="documents indexés, leurs métadonnées et d'où elles viennent")
    _add_store(p)
    p.add_argument("--fabrique", help="fabrique : identifiant ou intitulé, ou « non renseignée »")
    p.add_argument("--territory", help="territoire, sous n'importe quel nom")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("stats", help="documents et passages par fabrique, type, année")
    _add_store(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from ingest.errors import StoreError

    try:
        return int(args.func(args))
    except StoreError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_INDEX
    except KeyboardInterrupt:
        print("Interrompu.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
