"""`fp-assistant`: the command line users script against.

Exit codes: 0 all went well; 1 some files failed (the rest was indexed); 2 bad usage;
3 the index cannot be used (locked by another ingest, built with another model, server
unreachable). Output fields only ever grow. Heavy modules are imported inside the
commands so that `--help` and bad usage answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INDEX = 0, 1, 2, 3
DOC_TYPES = (
    "cahier_des_charges",
    "seminaire_local",
    "seminaire_intersites",
    "publication",
    "feuille_de_route",
    "autre",
)


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
    from assistant.retriever import Filters

    lo, hi = Filters.parse_year(args.year)
    return Filters(
        fabrique=args.fabrique, territory=args.territory, year_from=lo, year_to=hi, doc_type=args.type
    )


def _retriever(settings: Any) -> Any:
    from assistant.index import open_index
    from assistant.retriever import Retriever
    from ingest.embeddings import get_embeddings

    store, registry = open_index(settings)
    return Retriever(store, registry, get_embeddings(settings.embeddings), settings.audience)


def cmd_search(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        filters = _filters(args)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    passages = _retriever(settings).search(args.query, k=args.k, filters=filters)
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
    """Documents and passages per fabrique, type and year, from the registry."""
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
        fid = r.meta.get("fabrique") or "(sans fabrique)"
        f = fabriques[fid]
        f["title"] = r.meta.get("fabrique_title") or f["title"]
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
            {"id": fid, "title": f["title"], "documents": f["documents"], "chunks": f["chunks"],
             "doc_types": dict(f["doc_types"])}
            for fid, f in sorted(fabriques.items())
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
    print(f"\nPar fabrique ({len(stats['fabriques'])}) :")
    for f in stats["fabriques"]:
        types = ", ".join(f"{k} {v}" for k, v in sorted(f["doc_types"].items()))
        print(f"  {f['id']:<50} {f['documents']:>3} doc. {f['chunks']:>5} passages  ({types})")
    print("\nPar type : " + ", ".join(f"{k} {v}" for k, v in stats["doc_types"].items()))
    print("Par année : " + ", ".join(f"{k} {v}" for k, v in stats["years"].items()))
    if stats["failed"]:
        print(f"\nEn échec ({len(stats['failed'])}) :")
        for f in stats["failed"]:
            print(f"  {f['error']}")
    return EXIT_OK


def _answerer(settings: Any) -> Any:
    from assistant.answer import get_answerer
    from ingest.embeddings import get_embeddings

    return get_answerer(settings, get_embeddings(settings.embeddings))


def cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        filters = _filters(args)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    from assistant.retriever import answer_context

    retriever = _retriever(settings)
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
    return EXIT_OK


def _cmd_draft(args: argparse.Namespace) -> int:
    from assistant.draft import draft_command

    return draft_command(args)


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="dossier de l'index (défaut : FP_STORE ou data/index)")


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fabrique", help="identifiant de fabrique (voir `stats`)")
    p.add_argument("--territory", help="territoire (ex. Lorient)")
    p.add_argument("--year", help="année ou intervalle (2019 ou 2019-2021)")
    p.add_argument("--type", choices=DOC_TYPES, help="type de document")


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
    p.add_argument("--territory", required=True, help="territoire (ex. Jonzac)")
    p.add_argument("--fabrique", help="identifiant de fabrique (déduit du territoire sinon)")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

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
