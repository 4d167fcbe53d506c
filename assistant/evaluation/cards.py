"""Fiches fabriques measured on fabriques the field models never saw, and fitted.

The card's choices (`ingest.cards`: keep this candidate as the prestataire, this year as the
edition…) are one logistic model per field. Their rows are the candidates the index's text gives
for each fabrique, labelled by the truth written in `tests/gold/cards.yaml` (a candidate is right
when its name, accents and case folded, is the truth's name or one of its `also` spellings; a
territory also when the official map says it is the same place, a commune and its
intercommunality).

Figures, per field, on leave-one-fabrique-out folds: the field's model is fitted on the other
fabriques' rows, its threshold chosen on those fabriques alone (inner folds, so that the threshold
is set on probabilities the model did not fit) as the lowest keeping precision ≥ 0.95, then the
left-out fabrique's card is filled. Precision: the share of filled values that are right; recall:
the share of the truth's values found. Training figures (the model scored on what it was fitted
on) are printed apart and say so.

Only text is read: the documents of each fabrique's own folder (the truth's scope), their
passages as indexed. Which documents belong to which fabrique is the only metadata used; the
manifest's declared territories and partners never reach a candidate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.cards import (
    FITTED_FIELDS,
    MODEL_FILE,
    SINGLE_VALUED,
    Candidate,
    FieldModel,
    fabrique_candidates,
    keep,
    key_of,
    period_parts,
    read_corpus,
)

GOLD = Path("tests/gold/cards.yaml")
ROWS_FILE = MODEL_FILE.with_name("cards_model.rows.jsonl")
PRECISION = 0.95
C = 0.3
TRUTH_KEYS = {"title": "title", "year": "year", "period": "period", "territories": "territories",
              "prestataires": "prestataires", "associations": "associations", "partners": "partners"}


@dataclass
class Row:
    fabrique: str
    field: str
    value: str
    features: dict[str, float]
    label: bool
    truth: str | None = None  # the truth value it matches
    evidence: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- truth


def load_gold(path: Path = GOLD) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return dict(data.get("fabriques") or {})


_GENERIC = {"le", "la", "les", "l", "cabinet", "scop", "reseau", "programme", "association", "agence",
            "cooperative", "societe", "equipe", "d", "de", "du", "des"}


def _org_key(name: str) -> str:
    """Folded name without leading articles and generic words (« le cabinet Oxalis » = « Oxalis »)."""
    words = key_of(name).split()
    while len(words) > 1 and words[0] in _GENERIC:
        words = words[1:]
    return " ".join(words)


_TITLE_LEAD = re.compile(r"^(?:fabrique prospective (?:sur |consacree a |consacree au |dediee a )?)?"
                         r"(?:(?:l|la|le|les) )?")


def _title_key(name: str) -> str:
    return _TITLE_LEAD.sub("", key_of(name)).strip()


def truth_values(gold: dict[str, Any], name: str) -> list[tuple[str, list[str]]]:
    """The truth of a field: (value, all its accepted spellings)."""
    if name == "title":
        if not gold.get("title"):
            return []
        return [(gold["title"], [gold["title"], *(gold.get("title_alternatives") or [])])]
    if name in ("year", "period"):
        v = gold.get(name)
        return [(str(v), [str(v)])] if v not in (None, "") else []
    out = []
    for item in gold.get(TRUTH_KEYS[name]) or []:
        if isinstance(item, str):
            out.append((item, [item]))
        else:
            out.append((str(item["name"]), [str(item["name"]), *[str(a) for a in item.get("also") or []]]))
    return out


def _years_of(period: str) -> tuple[int, int] | None:
    ys = re.findall(r"(?:19|20)\d\d", period)
    return (int(ys[0]), int(ys[-1])) if ys else None


def match(name: str, c: Candidate, truth: list[tuple[str, list[str]]], gaz: Any = None) -> str | None:
    """The truth value a candidate denotes, or None."""
    for value, spellings in truth:
        if name == "title":
            if _title_key(c.value) in {_title_key(s) for s in spellings}:
                return value
        elif name == "year":
            if c.value == value:
                return value
        elif name == "period":
            parts, want = period_parts(c.key), _years_of(value)
            if parts and want and (parts[0][0], parts[1][0]) == want:
                return value
        elif name == "territories":
            names = [c.value, *c.extra.get("also", [])]
            keys = {key_of(s) for s in spellings}
            if any(key_of(n) in keys for n in names):
                return value
            if gaz is not None and any(gaz.same_territory(n, s) for n in names for s in spellings):
                return value
        else:
            if _org_key(c.value) in {_org_key(s) for s in spellings}:
                return value
    return None


# ----------------------------------------------------------------------------- rows


def _in_folder(doc_source: str, fid: str) -> bool:
    return Path(doc_source).parent.name == fid


def collect(store_dir: Path, gold: dict[str, dict[str, Any]], scope: str = "folder") -> list[Row]:
    """Every candidate of every gold fabrique, labelled. `scope="folder"`: the documents of the
    fabrique's own folder (what the truth was written from); "all": every document the index
    files under it (public pages included, which the truth does not cover)."""
    from ingest.gazetteer import Gazetteer

    gaz = Gazetteer.default()
    corpus = read_corpus(Path(store_dir), only=list(gold))
    rows: list[Row] = []
    for fid, truth in sorted(gold.items()):
        docs = [d for d in corpus.docs.get(fid, []) if scope == "all" or _in_folder(d.source, fid)]
        if not docs:
            continue
        cands = fabrique_candidates(docs, corpus.sentences)
        for name in FITTED_FIELDS:
            tv = truth_values(truth, name)
            for c in cands[name]:
                hit = match(name, c, tv, gaz)
                rows.append(Row(fid, name, c.value, dict(c.features), hit is not None, hit,
                                [e.text for e in c.evidence[:1]]))
    return rows


def truth_counts(gold: dict[str, dict[str, Any]], fabriques: Sequence[str]) -> dict[str, dict[str, int]]:
    return {fid: {name: len(truth_values(gold[fid], name)) for name in FITTED_FIELDS} for fid in fabriques}


# ----------------------------------------------------------------------------- fitting


# Fields whose model reads a few features only: with 13 fabriques, a title or a partner has about
# as many positive rows as the full feature set has features, and the full model fitted noise
# (held-out precision fell from 0.95 to 0.86 for titles, 1.00 to 0.88 for partners, 1.00 to
# 0.94 for associations).
# Partners: the three kinds of cue (joined, funded, sat on the committee) pooled into one count,
# kept apart by whether the fabrique's own documents say it or a territory's (a town's committee
# lists its centre social and chamber of commerce): 23 positive rows fit 10 weights better than 12
# cue-by-cue ones (held-out recall 0.59 -> 0.82 at precision 1.00, with the same candidates).
FEATURES = {
    "title": ("quoted", "as_name", "rel_docs", "in_cdc", "first_page"),
    "associations": ("assoc_list", "log_docs", "log_sent", "copil", "partner"),
    "partners": ("gov", "gov_local", "near_gov", "near_gov_local", "presta", "strong", "body_list",
                 "assoc_list", "sec_gov", "log_docs"),
}


def features_of(rows: Sequence[Row]) -> tuple[str, ...]:
    names = sorted({k for r in rows for k in r.features})
    wanted = FEATURES.get(rows[0].field) if rows else None
    return tuple(f for f in names if wanted is None or f in wanted)


def fit(rows: Sequence[Row], features: Sequence[str] | None = None) -> FieldModel | None:
    """An L2 logistic regression on standardised features (None when one class is missing)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    feats = tuple(features or features_of(rows))
    ys = [r.label for r in rows]
    if not rows or all(ys) or not any(ys):
        return None
    x = np.array([[r.features.get(f, 0.0) for f in feats] for r in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-4] = 1.0  # a feature constant here says nothing (and must not divide by ~0)
    lr = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit((x - mean) / scale, ys)
    return FieldModel(feats, [round(float(w), 5) for w in lr.coef_[0]], round(float(lr.intercept_[0]), 5),
                      [round(float(m), 5) for m in mean], [round(float(s), 5) for s in scale])


def select(name: str, scored: Sequence[tuple[Row, float]], threshold: float,
           second: float = 1.01) -> list[tuple[Row, float]]:
    """What the card keeps of one fabrique's candidates (`ingest.cards.keep`, as cards do)."""
    return keep(name, scored, threshold, second)


def score(name: str, by_fab: dict[str, list[tuple[Row, float]]], threshold: float,
          truth: dict[str, dict[str, int]], second: float = 1.01) -> dict[str, Any]:
    filled = right = found = total = 0
    for fid, scored in by_fab.items():
        kept = select(name, scored, threshold, second)
        filled += len(kept)
        right += sum(r.label for r, _ in kept)
        found += len({r.truth for r, _ in kept if r.label})
        total += truth[fid][name]
    return {"filled": filled, "right": right, "found": found, "truth": total,
            "precision": round(right / filled, 3) if filled else None,
            "recall": round(found / total, 3) if total else None}


def choose_threshold(name: str, by_fab: dict[str, list[tuple[Row, float]]],
                     truth: dict[str, dict[str, int]], precision: float = PRECISION) -> tuple[float, float]:
    """The lowest threshold whose kept values are right at least `precision` of the time
    (above 1 — the field stays empty — when none is); for a single-valued field, then the lowest
    bar for a second value that keeps that precision (above 1: never a second value)."""
    probs = sorted({round(p, 6) for scored in by_fab.values() for _, p in scored})
    first = 1.01
    for t in probs:
        s = score(name, by_fab, t, truth)
        if s["filled"] and s["right"] / s["filled"] >= precision:
            first = t
            break
    if name not in SINGLE_VALUED or first > 1:
        return first, 1.01
    base = score(name, by_fab, first, truth)
    for t in [p for p in probs if p >= first]:
        s = score(name, by_fab, first, truth, t)
        extra, extra_right = s["filled"] - base["filled"], s["right"] - base["right"]
        # the second values themselves must be right that often (not carried by the first ones),
        # and at least one must be right: a field whose truth never disagrees gets no second value
        if extra and extra_right and extra_right / extra >= precision:
            return first, t
    return first, 1.01


def _oof(name: str, rows: Sequence[Row], fabriques: Sequence[str],
         feats: tuple[str, ...]) -> dict[str, list[tuple[Row, float]]]:
    """Out-of-fold probabilities: each fabrique scored by a model fitted without it."""
    out: dict[str, list[tuple[Row, float]]] = {}
    for fid in fabriques:
        model = fit([r for r in rows if r.fabrique != fid], feats)
        own = [r for r in rows if r.fabrique == fid]
        out[fid] = [(r, model.prob(r.features) if model else 0.0) for r in own]
    return out


def fit_field(name: str, rows: Sequence[Row], fabriques: Sequence[str],
              truth: dict[str, dict[str, int]]) -> FieldModel | None:
    """The field's model on these fabriques, its threshold chosen on their inner folds."""
    rows = [r for r in rows if r.field == name and r.fabrique in fabriques]
    feats = features_of(rows)
    model = fit(rows, feats)
    if model is None:
        return None
    model.threshold, model.second = choose_threshold(name, _oof(name, rows, fabriques, feats), truth)
    return model


def held_out(rows: Sequence[Row], gold: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per field: each fabrique's card filled by a model (and threshold) fitted without it."""
    fabriques = sorted({r.fabrique for r in rows})
    truth = truth_counts(gold, fabriques)
    out: dict[str, Any] = {}
    for name in FITTED_FIELDS:
        field_rows = [r for r in rows if r.field == name]
        by_fab: dict[str, list[tuple[Row, float]]] = {}
        kept_at: dict[str, tuple[float, float]] = {}
        for fid in fabriques:
            train = [f for f in fabriques if f != fid]
            model = fit_field(name, field_rows, train, truth)
            own = [r for r in field_rows if r.fabrique == fid]
            if model is None:
                by_fab[fid], kept_at[fid] = [(r, 0.0) for r in own], (1.01, 1.01)
            else:
                by_fab[fid] = [(r, model.prob(r.features)) for r in own]
                kept_at[fid] = (model.threshold, model.second)
        filled = right = found = total = 0
        misses: list[str] = []
        wrong: list[str] = []
        for fid in fabriques:
            kept = select(name, by_fab[fid], *kept_at[fid])
            filled += len(kept)
            right += sum(r.label for r, _ in kept)
            hits = {r.truth for r, _ in kept if r.label}
            found += len(hits)
            total += truth[fid][name]
            wrong += [f"{fid}: {r.value}" for r, _ in kept if not r.label]
            misses += [f"{fid}: {v}" for v, _ in truth_values(gold[fid], name) if v not in hits]
        out[name] = {"filled": filled, "right": right, "found": found, "truth": total,
                     "precision": round(right / filled, 3) if filled else None,
                     "recall": round(found / total, 3) if total else None,
                     "wrong": wrong, "missed": misses}
    return out


def fit_all(rows: Sequence[Row], gold: dict[str, dict[str, Any]], path: Path = MODEL_FILE,
            rows_path: Path = ROWS_FILE) -> dict[str, Any]:
    """Fit every field on every gold fabrique; write the weights and the rows they came from.
    Returns the training figures (scored on the fitted rows: not held-out)."""
    fabriques = sorted({r.fabrique for r in rows})
    truth = truth_counts(gold, fabriques)
    models: dict[str, Any] = {}
    training: dict[str, Any] = {}
    for name in FITTED_FIELDS:
        model = fit_field(name, rows, fabriques, truth)
        if model is None:
            continue
        model.note = (f"fitted on {len(fabriques)} fabriques (tests/gold/cards.yaml); threshold: lowest with "
                      f"precision ≥ {PRECISION} on their leave-one-fabrique-out probabilities")
        models[name] = model.as_json()
        by_fab = {fid: [(r, model.prob(r.features)) for r in rows if r.field == name and r.fabrique == fid]
                  for fid in fabriques}
        training[name] = score(name, by_fab, model.threshold, truth, model.second)
    data = {"version": 1, "fields": models,
            "meta": {"fabriques": fabriques, "rows": len(rows), "precision_target": PRECISION, "C": C,
                     "truth": str(GOLD)}}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    with rows_path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
    return training


def training_figures(rows: Sequence[Row], gold: dict[str, dict[str, Any]],
                     path: Path = MODEL_FILE) -> dict[str, Any]:
    """The shipped models scored on the rows they were fitted on (not held-out)."""
    from ingest.cards import load_models

    models = load_models(path)
    fabriques = sorted({r.fabrique for r in rows})
    truth = truth_counts(gold, fabriques)
    out = {}
    for name in FITTED_FIELDS:
        m = models.get(name)
        by_fab = {fid: [(r, m.prob(r.features) if m else 0.0) for r in rows
                        if r.field == name and r.fabrique == fid] for fid in fabriques}
        out[name] = score(name, by_fab, m.threshold if m else 1.01, truth, m.second if m else 1.01)
    return out


def evaluate(store_dir: Path, gold_path: Path = GOLD, refit: bool = False,
             scope: str = "folder") -> dict[str, Any]:
    gold = load_gold(gold_path)
    rows = collect(store_dir, gold, scope)
    report: dict[str, Any] = {"fabriques": len({r.fabrique for r in rows}), "rows": len(rows), "scope": scope}
    if refit:
        report["fitted"] = True
        report["training"] = fit_all(rows, gold)
    else:
        report["training"] = training_figures(rows, gold)
    report["held_out"] = held_out(rows, gold)
    return report


def render(report: dict[str, Any]) -> str:
    def pct(v: Any) -> str:
        return "—" if v is None else f"{v:.2f}"

    lines = [f"Fiches fabriques : {report['fabriques']} fabriques, {report['rows']} candidats "
             f"(documents : {'dossier de chaque fabrique' if report['scope'] == 'folder' else 'tous'})",
             "Held-out (une fabrique retirée ; modèle et seuil calés sans elle) "
             "| entraînement (calé sur ces mêmes fabriques, NON held-out)",
             f"{'champ':<14}{'précision':>10}{'rappel':>8}{'remplis':>9}{'vérité':>8}   "
             f"{'préc. entr.':>11}{'rappel entr.':>13}"]
    for name in FITTED_FIELDS:
        h, t = report["held_out"][name], report["training"].get(name, {})
        lines.append(f"{name:<14}{pct(h['precision']):>10}{pct(h['recall']):>8}{h['filled']:>9}"
                     f"{h['truth']:>8}   {pct(t.get('precision')):>11}{pct(t.get('recall')):>13}")
    for name in FITTED_FIELDS:
        wrong = report["held_out"][name]["wrong"]
        if wrong:
            lines.append(f"  {name} faux (held-out) : " + " ; ".join(wrong[:8]))
    return "\n".join(lines)
