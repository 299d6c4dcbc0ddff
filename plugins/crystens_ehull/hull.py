"""The convex hull of known phases, in formation-energy space (eV/atom).

The hull ships with crystens as ``data/mp_formation_energies.csv.gz``: one row per
Materials Project structure of the MP-20 and MPTS-52 files (``material_id``,
reduced ``formula``, DFT ``formation_energy_per_atom``), built by
``python -m crystens_ehull.build_reference hull``. Every element of those rows is
added at formation energy 0 (its standard state). Phase diagrams are built with
pymatgen's :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram` per chemical
system, on first use, from the entries whose elements are a subset of that system,
and cached; a thousand structures take seconds.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

HULL_FILE = "mp_formation_energies.csv.gz"
HULL_COLUMNS = ("material_id", "formula", "formation_energy_per_atom")


class UnsupportedElementsError(ValueError):
    """A composition with elements the hull has no data for (``elements``: their symbols)."""

    def __init__(self, elements: Iterable[str]):
        self.elements = sorted(elements)
        super().__init__(f"element not in the hull data: {', '.join(self.elements)}")


def shipped_data_path(name: str) -> Path:
    """Path of a file in ``crystens_ehull/data``."""
    return Path(__file__).resolve().parent / "data" / name


def read_hull_file(path: str | Path) -> list[tuple[str, str, float]]:
    """``(material_id, formula, formation_energy_per_atom)`` rows of a hull CSV(.gz).

    Raises:
        ValueError: the file lacks one of :data:`HULL_COLUMNS` or has a non-numeric energy.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        text = "".join(line for line in handle if not line.startswith("#"))
    reader = csv.DictReader(io.StringIO(text))
    missing = set(HULL_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{path}: hull file lacks the column(s) {sorted(missing)}")
    rows = []
    for number, row in enumerate(reader, start=2):
        try:
            rows.append((row["material_id"], row["formula"], float(row["formation_energy_per_atom"])))
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: bad formation energy {row['formation_energy_per_atom']!r}") from exc
    return rows


class ConvexHull:
    """Formation-energy hull of known phases; phase diagrams per chemical system, built lazily.

    Args:
        entries: ``(formula, formation_energy_per_atom)`` pairs (eV/atom) of known phases.
        name: what the hull is made of, for messages and configs.

    Attributes:
        elements: symbols the hull knows (each is a phase at 0 eV/atom).
    """

    def __init__(self, entries: Iterable[tuple[str, float]], name: str = "custom"):
        from pymatgen.core import Composition

        self.name = name
        self._by_system: dict[frozenset[str], list[tuple[Composition, float]]] = defaultdict(list)
        for formula, energy in entries:
            composition = Composition(formula)
            if not np.isfinite(energy):
                raise ValueError(f"{formula}: formation energy {energy} is not finite")
            system = frozenset(el.symbol for el in composition.elements)
            self._by_system[system].append((composition, float(energy)))
        self.elements = frozenset(itertools.chain.from_iterable(self._by_system))
        self._diagrams: dict[frozenset[str], object] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_system.values())

    @classmethod
    def shipped(cls) -> ConvexHull:
        """The hull crystens ships (Materials Project, MP-20 + MPTS-52), loaded once per process."""
        return _shipped_hull()

    @classmethod
    def from_file(cls, path: str | Path) -> ConvexHull:
        """A hull from a CSV(.gz) with the columns of :data:`HULL_COLUMNS`."""
        return cls(((formula, energy) for _, formula, energy in read_hull_file(path)), name=str(path))

    def _entries(self, system: frozenset[str]) -> list:
        from pymatgen.analysis.phase_diagram import PDEntry
        from pymatgen.core import Composition

        if len(system) <= 12:
            subsets = (frozenset(c) for k in range(1, len(system) + 1) for c in itertools.combinations(sorted(system), k))
            keys = [s for s in subsets if s in self._by_system]
        else:
            keys = [s for s in self._by_system if s <= system]
        entries = [PDEntry(Composition(el), 0.0, name=el) for el in sorted(system)]
        for key in keys:
            entries.extend(PDEntry(c, e * c.num_atoms) for c, e in self._by_system[key])
        return entries

    def phase_diagram(self, elements: Iterable[str]):
        """The (cached) pymatgen PhaseDiagram of the chemical system ``elements``.

        Raises:
            UnsupportedElementsError: an element the hull has no data for.
        """
        from pymatgen.analysis.phase_diagram import PhaseDiagram

        system = frozenset(elements)
        unknown = system - self.elements
        if unknown:
            raise UnsupportedElementsError(unknown)
        with self._lock:
            diagram = self._diagrams.get(system)
        if diagram is None:
            diagram = PhaseDiagram(self._entries(system))
            with self._lock:
                self._diagrams[system] = diagram
        return diagram

    def hull_energy(self, composition) -> float:
        """Formation energy of the hull at ``composition`` (eV/atom, ≤ 0)."""
        from pymatgen.core import Composition

        composition = Composition(composition).element_composition  # oxidation states do not matter here
        return float(self.phase_diagram(el.symbol for el in composition.elements).get_hull_energy_per_atom(composition))

    def e_above_hull(self, composition, formation_energy_per_atom: float) -> float:
        """Energy above the hull (eV/atom): the formation energy minus the hull's at that composition.

        Negative when the phase lies below the known hull (a new stable phase, or a model error).

        Raises:
            UnsupportedElementsError: an element the hull has no data for.
        """
        return float(formation_energy_per_atom) - self.hull_energy(composition)

    def e_above_hull_many(self, compositions, formation_energies) -> tuple[np.ndarray, list[str | None]]:
        """:meth:`e_above_hull` for many; NaN with a reason where a composition cannot be placed."""
        values = np.full(len(compositions), np.nan)
        reasons: list[str | None] = [None] * len(compositions)
        for index, (composition, energy) in enumerate(zip(compositions, formation_energies)):
            if composition is None or energy is None or not np.isfinite(energy):
                reasons[index] = "no formation energy"
                continue
            try:
                values[index] = self.e_above_hull(composition, energy)
            except UnsupportedElementsError as exc:
                reasons[index] = str(exc)
            except Exception as exc:  # a degenerate diagram: count it, never stop the others
                reasons[index] = f"hull failed: {type(exc).__name__}: {exc}"
        return values, reasons


@functools.lru_cache(maxsize=1)
def _shipped_hull() -> ConvexHull:
    path = shipped_data_path(HULL_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped hull data is missing (rebuild it with `python -m crystens_ehull.build_reference hull`)")
    hull = ConvexHull.from_file(path)
    hull.name = "mp-20+mpts-52"
    return hull
