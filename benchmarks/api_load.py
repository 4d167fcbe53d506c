"""Load and faults on the HTTP API, over loopback only: is it usable by a team at once?

A one-client baseline, then three timed phases against `fp-assistant serve` on a copy of an index
(the original is never touched), N clients asking the gold questions in a loop through `POST /api/ask`:
1. « charge » — the load alone: p50 / p95 latency, answers per second, errors;
2. « charge + indexation » — the same while an admin uploads new documents: no client may get
   an error, and no answer may quote a document that is not, in the end, wholly indexed (each
   quote of a new document must be text of that document);
3. « arrêt brutal » — the server is killed (SIGKILL) during an upload, then restarted: requests
   made while it is down are counted apart (nothing can answer them), errors after the restart
   count; then the index is checked: registry and Chroma agree passage for passage, and a
   re-ingest of the upload folder finishes without failure.
Bounded: `--seconds` per phase (default 20) and `--clients` (default 8). Results go to
`benchmarks/results/api_load.json` and the README quotes them.

Usage: .venv/bin/python benchmarks/api_load.py [--store data/index] [--clients 8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import yaml  # noqa: E402

MARKER = "Fabrique d'essai de charge"


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    while_down: int = 0
    cited_new: list[tuple[str, str]] = field(default_factory=list)  # (doc_id, excerpt)
    seconds: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        q = statistics.quantiles(lat, n=20) if len(lat) >= 2 else lat * 19 or [0.0] * 19
        return {
            "phase": self.name, "answers": len(lat), "errors": len(self.errors),
            "error_samples": self.errors[:5], "refused_while_down": self.while_down,
            "p50_s": round(statistics.median(lat), 2) if lat else None,
            "p95_s": round(q[18], 2) if lat else None,
            "answers_per_s": round(len(lat) / self.seconds, 2) if self.seconds else None,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`fp-assistant serve` as a child process, so that it can be killed for real."""

    def __init__(self, store: Path, port: int, log: Path) -> None:
        self.store, self.port, self.log = store, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        env = {**os.environ, "FP_STORE": str(self.store), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "ANONYMIZED_TELEMETRY": "False", "FP_LLM": "extractive"}
        exe = Path(sys.executable).parent / "fp-assistant"
        t0 = time.perf_counter()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(exe), "serve", "--store", str(self.store), "--port",
                                          str(self.port)], env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"le serveur s'est arrêté au démarrage :\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit("le serveur ne répond pas après 180 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _questions() -> list[str]:
    gold = yaml.safe_load((REPO / "tests" / "gold" / "questions.yaml").read_text(encoding="utf-8"))
    items = gold["questions"] if isinstance(gold, dict) else gold
    return [q["question"] for q in items if q.get("question")]


def _new_document(n: int, paragraphs: int = 12) -> tuple[str, str]:
    """A seminar report of a fabrique nobody has seen, with sentences only it holds."""
    lines = [f"# Compte rendu du séminaire local de Pontlevoy-sur-Brume n° {n}", "",
             f"{MARKER} « Rivières vivantes » : séminaire local de Pontlevoy-sur-Brume (n° {n}).", ""]
    for i in range(paragraphs):
        lines += [f"## Atelier {i + 1}", "",
                  f"Lors de l'atelier {i + 1}, les élus de Pontlevoy-sur-Brume ont proposé de restaurer "
                  f"la ripisylve du ruisseau numéro {n * 100 + i} avec les écoles et les pêcheurs, "
                  "puis de suivre chaque année le retour des libellules.", ""]
    return f"essai-charge-{n}.md", "\n".join(lines)


def _client(server: Server, secret: str, questions: list[str], stop: threading.Event, phase: Phase,
            new_texts: dict[str, str], seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(timeout=180) as http:
        while not stop.is_set():
            probe = new_texts and rng.random() < 0.25
            question = ("Qu'ont proposé les élus de Pontlevoy-sur-Brume pour la ripisylve ?" if probe
                        else rng.choice(questions))
            t0 = time.perf_counter()
            try:
                r = http.post(f"{server.url}/api/ask", json={"question": question}, headers=headers)
            except httpx.TransportError:
                phase.while_down += 1
                time.sleep(0.5)
                continue
            if r.status_code != 200:
                phase.errors.append(f"{r.status_code} {r.text[:120]}")
                continue
            phase.latencies.append(time.perf_counter() - t0)
            for c in r.json().get("citations", []):
                if "Pontlevoy" in (c.get("title") or "") or "Pontlevoy" in (c.get("excerpt") or ""):
                    phase.cited_new.append((c.get("source") or "", c.get("excerpt") or ""))


def _run_phase(name: str, server: Server, secret: str, clients: int, seconds: float, questions: list[str],
               new_texts: dict[str, str], during=None) -> Phase:
    phase = Phase(name)
    stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(server, secret, questions, stop, phase, new_texts, i))
               for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    side = during(phase) if during is not None else None
    while time.perf_counter() - t0 < seconds:
        time.sleep(0.2)
    if side is not None:  # the load goes on until the side work (an upload) is over too
        side.join(timeout=600)
    stop.set()
    for t in threads:
        t.join(timeout=240)
    phase.seconds = time.perf_counter() - t0
    print(f"  {name} : {json.dumps(phase.summary(), ensure_ascii=False)}", file=sys.stderr)
    return phase


def _upload(server: Server, secret: str, docs: list[tuple[str, str]]) -> dict:
    files = [("files", (name, text.encode("utf-8"), "text/markdown")) for name, text in docs]
    r = httpx.post(f"{server.url}/api/documents", files=files, headers={"Authorization": f"Bearer {secret}"},
                   timeout=600)
    return {"status": r.status_code, "body": r.json() if r.headers.get("content-type", "").startswith(
        "application/json") else r.text[:200]}


def _quotes_are_whole(phase: Phase, texts: dict[str, str]) -> list[str]:
    """Quotes of a new document that are not its text (a half-written or foreign passage)."""
    def norm(t: str) -> str:
        return " ".join(t.replace("…", " ").split())

    corpus = norm(" ".join(texts.values()))
    bad = []
    for source, excerpt in phase.cited_new:
        words = norm(excerpt).strip(". ")
        if words and words[:80] not in corpus:
            bad.append(f"{source}: {excerpt[:80]}")
    return bad


def _integrity(store: Path) -> dict:
    """Registry and Chroma agree; a re-ingest of the uploads folder completes."""
    from assistant.access import Caller
    from assistant.config import Settings
    from assistant.service import Service

    service = Service(Settings(store=store))
    registry = service.registry()
    indexed = [r for r in registry.all() if r.status != "failed"]
    chunks_registry = sum(r.chunks for r in indexed)
    chunks_store = service.store.count()
    report = service.ingest([service.settings.uploads_dir], Caller("admin", "benchmark"), sync=True)
    return {"documents": len(indexed), "chunks_registry": chunks_registry, "chunks_chroma": chunks_store,
            "consistent": chunks_registry == chunks_store, "reingest_failed": len(report.failed),
            "reingest": {k: v for k, v in report.as_json().items() if isinstance(v, int)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="data/index", help="index to copy (never modified)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "api_load.json"))
    args = ap.parse_args()

    from assistant.access import KeyStore

    tmp = Path(tempfile.mkdtemp(prefix="fp-api-load-"))
    store = tmp / "index"
    shutil.copytree(args.store, store, ignore=shutil.ignore_patterns("keys.sqlite*", "ingest.lock"))
    keys = KeyStore(store / "keys.sqlite")
    _, reader = keys.add("charge", "interne")
    _, admin = keys.add("admin", "admin")
    server = Server(store, _free_port(), tmp / "server.log")
    questions = _questions()
    results: dict = {"clients": args.clients, "seconds_per_phase": args.seconds, "cores": os.cpu_count()}
    try:
        results["startup_s"] = round(server.start(), 1)
        print(f"serveur prêt en {results['startup_s']} s ({server.url}), {args.clients} clients",
              file=sys.stderr)
        # one client first, in the same run: what the load costs each user, on this machine today
        results["one_client"] = _run_phase("un client", server, reader, 1, args.seconds, questions,
                                           {}).summary()
        phases = [_run_phase("charge", server, reader, args.clients, args.seconds, questions, {})]

        new = dict(_new_document(n) for n in range(1, 4))
        uploads: list[dict] = []

        def ingest_during(_phase: Phase) -> None:
            time.sleep(args.seconds / 4)
            threading.Thread(target=lambda: uploads.append(_upload(server, admin, list(new.items())))).start()

        phases.append(_run_phase("charge + indexation", server, reader, args.clients, args.seconds, questions,
                                 new, ingest_during))
        results["upload_during_load"] = uploads
        results["new_document_quotes"] = len(phases[-1].cited_new)  # how often the check could fail
        results["quotes_not_in_indexed_text"] = _quotes_are_whole(phases[-1], new)

        killed = dict(_new_document(n, paragraphs=120) for n in range(4, 6))
        restart: dict = {}

        def kill_during(_phase: Phase) -> None:  # the upload dies with the server: not waited for
            time.sleep(args.seconds / 4)
            threading.Thread(target=lambda: _upload(server, admin, list(killed.items())), daemon=True).start()
            time.sleep(1.5)  # the upload is being embedded
            server.kill()
            restart["restart_s"] = round(server.start(), 1)

        phases.append(_run_phase("arrêt brutal", server, reader, args.clients, args.seconds, questions,
                                 {**new, **killed}, kill_during))
        results.update(restart)
        results["phases"] = [p.summary() for p in phases]
    finally:
        server.stop()
    results["integrity_after_kill"] = _integrity(store)
    shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=2))
    ok = (all(p["errors"] == 0 for p in results["phases"]) and not results["quotes_not_in_indexed_text"]
          and results["integrity_after_kill"]["consistent"]
          and results["integrity_after_kill"]["reingest_failed"] == 0)
    print("OBJECTIFS ATTEINTS" if ok else "OBJECTIFS NON ATTEINTS", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
