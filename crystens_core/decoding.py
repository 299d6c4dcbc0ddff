"""The decoder skeleton shared by the built-in decoders (third parties may reuse it).

:class:`TensorDecoder` runs the steps of :mod:`crystens_core.reconstruction` in
order and turns every failure into a :class:`DecodeResult` with a reason;
subclasses choose how sites are found and how atomic numbers and coordinates
are snapped (the clustering step).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from crystens_core import layout, reconstruction
from crystens_core.reconstruction import DecodingFailure
from crystens_core.results import DecodeResult


class TensorDecoder:
    """Base class: raw (C, S, S) tensor → :class:`DecodeResult`.

    Args:
        distance: how channel 0 was computed ("cartesian" or "fractional"); only
            used for ΣPairwise/atom.
        merge_tolerance: sites closer than this (Å) are merged into one.
        snap_to_spacegroup: symmetrise the result to the decoded space group when
            spglib finds it at some tolerance ≤ 0.3 Å within 0.5 s (the cell becomes
            the conventional standard cell); otherwise the result stays unsnapped and
            ``notes`` says why.
    """

    robust_sites = False

    def __init__(self, distance: str = "cartesian", merge_tolerance: float = 0.5, snap_to_spacegroup: bool = False):
        self.distance = distance
        self.merge_tolerance = merge_tolerance
        self.snap_to_spacegroup = snap_to_spacegroup
        if distance not in layout.DISTANCE_CONVENTIONS:
            raise ValueError(f"distance must be one of {layout.DISTANCE_CONVENTIONS}, got {distance!r}")

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return {"distance": self.distance, "merge_tolerance": self.merge_tolerance, "snap_to_spacegroup": self.snap_to_spacegroup}

    def snap(self, numbers: np.ndarray, coordinates: np.ndarray, averages: reconstruction.HeaderAverages) -> tuple[np.ndarray, np.ndarray]:
        """The clustering step: averaged Z (A,) and coordinates (A, 3) → snapped values.

        ``averages`` carries the spread of the copies (``averages.variances``)."""
        return numbers, coordinates

    def decode(self, tensor: np.ndarray) -> DecodeResult:
        """Decode one raw tensor; never raises for bad tensor contents, shape or dtype.

        A result is ok only when the structure is a sane crystal within the bounds of
        :mod:`crystens_core.reconstruction` (so it survives a CIF round trip);
        otherwise ``reason`` says what was wrong. Nothing is printed or warned."""
        result = DecodeResult()
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._decode_into(tensor, result)
        except DecodingFailure as exc:
            result.structure, result.reason = None, str(exc)
        except Exception as exc:  # a decoder must not crash a batch of 10 000 tensors
            result.structure, result.reason = None, f"unexpected {type(exc).__name__}: {exc}"
        return result

    def decode_batch(self, tensors: Iterable[np.ndarray], *, progress: bool = False) -> list[DecodeResult]:
        """Decode every tensor of an (N, C, S, S) array or iterable; one (C, S, S) array is a batch of one."""
        from crystens_core.progress import progress_bar

        if getattr(tensors, "ndim", None) == 3:
            tensors = [tensors]
        return [self.decode(tensor) for tensor in progress_bar(tensors, desc="decode", unit="tensor", enable=progress)]

    def _decode_into(self, tensor: np.ndarray, result: DecodeResult) -> None:
        base = reconstruction.check_tensor(tensor)
        sites = reconstruction.find_sites(base, robust=self.robust_sites)
        result.n_sites = int(sites.size)
        if sites.size == 0:
            raise DecodingFailure(reconstruction.no_sites_reason(base))
        reconstruction.check_site_entries(base, sites)
        averages = reconstruction.average_header(base, sites)
        result.consistency.update(averages.variances)
        result.spacegroup = reconstruction.rounded_spacegroup(averages.spacegroup)
        coordinates, delta = reconstruction.combine_coordinates(averages.coordinates, reconstruction.pair_differences(base, sites))
        result.consistency["delta_coordinate_per_atom"] = delta
        lattice = reconstruction.build_lattice(averages.lattice)
        numbers, coordinates = self.snap(averages.atomic_numbers, coordinates, averages)
        numbers = reconstruction.check_atomic_numbers(numbers)
        # The same periodic image as the tensor's own coordinates, so that snapping
        # 0.9999 to 0.0 does not count as a one-cell jump in the in-cell distances.
        nearest_image = averages.coordinates + reconstruction.wrap(coordinates - averages.coordinates)
        result.consistency["pairwise_per_atom"] = reconstruction.pairwise_per_atom(base, sites, nearest_image, lattice.matrix, self.distance)
        numbers, coordinates, result.merged_sites = reconstruction.merge_overlapping(numbers, coordinates, lattice, self.merge_tolerance)
        structure = reconstruction.build_structure(lattice, numbers, coordinates)
        reconstruction.check_structure(structure)
        if self.snap_to_spacegroup and result.spacegroup is not None:
            structure, note = reconstruction.symmetrize(structure, result.spacegroup)
            if note:
                result.notes.append(note)
        result.structure = structure
