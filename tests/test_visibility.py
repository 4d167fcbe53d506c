"""`visibility: interne` documents never reach a public audience, whichever way they are asked for.

Why it is tested end to end: the rule lives in the retriever (Chroma `where` on the dense
side, a SQL filter on the BM25 side), and a leak would come from a path that forgets it: the
BM25 side, a filter combined with the audience clause, the CLI reading FP_AUDIENCE, or an
answer citing (or offering as a lead) a passage. Each interne document here has a public
twin on the same subject, so a public search has something to return and a leak would rank.

The interne marking arrives by every route the ingest reads: Markdown front matter (also in
capitals), an HTML <meta name="visibility">, and a `.meta.yaml` sidecar.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assistant.index import SAMPLE_MANIFEST
from assistant.retriever import Filters, Retriever
from ingest.pipeline import Ingestor
from ingest.store import open_store

COLLECTION = "fp_passages"  # the CLI's collection


def _md(title: str, body: str, visibility: str, territory: str) -> str:
    return (
        f"---\ntitle: {title}\nvisibility: {visibility}\nterritories: [{territory}]\n---\n"
        f"# {title}\n\n{body}\n"
    )


DOCS = {
    "morlaix-public.md": _md(
        "Atelier vélo de Morlaix", "À Morlaix, l'atelier de réparation de vélos ouvre le samedi ; "
        "les bénévoles accueillent les habitants et prêtent des outils.", "public", "Morlaix"),
    "morlaix-interne.md": _md(
        "Note interne sur l'atelier vélo de Morlaix", "Budget de l'atelier vélo de Morlaix : la "
        "subvention Kerbrat de 48 000 euros reste confidentielle jusqu'au vote du conseil.",
        "interne", "Morlaix"),
    "vannes-public.md": _md(
        "Comité de Vannes", "Le comité de Vannes a présenté au public le calendrier des travaux "
        "de la place du marché.", "public", "Vannes"),
    "vannes-interne.md": _md(
        "Comité de pilotage de Vannes", "Compte rendu du comité de pilotage de Vannes : Tanguy "
        "signale un dépassement du budget de la place du marché, à ne pas diffuser.",
        "INTERNE", "Vannes"),
    "brest-public.html": (
        "<!doctype html><html lang='fr'><head><title>Régie des transports de Brest</title>"
        "<meta name='visibility' content='public'></head><body><main><article>"
        "<h1>Régie des transports de Brest</h1><p>La régie des transports de Brest ouvre deux "
        "nouvelles lignes de bus vers le port de commerce et le technopôle.</p>"
        "</article></main></body></html>"
    ),
    "brest-interne.html": (
        "<!doctype html><html lang='fr'><head><title>Note interne : régie de Brest</title>"
        "<meta name='visibility' content='interne'></head><body><main><article>"
        "<h1>Note interne sur la régie des transports de Brest</h1><p>Le plan Kervella de "
        "réorganisation de la régie des transports de Brest supprime trois dépôts de bus ; "
        "il reste confidentiel.</p></article></main></body></html>"
    ),
    "lannion-public.txt": (
        "La ressourcerie de Lannion ouvre une seconde boutique de réemploi près de la gare.\n"
    ),
    "lannion-interne.txt": (
        "Audit financier de la ressourcerie de Lannion : le cabinet Le Goff relève un déficit "
        "de trésorerie et recommande une avance de la communauté d'agglomération.\n"
    ),
}
# Values meant to restrict a document that the rule does not recognise. A reader who wrote
# them expects the document hidden: an unreadable restriction fails closed.
ODD = {
    "dieppe-confidentiel.md": _md(
        "Note confidentielle de Dieppe", "Le rapport Lecoq sur l'érosion des falaises de Dieppe "
        "chiffre le recul du trait de côte ; il ne doit pas être publié.", "confidentiel", "Dieppe"),
    "dole-liste.md": _md(
        "Note de Dole", "La note Morel sur le canal de Dole évalue le coût du curage des écluses.",
        "[interne]", "Dole"),
}
ODD_QUERIES = {
    "dieppe-confidentiel.md": "rapport Lecoq sur l'érosion des falaises de Dieppe",
    "dole-liste.md": "note Morel sur le curage des écluses du canal de Dole",
}
SIDECARS = {"lannion-interne.txt.meta.yaml": "visibility: interne\nterritories: [Lannion]\n"}
INTERNE = {"morlaix-interne.md", "vannes-interne.md", "brest-interne.html", "lannion-interne.txt"}
SECRETS = ("Kerbrat", "Kervella", "Tanguy", "Le Goff")  # words only interne documents contain
QUERIES = {  # each aimed at one interne document, its words included
    "morlaix-interne.md": "subvention Kerbrat confidentielle de l'atelier vélo de Morlaix",
    "vannes-interne.md": "Tanguy et le dépassement du budget au comité de pilotage de Vannes",
    "brest-interne.html": "plan Kervella de suppression des dépôts de bus de la régie de Brest",
    "lannion-interne.txt": "audit financier Le Goff de la ressourcerie de Lannion",
}


def without_echo(answer: str) -> str:
    """The answer less the refusal line naming what the question asked and no passage gives
    (« Aucun des passages trouvés ne mentionne « Kerbrat ». »): it repeats the user's own
    word and reveals nothing; every other line must hold no secret word."""
    return re.sub(r"^Aucun des passages trouvés ne mentionne « [^»]+ »(?: ni « [^»]+ »)*\.$", "", answer,
                  flags=re.M)


@pytest.fixture(scope="module")
def index(tmp_path_factory, e5):
    """The eight documents indexed once; returns (store_dir, ingestor, interne doc_ids)."""
    root = tmp_path_factory.mktemp("visibility")
    docs, store_dir = root / "docs", root / "index"
    docs.mkdir()
    for name, text in {**DOCS, **ODD, **SIDECARS}.items():
        (docs / name).write_text(text, encoding="utf-8")
    store = open_store(store_dir, COLLECTION, e5.model_id, e5.dim)
    ingestor = Ingestor(store_dir, store, e5, manifest_fallback=SAMPLE_MANIFEST)
    report = ingestor.run([docs])
    failed = {Path(f["path"]).name for f in report.failed}
    assert failed <= set(ODD), report.failed  # refusing an unknown visibility would be fine too
    assert {Path(p).name for p in report.added} >= set(DOCS)
    interne = {}
    for name in DOCS:
        rec = ingestor.registry.get(str((docs / name).resolve()))
        assert rec.meta["visibility"] == ("interne" if name in INTERNE else "public"), name
        if name in INTERNE:
            interne[name] = rec.doc_id
    return store_dir, ingestor, interne


class _QueryCache:
    """The real model, embedding each distinct question once (the same questions are asked
    through many methods, filters and audiences; embedding dominates the test's time)."""

    def __init__(self, inner) -> None:
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self._queries: dict[str, list[float]] = {}

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        if text not in self._queries:
            self._queries[text] = self.inner.embed_query(text)
        return self._queries[text]


@pytest.fixture(scope="module")
def queries_e5(e5):
    return _QueryCache(e5)


def _retriever(ingestor: Ingestor, emb, audience: str) -> Retriever:
    return Retriever(ingestor.store, ingestor.registry, emb, audience=audience)


def test_public_audience_never_sees_interne(index, queries_e5):
    """Hybrid, dense-only and BM25-only search, with and without filters: no interne passage."""
    _, ingestor, interne = index
    public = _retriever(ingestor, queries_e5, "public")
    hidden = set(interne.values())
    for name, query in QUERIES.items():
        for filters in (None, Filters(territory=query.split()[-1])):
            for method in (public.search, public.dense, public.lexical_search):
                found = method(query, k=10, filters=filters)
                leaked = [p.meta["doc_id"] for p in found if p.meta["doc_id"] in hidden]
                assert not leaked, (name, method.__name__, filters, leaked)
                assert all(p.meta.get("visibility") == "public" for p in found)
        assert public.search(query, k=10), f"{name}: the public twin should still be found"


def test_default_audience_sees_interne(index, queries_e5):
    """The same questions, internal audience (the default): each interne document ranks first."""
    _, ingestor, interne = index
    retriever = Retriever(ingestor.store, ingestor.registry, queries_e5)
    assert retriever.audience == "interne"
    for name, query in QUERIES.items():
        top = retriever.search(query, k=3)
        assert top and top[0].meta["doc_id"] == interne[name], (name, [p.meta["doc_id"] for p in top])
        assert any(p.meta["doc_id"] == interne[name] for p in retriever.lexical_search(query, k=3))


@pytest.mark.parametrize("audience", ["public", None])
def test_cli_search_and_ask_respect_fp_audience(index, audience, monkeypatch, capsys):
    """`search --json` and `ask --json` read FP_AUDIENCE: public hides interne (passages,
    citations, leads), the default shows it."""
    from assistant.cli import main
    from assistant.config import get_settings

    store_dir, _, interne = index
    monkeypatch.setenv("FP_STORE", str(store_dir))
    for var in ("FP_EMBEDDINGS", "FP_CHROMA_URL", "FP_COLLECTION", "FP_AUDIENCE", "FP_LLM", "FP_RERANKER"):
        monkeypatch.delenv(var, raising=False)
    if audience:
        monkeypatch.setenv("FP_AUDIENCE", audience)
    get_settings.cache_clear()
    try:
        seen: set[str] = set()
        answers = []
        for i, query in enumerate(QUERIES.values()):
            assert main(["search", query, "--json", "--k", "10"]) == 0
            seen |= {row["doc_id"] for row in json.loads(capsys.readouterr().out)}
            if i:  # `ask` only checks the CLI's wiring here; leaks per query are tested below
                continue
            assert main(["ask", query, "--json"]) == 0
            out = json.loads(capsys.readouterr().out)
            answers.append(out["answer"])
            seen |= {c["doc_id"] for c in out["citations"]} | {lead["doc_id"] for lead in out["leads"]}
    finally:
        get_settings.cache_clear()
    if audience == "public":
        assert seen and not seen & set(interne.values())
        assert not [a for a in answers if any(w in without_echo(a) for w in SECRETS)], answers
    else:
        assert set(interne.values()) <= seen


def test_answers_never_cite_interne_in_public_mode(index, e5, queries_e5):
    """An answer (citations and the leads offered on refusal) only uses what retrieval let through.

    The control run with the internal audience must cite the interne document, otherwise the
    public check would prove nothing.
    """
    from assistant.answering.extractive import ExtractiveAnswerer
    from assistant.config import Settings

    _, ingestor, interne = index
    answerer = ExtractiveAnswerer(Settings(_env_file=None, llm="extractive"), embeddings=e5)
    hidden = set(interne.values())
    cited_internally: set[str] = set()
    for name, query in QUERIES.items():
        for audience in ("public", "interne"):
            passages = _retriever(ingestor, queries_e5, audience).search(query, k=5)
            ans = answerer.answer(query, passages)
            used = {c.doc_id for c in ans.citations} | {lead.doc_id for lead in ans.leads}
            if audience == "public":
                assert not used & hidden, (name, ans.text)
                assert not any(w in without_echo(ans.text) for w in SECRETS), ans.text
            else:
                cited_internally |= used & hidden
    assert cited_internally, "control: with the internal audience the interne documents are used"


def test_unrecognised_visibility_is_not_public(index, queries_e5):
    """A restriction the rule cannot read must hide the document (or refuse it), never publish it."""
    _, ingestor, _ = index
    public = _retriever(ingestor, queries_e5, "public")
    for name, query in ODD_QUERIES.items():
        sources = {Path(p.source).name for p in public.search(query, k=10)}
        assert name not in sources, f"{name} est servi au public"


def test_drafting_reads_no_interne_passage_in_public_mode(index, queries_e5):
    """Drafting reads whole documents (not search hits): that read applies the audience rule too."""
    from assistant.drafting.draft import _fetch

    _, ingestor, _ = index
    docs = {Path(r.path).name: r.doc_id for r in ingestor.registry.all() if r.doc_id}
    interne_ids = [docs[name] for name in sorted(INTERNE)]
    internal, _ = _fetch(_retriever(ingestor, queries_e5, "interne"), interne_ids)
    assert {p.meta["doc_id"] for p in internal} == set(interne_ids), "control: readable internally"
    public, _ = _fetch(_retriever(ingestor, queries_e5, "public"), [*interne_ids, docs["morlaix-public.md"]])
    assert {p.meta["doc_id"] for p in public} == {docs["morlaix-public.md"]}
