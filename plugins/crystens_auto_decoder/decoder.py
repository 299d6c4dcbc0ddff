"""The decoder users should use: it chooses the number of clusters itself.

* Sites are the slots whose lattice/space-group header looks like the crystal's
  rather than like zero padding (the Z ≥ 0.5 slots set the reference), so noise in
  empty rows creates no sites and a noisy hydrogen is not lost.
* Atomic numbers: neighbouring averaged Z values are merged by penalised
  likelihood (:func:`crystens_core.reconstruction.cluster_integers`), the noise
  level coming from the spread of the tensor's own 8 copies per site — sites of
  one element agree (the paper's (12.2, 12.6, 12.4, 12.5) → Mg, Mg, Mg, Mg) while
  the number of elements is not fixed in advance.
* Coordinates: optionally, per axis, periodic clusters of span ≤
  ``coordinate_tolerance`` snap to their mean (off by default: real structures
  have distinct coordinates closer than 0.01 that must stay distinct).
* Overlapping sites are merged; the lattice is validated; optionally the
  structure is symmetrised to the decoded space group.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crystens_core import layout, reconstruction
from crystens_core.decoding import TensorDecoder

#: Copies of each site's Z in the base channels (4 channels × row and column).
Z_COPIES = 2 * layout.BASE_CHANNELS


class AutoDecoder(TensorDecoder):
    """Decode with self-chosen clusters.

    Args:
        z_penalty: χ² price of one more distinct atomic number (higher → fewer elements).
        z_noise_floor: smallest standard error assumed for an averaged Z
            (atomic-number units); keeps clean tensors exact.
        coordinate_tolerance: widest span of a coordinate cluster (fractional
            units); 0 turns coordinate snapping off.
        distance, merge_tolerance, snap_to_spacegroup: see :class:`TensorDecoder`.
    """

    robust_sites = True

    def __init__(self, z_penalty: float = 16.0, z_noise_floor: float = 0.05, coordinate_tolerance: float = 0.0, distance: str = "cartesian", merge_tolerance: float = 0.5, snap_to_spacegroup: bool = False):
        super().__init__(distance=distance, merge_tolerance=merge_tolerance, snap_to_spacegroup=snap_to_spacegroup)
        if z_penalty < 0 or z_noise_floor <= 0 or coordinate_tolerance < 0:
            raise ValueError(f"need z_penalty ≥ 0, z_noise_floor > 0, coordinate_tolerance ≥ 0; got {z_penalty}, {z_noise_floor}, {coordinate_tolerance}")
        self.z_penalty = z_penalty
        self.z_noise_floor = z_noise_floor
        self.coordinate_tolerance = coordinate_tolerance

    def get_config(self) -> dict[str, Any]:
        return {"z_penalty": self.z_penalty, "z_noise_floor": self.z_noise_floor, "coordinate_tolerance": self.coordinate_tolerance, **super().get_config()}

    def snap(self, numbers: np.ndarray, coordinates: np.ndarray, averages: reconstruction.HeaderAverages) -> tuple[np.ndarray, np.ndarray]:
        sigma = max(self.z_noise_floor, float(np.sqrt(averages.variances["var_atomic_numbers"] / Z_COPIES)))
        numbers = np.maximum(reconstruction.cluster_integers(numbers, sigma, self.z_penalty), 1.0)
        if self.coordinate_tolerance > 0 and len(coordinates) > 1:
            coordinates = coordinates.copy()
            for axis in range(3):
                labels, centres = reconstruction.cluster_periodic_span(coordinates[:, axis], self.coordinate_tolerance)
                coordinates[:, axis] = centres[labels]
        return numbers, coordinates
