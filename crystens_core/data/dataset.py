"""`CrystalDataset`: structures, their ids and property columns, with a skip report."""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core.errors import DatasetError, InvalidStructureError

#: Columns that hold the space group number, in the order they are looked for.
SPACEGROUP_COLUMNS = ("spacegroup.number", "spacegroup", "space_group", "spg")
ID_COLUMNS = ("material_id", "id", "name")

# Reasons a row is skipped (keys of SkipReport.counts).
UNPARSABLE = "unparsable CIF"
DISORDERED = "disordered site"
TOO_MANY_SITES = "too many sites"
MISSING_VALUE = "missing cif value"
NOT_UTF8 = "not UTF-8"
NOT_A_CIF = "not a CIF file"


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
        """Space group numbers from the data when a column has them, else None per structure
        (None too where the value is not an integer 1–230: spglib finds it then)."""
        for column in SPACEGROUP_COLUMNS:
            if column in self.properties:
                return [spacegroup_number(v) for v in self.properties[column]]
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


def spacegroup_number(value: Any) -> int | None:
    """``value`` (text or number) as a space group number, or None unless it is an integer in 1–230."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and 1 <= number <= 230 else None


def parse_cif(text: str):
    """Parse one CIF string into a checked pymatgen Structure (first block), quietly.

    The cell as written in the CIF (:func:`crystens_core.structures.cell_parameters_problem`)
    and then the parsed structure (:func:`crystens_core.structures.structure_problem`)
    are checked before anything else sees them.

    Raises:
        InvalidStructureError: the structure is not a crystal (NaN, infinite or
            negative cell length, angles that make no cell, no sites, unknown element).
        ValueError: the CIF cannot be parsed into a structure.
    """
    from pymatgen.io.cif import CifParser

    from crystens_core.structures import INVALID_CELL, cell_parameters_problem, structure_problem

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            parser = CifParser(io.StringIO(text))
        except Exception as exc:
            raise ValueError(str(exc) or type(exc).__name__) from exc
        cell = _cif_cell_parameters(parser)
        cell_problem = cell_parameters_problem(cell)  # before pymatgen builds (and fails on) the lattice
        if cell_problem:
            raise InvalidStructureError(INVALID_CELL, cell_problem)
        try:
            structures = parser.parse_structures(primitive=False)
        except Exception as exc:
            raise ValueError(str(exc) or type(exc).__name__) from exc
    if not structures:
        raise ValueError("no structure in CIF")
    problem = structure_problem(structures[0])
    if problem:
        raise InvalidStructureError(*problem)
    return structures[0]


#: CIF tags of the cell parameters (both the CIF 1 and the mmCIF/CIF 2 spelling).
_CIF_CELL_TAGS = {
    "a": ("_cell_length_a", "_cell.length_a"),
    "b": ("_cell_length_b", "_cell.length_b"),
    "c": ("_cell_length_c", "_cell.length_c"),
    "alpha": ("_cell_angle_alpha", "_cell.angle_alpha"),
    "beta": ("_cell_angle_beta", "_cell.angle_beta"),
    "gamma": ("_cell_angle_gamma", "_cell.angle_gamma"),
}


def _cif_cell_parameters(parser) -> dict[str, float]:
    """The numeric cell parameters as written in the first CIF block that has ``_cell_length_a``."""
    from pymatgen.io.cif import str2float

    for block in parser.as_dict().values():
        values = {name: next((block[tag] for tag in tags if tag in block), None) for name, tags in _CIF_CELL_TAGS.items()}
        if values["a"] is None:
            continue
        cell = {}
        for name, value in values.items():
            try:
                cell[name] = float(str2float(value if isinstance(value, str) else value[0]))
            except (ValueError, TypeError, IndexError):
                pass  # missing or not a number: pymatgen refuses the CIF (unparsable)
        return cell
    return {}


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


class SourceRow(dict):
    """One raw row of a dataset source: column → text, plus where it came from.

    Attributes:
        line: first line of the row in its file (1-based; 0 for a CIF file).
        problem: ``(reason, detail)`` when the row cannot be used at all (e.g. not
            UTF-8); such a row is skipped before its CIF is looked at.
    """

    def __init__(self, values=(), *, line: int = 0, problem: tuple[str, str] | None = None):
        super().__init__(values)
        self.line = line
        self.problem = problem


#: A byte that was not UTF-8 (``surrogateescape`` maps bytes 0x80–0xff it cannot decode to U+DC80–U+DCFF).
_NOT_TEXT = re.compile("[\udc80-\udcff]")


def _undecodable(value: str) -> int | None:
    """Index of the first byte of ``value`` that was not UTF-8 text, else None."""
    match = _NOT_TEXT.search(value)
    return match.start() if match else None


def _encoding_problem(values: Sequence[str], columns: Sequence[str], line: int) -> tuple[str, str] | None:
    for column, value in zip(columns, values):
        index = _undecodable(value)
        if index is not None:
            offset = len(value[:index].encode("utf-8", "surrogateescape"))
            byte = ord(value[index]) - 0xDC00
            return NOT_UTF8, f"byte 0x{byte:02x} at byte {offset} of column {column!r}, row starting at line {line}"
    return None


def _open_text(path: Path):
    """``path`` (plain or gzip) as text; bytes that are not UTF-8 become lone surrogates (``surrogateescape``)."""
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def read_csv_rows(path: Path) -> tuple[list[str], list[SourceRow]]:
    """The header and rows of a CSV/CSV.gz file.

    A row with bytes that are not UTF-8 is kept as a :class:`SourceRow`
    whose ``problem`` says where (reason ``"not UTF-8"``); its id column, if unreadable,
    becomes ``line<N>``. The other rows are unaffected.

    Raises:
        DatasetError: the file cannot be read (not gzip, truncated, broken quoting),
            its header is not UTF-8, or it has no ``cif`` column.
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows: list[SourceRow] = []
    line = 1
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            columns = next(reader, [])
            if any(_undecodable(column) is not None for column in columns):
                raise DatasetError(f"{path}: the header (line 1) is not UTF-8")
            id_column = next((c for c in ID_COLUMNS if c in columns), None)
            line = reader.line_num + 1
            for values in reader:
                if values:  # csv.DictReader skips blank lines too
                    problem = _encoding_problem(values, columns, line)
                    row = SourceRow(zip(columns, values), line=line, problem=problem)
                    for column in columns[len(values) :]:
                        row[column] = None  # as csv.DictReader fills short rows
                    if problem and id_column and _undecodable(row.get(id_column) or "") is not None:
                        row[id_column] = f"line{line}"
                    rows.append(row)
                line = reader.line_num + 1
    except (OSError, EOFError, csv.Error, UnicodeError) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: cannot be read as CSV near line {line} ({type(exc).__name__}: {exc})") from exc
    if "cif" not in columns:
        raise DatasetError(f"{path}: no 'cif' column (columns: {', '.join(columns) or 'none'})")
    return columns, rows


def parse_row(text: str, max_sites: int | None = None):
    """Parse and check one CIF cell: ``(structure, None)`` or ``(None, (reason, detail))``."""
    if not text or not text.strip():
        return None, (MISSING_VALUE, "empty cif cell")
    try:
        structure = parse_cif(text)
    except InvalidStructureError as exc:
        return None, (exc.reason, exc.detail)
    except ValueError as exc:
        return None, (UNPARSABLE, str(exc))
    problem = _check_structure(structure, max_sites)
    return (None, problem) if problem else (structure, None)


def parse_source_row(row: dict[str, str], max_sites: int | None = None):
    """:func:`parse_row` of a row of :func:`read_source` (its ``cif`` column), or the row's own problem."""
    problem = getattr(row, "problem", None)
    if problem is not None:
        return None, problem
    return parse_row(row.get("cif") or "", max_sites)


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
        structure, problem = parse_source_row(row, max_sites)
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

    Every structure is checked (:func:`crystens_core.structures.structure_problem`)
    before it is kept; bad rows are skipped with their id and reason (the skip report
    also lists files in a CIF folder that are not CIFs).

    Args:
        source: a named dataset (see ``crystens data list``), a CSV/CSV.gz file with a
            ``cif`` column, a folder of ``.cif`` files (any case), or one ``.cif`` file.
        max_sites: rows with more sites are skipped (reason "too many sites").
        strict: raise :class:`DatasetError` on the first bad row instead of skipping it.
        progress: show a progress bar while parsing.

    Raises:
        DatasetError: the source does not exist or has no ``cif`` column.
    """
    name, columns, rows, ignored = read_source_report(source)
    dataset = _from_rows(rows, columns, name, max_sites, strict, progress)
    dataset.skipped.merge(ignored)
    return dataset


def read_source(source: str | Path) -> tuple[str, list[str], list[SourceRow]]:
    """The name, columns and raw rows (CIF text unparsed) of any dataset source.

    Raises:
        DatasetError: the source does not exist, is empty or has no ``cif`` column.
    """
    name, columns, rows, _ = read_source_report(source)
    return name, columns, rows


def read_source_report(source: str | Path) -> tuple[str, list[str], list[SourceRow], SkipReport]:
    """Like :func:`read_source`, plus the entries of a CIF folder that were not read (reason "not a CIF file").

    Raises:
        DatasetError: the source does not exist, is empty or has no ``cif`` column.
    """
    from crystens_core.data.sources import is_named, resolve

    path = Path(source)
    ignored = SkipReport()
    if path.is_dir():
        files = []
        for entry in sorted(path.iterdir()):
            if entry.is_file() and entry.suffix.lower() == ".cif":
                files.append(entry)
            else:
                ignored.add(NOT_A_CIF, entry.name, "a folder, not read" if entry.is_dir() else "not a .cif file, not read")
        if not files:
            raise DatasetError(f"{path}: no .cif files in this folder")
        return path.name, ["material_id", "cif"], [_cif_file_row(file) for file in files], ignored
    if path.is_file():
        if path.suffix.lower() == ".cif":
            return path.name, ["material_id", "cif"], [_cif_file_row(path)], ignored
        columns, rows = read_csv_rows(path)
        return path.name, columns, rows, ignored
    if is_named(str(source)):
        columns, rows = read_csv_rows(resolve(str(source)))
        return str(source), columns, rows, ignored
    raise DatasetError(f"{source}: not a file, a folder or a named dataset (see `crystens data list`)")


def _cif_file_row(path: Path) -> SourceRow:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return SourceRow({"material_id": path.stem, "cif": ""}, problem=(UNPARSABLE, f"{path.name} cannot be read ({exc.strerror or exc})"))
    return SourceRow({"material_id": path.stem, "cif": text})
