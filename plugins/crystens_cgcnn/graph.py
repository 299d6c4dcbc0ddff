"""Crystal graphs as CGCNN builds them (Xie & Grossman 2018, ``cgcnn/data.py``), vectorised.

For every site: its 92 element features from ``atom_init.json``; its neighbours
within ``radius`` (8 Å) sorted by distance, the nearest ``max_neighbors`` (12)
kept; a site with fewer is padded, as in the original, with index 0 of its own
crystal at distance ``radius + 1`` Å. Distances are expanded on Gaussians
``exp(-(d - μ_k)² / var²)`` with μ_k = 0, 0.2, …, 8 Å (41 of them).

The neighbour order (ties included) is that of the original code: pymatgen's
neighbour list, stably sorted by distance per site. Numpy and pymatgen only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Graph settings of every pretrained model (the defaults of the original ``CIFData``).
RADIUS = 8.0
MAX_NEIGHBORS = 12
DMIN = 0.0
STEP = 0.2
#: A structure whose neighbour list would exceed this many pairs is refused
#: (a generated cell squeezed to almost no volume would otherwise exhaust memory).
MAX_PAIRS = 2_000_000


class GraphError(ValueError):
    """A structure CGCNN cannot make a graph of; ``reason`` is a short category."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def gaussian_centres(dmin: float = DMIN, dmax: float = RADIUS, step: float = STEP) -> np.ndarray:
    """The centres μ_k (Å) of the distance expansion, exactly as ``np.arange`` gives them in CGCNN."""
    return np.arange(dmin, dmax + step, step)


def load_atom_features(path: str | Path) -> np.ndarray:
    """``atom_init.json`` as a (101, F) float32 table indexed by Z; row 0 and unknown Z are NaN."""
    with open(path) as handle:
        table = json.load(handle)
    width = len(next(iter(table.values())))
    features = np.full((max(int(z) for z in table) + 1, width), np.nan, dtype=np.float32)
    for z, vector in table.items():
        features[int(z)] = vector
    return features


@dataclass
class CrystalGraph:
    """The graph of one crystal: site element rows, neighbour indices and distances.

    Attributes:
        numbers: atomic number per site, shape (N,).
        neighbors: index of each site's neighbours within the crystal, (N, M), int64.
        distances: their distances in Å, (N, M), float64 (``radius + 1`` where padded).
    """

    numbers: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray


def build_graph(structure, known_numbers: np.ndarray, *, radius: float = RADIUS, max_neighbors: int = MAX_NEIGHBORS) -> CrystalGraph:
    """The CGCNN graph of one structure.

    Args:
        structure: an ordered pymatgen ``Structure``.
        known_numbers: boolean mask over Z of the elements that have features.
        radius: neighbour cut-off in Å.
        max_neighbors: neighbours kept per site.

    Raises:
        GraphError: None, not a Structure, empty, disordered, an element without
            features, a degenerate lattice, a cell too dense to list, or a site with
            no neighbour within ``radius`` (CGCNN would see only padding there).
    """
    from pymatgen.core import Structure

    if structure is None:
        raise GraphError("no structure", "None (failed decode)")
    if not isinstance(structure, Structure):
        raise GraphError("not a Structure", type(structure).__name__)
    n = len(structure)
    if n == 0:
        raise GraphError("empty structure")
    if not structure.is_ordered:
        raise GraphError("disordered structure", structure.composition.formula)
    numbers = np.asarray(structure.atomic_numbers, dtype=np.int64)
    bad = sorted({str(species) for species, z in zip(structure.species, numbers) if z < 0 or z >= len(known_numbers) or not known_numbers[z]})
    if bad:
        raise GraphError("element without CGCNN features", f"{', '.join(bad)} (features exist for Z = 1..{len(known_numbers) - 1})")
    matrix = structure.lattice.matrix
    volume = abs(float(np.linalg.det(matrix))) if np.isfinite(matrix).all() else float("nan")
    if not np.isfinite(structure.frac_coords).all() or not volume > 1e-6:
        raise GraphError("degenerate lattice", f"volume {volume:.3g} Å³")
    expected_pairs = n * n * (4.0 / 3.0) * math.pi * radius**3 / volume
    if expected_pairs > MAX_PAIRS:
        raise GraphError("cell too dense", f"about {expected_pairs:.3g} pairs within {radius} Å (volume {volume:.3g} Å³ for {n} sites)")
    try:
        centres, points, _, distances = structure.get_neighbor_list(radius)
    except Exception as exc:  # pymatgen/cython failures on odd cells are per-structure failures
        raise GraphError("neighbour search failed", f"{type(exc).__name__}: {exc}") from exc
    counts = np.bincount(centres, minlength=n)
    if (counts == 0).any():
        lonely = np.flatnonzero(counts == 0)
        raise GraphError(f"site with no neighbour within {radius:g} Å", f"sites {lonely[:5].tolist()} of {n}")
    # Stable sort by (site, distance): ties keep pymatgen's order, as in the original.
    order = np.lexsort((distances, centres))
    centres, points, distances = centres[order], points[order], distances[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(centres)) - starts[centres]
    keep = rank < max_neighbors
    neighbor_index = np.zeros((n, max_neighbors), dtype=np.int64)  # padding: site 0 of this crystal
    neighbor_distance = np.full((n, max_neighbors), radius + 1.0)  # padding distance, as in CGCNN
    neighbor_index[centres[keep], rank[keep]] = points[keep]
    neighbor_distance[centres[keep], rank[keep]] = distances[keep]
    return CrystalGraph(numbers, neighbor_index, neighbor_distance)
