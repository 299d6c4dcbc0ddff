"""Build the CDVAE compositional-validity reference fixture from SMACT 2.2.1.

CDVAE (Xie et al., ICLR 2022) computed compositional validity with its own
``smact_validity`` on top of SMACT 2.2.1. This script records, for every distinct
gcd-reduced composition in the shared data folder, the True/False that function
gives, so crystens' own implementation (which does not use SMACT 2.2.1) can be
tested against it on a fresh clone.

Two steps, two Python environments:

1. In crystens' environment, every structure of every ``*.csv.gz`` under the data
   folder is parsed (``crystens_core.data.parse_cif``) and reduced with
   ``crystens_validity.metric.composition_key`` (elements by Z, counts / gcd).
2. The distinct compositions are sent to a *separate* Python in which SMACT 2.2.1
   is installed; there CDVAE's algorithm is run: SMACT 2.2.1's element data,
   ``smact.neutral_ratios`` with the counts as the only stoichiometry and
   ``smact.screening.pauling_test`` with a ``TypeError`` counted as a pass.

Usage (the reference environment is a throwaway venv, not a crystens dependency)::

    python -m venv smact221 && smact221/bin/pip install smact==2.2.1
    python benchmarks/cdvae_smact_reference.py ../shared/data --reference-python smact221/bin/python

writes ``tests/fixtures/cdvae_smact_validity.csv.gz`` with the columns
``elements`` (space-separated symbols, by Z), ``counts`` (space-separated) and
``cdvae_valid`` (1/0). SMACT is MIT-licensed; the fixture holds only its answers.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cdvae_smact_validity.csv.gz"

# Run by the reference Python (SMACT 2.2.1): CDVAE's smact_validity, written afresh.
# Reads [[symbols], [counts]] pairs as JSON on stdin, writes a JSON list of bools.
REFERENCE_PROGRAM = r"""
import itertools, json, sys
import smact
from smact.screening import pauling_test


def cdvae_valid(symbols, counts):
    elements = smact.element_dictionary(tuple(symbols))
    data = [elements[s] for s in symbols]
    electronegativities = [e.pauling_eneg for e in data]
    oxidation_lists = [e.oxidation_states for e in data]
    if len(set(symbols)) == 1:
        return True
    if all(s in smact.metals for s in symbols):
        return True
    stoichs = [(c,) for c in counts]
    for states in itertools.product(*oxidation_lists):
        balanced, _ = smact.neutral_ratios(states, stoichs=stoichs, threshold=max(counts))
        if not balanced:
            continue
        try:
            ok = pauling_test(states, electronegativities)
        except TypeError:  # CDVAE: no electronegativity data, assume it is okay
            ok = True
        if ok:
            return True
    return False

pairs = json.load(sys.stdin)
json.dump([cdvae_valid(s, c) for s, c in pairs], sys.stdout)
"""


def distinct_compositions(data_dir: Path) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """Every distinct (symbols by Z, gcd-reduced counts) over the structures of ``data_dir/**/*.csv.gz``."""
    from crystens_core.data.dataset import parse_cif, read_csv_rows
    from crystens_validity.metric import composition_key

    found: set = set()
    for path in sorted(data_dir.glob("*/*.csv.gz")):
        _, rows = read_csv_rows(path)
        parsed = 0
        for row in rows:
            if "cif" not in row:
                break
            found.add(composition_key(parse_cif(row["cif"])))
            parsed += 1
        print(f"{path.relative_to(data_dir)}: {parsed} structures, {len(found)} distinct compositions so far", file=sys.stderr)
    return sorted(found, key=lambda item: (len(item[0]), item))


def reference_answers(compositions, python: str) -> list[bool]:
    """CDVAE's answers, computed by ``python`` (an interpreter with SMACT 2.2.1)."""
    version = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('smact'))"], capture_output=True, text=True, check=True).stdout.strip()
    if version != "2.2.1":
        raise SystemExit(f"{python} has SMACT {version}; CDVAE's reference needs SMACT 2.2.1")
    payload = json.dumps([[list(symbols), list(counts)] for symbols, counts in compositions])
    result = subprocess.run([python, "-c", REFERENCE_PROGRAM], input=payload, capture_output=True, text=True, check=True)
    answers = json.loads(result.stdout)
    assert len(answers) == len(compositions)
    return [bool(a) for a in answers]


def write_fixture(path: Path, compositions, answers) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["elements", "counts", "cdvae_valid"])
    for (symbols, counts), valid in zip(compositions, answers):
        writer.writerow([" ".join(symbols), " ".join(map(str, counts)), int(valid)])
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same data give the same bytes.
    with gzip.GzipFile(path, "wb", mtime=0) as handle:
        handle.write(buffer.getvalue().encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="the shared data folder (mp_20/, mpts_52/, perov_5/, carbon_24/)")
    parser.add_argument("--reference-python", required=True, help="a Python interpreter with smact==2.2.1 installed")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    compositions = distinct_compositions(args.data_dir)
    answers = reference_answers(compositions, args.reference_python)
    write_fixture(args.output, compositions, answers)
    print(f"wrote {args.output}: {len(compositions)} compositions, {sum(answers)} valid under CDVAE's smact_validity")


if __name__ == "__main__":
    main()
