"""Helpers shared by the data tests: small CSVs built from real MP-20 rows, with bad rows injected."""

from __future__ import annotations

import csv
import gzip
import warnings
from dataclasses import dataclass, field
from pathlib import Path

#: The first 24 rows of ../shared/data/mp_20/pilot_val.csv.gz, committed (tests/fixtures/README.md).
PILOT_VAL = Path(__file__).resolve().parents[1] / "fixtures" / "mp20_pilot_val_head.csv.gz"

# Reasons as the loader names them (kept literal here, so a renamed reason fails the tests).
UNPARSABLE = "unparsable CIF"
MISSING = "missing cif value"
DISORDERED = "disordered site"
TOO_MANY = "too many sites"

BAD_IDS = {
    UNPARSABLE: "bad-unparsable",
    MISSING: "bad-empty",
    DISORDERED: "bad-disordered",
    TOO_MANY: "bad-too-many",
}


def read_rows(path: Path = PILOT_VAL, limit: int | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """Header and (the first ``limit``) rows of a real CSV/CSV.gz, read with the csv module only."""
    opener = gzip.open if str(path).endswith(".gz") else open
    csv.field_size_limit(2**31 - 1)
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
        return list(reader.fieldnames), rows


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    """Write rows as a plain (or, for ``.gz``, gzipped) CSV."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def structure_from_cif(text: str):
    """Parse a CIF with pymatgen directly (independent of crystens' loader)."""
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(text, fmt="cif")


def cif_of(structure) -> str:
    from pymatgen.io.cif import CifWriter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(CifWriter(structure))


def disordered_cif() -> str:
    """A real rock-salt-like cell with a 50/50 Na/K site, as CIF text (partial occupancy)."""
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(5.64), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return cif_of(structure)


def oversized_cif(cif_text: str, more_than: int = 52) -> tuple[str, int]:
    """A supercell of a real structure with more than ``more_than`` sites, and its site count."""
    structure = structure_from_cif(cif_text)
    scale = 1
    while len(structure) * scale**3 <= more_than:
        scale += 1
    big = structure.make_supercell([scale, scale, scale], in_place=False)
    return cif_of(big), len(big)


@dataclass
class BadCsv:
    """A CSV of real rows with one bad row per reason."""

    path: Path
    columns: list[str]
    good_rows: list[dict[str, str]]
    bad_ids: dict[str, str] = field(default_factory=lambda: dict(BAD_IDS))
    oversized_sites: int = 0

    @property
    def good_ids(self) -> list[str]:
        return [row["material_id"] for row in self.good_rows]


def write_csv_with_bad_rows(path: Path, n_good: int = 8, *, offset: int = 0) -> BadCsv:
    """``n_good`` real MP-20 validation rows with four bad rows interleaved.

    Bad rows (ids in :data:`BAD_IDS`): an unparsable CIF, an empty cif cell, a
    disordered structure, and a supercell with more than 52 sites (so it is too
    big for ``max_sites=20`` and for the default encoder's 52).
    """
    columns, rows = read_rows(limit=offset + n_good)
    good = rows[offset:]
    template = dict(good[0])  # real property values for the bad rows

    def bad(row_id: str, cif: str) -> dict[str, str]:
        return {**template, "material_id": row_id, "cif": cif}

    big_cif, big_sites = oversized_cif(good[1]["cif"])
    bad_rows = [
        bad(BAD_IDS[UNPARSABLE], "data_broken\nthis is not a CIF at all\n_cell_length_a banana\n"),
        bad(BAD_IDS[MISSING], ""),
        bad(BAD_IDS[DISORDERED], disordered_cif()),
        bad(BAD_IDS[TOO_MANY], big_cif),
    ]
    # good0, bad, good1, good2, bad, good3, ... so the row order is exercised.
    out: list[dict[str, str]] = []
    pending = list(bad_rows)
    for index, row in enumerate(good):
        out.append(row)
        if index % 2 == 0 and pending:
            out.append(pending.pop(0))
    out.extend(pending)
    write_csv(path, columns, out)
    return BadCsv(path, columns, good, oversized_sites=big_sites)
