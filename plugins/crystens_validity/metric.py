"""Structural and compositional validity, as defined by CDVAE (Xie et al., ICLR 2022).

Two protocols (option ``protocol``):

- ``"cdvae"`` (default), CDVAE's ``compute_metrics.py`` exactly:
  **structural validity** is a cell volume of at least 0.1 Å³ and no two atoms
  closer than 0.5 Å in pymatgen's minimum-image distance matrix;
  **compositional validity** is CDVAE's ``smact_validity`` with the data of SMACT
  2.2.1 (the version CDVAE ran, shipped in ``data/``, see ``build_table.py``): a
  single element or, optionally, an all-metal alloy is valid; otherwise some
  assignment of oxidation states must be charge neutral for the gcd-reduced atom
  counts and pass SMACT 2.2.1's Pauling test, including its handling of elements
  without an electronegativity (a cation–anion pair with one passes the whole
  test: SMACT raised ``TypeError`` and CDVAE counted it as a pass; any other pair
  with one fails it).
- ``"crystens"``, crystens' earlier definition: distances with periodic images
  included (an atom and its own image count, so a lattice vector shorter than
  0.5 Å is invalid too) and the oxidation states of the installed SMACT (≥ 3,
  list chosen by ``oxidation_states``) and its electronegativities; an element
  without an electronegativity passes a cation–anion pair and is ignored otherwise.

``None`` entries (structures that failed to decode) count as invalid in every
fraction; the per-structure flags are NaN for them.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from crystens_core.structures import structure_list

PROTOCOLS = ("cdvae", "crystens")
OXIDATION_STATE_SETS = ("smact14", "icsd24", "icsd16", "wiki", "sp")
#: SMACT 2.2.1's oxidation states, Pauling electronegativities and metals (CDVAE's data).
CDVAE_ELEMENT_TABLE = Path(__file__).resolve().parent / "data" / "smact-2.2.1-elements.json"
#: Enumerating more oxidation-state combinations than this at once is done in slices.
_MAX_GRID = 2_000_000


def structure_validity(structure, min_distance: float = 0.5, min_volume: float = 0.1, protocol: str = "cdvae") -> tuple[bool, str]:
    """CDVAE's structural validity of one structure.

    Args:
        structure: pymatgen Structure.
        min_distance: smallest allowed interatomic distance (Å).
        min_volume: smallest allowed cell volume (Å³).
        protocol: "cdvae" (pymatgen's minimum-image distance matrix, as CDVAE) or
            "crystens" (every periodic image, an atom's own included).

    Returns:
        (valid, reason): reason is "" when valid, else why not.
    """
    matrix = structure.lattice.matrix
    if not (np.isfinite(matrix).all() and np.isfinite(structure.frac_coords).all()):
        return False, "non-finite lattice or coordinates"
    volume = abs(float(np.linalg.det(matrix)))
    if volume < min_volume:
        return False, f"volume below {min_volume} Å³"
    if len(structure) == 0:
        return False, "no atoms"
    if protocol == "cdvae":
        distances = structure.distance_matrix[np.triu_indices(len(structure), k=1)]
    else:
        centres, neighbours, images, distances = structure.get_neighbor_list(min_distance, exclude_self=False)
        own_position = (centres == neighbours) & np.all(images == 0, axis=1)
        distances = distances[~own_position]
    if np.any(distances < min_distance):
        return False, f"atoms closer than {min_distance} Å"
    return True, ""


def composition_key(structure) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(element symbols sorted by Z, gcd-reduced integer atom counts) of an ordered structure.

    Raises:
        ValueError: for dummy species or non-integer (disordered) counts.
    """
    counts: Counter = Counter()
    for site in structure:
        for species, occupancy in site.species.items():
            symbol = getattr(species, "symbol", None)
            if symbol is None or not hasattr(species, "Z"):
                raise ValueError(f"species {species} is not a chemical element")
            counts[(species.Z, symbol)] += occupancy
    amounts = []
    for (_, symbol), amount in sorted(counts.items()):
        if abs(amount - round(amount)) > 1e-6 or round(amount) < 1:
            raise ValueError(f"{symbol} has a non-integer number of atoms ({amount}); only ordered structures are supported")
        amounts.append(int(round(amount)))
    divisor = functools.reduce(math.gcd, amounts)
    return tuple(symbol for (_, symbol) in sorted(counts)), tuple(a // divisor for a in amounts)


def pauling_ok(oxidation_states: tuple[int, ...], electronegativities: tuple[float | None, ...], *, cdvae: bool = False) -> bool:
    """Every cation less electronegative than every anion, pair by pair in element order.

    A cation–anion pair with a missing electronegativity (χ) passes the whole test:
    SMACT 2.2.1 compared None with a number and CDVAE caught that ``TypeError`` as a
    pass. Any other pair with a missing χ fails the test with ``cdvae`` (SMACT 2.2.1's
    ``pauling_test`` as CDVAE called it) and is ignored without ("crystens").
    """
    for (ox1, en1), (ox2, en2) in itertools.combinations(zip(oxidation_states, electronegativities), 2):
        missing = en1 is None or en2 is None
        if (ox1 > 0 and ox2 < 0) or (ox1 < 0 and ox2 > 0):
            if missing:
                return True
            if ox1 > 0 and en1 >= en2:
                return False
            if ox1 < 0 and en1 <= en2:
                return False
        elif missing and cdvae:
            return False
    return True


@functools.lru_cache(maxsize=1)
def _cdvae_table() -> dict[str, tuple[tuple[int, ...], float | None, bool]]:
    elements = json.loads(CDVAE_ELEMENT_TABLE.read_text())["elements"]
    return {symbol: (tuple(int(s) for s in row["oxidation_states"]), row["pauling_eneg"], bool(row["metal"])) for symbol, row in elements.items()}


@functools.lru_cache(maxsize=None)
def _element_data(symbol: str, oxidation_states: str | None) -> tuple[tuple[int, ...], float | None, bool]:
    """(oxidation states, Pauling χ or None, is a metal): SMACT 2.2.1's table for None, else the installed SMACT's list."""
    if oxidation_states is None:
        table = _cdvae_table()
        if symbol not in table:
            raise KeyError(f"no SMACT 2.2.1 data for element {symbol}")
        return table[symbol]
    import smact

    element = smact.Element(symbol)
    states = getattr(element, f"oxidation_states_{oxidation_states}") or ()
    return tuple(int(s) for s in states), element.pauling_eneg, symbol in smact.metals


@functools.lru_cache(maxsize=65536)
def smact_validity(symbols: tuple[str, ...], counts: tuple[int, ...], oxidation_states: str | None = None, pauling_test: bool = True, include_alloys: bool = True) -> bool:
    """CDVAE's compositional validity of gcd-reduced ``counts`` of ``symbols`` (ordered by Z).

    ``oxidation_states`` None is CDVAE's protocol (SMACT 2.2.1's data and Pauling
    test); a SMACT ≥ 3 list name ("smact14", "icsd24", ...) is the "crystens" protocol.

    The charge balance of every combination of oxidation states is checked at
    once with NumPy (in slices when there are very many); only the balanced
    ones go through the Pauling test, which stops at the first that passes.

    Raises:
        KeyError: for an element SMACT has no data for.
    """
    if len(set(symbols)) == 1:
        return True
    data = [_element_data(symbol, oxidation_states) for symbol in symbols]
    if include_alloys and all(is_metal for _, _, is_metal in data):
        return True
    states = [np.asarray(s, dtype=np.int64) for s, _, _ in data]
    if any(s.size == 0 for s in states):
        return False
    electronegativities = tuple(eneg for _, eneg, _ in data)
    weights = np.asarray(counts, dtype=np.int64)
    # Split the leading axes off until the remaining grid is small enough.
    split = 0
    while split < len(states) and math.prod(s.size for s in states[split:]) > _MAX_GRID:
        split += 1
    tail = np.stack(np.meshgrid(*states[split:], indexing="ij"), axis=-1).reshape(-1, len(states) - split) if split < len(states) else np.zeros((1, 0), np.int64)
    tail_charge = tail @ weights[split:]
    for head in itertools.product(*states[:split]):
        head_charge = int(np.dot(head, weights[:split])) if split else 0
        for row in np.flatnonzero(tail_charge == -head_charge):
            combination = tuple(head) + tuple(int(v) for v in tail[row])
            if not pauling_test or pauling_ok(combination, electronegativities, cdvae=oxidation_states is None):
                return True
    return False


class ValidityMetric:
    """CDVAE's structural and compositional validity of generated structures.

    Args:
        protocol: "cdvae" (CDVAE's evaluation exactly: minimum-image distances,
            SMACT 2.2.1's data and Pauling test) or "crystens" (periodic images
            included, the installed SMACT's data); see the module docstring.
        min_distance: smallest allowed interatomic distance (Å).
        min_volume: smallest allowed cell volume (Å³).
        oxidation_states: with protocol "crystens", the installed SMACT's list:
            "smact14" (SMACT's original list, the default), "icsd24" (SMACT ≥ 3's
            default), "icsd16", "wiki", "sp". Protocol "cdvae" uses SMACT 2.2.1's list.
        pauling_test: also require cations less electronegative than anions.
        include_alloys: count compositions made only of metals as valid.
    """

    requires = frozenset({"structures"})

    def __init__(self, protocol: str = "cdvae", min_distance: float = 0.5, min_volume: float = 0.1, oxidation_states: str | None = None, pauling_test: bool = True, include_alloys: bool = True):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        if oxidation_states is not None and oxidation_states not in OXIDATION_STATE_SETS:
            raise ValueError(f"oxidation_states must be one of {', '.join(OXIDATION_STATE_SETS)}, got {oxidation_states!r}")
        if protocol == "cdvae" and oxidation_states is not None:
            raise ValueError(f"oxidation_states={oxidation_states!r} picks a list of the installed SMACT and needs protocol='crystens'; protocol 'cdvae' uses SMACT 2.2.1's list")
        if not min_distance >= 0 or not min_volume >= 0:
            raise ValueError(f"min_distance and min_volume must be ≥ 0, got {min_distance!r} and {min_volume!r}")
        self.protocol = protocol
        self.min_distance = float(min_distance)
        self.min_volume = float(min_volume)
        self.oxidation_states = "smact14" if protocol == "crystens" and oxidation_states is None else oxidation_states
        self.pauling_test = bool(pauling_test)
        self.include_alloys = bool(include_alloys)

    def get_config(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "min_distance": self.min_distance,
            "min_volume": self.min_volume,
            "oxidation_states": self.oxidation_states,
            "pauling_test": self.pauling_test,
            "include_alloys": self.include_alloys,
        }

    def flags(self, structures) -> tuple[np.ndarray, np.ndarray, Counter]:
        """Per-structure structural and compositional validity (1.0/0.0, NaN for None) and failure reasons."""
        structures = structure_list(structures, "structures")
        struct_valid = np.full(len(structures), np.nan)
        comp_valid = np.full(len(structures), np.nan)
        reasons: Counter = Counter()
        for index, structure in enumerate(structures):
            if structure is None:
                reasons["no structure (failed decode)"] += 1
                continue
            try:
                ok, reason = structure_validity(structure, self.min_distance, self.min_volume, self.protocol)
            except Exception as exc:  # a pathological cell must not stop the others
                ok, reason = False, f"distance check failed: {type(exc).__name__}"
            struct_valid[index] = float(ok)
            if not ok:
                reasons[f"structure: {reason}"] += 1
            try:
                symbols, counts = composition_key(structure)
                ok = smact_validity(symbols, counts, self.oxidation_states, self.pauling_test, self.include_alloys)
                reason = "not charge balanced"
            except (KeyError, ValueError) as exc:
                ok, reason = False, f"composition unusable: {exc}"
            comp_valid[index] = float(ok)
            if not ok:
                reasons[f"composition: {reason}"] += 1
        return struct_valid, comp_valid, reasons

    def compute(self, *, structures, tensors=None, reference=None) -> dict[str, float]:
        """Fractions (over every entry, None counting as invalid) and counts.

        Returns:
            ``struct_valid``, ``comp_valid``, ``valid`` (both), ``n_struct_valid``,
            ``n_comp_valid``, ``n_valid``, ``n_structures``, ``n_failed`` (None entries) and
            ``n_used`` (entries every fraction is taken over: all of them).
        """
        return self.compute_details(structures=structures)[0]

    def compute_details(self, *, structures, tensors=None, reference=None) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
        """The figures of :meth:`compute` and per-structure flags ``struct_valid``, ``comp_valid``, ``valid``."""
        struct_valid, comp_valid, reasons = self.flags(structures)
        valid = np.where(np.isnan(struct_valid), np.nan, struct_valid * comp_valid)
        self.failures_ = dict(reasons)
        n = len(struct_valid)
        figures: dict[str, float] = {}
        for name, flags in (("struct_valid", struct_valid), ("comp_valid", comp_valid), ("valid", valid)):
            count = float(np.nansum(flags))
            figures[name] = count / n if n else float("nan")
            figures[f"n_{name}"] = count
        figures["n_structures"] = float(n)
        figures["n_failed"] = float(np.isnan(struct_valid).sum())
        figures["n_used"] = float(n)
        details = {"generated": {"struct_valid": struct_valid, "comp_valid": comp_valid, "valid": valid}, "reference": {}}
        return figures, details
