"""The paper's post-processing (§3.2.1), as written but without the defects of the authors' published code.

Sites are counted from the Z entries; every copy has equal weight; periodic
differences are wrapped; k-means is seeded; overlapping sites are merged so the
CIF always parses. What remains is the paper's own method: a fixed number of
k-means clusters for the atomic numbers (K = 3) and for the pooled x, y, z
coordinate values (K = 6), which, as the paper says, forces crystals to conform
to that many atomic numbers and positions.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from crystens_core.decoding import TensorDecoder


@functools.lru_cache(maxsize=1)
def _threadpools():
    """One controller for the process: creating one per call costs ~2 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def kmeans_snap(values: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Replace each value by its k-means centroid (K capped at the number of distinct values)."""
    distinct = np.unique(values)
    k = min(n_clusters, len(distinct))
    if k == len(distinct):
        return values.copy()  # every value is its own centroid
    from sklearn.cluster import KMeans

    with _threadpools().limit(limits=1):  # tiny problems: threads only add contention
        model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(values.reshape(-1, 1))
    return model.cluster_centers_[model.labels_, 0]


class PaperDecoder(TensorDecoder):
    """Decode like the paper: averaging, Fig. 3 coordinates, fixed-K k-means.

    Args:
        atom_clusters: K for the averaged atomic numbers (paper: 3).
        coordinate_clusters: K for the pooled coordinate values (paper: 6).
        seed: k-means seed.
        distance, merge_tolerance, snap_to_spacegroup: see :class:`TensorDecoder`.
    """

    #: Fixed K moves real coordinates onto 6 values, so clean round trips do not always match.
    exact_round_trip = False

    def __init__(self, atom_clusters: int = 3, coordinate_clusters: int = 6, seed: int = 0, distance: str = "cartesian", merge_tolerance: float = 0.5, snap_to_spacegroup: bool = False):
        super().__init__(distance=distance, merge_tolerance=merge_tolerance, snap_to_spacegroup=snap_to_spacegroup)
        if atom_clusters < 1 or coordinate_clusters < 1:
            raise ValueError(f"cluster counts must be ≥ 1, got atom_clusters={atom_clusters}, coordinate_clusters={coordinate_clusters}")
        self.atom_clusters = atom_clusters
        self.coordinate_clusters = coordinate_clusters
        self.seed = seed

    def get_config(self) -> dict[str, Any]:
        return {"atom_clusters": self.atom_clusters, "coordinate_clusters": self.coordinate_clusters, "seed": self.seed, **super().get_config()}

    def snap(self, numbers: np.ndarray, coordinates: np.ndarray, averages=None) -> tuple[np.ndarray, np.ndarray]:
        numbers = np.rint(kmeans_snap(numbers, self.atom_clusters, self.seed))
        coordinates = kmeans_snap(coordinates.ravel(), self.coordinate_clusters, self.seed).reshape(coordinates.shape)
        return numbers, coordinates
