"""Leave-one-fabrique-out check of document metadata: how the ingest labels documents it
has never seen.

For each fabrique of the sample corpus, its documents are read as a stranger would bring
them: text only (no manifest entry, no sidecar, no front matter, no file property), into
an ingest that knows the other fabriques as usual (their manifest entries, and the names
their own documents give them). The labels are then compared with the manifest. A wrong
fabrique is the failure that matters: an empty one is acceptable.

No embedding is involved (metadata comes before it), so the check runs in about a minute.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.fabriques import Catalog, Fabrique, same_name
from ingest.loaders import load
from ingest.metadata import Manifest, fold, resolve
from ingest.models import LoadedDocument


@dataclass
class FoldResult:
    fabrique: str
    documents: int = 0
    right: int = 0
    wrong: int = 0
    empty: int = 0
    type_right: int = 0
    year_right: int = 0
    territories_expected: int = 0
    territories_found: int = 0
    territories_labelled: int = 0  # labels given to documents of a single territory
    territories_correct: int = 0  # of those labels, the ones naming that territory
    labels: list[str] = field(default_factory=list)  # fabrique titles given (right or wrong)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _stripped(loaded: LoadedDocument) -> LoadedDocument:
    """The text a stranger's file would bring: every declared property removed."""
    return LoadedDocument(path=loaded.path, pages=loaded.pages, file_meta={}, fmt=loaded.fmt,
                          running=loaded.running)


def _matches(found: str, expected: str, aliases: list[str]) -> bool:
    from ingest.gazetteer import Gazetteer

    names = [expected, *aliases]
    if any(fold(found) == fold(n) for n in names):
        return True
    gz = Gazetteer.default()
    return any(gz.same_territory(found, n) for n in names)


def evaluate_holdout(corpus: Path, progress: Any = None) -> dict[str, Any]:
    """Run every fold; the totals are what the README reports."""
    manifest = Manifest.load(corpus / "manifest.yaml")
    loaded: dict[str, LoadedDocument] = {}
    entries = list(manifest.documents.items())
    for i, (rel, _entry) in enumerate(entries):
        if progress:
            progress(i, len(entries), rel)
        loaded[rel] = _stripped(load(corpus / rel))
    by_fab: dict[str, list[str]] = defaultdict(list)
    for rel, entry in entries:
        by_fab[str(entry["fabrique"])].append(rel)

    folds = []
    for held in sorted(by_fab):
        truth = manifest.fabriques[held]
        others = {k: v for k, v in manifest.fabriques.items() if k != held}
        known = Manifest(root=None, documents={}, fabriques=others)
        catalog = Catalog(Fabrique(f.id, f.title, f.year, f.keywords, f.partners, f.territories,
                                   list(f.aliases)) for f in others.values())
        # the others are indexed as usual: declared, and their documents teach the names
        # they give their fabrique
        full = Manifest(root=corpus, documents=manifest.documents, fabriques=others)
        for rel, entry in entries:
            if entry["fabrique"] == held:
                continue
            meta = resolve(corpus / rel, loaded[rel], full, rel, catalog)
            fab = catalog.get(meta.fabrique)
            if fab is not None and meta.fabrique_named:
                catalog.remember(fab, meta.fabrique_named)
        res = FoldResult(fabrique=held)
        for rel in by_fab[held]:
            entry = manifest.documents[rel]
            meta = resolve(corpus / rel, loaded[rel], known, f"holdout/{rel}", catalog)
            res.documents += 1
            if not meta.fabrique:
                res.empty += 1
            elif same_name(meta.fabrique_title, truth.title) or any(
                same_name(meta.fabrique_title, a) for a in truth.aliases
            ):
                res.right += 1
            else:
                res.wrong += 1
                res.errors.append({"path": rel, "field": "fabrique", "found": meta.fabrique_title})
            if meta.fabrique_title and meta.fabrique_title not in res.labels:
                res.labels.append(meta.fabrique_title)
            if meta.doc_type == entry.get("doc_type"):
                res.type_right += 1
            else:
                res.errors.append({"path": rel, "field": "type", "found": meta.doc_type,
                                   "expected": entry.get("doc_type")})
            if meta.year == entry.get("year"):
                res.year_right += 1
            else:
                res.errors.append({"path": rel, "field": "year", "found": meta.year,
                                   "expected": entry.get("year")})
            expected = [str(t) for t in entry.get("territories") or []]
            res.territories_expected += len(expected)
            for t in expected:
                aliases = truth.territories.get(t, [])
                if any(_matches(found, t, aliases) for found in meta.territories):
                    res.territories_found += 1
                else:
                    res.errors.append({"path": rel, "field": "territory", "expected": t,
                                       "found": meta.territories})
            if len(expected) == 1:
                res.territories_labelled += len(meta.territories)
                aliases = truth.territories.get(expected[0], [])
                res.territories_correct += sum(_matches(f, expected[0], aliases) for f in meta.territories)
                res.errors += [{"path": rel, "field": "territory_extra", "expected": expected[0], "found": f}
                               for f in meta.territories if not _matches(f, expected[0], aliases)]
        folds.append(res)
    return summarise(folds)


def summarise(folds: list[FoldResult]) -> dict[str, Any]:
    n = sum(f.documents for f in folds) or 1
    exp = sum(f.territories_expected for f in folds) or 1
    lab = sum(f.territories_labelled for f in folds) or 1
    return {
        "documents": sum(f.documents for f in folds),
        "fabrique_right": sum(f.right for f in folds),
        "fabrique_wrong": sum(f.wrong for f in folds),
        "fabrique_empty": sum(f.empty for f in folds),
        "type_accuracy": round(sum(f.type_right for f in folds) / n, 3),
        "year_accuracy": round(sum(f.year_right for f in folds) / n, 3),
        "territory_recall": round(sum(f.territories_found for f in folds) / exp, 3),
        "territory_precision_local": round(sum(f.territories_correct for f in folds) / lab, 3),
        "folds": [
            {"fabrique": f.fabrique, "documents": f.documents, "right": f.right, "wrong": f.wrong,
             "empty": f.empty, "type": f.type_right, "year": f.year_right,
             "territories": f"{f.territories_found}/{f.territories_expected}", "labels": f.labels,
             "errors": f.errors}
            for f in folds
        ],
    }


def render(summary: dict[str, Any]) -> str:
    """The table the README shows, in French."""
    lines = [
        "| fabrique retirée | docs | fabrique juste | fausse | vide | type | année | territoires |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in summary["folds"]:
        lines.append(f"| {f['fabrique']} | {f['documents']} | {f['right']} | {f['wrong']} | {f['empty']} | "
                     f"{f['type']} | {f['year']} | {f['territories']} |")
    s = summary
    lines.append(
        f"| **total** | {s['documents']} | {s['fabrique_right']} | **{s['fabrique_wrong']}** | "
        f"{s['fabrique_empty']} | {s['type_accuracy']:.2f} | {s['year_accuracy']:.2f} | "
        f"{s['territory_recall']:.2f} |"
    )
    lines.append("")
    lines.append(f"Précision des territoires (documents d'un seul territoire) : "
                 f"{s['territory_precision_local']:.2f}")
    return "\n".join(lines)


def evaluate_pages(corpus: Path, gold: Path, holdout: bool = True) -> dict[str, Any]:
    """Territories and fabrique of the public pages (corpus/pages-publiques/), text only, against
    a truth set written by hand (tests/gold/territories_registers.yaml).

    The pages are in no manifest: they are read as a stranger's, by an ingest that knows the
    sample corpus' fabriques, less the page's own with `holdout` (its fabrique then has to be
    discovered under another id: right means the same name). Every label counts for precision
    here (a page about four territories labelled with a fifth is wrong on that label), and a
    fabrique given to a page about the whole programme (truth null) is wrong.
    """
    import yaml

    manifest = Manifest.load(corpus / "manifest.yaml")
    truth_docs = (yaml.safe_load(gold.read_text(encoding="utf-8")) or {}).get("documents") or {}
    totals = {"documents": 0, "fabrique_right": 0, "fabrique_wrong": 0, "fabrique_empty": 0,
              "territories_expected": 0, "territories_found": 0, "labels": 0, "labels_correct": 0}
    errors: list[dict[str, Any]] = []
    for rel, truth in sorted(truth_docs.items()):
        ids = truth.get("fabrique")
        ids = [] if ids is None else [ids] if isinstance(ids, str) else list(ids)
        held = set(ids) if holdout else set()
        others = {k: v for k, v in manifest.fabriques.items() if k not in held}
        known = Manifest(root=None, documents={}, fabriques=others)
        catalog = Catalog(Fabrique(f.id, f.title, f.year, f.keywords, f.partners, f.territories,
                                   list(f.aliases)) for f in others.values())
        loaded = _stripped(load(corpus / rel))
        meta = resolve(corpus / rel, loaded, known, f"pages/{rel}", catalog)
        totals["documents"] += 1
        expected_titles = [n for i in ids if i in manifest.fabriques
                           for n in manifest.fabriques[i].names()]
        if not meta.fabrique:
            totals["fabrique_empty"] += 1 if ids else 0
            totals["fabrique_right"] += 0 if ids else 1
        elif meta.fabrique in ids or any(same_name(meta.fabrique_title, t) for t in expected_titles):
            totals["fabrique_right"] += 1
        else:
            totals["fabrique_wrong"] += 1
            errors.append({"path": rel, "field": "fabrique", "found": meta.fabrique_title, "expected": ids})
        expected = [(str(t["name"]), [str(a) for a in t.get("also") or []])
                    for t in truth.get("territories") or []]
        totals["territories_expected"] += len(expected)
        for name, also in expected:
            if any(_matches(f, name, also) for f in meta.territories):
                totals["territories_found"] += 1
            else:
                errors.append({"path": rel, "field": "territory", "expected": name,
                               "found": meta.territories})
        for f in meta.territories:
            totals["labels"] += 1
            if any(_matches(f, name, also) for name, also in expected):
                totals["labels_correct"] += 1
            else:
                errors.append({"path": rel, "field": "territory_extra", "found": f})
    return {
        **{k: totals[k] for k in ("documents", "fabrique_right", "fabrique_wrong", "fabrique_empty")},
        "territory_recall": round(totals["territories_found"] / (totals["territories_expected"] or 1), 3),
        "territory_precision": round(totals["labels_correct"] / (totals["labels"] or 1), 3),
        "territories": f"{totals['territories_found']}/{totals['territories_expected']}",
        "labels": f"{totals['labels_correct']}/{totals['labels']}",
        "errors": errors,
    }


def render_pages(summary: dict[str, Any]) -> str:
    """The public pages' line, in French."""
    s = summary
    return (f"Pages publiques ({s['documents']}, texte seul) : fabrique juste {s['fabrique_right']}, "
            f"fausse **{s['fabrique_wrong']}**, vide {s['fabrique_empty']} ; rappel des territoires "
            f"{s['territory_recall']:.2f} ({s['territories']}), précision {s['territory_precision']:.2f} "
            f"({s['labels']})")
