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
import sys
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

    from assistant.access import Caller
    from assistant.service import Service

    settings = _settings(args)
    service = Service(settings)
    bar = tqdm(total=0, unit="fichier", file=sys.stderr, disable=args.quiet, desc="Indexation")

    def progress(done: int, total: int, path: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(Path(path).name[:40] if path else "terminé", refresh=False)
        bar.refresh()

    def page_progress(done: int, total: int, path: str) -> None:
        # OCR takes seconds a page: show it move inside the file, « scan.pdf · OCR p. 3/12 »
        # (the page being read; `done` pages are finished)
        bar.set_postfix_str(f"{Path(path).name[:40]} · OCR p. {min(done + 1, total)}/{total}", refresh=True)

    try:
        # whoever runs the CLI owns the files and the index: the operator, an admin
        report = service.ingest([Path(p) for p in args.paths], Caller("admin", "cli"), sync=args.sync,
                                progress=progress, page_progress=page_progress)
    finally:
        bar.close()
    if args.json:
        _print_json(report.as_json())
    else:
        print(
            f"Ajoutés : {len(report.added)} · mis à jour : {len(report.updated)} · "
            f"métadonnées seules : {len(report.relabelled)} · "
            f"inchangés : {len(report.unchanged)} · retirés : {len(report.removed)} · "
            f"en échec : {len(report.failed)}"
        )
        for dup in report.duplicates:
            print(f"  doublon : {dup['error']}")
        for fail in report.failed:
            print(f"  ÉCHEC {fail['error']}", file=sys.stderr)
        print(f"Index : {report.documents} documents, {report.chunks} passages ({settings.store})")
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _service(args: argparse.Namespace) -> Any:
    from assistant.service import get_service

    return get_service(_settings(args))


def _filters(args: argparse.Namespace, service: Any) -> Any:
    """Filters as typed (`--fabrique` by id or title, `--type` by id or French name, `--year`
    2019 or 2019-2021); ValueError (French) is bad usage."""
    return service.filters(service.local_caller(), fabrique=args.fabrique, territory=args.territory,
                           year=args.year, doc_type=args.type)


def cmd_search(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        filters = _filters(args, service)
        passages = service.search(args.query, service.local_caller(), filters=filters, k=args.k)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
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


def cmd_stats(args: argparse.Namespace) -> int:
    service = _service(args)
    stats = service.stats(service.local_caller())
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
            edition = f" (lancée en {f['year']})" if f.get("year") else ""
            print(f"      « {f['title']} »{edition}")
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


def _print_document(n: int, d: dict[str, Any]) -> None:
    """One block of `docs`: each field followed by [where it came from]."""
    from assistant.catalog import STATUS_LABELS, doc_type_label

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
    service = _service(args)
    try:
        docs = service.documents(service.local_caller(), args.fabrique, args.territory)
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
    print(f"\n{len(docs)} document(s) — index {service.settings.store}")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        filters = _filters(args, service)
        result = service.ask(args.question, service.local_caller(), mode=args.mode, filters=filters,
                             k=args.k)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _print_json(result.as_json())
        return EXIT_OK
    print(result.text)
    if result.citations:
        print("\nSources :")
        for c in result.citations:
            where = ", ".join(c.territories) or c.fabrique
            ocr = " (texte reconnu par OCR)" if c.ocr else ""
            print(f"  [{c.n}] {c.title} — p. {c.page}{ocr} ({where}) — {c.source}")
    for lead in result.leads:
        print(f"  piste : {lead.title} — p. {lead.page} : {lead.excerpt}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.evaluation.gold import load_gold, run_gold

    if args.cards:
        return _eval_cards(args)
    if args.card_facts:
        return _eval_card_facts(args)
    service = _service(args)
    retriever = service.retriever(service.local_caller())
    questions = load_gold(Path(args.gold))
    # every question's passages and features, read once for refitting and for the held-out figures
    rows = _rows(args, service, retriever, questions) if args.fit or (args.holdout and not args.no_answers) \
        else []
    fitted = _fit(rows) if args.fit else None  # before any answer reads the weights
    answerer = None if args.no_answers else service.answerer()
    report = run_gold(retriever, answerer, service.settings, questions, args.k, args.sweep)
    if fitted:
        report["fitted"] = fitted
    if args.holdout:
        _holdout(args, service, retriever, questions, rows, report)
    if args.json:
        _print_json(report)
        return EXIT_OK
    print(f"Questions gold : {report['gold']} ({args.gold})")
    other = report["other_fusion"]
    heads = (f"hybride ({report['fusion']})", "dense seul", f"hybride ({other})")
    print(f"{'':<18}" + "".join(f"{h:>20}" for h in heads))
    for key in ("recall@5", "recall@10", "mrr", "page_accuracy", "search_p50_s"):
        row = (report["hybrid"][key], report["dense"][key], report[other][key])
        print(f"{key:<18}" + "".join(f"{v!s:>20}" for v in row))
    if "answers" in report:
        a = report["answers"]
        print(f"recherche seule : 1er passage {a['top1']} · 3 premiers {a['top3']}  |  réponse : "
              f"1re citation {a['lead']} · une des citations {a['cite']}")
        print("  (questions sur lesquelles les décisions sont calées : chiffres non held-out)")
        print(f"validité des citations : {a['citation_validity']}  ·  refus justes (hors corpus) : "
              f"{a['refusal_accuracy']}  ·  refus à tort : {a['false_refusal_rate']}")
    if "threshold" in report:
        b = report["threshold"]["best"]
        print(f"seuil de refus conseillé : {b['threshold']} (refus justes {b['refusal_accuracy']}, "
              f"répondues {b['answered']}) ; configuré : {report['threshold']['configured']}")
    if report["hybrid"]["misses"]:
        print("non trouvées (top 10, hybride) : " + ", ".join(report["hybrid"]["misses"]))
    if args.holdout:
        _print_holdout(report)
    return EXIT_OK


def _eval_cards(args: argparse.Namespace) -> int:
    """Fiches fabriques: per-field precision and recall with each fabrique left out (and, apart,
    the figures on what the models were fitted on); `--fit` refits and rewrites the weights."""
    from assistant.evaluation import cards as K

    report = K.evaluate(_settings(args).store, Path(args.cards_gold), refit=args.fit)
    if args.json:
        _print_json(report)
    else:
        print(K.render(report))
    return EXIT_OK


def _eval_card_facts(args: argparse.Namespace) -> int:
    """Fact questions on a fabrique (prestataire, territories, association, edition) of the gold
    sets, answered with the card's line beside the same passages answered alone."""
    from assistant.evaluation import card_facts as F
    from assistant.evaluation.gold import load_gold

    questions = [q for path in (args.gold, args.registers) if Path(path).exists()
                 for q in load_gold(Path(path))]
    unanswerable = [q.question for q in load_gold(Path(args.unanswerable))]
    report = F.card_fact_report(_service(args), questions, unanswerable)
    if args.json:
        _print_json(report)
    else:
        print(F.render(report))
    return EXIT_OK


def _rows(args: argparse.Namespace, service: Any, retriever: Any, questions: list[Any]) -> list[Any]:
    """Every question in every condition, with its passages' features (see evaluation.holdout)."""
    from assistant.evaluation import holdout as H

    registers = H.load_questions(Path(args.registers)) if Path(args.registers).exists() else []
    return H.collect(retriever, service.settings, questions, registers,
                     H.load_questions(Path(args.unanswerable)),
                     progress=_progress_bar("Évaluation des réponses", "question"))


def _fit(rows: list[Any]) -> dict[str, Any]:
    """Refit the answer layer's two decisions on every question but the unanswerable set, and
    write the weights and the rows they were fitted on beside assistant/answering/decisions.py."""
    from assistant.evaluation import holdout as H

    return H.refit(rows).as_json()


def _holdout(args: argparse.Namespace, service: Any, retriever: Any, questions: list[Any],
             rows: list[Any], report: dict[str, Any]) -> None:
    """Held-out figures: metadata of unseen documents (a fabrique left out), and answers whose
    two decisions are refitted fold by fold (a fabrique, then a writing register, left out)."""
    from assistant.evaluation import holdout as H
    from assistant.evaluation.metadata import evaluate_holdout, evaluate_pages

    report["metadata_holdout"] = evaluate_holdout(Path(args.corpus))
    pages_gold = Path(args.gold).parent / "territories_registers.yaml"
    if pages_gold.exists():
        report["metadata_pages"] = evaluate_pages(Path(args.corpus), pages_gold)
    if args.no_answers:
        return
    report["answers_holdout"] = H.evaluate(rows, service.answerer().models)
    report["answers_holdout"]["compare"] = H.compare_figures(retriever, service.answerer(),
                                                             service.settings, questions)


_FIGURES = (("top1", "recherche seule : 1er passage"), ("top3", "recherche seule : 3 premiers"),
            ("lead", "réponse : 1re citation"), ("cite", "réponse : une des citations"),
            ("false_refusal_rate", "refus à tort"), ("refusal_accuracy", "refus justes"),
            ("hedged", "répondues « pas sûres »"), ("flagged", "sans réponse : refus ou « pas sûr »"))


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
    from assistant.evaluation.metadata import render

    if "metadata_holdout" in report:
        print("\nMétadonnées, une fabrique retirée à la fois (texte seul, sans manifeste ni propriétés) :")
        print(render(report["metadata_holdout"]))
    if "metadata_pages" in report:
        from assistant.evaluation.metadata import render_pages

        print("(les règles de listes et d'énumérations ont été écrites en lisant ces pages : chiffre non "
              "held-out)")
        print(render_pages(report["metadata_pages"]).replace("**", ""))
    a = report.get("answers_holdout")
    if not a:
        return
    folds = [("leave_one_fabrique_out", "une fabrique retirée"),
             ("leave_one_register_out", "un registre retiré")]
    folds = [(k, label) for k, label in folds if a.get(k)]
    print("\nRéponses, décisions réajustées sans les questions mesurées (held-out), "
          "à côté de la recherche seule :")
    never = "sans réponse (jamais calé)"
    print(f"{'':<34}" + "".join(f"{label:>24}" for _k, label in folds) + f"{never:>28}")
    for key, label in _FIGURES:
        cells = [a[k][key] for k, _label in folds] + [a.get("unanswerable", {}).get(key, "—")
                                                      if key in ("refusal_accuracy", "flagged") else "—"]
        print(f"{label:<34}" + "".join(f"{c!s:>24}" for c in cells[:-1]) + f"{cells[-1]!s:>28}")
    if "leave_one_register_out" in a and a["leave_one_register_out"]:
        print("\npar registre retiré :")
        for reg, f in a["leave_one_register_out"]["folds"].items():
            print(f"  {reg:<22}" + "  ".join(f"{k} {f[k]}" for k, _l in _FIGURES if f.get(k) is not None)
                  + f"  (questions répondables : {f['answerable']})")
    print("\nablation (une fabrique retirée) :")
    for name, f in a["ablation"].items():
        print(f"  {name:<48}" + "  ".join(f"{k} {v}" for k, v in f.items()))
    print("\npoints de fonctionnement (refus à tort admis à l'ajustement, précision d'une réponse sûre) :")
    for name, f in a.get("operating_points", {}).items():
        print(f"  {name:<26} fabrique " + "  ".join(f"{k} {v}" for k, v in f["fabrique"].items())
              + "  |  registre " + "  ".join(f"{k} {v}" for k, v in f["register"].items()))
    print(f"\ncouverture des comparaisons (questions gold, rien n'est calé) : {a['compare']['coverage']} "
          f"sur {a['compare']['questions']} questions")
    f = a["fitted_on"]
    print(f"sur ce qui a servi à caler (non held-out) : lead {f['lead']} · cite {f['cite']} · "
          f"refus à tort {f['false_refusal_rate']} · refus justes {f['refusal_accuracy']}")


def _cmd_draft(args: argparse.Namespace) -> int:
    """`draft`: a cited draft roadmap on stdout (Markdown), in a .docx/.md file, or as JSON."""
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".docx", ".md"):
        print("Erreur : --out doit se terminer par .docx ou .md", file=sys.stderr)
        return EXIT_USAGE
    sections = [x.strip() for x in (args.sections or "").split(",") if x.strip()] or None
    service = _service(args)
    try:
        roadmap = service.draft(args.territory, service.local_caller(), fabrique=args.fabrique,
                                theme=args.theme, sections=sections)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(service.export(roadmap, out.suffix.lower().lstrip(".")))
        print(f"Projet de feuille de route écrit dans {out} ({len(roadmap.actions)} actions, "
              f"{len(roadmap.sources)} sources).", file=sys.stderr)
    if args.json:
        _print_json(roadmap.as_json())
    elif out is None:
        sys.stdout.write(service.export(roadmap, "md").decode("utf-8"))
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """`keys add|list|revoke`: the API keys of this index. The secret is printed once, at
    creation; only its hash is kept (`keys.sqlite` beside the registry)."""
    from assistant.access import ROLE_LABELS, keys_of

    keys = keys_of(_settings(args).store)  # no model, no index: `keys` answers at once
    try:
        if args.action == "add":
            info, secret = keys.add(args.name, args.role)
            if args.json:
                _print_json({**_key_json(info), "secret": secret})
            else:
                print(f"Clé « {info.name} » créée (rôle {ROLE_LABELS.get(info.role, info.role)}, "
                      f"identifiant {info.id}).")
                print("Conservez-la maintenant, elle ne sera plus affichée :")
                print(secret)
            return EXIT_OK
        if args.action == "revoke":
            info = keys.revoke(args.key)
            if info is None:
                print(f"Erreur : aucune clé active ne s'appelle ou n'a pour identifiant « {args.key} ».",
                      file=sys.stderr)
                return EXIT_USAGE
            print(f"Clé « {info.name} » ({info.id}) révoquée.")
            return EXIT_OK
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    listed = keys.list()
    if args.json:
        _print_json([_key_json(k) for k in listed])
        return EXIT_OK
    if not listed:
        print("Aucune clé. Créez-en une : fp-assistant keys add --name NOM --role public|interne|admin")
    for k in listed:
        state = f"révoquée le {k.revoked_at[:10]}" if k.revoked_at else "active"
        used = f", dernier usage {k.last_used_at[:16]}" if k.last_used_at else ""
        print(f"{k.id}  {k.name:<24} {k.role:<8} fpa_{k.prefix}…  "
              f"créée le {k.created_at[:10]}, {state}{used}")
    return EXIT_OK


def _key_json(info: Any) -> dict[str, Any]:
    return {"id": info.id, "name": info.name, "role": info.role, "prefix": info.prefix,
            "created_at": info.created_at, "revoked_at": info.revoked_at, "last_used_at": info.last_used_at}


# --------------------------------------------------------------------------- fabriques' cards

def _source_note(value: dict[str, Any]) -> str:
    """« (titre du document, p. N) » for each document a value is read in (three at most)."""
    seen: list[str] = []
    for e in value.get("evidence") or []:
        note = f"{e.get('title') or e.get('source') or 'document'}, p. {e.get('page') or 1}"
        if note not in seen:
            seen.append(note)
    more = f" ; +{len(seen) - 3}" if len(seen) > 3 else ""
    return f" ({' ; '.join(seen[:3])}{more})" if seen else ""


def _card_value(field: str, value: dict[str, Any]) -> str:
    text = str(value.get("value") or "")
    if field == "territories":
        where = ", ".join(str(value[k]) for k in ("departement", "region") if value.get(k))
        text += f" ({where})" if where else ""
    return text + _source_note(value)


def _print_card(card: dict[str, Any], labels: dict[str, dict[str, str]]) -> None:
    """A card to read: each value followed by the document and page it is read in, « — » for
    an empty field."""
    fields, names = card["fields"], labels["fields"]

    def line(field: str) -> str:
        return " ; ".join(_card_value(field, v) for v in fields.get(field) or []) or "—"

    print(f"{card['title']} ({card['id']})")
    for field in ("title", "theme"):
        print(f"  {names[field]} : {line(field)}")
    edition = line("year")
    if fields.get("period"):
        edition += f" · {names['period'].lower()} : {line('period')}"
    print(f"  {names['year']} : {edition}")
    for field in ("territories", "prestataires", "associations", "partners"):
        print(f"  {names[field]} : {line(field)}")
    print("  Documents par type :" + ("" if card["documents"] else " —"))
    for doc_type, docs in card["documents"].items():
        listed = " ; ".join(f"{d['title'] or d['doc_id']}" + (f" ({d['year']})" if d["year"] else "")
                            for d in docs)
        print(f"    {labels['doc_types'].get(doc_type, doc_type)} : {listed}")
    print(f"  {names['lessons']} :" + ("" if fields.get("lessons") else " —"))
    for value in fields.get("lessons") or []:
        print(f"    - {_card_value('lessons', value)}")


def cmd_fabriques(args: argparse.Namespace) -> int:
    """`fabriques`: the fabriques' cards this audience may read, one line each (or the JSON of
    `GET /api/fabriques`)."""
    service = _service(args)
    try:
        result = service.fabriques(service.local_caller(), theme=args.theme, year=args.year,
                                   region=args.region)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _print_json(result)
        return EXIT_OK
    cards = result["fabriques"]
    if not cards:
        print("Aucune fiche de fabrique (index sans fiches, ou filtres trop restrictifs).")
        return EXIT_OK
    for card in cards:
        fields = card["fields"]
        edition = ", ".join(str(v["value"]) for v in fields.get("year") or []) or "—"
        places = ", ".join(str(v["value"]) for v in fields.get("territories") or []) or "—"
        count = sum(len(docs) for docs in card["documents"].values())
        print(f"{card['title']} ({card['id']})")
        print(f"    Édition : {edition} · Territoires : {places} · {count} document(s)")
    print(f"\n{len(cards)} fabrique(s). Fiche complète : fp-assistant fabrique IDENTIFIANT")
    return EXIT_OK


def cmd_fabrique(args: argparse.Namespace) -> int:
    """`fabrique ID`: one fabrique's card (by id or title), each value with its source."""
    service = _service(args)
    try:
        card = service.fabrique(service.local_caller(), args.fabrique)
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _print_json(card)
        return EXIT_OK
    _print_card(card, service.fabrique_labels())
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """`serve`: the HTTP API (REST + OpenAI-compatible) on one process; the model and the
    index are loaded before the port opens, so the first request is not the slow one."""
    import logging

    import uvicorn

    from assistant.api.app import create_app

    settings = _settings(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings)
    print(f"API sur http://{args.host}:{args.port} (documentation : http://{args.host}:{args.port}/docs)",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", workers=1)
    return EXIT_OK


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="dossier de l'index (défaut : FP_STORE ou data/index)")


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fabrique", help="fabrique : identifiant ou intitulé, même partiel (voir `stats`)")
    p.add_argument("--territory", help="territoire, sous n'importe quel nom (ex. Arras, « CU d'Arras »)")
    p.add_argument("--year", help="année du document (réunion, validation, publication ; pas l'édition de "
                                  "sa fabrique) ou intervalle (2019 ou 2019-2021)")
    p.add_argument("--type", help=f"type de document : {', '.join(DOC_TYPES)} ou son nom (« compte rendu »)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fp-assistant",
        description="Assistant documentaire des Fabriques Prospectives (ANCT), hors ligne.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="indexer des fichiers ou dossiers")
    p.add_argument("paths", nargs="+", help="fichiers ou dossiers (PDF, DOCX, ODT, PPTX, ODP, HTML, MD, TXT)")
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
    p.add_argument("--registers", default="tests/gold/registers.yaml",
                   help="questions sur des pages écrites comme les pages publiques (--holdout, --fit)")
    p.add_argument("--fit", action="store_true",
                   help="réajuster les deux décisions de la réponse sur toutes les questions (hors jeu "
                        "sans réponse) et les écrire à côté de assistant/answering/decisions.py")
    p.add_argument("--cards", action="store_true",
                   help="fiches fabriques : précision et rappel par champ, une fabrique retirée à la fois "
                        "(avec --fit : réajuster les modèles des champs, écrits dans "
                        "ingest/data/cards_model.json)")
    p.add_argument("--cards-gold", default="tests/gold/cards.yaml", help="vérité des fiches (--cards)")
    p.add_argument("--card-facts", action="store_true",
                   help="questions factuelles sur une fabrique (prestataire, territoires, association, "
                        "édition) : réponse avec la ligne de la fiche, à côté des passages seuls")
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

    p = sub.add_parser("fabriques", help="fiches des fabriques : titre, édition, territoires, partenaires…")
    _add_store(p)
    p.add_argument("--theme", help="mots du titre ou du thème (ex. mobilité)")
    p.add_argument("--year", help="année d'édition de la fabrique, ou comprise dans sa période (ex. 2019)")
    p.add_argument("--region", help="région d'un de ses territoires (ex. Bretagne)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fabriques)

    p = sub.add_parser("fabrique", help="la fiche d'une fabrique, chaque valeur avec sa source")
    p.add_argument("fabrique", help="identifiant ou intitulé, même partiel (voir `fabriques`)")
    _add_store(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fabrique)

    p = sub.add_parser("keys", help="clés d'accès à l'API : créer, lister, révoquer")
    keys = p.add_subparsers(dest="action", required=True)
    k = keys.add_parser("add", help="créer une clé (affichée une seule fois)")
    k.add_argument("--name", required=True, help="à qui ou à quoi sert la clé (ex. « intranet-anct »)")
    k.add_argument("--role", required=True, choices=("public", "interne", "admin"),
                   help="public : documents publics seulement ; interne : tous les documents ; "
                   "admin : tout, plus ajouter, supprimer, réindexer, exporter les avis")
    k = keys.add_parser("list", help="lister les clés (jamais leur secret)")
    k = keys.add_parser("revoke", help="révoquer une clé")
    k.add_argument("key", help="identifiant ou nom de la clé")
    for k in keys.choices.values():
        _add_store(k)
        k.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("serve", help="lancer l'API HTTP (REST et compatible OpenAI)")
    _add_store(p)
    p.add_argument("--host", default="127.0.0.1", help="adresse d'écoute (défaut 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (défaut 8000)")
    p.set_defaults(func=cmd_serve)
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
