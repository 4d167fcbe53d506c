"""Drafting a territory's feuille de route: every line cited, nothing invented, DOCX/Markdown out.

Runs on the whole sample corpus (session fixture `corpus_index`, real `e5` model) and drafts
once for EVERY territory that has seminar reports (the territories of `seminaire_local`
documents in corpus/manifest.yaml), then checks each draft against the index itself: a
citation must point to a real passage whose text contains the quoted excerpt.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import pytest
import yaml

from assistant.drafting.draft import (
    ACTION_HEADERS,
    SECTIONS,
    TO_COMPLETE,
    Roadmap,
    UnknownTerritory,
    display,
    draft_roadmap,
)
from assistant.drafting.export import DRAFT_NOTICE, to_docx, to_markdown
from assistant.retriever import Retriever

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((REPO / "corpus" / "manifest.yaml").read_text(encoding="utf-8"))
SEMINAR_TERRITORIES = sorted(
    {t for d in MANIFEST["documents"] if d["doc_type"] == "seminaire_local" for t in d["territories"]}
)
WITH_ROADMAP = sorted(
    {t for d in MANIFEST["documents"] if d["doc_type"] == "feuille_de_route" for t in d["territories"]}
)
_PREFIX = re.compile(r"^(?:Piste de la Fabrique|Piste inspirée de [^:]+) : ")


@pytest.fixture(scope="module")
def retriever(corpus_index, e5) -> Retriever:
    _, ingestor, _ = corpus_index
    return Retriever(ingestor.store, ingestor.registry, e5, "interne")


@pytest.fixture(scope="module")
def drafts(retriever) -> dict[str, Roadmap]:
    """One full offline draft per territory with seminar reports (timed)."""
    out: dict[str, Roadmap] = {}
    times: list[float] = []
    for territory in SEMINAR_TERRITORIES:
        t0 = time.perf_counter()
        out[territory] = draft_roadmap(retriever, territory)
        times.append(time.perf_counter() - t0)
    print(f"\n{len(times)} brouillons : médiane {statistics.median(times):.2f} s, max {max(times):.2f} s, "
          f"total {sum(times):.1f} s")
    return out


def _chunks(retriever: Retriever, ids: list[str]) -> dict[str, tuple[str, dict]]:
    res = retriever.store.collection.get(ids=list(dict.fromkeys(ids)), include=["documents", "metadatas"])
    return {cid: (doc, meta) for cid, doc, meta in zip(res["ids"], res["documents"], res["metadatas"],
                                                       strict=True)}


def test_manifest_gives_the_territories_to_check():
    assert len(SEMINAR_TERRITORIES) >= 30
    assert set(WITH_ROADMAP) <= set(SEMINAR_TERRITORIES)


@pytest.mark.parametrize("territory", SEMINAR_TERRITORIES)
def test_every_citation_resolves_to_a_real_passage_quoting_the_excerpt(drafts, retriever, territory):
    rm = drafts[territory]
    assert rm.territory == territory
    numbers = [s.n for s in rm.sources]
    assert numbers == list(range(1, len(numbers) + 1)), "sources numbered 1..n in reading order"
    live = _chunks(retriever, [cid for s in rm.sources for cid in s.chunk_ids])
    pages = [(s.doc_id, s.page) for s in rm.sources]
    assert len(set(pages)) == len(pages), "one number per document page"
    for src in rm.sources:
        assert src.title and src.excerpts and len(src.chunk_ids) == len(src.excerpts)
        assert src.chunk_id == src.chunk_ids[0]
        for excerpt, cid in zip(src.excerpts, src.chunk_ids, strict=True):
            assert cid in live, f"[{src.n}] ne pointe vers aucun passage de l'index"
            text, meta = live[cid]
            assert meta["doc_id"] == src.doc_id and meta["page"] == src.page and meta["source"] == src.source
            assert excerpt and excerpt in text, f"[{src.n}] extrait absent du passage : {excerpt[:80]}"
        assert src.excerpt == " […] ".join(src.excerpts)
    by_n = {s.n: s for s in rm.sources}
    cited: set[int] = set()
    for section in rm.sections:
        for line in section.lines:
            if line.origin == "note":
                assert line.text and not line.refs
                continue
            assert line.refs, f"phrase sans source : {line.text[:80]}"
            assert all(n in by_n for n in line.refs)
            # extractive: the sentence read is the quoted excerpt, only tidied (capital, period)
            assert any(display(e) == line.text for n in line.refs for e in by_n[n].excerpts)
            if line.origin == "inspiration":
                assert line.territory and line.territory != territory
                assert f"Pistes inspirées de {line.territory} :" in section.text
                assert all(by_n[n].doc_type == "feuille_de_route" and line.territory in by_n[n].territories
                           for n in line.refs)
            cited.update(line.refs)
    for row in rm.actions:
        cited.update(row.refs)
    assert cited == set(by_n), "every listed source is cited, every citation is listed"
    # markers in the rendered text are exactly the known numbers
    for section in rm.sections:
        for n in re.findall(r"\[(\d+)\]", section.text):
            assert int(n) in by_n


@pytest.mark.parametrize("territory", SEMINAR_TERRITORIES)
def test_at_least_five_action_rows_each_sourced_and_nothing_invented(drafts, territory):
    rm = drafts[territory]
    assert len(rm.actions) >= 5
    by_n = {s.n: s for s in rm.sources}
    for row in rm.actions:
        assert row.refs and all(n in by_n for n in row.refs), row.action
        quoted = " ".join(e for n in row.refs for e in by_n[n].excerpts)
        action = _PREFIX.sub("", row.action)
        assert action[1:].replace("**", "") in quoted.replace("**", ""), row.action
        for value in (row.porteur, row.partenaires, row.calendrier, row.indicateurs):
            assert value, "a field is never blank"
            if value == TO_COMPLETE:
                continue
            given = value.split(" : ", 1)[1].rstrip(")") if value.startswith(f"{TO_COMPLETE} (à ") else value
            assert given in quoted, f"champ absent de la source : {value}"
        if row.from_table:
            assert " | " in quoted
        if row.origin == "inspiration":
            assert row.action.startswith(f"Piste inspirée de {row.territory} : ")
            assert row.porteur == TO_COMPLETE or row.porteur.startswith(f"{TO_COMPLETE} (à {row.territory} :")


@pytest.mark.parametrize("territory", SEMINAR_TERRITORIES)
def test_no_section_is_empty_without_a_completer(drafts, territory):
    rm = drafts[territory]
    assert [s.id for s in rm.sections] == list(SECTIONS)
    for section in rm.sections:
        if section.id == "sources":
            continue
        text = section.text.strip()
        if section.id == "actions":
            assert rm.actions or "à compléter" in text.lower()
            continue
        assert text, f"section vide : {section.id}"
        if not any(line.origin == "territoire" for line in section.lines):
            assert "à compléter" in text.lower(), f"{section.id} : origine du contenu non signalée"


@pytest.mark.parametrize("territory", WITH_ROADMAP)
def test_an_existing_roadmap_is_drafted_from_cited_not_borrowed(drafts, territory):
    """The territory's own roadmap comes first: its table rows keep their porteur and dates."""
    rm = drafts[territory]
    own = [a for a in rm.actions if a.origin == "territoire" and a.from_table]
    assert len(own) >= 5
    assert any(a.porteur != TO_COMPLETE and a.calendrier != TO_COMPLETE for a in own)
    contexte = rm.section("contexte")
    assert contexte is not None and contexte.lines[0].origin == "territoire"


def test_sentence_rows_only_carry_what_the_sentence_says(drafts):
    rows = [a for rm in drafts.values() for a in rm.actions if not a.from_table]
    assert rows
    assert all(a.indicateurs == TO_COMPLETE for a in rows)
    assert sum(a.porteur == TO_COMPLETE for a in rows) > len(rows) / 2


def test_sections_subset_drafts_only_the_actions(retriever):
    rm = draft_roadmap(retriever, "Grand Angoulême", sections=["actions"])
    assert [s.id for s in rm.sections] == ["actions"]
    assert len(rm.actions) >= 5
    assert {n for a in rm.actions for n in a.refs} == {s.n for s in rm.sources}
    md = to_markdown(rm)
    assert "## Programme d'actions" in md and "## Contexte et diagnostic" not in md


def test_unknown_section_is_refused(retriever):
    with pytest.raises(ValueError, match="section inconnue"):
        draft_roadmap(retriever, "Lorient", sections=["budget"])


def test_territory_names_are_resolved_or_refused_with_close_matches(retriever):
    assert draft_roadmap(retriever, "angouleme", sections=["actions"]).territory == "Grand Angoulême"
    assert draft_roadmap(retriever, "Saint-Ouen", sections=["actions"]).territory == "Plaine Commune"
    assert draft_roadmap(retriever, "lorien", sections=["actions"]).territory == "Lorient"  # unique prefix
    assert draft_roadmap(retriever, "saint ouen", sections=["actions"]).territory == "Plaine Commune"
    with pytest.raises(UnknownTerritory) as err:
        draft_roadmap(retriever, "Lorrient")
    assert "Lorient" in err.value.suggestions and not err.value.ambiguous
    assert "territoire inconnu" in str(err.value)
    with pytest.raises(UnknownTerritory) as err:
        draft_roadmap(retriever, "Saint")  # ambiguous: the choices are listed
    assert err.value.ambiguous and len(err.value.suggestions) >= 2 and "plusieurs" in str(err.value)


def test_markdown_has_every_section_title_and_the_table(drafts):
    rm = drafts["Grand Angoulême"]
    md = to_markdown(rm)
    for spec in SECTIONS.values():
        assert f"## {spec.title}" in md
    assert "| " + " | ".join(ACTION_HEADERS) + " |" in md
    assert DRAFT_NOTICE in md
    for src in rm.sources:
        assert f"[{src.n}] {src.title}" in md and f"p. {src.page}" in md


def test_docx_reopens_with_title_page_table_and_sources(drafts, tmp_path):
    import docx

    rm = drafts["Saint-Joseph"]
    path = to_docx(rm, tmp_path / "fdr.docx")
    doc = docx.Document(str(path))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Saint-Joseph" in text and DRAFT_NOTICE in text
    assert rm.fabrique_title in text
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    for spec in SECTIONS.values():
        assert spec.title in headings
    tables = [t for t in doc.tables if [c.text for c in t.rows[0].cells] == list(ACTION_HEADERS)]
    assert len(tables) == 1
    table = tables[0]
    assert len(table.rows) - 1 == len(rm.actions) >= 5
    for row, action in zip(table.rows[1:], rm.actions, strict=True):
        assert [c.text for c in row.cells] == action.cells()
        assert re.fullmatch(r"(\[\d+\])+", row.cells[-1].text)
    for src in rm.sources:
        assert f"[{src.n}] {src.title}" in text and f"p. {src.page}" in text
    assert re.search(r"\[\d+\]", text), "inline citations in the body"


def draft_command(**kw) -> int:
    """`fp-assistant draft …` as a user types it."""
    from assistant.cli import main

    argv = ["draft", "--territory", kw.pop("territory", "Lorient")]
    if kw.pop("json", False):
        argv.append("--json")
    for key, value in kw.items():
        argv += [f"--{key}", value]
    return main(argv)


@pytest.fixture
def cli_store(corpus_index, monkeypatch):
    from assistant.config import get_settings

    store_dir, _, _ = corpus_index
    monkeypatch.setenv("FP_STORE", str(store_dir))
    monkeypatch.setenv("FP_LLM", "extractive")
    get_settings.cache_clear()
    yield store_dir
    get_settings.cache_clear()


def test_command_json_docx_and_markdown(cli_store, tmp_path, capsys):
    assert draft_command(territory="Nîmes", json=True, sections="contexte,actions,sources") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["territory"] == "Nîmes" and data["fabrique"] == "vieillissement-periurbain-qpv"
    assert [s["id"] for s in data["sections"]] == ["contexte", "actions", "sources"]
    for s in data["sections"]:
        assert {"id", "title", "text", "citations"} <= set(s)
    assert len(data["actions"]) >= 5 and all(a["source"] for a in data["actions"])
    assert {c["n"] for s in data["sections"] for c in s["citations"]} == {s["n"] for s in data["sources"]}

    out = tmp_path / "nimes.docx"
    assert draft_command(territory="Nîmes", out=str(out)) == 0
    assert out.stat().st_size > 0
    md = tmp_path / "nimes.md"
    assert draft_command(territory="Nîmes", out=str(md)) == 0
    assert "## Programme d'actions" in md.read_text(encoding="utf-8")

    assert draft_command(territory="Nîmes", sections="actions") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Feuille de route — Nîmes") and "## Enjeux" not in printed


def test_command_refuses_an_unknown_territory_with_exit_2(cli_store, capsys):
    assert draft_command(territory="Atlantide") == 2
    assert "territoire inconnu" in capsys.readouterr().err
    assert draft_command(territory="Colmr") == 2
    assert "Colmar" in capsys.readouterr().err
    assert draft_command(out="fdr.pdf") == 2


def test_a_section_without_material_says_so(retriever):
    from assistant.drafting.draft import _Context, _draft_section, _Pool

    ctx = _Context(retriever, "Bard", "", "", "", _Pool([], [], []))
    section = _draft_section(ctx, SECTIONS["gouvernance"])
    assert section.text.startswith("À compléter : le corpus ne contient pas d'élément sur la gouvernance")
    assert section.lines[0].refs == []


def test_llm_prose_keeps_only_cited_sentences_with_known_sources(retriever):
    """The LLM path (stub writer): invented [n] removed, uncited sentences dropped."""
    prompts: list[str] = []

    def writer(system: str, prompt: str) -> str:
        prompts.append(prompt)
        assert "<source" in prompt and "jamais une consigne" in system
        first = re.search(r"<source [^>]*>\n(.+?)(?:\n|$)", prompt).group(1)
        return (f"{first} [1]. Le territoire a obtenu 12 millions d'euros [42]. "
                "Une phrase sans aucune source.")

    rm = draft_roadmap(retriever, "Bagnolet", sections=["contexte", "vision", "actions"], writer=writer)
    assert rm.backend == "llm" and len(prompts) == 2  # the action table stays extractive
    for sid in ("contexte", "vision"):
        section = rm.section(sid)
        assert section is not None and section.lines
        assert "12 millions" not in section.text and "sans aucune source" not in section.text
        assert all(line.refs for line in section.lines)
    assert len(rm.actions) >= 5
    live = _chunks(retriever, [cid for s in rm.sources for cid in s.chunk_ids])
    for src in rm.sources:
        assert all(e in live[cid][0] for e, cid in zip(src.excerpts, src.chunk_ids, strict=True))


def test_batched_query_embeddings_give_the_same_draft(retriever):
    """With a model offering `embed_queries`, the draft's queries are embedded in one batch."""
    import copy

    from assistant.drafting import draft as draft_mod

    inner = retriever.embeddings
    calls: list[int] = []

    class Batched:
        model_id, dim = inner.model_id, inner.dim

        def embed_query(self, text):
            return inner.embed_query(text)

        def embed_documents(self, texts):
            return inner.embed_documents(texts)

        def embed_queries(self, texts):
            calls.append(len(texts))
            return [inner.embed_query(t) for t in texts]

    draft_mod._QUERY_VECTORS.clear()
    plain = draft_roadmap(retriever, "Bard").as_json()
    batched_retriever = copy.copy(retriever)
    batched_retriever.embeddings = Batched()
    draft_mod._QUERY_VECTORS.clear()
    batched = draft_roadmap(batched_retriever, "Bard").as_json()
    assert calls == [8]  # 7 section queries + the theme, in one call
    assert batched == plain


# ------------------------------------------------------------------ pure helpers (no index)


def _passage(text: str, doc_id: str = "fdr-x", chunk: int = 0):
    from assistant.retriever import Passage

    meta = {"doc_id": doc_id, "page": 1, "chunk_index": chunk, "source": "x.pdf", "title": "X",
            "territories": ["X"], "doc_type": "feuille_de_route", "section": ""}
    return Passage(0, f"{doc_id}-{chunk}", text, 0.0, meta)


def test_table_rows_keep_the_header_across_passages_and_drop_overlap_repeats():
    from assistant.drafting.draft import _table_rows

    first = _passage("Programme d'actions\nAction | Porteur | Partenaires | Calendrier | Indicateurs\n"
                     "Créer une navette solidaire | CCAS | Associations | 2024 | Trajets par mois", chunk=0)
    second = _passage("Créer une navette solidaire | CCAS | Associations | 2024 | Trajets par mois\n"
                      "Ouvrir un tiers-lieu alimentaire | Ville | Bailleur, régie | 2025 | Fréquentation",
                      chunk=1)
    rows = _table_rows([first, second])
    assert [r.cells["action"] for r in rows] == ["Créer une navette solidaire",
                                                 "Ouvrir un tiers-lieu alimentaire"]
    assert rows[1].cells == {"action": "Ouvrir un tiers-lieu alimentaire", "porteur": "Ville",
                             "partenaires": "Bailleur, régie", "calendrier": "2025",
                             "indicateurs": "Fréquentation"}
    assert rows[1].line in second.text
    assert _table_rows([second]) == []  # no header seen: a stray « a | b | c » line is not an action


@pytest.mark.parametrize(("unit", "on_heading", "expected"), [
    ("Former une première promotion d'écoguides issus des villages du sud.", False,
     ["Former une première promotion d'écoguides issus des villages du sud."]),
    ("Transition écologique : remplacer une partie des surfaces bitumées par des jardins de pluie.", False,
     ["Remplacer une partie des surfaces bitumées par des jardins de pluie."]),
    ("D'autres pistes ont été notées pour la suite : zones tampons plantées de haies, parcours de santé "
     "en bord de Rhône, plan de réduction du trafic.", False,
     ["Zones tampons plantées de haies", "Parcours de santé en bord de Rhône",
      "Plan de réduction du trafic"]),
    ("Une bourse aux compétences entre entreprises industrielles et portuaires.", True,
     ["Une bourse aux compétences entre entreprises industrielles et portuaires."]),
    ("Une bourse aux compétences entre entreprises industrielles et portuaires.", False, []),
    ("Séminaire local n°2 — Grand Angoulême : imaginer l'alimentation en 2035", False, []),
    ("Les participants ont choisi trois coopérations à expérimenter :", True, []),
])
def test_action_like_units(unit, on_heading, expected):
    from assistant.drafting.draft import _action_texts

    assert _action_texts(unit, on_heading) == expected


def test_sentence_fields_are_only_what_the_sentence_states():
    from assistant.drafting.draft import _fields_from_sentence

    got = _fields_from_sentence("Instituer des débats publics deux fois par an, animés par un tiers neutre, "
                                "en lien avec les écoles, dès 2024.")
    assert got == {"porteur": "un tiers neutre", "partenaires": "les écoles", "calendrier": "dès 2024"}
    assert _fields_from_sentence("Créer un point d'information en mairie.") == {}


def test_french_contractions_in_placeholders():
    from assistant.drafting.draft import _de

    assert _de("le suivi et l'évaluation") == "du suivi et de l'évaluation"
    assert _de("la gouvernance et le pilotage") == "de la gouvernance et du pilotage"
    assert _de("les axes stratégiques") == "des axes stratégiques"
