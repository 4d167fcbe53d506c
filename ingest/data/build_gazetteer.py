"""Build `territoires.json.gz`, the gazetteer `ingest.gazetteer` reads at run time.

Run by hand when the administrative map changes (never by `make run`): the official
division is published by Etalab as the npm package `@etalab/decoupage-administratif`;
its JSON files weigh 12 MB, the assistant needs a few hundred KB of them. The package
is fetched by name and pinned version so that a rebuild is reproducible, and the output
is written deterministically (sorted rows, gzip mtime 0): rebuilding gives the same bytes.

Which commune names are also everyday French words is decided here, once, with
`wordfreq` (a build-only tool): the runtime stays stdlib-only and does not ship a
frequency list.

    .venv/bin/pip install wordfreq==3.1.1
    .venv/bin/python ingest/data/build_gazetteer.py            # npm pack, then build
    .venv/bin/python ingest/data/build_gazetteer.py --tgz FILE  # from an already packed tarball
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import importlib.metadata
import io
import json
import math
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

PACKAGE = "@etalab/decoupage-administratif"
VERSION = "6.0.0"
WORDFREQ_VERSION = "3.1.1"
HERE = Path(__file__).resolve().parent
OUT = HERE / "territoires.json.gz"
LICENSE_OUT = HERE / "LICENSE-decoupage-administratif.txt"

# Ambiguity levels stored per name (see the header written into the file).
PLAIN, CAPITAL_ONLY, NEEDS_CONTEXT = 0, 1, 2
COMMON_ZIPF = 3.0  # "mer" 5.1, "plan" 5.3, "pont" 4.8; names that are only a village stay well below
# A town's name is frequent because the town is big: about 0.5 + 0.8·log10(population) on the zipf
# scale for names that are nothing but a place (Lille 4.6, Rennes 4.4, Arras 3.4 for 41,000 people).
# A name more frequent than its town explains is mostly read as a word (Mer, Sens, Plaisir, Orange);
# one about as frequent as the town is both (Tours, Nice, Paris); a capital letter then says which,
# except at a sentence start.
WORD_EXCESS = 0.25
TOWN_EXCESS = -0.5
SHORT_TOWN = 10_000  # a three-letter name ("Bar", "Ham", "Arc") needs context unless a real town
ARTICLES = {"le", "la", "les", "l'"}


def npm_pack(dest: Path) -> Path:
    """The pinned tarball, as npm resolves and verifies it against the registry's integrity hash."""
    proc = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--json", "--silent"],
        cwd=dest, capture_output=True, text=True, check=True,
    )
    info = json.loads(proc.stdout)[0]
    tgz = dest / info["filename"]
    if info.get("integrity") and info["integrity"] != digests(tgz)["integrity"]:
        raise SystemExit(f"{tgz.name} : empreinte différente de celle annoncée par npm")
    return tgz


def digests(tgz: Path) -> dict[str, str]:
    """npm's own fingerprints of the tarball, recorded in the output so that anyone can check which
    bytes it was derived from (computed here, so a --tgz rebuild writes the same file)."""
    raw = tgz.read_bytes()
    return {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(raw).digest()).decode(),
            "shasum": hashlib.sha1(raw).hexdigest()}  # npm's identifier, not a security check


def newest_version() -> str:
    """What the registry offers now, to tell whoever rebuilds that the pin may be worth moving."""
    try:
        proc = subprocess.run(["npm", "view", PACKAGE, "version"], capture_output=True, text=True,
                              timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip()


def read_package(tgz: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """package.json, the data files by stem, and the licence text."""
    data: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    licence = ""
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            f = tar.extractfile(member) if member.isfile() else None
            if f is None:
                continue
            if name == "package.json":
                meta = json.load(f)
            elif name.upper().startswith("LICENSE"):
                licence = f.read().decode("utf-8")
            elif name.startswith("data/") and name.endswith(".json"):
                data[name[5:-5]] = json.load(f)
    if meta.get("version") != VERSION:
        raise SystemExit(f"{tgz}: version {meta.get('version')!r}, {VERSION} attendue")
    return meta, data, licence


def _words(name: str) -> list[str]:
    """The name's words, lowercase with accents (wordfreq's form), split on hyphens and elisions."""
    return re.findall(r"[^\W\d_]+'?", name.lower().replace("’", "'"))


def ambiguity(name: str, population: int | None, zipf) -> int:
    """How much context a mention of this name needs before it counts as the place.

    Only names that come down to one word (after a leading article) can be read as
    something else: "Saint-Denis" or "Châlons-en-Champagne" cannot, "Le Plan" can.
    `population` None is a département or région: its name, capitalised in mid-sentence,
    is the territory ("le Nord", "le Cher"), so it never needs more than a capital.
    """
    words = _words(re.sub(r"\s*\(.*?\)", "", name))
    if len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    if len(words) != 1:
        return PLAIN
    word = words[0]
    # Matching ignores accents, so "Parcé" is read wherever "parce" is written, "Villé" where "ville" is.
    bare = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    freq = max(zipf(word, "fr"), zipf(bare, "fr"))
    common = freq >= COMMON_ZIPF
    letters = len(word)
    if population is None:
        return CAPITAL_ONLY if common or letters <= 3 else PLAIN
    excess = freq - (0.5 + 0.8 * math.log10(max(population, 1)))
    if letters <= 2 or (letters == 3 and population < SHORT_TOWN):
        return NEEDS_CONTEXT
    if common and excess >= WORD_EXCESS:
        return NEEDS_CONTEXT
    if (common and excess >= TOWN_EXCESS) or letters <= 3:
        return CAPITAL_ONLY
    return PLAIN


def build(data: dict[str, Any], zipf) -> dict[str, Any]:
    communes = [c for c in data["communes"] if c.get("type") == "commune-actuelle"]
    epci_of: dict[str, str] = {}
    for e in data["epci"]:
        for m in e["membres"]:
            epci_of[m["code"]] = e["code"]
    rows_c = sorted(
        [c["code"], c["nom"], c.get("departement", ""), c.get("region", ""), epci_of.get(c["code"], ""),
         int(c.get("population") or 0), ambiguity(c["nom"], int(c.get("population") or 0), zipf)]
        for c in communes
    )
    rows_e = sorted(
        [e["code"], e["nom"], e.get("type", ""), sorted(m["code"] for m in e["membres"])]
        for e in [*data["epci"], *data.get("ept", [])]
    )
    rows_d = sorted([d["code"], d["nom"], d.get("region", ""), ambiguity(d["nom"], None, zipf)]
                    for d in data["departements"])
    rows_r = sorted([r["code"], r["nom"], ambiguity(r["nom"], None, zipf)] for r in data["regions"])
    return {"communes": rows_c, "epci": rows_e, "departements": rows_d, "regions": rows_r}


def write(tables: dict[str, Any], source: dict[str, Any], licence: str) -> None:
    doc = {
        "source": {"package": PACKAGE, "version": VERSION, "licence": "MIT", **source},
        "ambiguity": {
            "rule": f"wordfreq {WORDFREQ_VERSION}, French zipf >= {COMMON_ZIPF} for one-word names",
            "levels": {"0": "plain", "1": "counts only capitalised, not at a sentence start",
                       "2": "counts only capitalised with a locative or administrative context"},
        },
        "columns": {
            "communes": ["code", "nom", "departement", "region", "epci", "population", "ambiguite"],
            "epci": ["siren", "nom", "type", "membres"],
            "departements": ["code", "nom", "region", "ambiguite"],
            "regions": ["code", "nom", "ambiguite"],
        },
        **tables,
    }
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    OUT.write_bytes(buf.getvalue())
    LICENSE_OUT.write_text(
        f"{PACKAGE} {VERSION} (https://www.npmjs.com/package/{PACKAGE}), licence MIT — "
        f"source of {OUT.name}\n\n{licence.strip()}\n",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tgz", type=Path, help=f"{PACKAGE}-{VERSION}.tgz déjà téléchargé (sinon npm pack)")
    args = parser.parse_args(argv)
    try:
        from wordfreq import zipf_frequency
        installed = importlib.metadata.version("wordfreq")
    except ImportError:
        installed = ""
    if installed != WORDFREQ_VERSION:  # other frequencies, other flags: the output would change
        print(f"wordfreq {WORDFREQ_VERSION} requis (trouvé : {installed or 'aucun'}) : "
              f".venv/bin/pip install wordfreq=={WORDFREQ_VERSION}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tgz = args.tgz or npm_pack(Path(tmp))
        source = digests(tgz)
        _, data, licence = read_package(tgz)
    if not args.tgz:
        newest = newest_version()
        if newest and newest != VERSION:
            print(f"note : {PACKAGE} {newest} est disponible (version épinglée : {VERSION})")
    tables = build(data, zipf_frequency)
    write(tables, source, licence)
    counts = ", ".join(f"{len(v)} {k}" for k, v in tables.items())
    print(f"{OUT.name} : {OUT.stat().st_size / 1e6:.2f} Mo ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
