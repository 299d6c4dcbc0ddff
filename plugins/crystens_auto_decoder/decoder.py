"""The decoder users should use: it chooses the number of clusters itself.

* Sites are the slots whose mean Z rounds to ≥ 1 *and* whose lattice header
  looks like the crystal's rather than like zero padding.
* Atomic numbers: single-linkage clusters of the averaged Z values (neighbours
  closer than ``z_gap``) share their mean before rounding, so sites of one
  element agree (the paper's (12.2, 12.6, 12.4, 12.5) → Mg, Mg, Mg, Mg).
* Coordinates: per axis, periodic clusters of span ≤ ``coordinate_tolerance``
  snap to their mean (0.2499, 0.2502 → 0.25005); distinct positions stay.
* Overlapping sites are merged; the lattice is validated; optionally the
  structure is symmetrised to the decoded space group.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crystens_core import reconstruction
from crystens_core.decoding import TensorDecoder


class AutoDecoder(TensorDecoder):
    """Decode with self-chosen clusters.

    Args:
        z_gap: averaged Z values whose sorted neighbours are closer than this
            join one cluster (atomic-number units).
        coordinate_tolerance: widest span of a coordinate cluster (fractional units).
        distance, merge_tolerance, snap_to_spacegroup: see :class:`TensorDecoder`.
    """

    robust_sites = True

    def __init__(self, z_gap: float = 0.5, coordinate_tolerance: float = 0.01, distance: str = "cartesian", merge_tolerance: float = 0.5, snap_to_spacegroup: bool = False):
        super().__init__(distance=distance, merge_tolerance=merge_tolerance, snap_to_spacegroup=snap_to_spacegroup)
        if z_gap < 0 or coordinate_tolerance < 0:
            raise ValueError(f"tolerances must be ≥ 0, got z_gap={z_gap}, coordinate_tolerance={coordinate_tolerance}")
        self.z_gap = z_gap
        self.coordinate_tolerance = coordinate_tolerance

    def get_config(self) -> dict[str, Any]:
        return {"z_gap": self.z_gap, "coordinate_tolerance": self.coordinate_tolerance, **super().get_config()}

    def snap(self, numbers: np.ndarray, coordinates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = reconstruction.cluster_by_gap(numbers, self.z_gap)
        numbers = (np.bincount(labels, weights=numbers) / np.bincount(labels))[labels]
        if self.coordinate_tolerance > 0 and len(coordinates) > 1:
            coordinates = coordinates.copy()
            for axis in range(3):
                axis_labels, centres = reconstruction.cluster_periodic_span(coordinates[:, axis], self.coordinate_tolerance)
                coordinates[:, axis] = centres[axis_labels]
        return numbers, coordinates
