"""`CrystalDataset`: structures, their ids and property columns, with a skip report."""

from __future__ import annotations

import csv
import gzip
import io
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core.errors import DatasetError

#: Columns that hold the space group number, in the order they are looked for.
SPACEGROUP_COLUMNS = ("spacegroup.number", "spacegroup", "space_group", "spg")
ID_COLUMNS = ("material_id", "id", "name")

# Reasons a row is skipped (keys of SkipReport.counts).
UNPARSABLE = "unparsable CIF"
DISORDERED = "disordered site"
TOO_MANY_SITES = "too many sites"
MISSING_VALUE = "missing cif value"


@dataclass
class SkipReport:
    """Rows that were left out, counted per reason, with the offending ids."""

    counts: Counter = field(default_factory=Counter)
    ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    details: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, row_id: str, detail: str = "") -> None:
        self.counts[reason] += 1
        self.ids[reason].append(row_id)
        if detail:
            self.details[row_id] = detail

    def merge(self, other: "SkipReport") -> None:
        for reason, ids in other.ids.items():
            self.counts[reason] += other.counts[reason]
            self.ids[reason].extend(ids)
        self.details.update(other.details)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.total,
            "by_reason": {reason: {"count": self.counts[reason], "ids": list(self.ids[reason])} for reason in sorted(self.counts)},
            "details": dict(self.details),
        }

    def __str__(self) -> str:
        if not self.total:
            return "skipped 0 rows"
        parts = ", ".join(f"{count} {reason}" for reason, count in self.counts.most_common())
        return f"skipped {self.total} rows ({parts})"


@dataclass
class CrystalDataset:
    """Crystal structures with ids and any property columns.

    Attributes:
        structures: ordered pymatgen Structures.
        ids: one id per structure (the ``material_id`` column, the file name, or the row number).
        properties: column name → one value per structure (numbers as float arrays, others as lists).
        name: where the data came from.
        skipped: rows that were left out and why.
    """

    structures: list
    ids: list[str]
    properties: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    skipped: SkipReport = field(default_factory=SkipReport)

    def __len__(self) -> int:
        return len(self.structures)

    def __iter__(self) -> Iterator:
        return iter(self.structures)

    def __getitem__(self, index: int):
        return self.structures[index]

    @property
    def spacegroups(self) -> list[int | None]:
        """Space group numbers from the data when a column has them, else None per structure."""
        for column in SPACEGROUP_COLUMNS:
            if column in self.properties:
                return [None if np.isnan(v) else int(v) for v in np.asarray(self.properties[column], dtype=float)]
        return [None] * len(self)

    def subset(self, indices: Sequence[int]) -> "CrystalDataset":
        """A new dataset with the given rows (the skip report is shared)."""
        indices = list(indices)
        properties = {k: (v[indices] if isinstance(v, np.ndarray) else [v[i] for i in indices]) for k, v in self.properties.items()}
        return CrystalDataset([self.structures[i] for i in indices], [self.ids[i] for i in indices], properties, self.name, self.skipped)

    def summary(self) -> dict[str, Any]:
        """Counts, atoms per cell, elements and space groups (what `crystens data info` prints)."""
        sites = np.array([len(s) for s in self.structures]) if self.structures else np.zeros(0)
        elements = Counter(el.symbol for s in self.structures for el in s.composition.elements)
        spacegroups = Counter(g for g in self.spacegroups if g is not None)
        return {
            "name": self.name,
            "structures": len(self),
            "skipped": self.skipped.total,
            "atoms_per_cell": {
                "min": int(sites.min()) if sites.size else 0,
                "mean": float(sites.mean()) if sites.size else 0.0,
                "max": int(sites.max()) if sites.size else 0,
            },
            "elements": {"count": len(elements), "most_common": elements.most_common(10)},
            "spacegroups": {"count": len(spacegroups), "most_common": spacegroups.most_common(10)},
            "properties": sorted(self.properties),
        }


def parse_cif(text: str):
    """Parse one CIF string into a pymatgen Structure (first block), quietly.

    Raises:
        ValueError: the CIF cannot be parsed into a structure.
    """
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structures = CifParser(io.StringIO(text)).parse_structures(primitive=False)
        except Exception as exc:
            raise ValueError(str(exc) or type(exc).__name__) from exc
    if not structures:
        raise ValueError("no structure in CIF")
    return structures[0]


def _check_structure(structure, max_sites: int | None) -> tuple[str, str] | None:
    if not structure.is_ordered:
        return DISORDERED, "partial occupancy or mixed species"
    if max_sites is not None and len(structure) > max_sites:
        return TOO_MANY_SITES, f"{len(structure)} sites > {max_sites}"
    return None


def _convert(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV/CSV.gz file; the first column is dropped when it has no name."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    if "cif" not in columns:
        raise DatasetError(f"{path}: no 'cif' column (columns: {', '.join(columns) or 'none'})")
    return columns, rows


def parse_row(text: str, max_sites: int | None = None):
    """Parse and check one CIF cell: ``(structure, None)`` or ``(None, (reason, detail))``."""
    if not text or not text.strip():
        return None, (MISSING_VALUE, "empty cif cell")
    try:
        structure = parse_cif(text)
    except ValueError as exc:
        return None, (UNPARSABLE, str(exc))
    problem = _check_structure(structure, max_sites)
    return (None, problem) if problem else (structure, None)


def row_ids(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> list[str]:
    """One id per row: the id column's value, else ``row<N>``."""
    id_column = next((c for c in ID_COLUMNS if c in columns), None)
    return [(row.get(id_column) if id_column else None) or f"row{number}" for number, row in enumerate(rows)]


def _from_rows(rows: Sequence[dict[str, str]], columns: Sequence[str], name: str, max_sites: int | None, strict: bool, progress: bool) -> CrystalDataset:
    from crystens_core.progress import progress_bar

    property_columns = [c for c in columns if c not in ("cif", *ID_COLUMNS) and c and not c.startswith("Unnamed")]
    structures, ids = [], []
    values: dict[str, list] = {c: [] for c in property_columns}
    skipped = SkipReport()
    for row_id, row in zip(row_ids(rows, columns), progress_bar(rows, desc=f"parse {name}", unit="cif", enable=progress)):
        structure, problem = parse_row(row.get("cif") or "", max_sites)
        if problem is not None:
            if strict:
                raise DatasetError(f"{name}: row {row_id!r}: {problem[0]} ({problem[1]})")
            skipped.add(problem[0], row_id, problem[1])
            continue
        structures.append(structure)
        ids.append(row_id)
        for column in property_columns:
            values[column].append(_convert(row.get(column, "")))
    properties = {}
    for column, column_values in values.items():
        numeric = all(isinstance(v, float) or v == "" for v in column_values)  # empty cell = missing number
        properties[column] = np.array([np.nan if v == "" else v for v in column_values], dtype=float) if numeric and column_values else column_values
    return CrystalDataset(structures, ids, properties, name, skipped)


def load_dataset(source: str | Path, *, max_sites: int | None = None, strict: bool = False, progress: bool = False) -> CrystalDataset:
    """Load a dataset by name (``mp20-sample``, ``mp-20``, ``mpts-52:test``), CSV path or CIF folder.

    Args:
        source: a named dataset (see ``crystens data list``), a CSV/CSV.gz file with a
            ``cif`` column, a folder of ``.cif`` files, or one ``.cif`` file.
        max_sites: rows with more sites are skipped (reason "too many sites").
        strict: raise :class:`DatasetError` on the first bad row instead of skipping it.
        progress: show a progress bar while parsing.

    Raises:
        DatasetError: the source does not exist or has no ``cif`` column.
    """
    name, columns, rows = read_source(source)
    return _from_rows(rows, columns, name, max_sites, strict, progress)


def read_source(source: str | Path) -> tuple[str, list[str], list[dict[str, str]]]:
    """The name, columns and raw rows (CIF text unparsed) of any dataset source.

    Raises:
        DatasetError: the source does not exist, is empty or has no ``cif`` column.
    """
    from crystens_core.data.sources import is_named, resolve

    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.cif"))
        if not files:
            raise DatasetError(f"{path}: no .cif files in this folder")
        return path.name, ["material_id", "cif"], [_cif_file_row(file) for file in files]
    if path.is_file():
        if path.suffix == ".cif":
            return path.name, ["material_id", "cif"], [_cif_file_row(path)]
        columns, rows = read_csv_rows(path)
        return path.name, columns, rows
    if is_named(str(source)):
        columns, rows = read_csv_rows(resolve(str(source)))
        return str(source), columns, rows
    raise DatasetError(f"{source}: not a file, a folder or a named dataset (see `crystens data list`)")


def _cif_file_row(path: Path) -> dict[str, str]:
    return {"material_id": path.stem, "cif": path.read_text(encoding="utf-8", errors="replace")}
