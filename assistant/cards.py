"""Fabriques' cards (« fiches fabriques ») as each audience may see them, filtered and shaped
for the three faces.

The ingest writes `<store>/cards.json`: per fabrique, every field value with the sentences that
say it (evidence), each from a document that is public or interne. A public caller must never
read what only an internal document says — not a territory, not a partner, not the existence
of a fabrique only internal notes mention — so the visible card is rebuilt from the evidence a
public reader may see, and a value left without any is dropped rather than shown unsourced.
The registry is the authority on a document's visibility (a document relabelled since the
cards were written): the service passes the documents this caller may see, and evidence from
any other document is dropped as well.

The CLI (`fabriques`, `fabrique ID`), the API (`GET /api/fabriques[/{id}]`) and the app's
« Fabriques » page show the JSON built here (`card_json`), so they show the same card.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.answering.frtext import STOPWORDS, fold

PUBLIC = "public"
# The fields of a card, in reading order, with the French name a reader sees.
FIELDS = {
    "title": "Titre",
    "theme": "Thème",
    "year": "Édition",
    "period": "Période",
    "territories": "Territoires",
    "prestataires": "Prestataire(s)",
    "associations": "Associations d'élus",
    "partners": "Partenaires",
    "lessons": "Enseignements",
}
NO_TITLE = "Fabrique sans intitulé"  # a card whose title no visible document gives (never its id)


class UnknownFabrique(ValueError):
    """No fabrique this caller may see answers to the name: a 404 over HTTP (not a 400: the
    request is well formed, the resource is absent), exit code 2 in the CLI like any bad name."""

    status = 404


# --------------------------------------------------------------------------- reading


def read_cards(store_dir: str | Path) -> dict[str, Any]:
    """The cards the last ingest wrote (`ingest.cards`, the one reader of its own file); an index
    built before cards existed has none: an empty list, not an error, the other pages still work."""
    from ingest.cards import load_cards

    return load_cards(Path(store_dir))


# --------------------------------------------------------------------------- visibility


def _is_public(item: dict[str, Any], allowed: set[str] | None) -> bool:
    """Public evidence or document: marked public (a missing mark is not public) and, when the
    registry's list is given, a document the registry still shows this caller."""
    if item.get("visibility") != PUBLIC:
        return False
    return allowed is None or str(item.get("doc_id") or "") in allowed


def visible_cards(cards: dict[str, Any], audience: str,
                  allowed_doc_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The cards of `cards` (the cards.json contract) this audience may read, as copies.

    Public: every evidence whose document is not public goes, then every value left without
    evidence, every document not public, and a fabrique left with no value and no document.
    Interne (and admin): everything, but for a document the registry no longer holds when
    `allowed_doc_ids` is given. Every field key stays (an empty list for an empty field).
    """
    allowed = set(allowed_doc_ids) if allowed_doc_ids is not None else None
    public = audience == PUBLIC
    out: list[dict[str, Any]] = []
    for card in cards.get("fabriques") or []:
        if not isinstance(card, dict) or not card.get("id"):
            continue

        def keep(item: dict[str, Any]) -> bool:
            if public:
                return _is_public(item, allowed)
            return allowed is None or str(item.get("doc_id") or "") in allowed

        fields: dict[str, list[dict[str, Any]]] = {}
        raw_fields = card.get("fields") or {}
        for name in [*FIELDS, *(f for f in raw_fields if f not in FIELDS)]:
            values = []
            for value in raw_fields.get(name) or []:
                evidence = [dict(e) for e in value.get("evidence") or [] if keep(e)]
                if evidence or (not public and not value.get("evidence")):
                    kept = {**value, "evidence": evidence}
                    if public:
                        # other spellings of the value were gathered from every document, the
                        # internal ones too: not shown to a public reader
                        kept.pop("also", None)
                        kept["visibility"] = PUBLIC
                    values.append(kept)
            fields[name] = values
        documents = [dict(d) for d in card.get("documents") or [] if keep(d)]
        if public and not documents and not any(fields.values()):
            continue  # a fabrique only internal documents speak of: not even its existence
        out.append({"id": str(card["id"]), "fields": fields, "documents": documents})
    return out


# --------------------------------------------------------------------------- shaping


def display_title(card: dict[str, Any], registry_titles: dict[str, str]) -> str:
    """The name a reader sees: the card's first title value, else the fabrique's title in the
    registry metadata of the documents this caller may see, else « Fabrique sans intitulé »
    (an id such as « fp-cybersecurite-des-collectivites » is not a title)."""
    for value in card["fields"].get("title") or []:
        if str(value.get("value") or "").strip():
            return str(value["value"]).strip()
    title = registry_titles.get(card["id"], "").strip()
    return title if title and title != card["id"] else NO_TITLE


def card_json(card: dict[str, Any], title: str, doc_type_order: Iterable[str],
              file_names_only: bool) -> dict[str, Any]:
    """The public JSON of a card (CLI --json, API, app): `id`, `title`, `fields` as the
    contract has them and `documents` by type, each {doc_id, title, year}, in the types' order.

    `file_names_only`: a public caller reads a source's file name, never where the file lives
    on the server (as everywhere else in the service).
    """
    fields: dict[str, list[dict[str, Any]]] = {}
    for name, values in card["fields"].items():
        fields[name] = []
        for value in values:
            evidence = []
            for e in value.get("evidence") or []:
                e = dict(e)
                if file_names_only and e.get("source"):
                    e["source"] = Path(str(e["source"])).name
                evidence.append(e)
            fields[name].append({**value, "evidence": evidence})
    by_type: dict[str, list[dict[str, Any]]] = {}
    for d in card["documents"]:
        by_type.setdefault(str(d.get("doc_type") or "autre"), []).append(
            {"doc_id": str(d.get("doc_id") or ""), "title": str(d.get("title") or ""),
             "year": _year(d.get("year"))})
    order = {t: i for i, t in enumerate(doc_type_order)}
    documents = {t: sorted(docs, key=lambda d: (d["year"] or 0, fold(d["title"])))
                 for t, docs in sorted(by_type.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))}
    return {"id": card["id"], "title": title, "fields": fields, "documents": documents}


def _year(value: Any) -> int | None:
    """A document's year as a number (the ingest writes it as text, « 2021 »)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def sort_cards(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cards, key=lambda c: (fold(c["title"]), c["id"]))


# --------------------------------------------------------------------------- filters


def _values(card: dict[str, Any], field: str) -> list[dict[str, Any]]:
    return list(card["fields"].get(field) or [])


def _years_of(card: dict[str, Any]) -> set[int]:
    """Its edition years, and every year its period spans (« 2019-2021 »)."""
    years: set[int] = set()
    for value in _values(card, "year"):
        years.update(int(y) for y in re.findall(r"\b(?:19|20)\d{2}\b", str(value.get("value"))))
    for value in _values(card, "period"):
        found = [int(y) for y in re.findall(r"\b(?:19|20)\d{2}\b", str(value.get("value")))]
        if found:
            years.update(range(min(found), max(found) + 1))
    return years


def _editions(card: dict[str, Any]) -> set[int]:
    years: set[int] = set()
    for value in _values(card, "year"):
        years.update(int(y) for y in re.findall(r"\b(?:19|20)\d{2}\b", str(value.get("value"))))
    return years


def _regions(card: dict[str, Any]) -> set[str]:
    regions = (str(v.get("region") or "").strip() for v in _values(card, "territories"))
    return {r for r in regions if r}


def _theme_words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", fold(text)) if len(w) > 1 and w not in STOPWORDS]


def choices(cards: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """What the filters offer, from the cards this caller may see: themes, edition years,
    régions."""
    themes = {str(v.get("value") or "").strip() for c in cards for v in _values(c, "theme")} - {""}
    years = set().union(*(_editions(c) for c in cards)) if cards else set()
    regions = set().union(*(_regions(c) for c in cards)) if cards else set()
    return {"themes": sorted(themes, key=fold), "years": sorted(years), "regions": sorted(regions, key=fold)}


def parse_year(year: str | int | None) -> int | None:
    """A year as typed (« 2019 »); ValueError (French) for anything else."""
    if year is None or (isinstance(year, str) and not year.strip()):
        return None
    text = str(year).strip()
    if not re.fullmatch(r"\d{4}", text):
        raise ValueError(f"année invalide : « {year} » (une année sur quatre chiffres, ex. 2019)")
    return int(text)


def resolve_region(value: str, known: list[str]) -> str:
    """The région the user means among those of the cards: its name, case and accents
    ignored, or a unique word start (« nouvelle », « bretagne »). ValueError (French, with
    the choices) otherwise — the shape of every unknown filter."""
    want = " ".join(re.findall(r"\w+", fold(value)))
    for name in known:
        if want == " ".join(re.findall(r"\w+", fold(name))):
            return name
    starts = re.compile(rf"(?<!\w){re.escape(want)}") if want else None
    partial = [n for n in known if starts and starts.search(" ".join(re.findall(r"\w+", fold(n))))]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise ValueError(f"« {value} » désigne plusieurs régions : {', '.join(partial)}. Précisez.")
    if not known:
        raise ValueError(f"région inconnue : « {value} » (aucune région dans les fiches)")
    raise ValueError(f"région inconnue dans les fiches : « {value} ». Régions : {', '.join(known)}")


def filter_cards(cards: list[dict[str, Any]], *, theme: str | None = None, year: int | None = None,
                 region: str | None = None) -> list[dict[str, Any]]:
    """The cards matching every filter given: `theme` — each of its words starts a word of the
    card's title or theme (« mobilité », « vieill ») ; `year` — its edition, or a year its
    period spans ; `region` — a région of one of its territories (already resolved)."""
    words = _theme_words(theme or "")
    out = []
    for card in cards:
        if words:
            text = " ".join(_theme_words(" ".join(
                [card.get("title", "")] + [str(v.get("value") or "") for f in ("title", "theme")
                                           for v in _values(card, f)])))
            if not all(re.search(rf"(?<!\w){re.escape(w)}", text) for w in words):
                continue
        if year is not None and year not in _years_of(card):
            continue
        if region and region not in _regions(card):
            continue
        out.append(card)
    return out
