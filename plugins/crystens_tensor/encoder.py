"""Structure → CrysTens tensor, vectorised over sites, pairs and structures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crystens_core import layout
from crystens_core.errors import EncodingError

CELL_CHOICES = ("as-is", "conventional", "primitive")
MAX_Z = 118
#: Structures filled at once (bounds the (N, M, M, 3) pair arrays).
CHUNK = 64


class CrysTensEncoder:
    """Encode ordered pymatgen structures as raw (C, S, S) float32 CrysTens tensors.

    Args:
        max_sites: most sites a structure may have; S = 12 + max_sites (52 → 64).
        cell: "as-is" (the structure's own cell), "conventional" or "primitive"
            (standard cells from spglib).
        distance: channel-0 pair distance: "cartesian" (Å, the default) or
            "fractional" (the authors' convention, norm of the fractional difference).
        symprec: spglib tolerance in Å for space groups and standard cells.
        layers: names of extra layers (``crystens_register_layers``) appended as
            channels 4, 5, ...
    """

    def __init__(
        self,
        max_sites: int = 52,
        cell: str = "as-is",
        distance: str = "cartesian",
        symprec: float = 0.1,
        layers: Sequence[str] = (),
    ):
        self.max_sites = max_sites
        self.cell = cell
        self.distance = distance
        self.symprec = symprec
        self.layers = tuple(layers)
        self.size = layout.size_for(max_sites)
        if cell not in CELL_CHOICES:
            raise ValueError(f"cell must be one of {CELL_CHOICES}, got {cell!r}")
        if distance not in layout.DISTANCE_CONVENTIONS:
            raise ValueError(f"distance must be one of {layout.DISTANCE_CONVENTIONS}, got {distance!r}")
        if symprec <= 0:
            raise ValueError(f"symprec must be positive (Å), got {symprec!r}")
        self._layer_objects = None

    @property
    def channels(self) -> int:
        """Number of channels: 4 base channels plus one per layer."""
        return layout.BASE_CHANNELS + len(self.layers)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return {
            "max_sites": self.max_sites,
            "cell": self.cell,
            "distance": self.distance,
            "symprec": self.symprec,
            "layers": list(self.layers),
        }

    def _layer_instances(self) -> list[Any]:
        if self._layer_objects is None:
            from crystens_core.plugins import get_layer

            self._layer_objects = [get_layer(name) for name in self.layers]
        return self._layer_objects

    # -- per-structure preparation --------------------------------------------------
    def prepare(self, structure, spacegroup: int | None = None):
        """Check a structure, choose its cell and find its space group.

        Returns:
            ``(structure, spacegroup, atomic_numbers)`` as they will be encoded.

        Raises:
            EncodingError: not a crystal (invalid cell or coordinates, no sites,
                unknown element; see ``crystens_core.structures.structure_problem``),
                disordered, too many sites, or a space group that cannot be determined.
        """
        from crystens_core.structures import quiet_spglib, structure_problem

        problem = structure_problem(structure)  # before spglib, which crashes the process on a NaN cell
        if problem:
            raise EncodingError(*problem)
        numbers = atomic_numbers(structure)  # raises for disordered sites and unknown elements
        if self.cell != "as-is" or spacegroup is None:
            from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

            try:
                with quiet_spglib():
                    analyzer = SpacegroupAnalyzer(structure, symprec=self.symprec)
                    if self.cell == "conventional":
                        structure = analyzer.get_conventional_standard_structure()
                    elif self.cell == "primitive":
                        structure = analyzer.get_primitive_standard_structure()
                    if spacegroup is None or self.cell != "as-is":
                        spacegroup = analyzer.get_space_group_number()
            except Exception as exc:  # spglib gives up on some inputs
                raise EncodingError("space group detection failed", str(exc)) from exc
        if len(structure) > self.max_sites:
            raise EncodingError("too many sites", f"{len(structure)} sites > max_sites={self.max_sites}")
        spacegroup = int(spacegroup)
        if not 1 <= spacegroup <= 230:
            raise EncodingError("bad space group", f"{spacegroup} is not in 1–230")
        if self.cell != "as-is":
            numbers = atomic_numbers(structure)
        return structure, spacegroup, numbers

    # -- encoding --------------------------------------------------------------------
    def encode(self, structure, spacegroup: int | None = None) -> np.ndarray:
        """Encode one structure as a (C, S, S) float32 tensor in physical units.

        Args:
            structure: an ordered pymatgen Structure.
            spacegroup: its space group number; found with spglib when None.
        """
        return self.encode_batch([structure], None if spacegroup is None else [spacegroup])[0]

    def encode_batch(self, structures: Sequence, spacegroups: Sequence[int | None] | None = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """Encode structures into one (N, C, S, S) float32 array.

        Args:
            structures: ordered pymatgen Structures.
            spacegroups: their space group numbers (None entries are found with spglib).
            out: optional preallocated (N, C, S, S) array (e.g. a memory map) to fill.

        Raises:
            EncodingError: naming the index of the first structure that cannot be encoded.
        """
        n = len(structures)
        if spacegroups is None:
            spacegroups = [None] * n
        if len(spacegroups) != n:
            raise ValueError(f"{n} structures but {len(spacegroups)} space groups")
        prepared = []
        for index, (structure, spacegroup) in enumerate(zip(structures, spacegroups)):
            try:
                prepared.append(self.prepare(structure, spacegroup))
            except EncodingError as exc:
                raise EncodingError(exc.reason, f"structure {index}: {exc.detail}") from exc
        if out is None:
            out = np.zeros((n,) + self.shape, dtype=np.float32)
        else:
            if out.shape != (n,) + self.shape:
                raise ValueError(f"out has shape {out.shape}, expected {(n,) + self.shape}")
            out[...] = 0.0
        if n == 0:
            return out
        for start in range(0, n, CHUNK):
            chunk = prepared[start : start + CHUNK]
            header, frac, matrix, mask = self._site_arrays(*zip(*chunk))
            width = layout.SITE_OFFSET + header.shape[1]  # sites beyond the chunk's largest stay zero
            layout.fill_base_channels(out[start : start + len(chunk), :, :width, :width], header, frac, matrix, mask, distance=self.distance)
        if self.layers:
            for index, (structure, _, _) in enumerate(prepared):
                for offset, layer in enumerate(self._layer_instances()):
                    out[index, layout.BASE_CHANNELS + offset] = layer.channel(structure, self.max_sites)
        return out

    def _site_arrays(self, structures: Sequence, spacegroups: Sequence[int], numbers: Sequence[list[int]]):
        """Padded per-site arrays of a batch, padded to its largest structure (M sites):
        header (N, M, 11), frac (N, M, 3), matrix (N, 3, 3), mask (N, M)."""
        counts = np.array([len(s) for s in structures])
        mask = np.arange(counts.max()) < counts[:, None]
        matrix = np.array([s.lattice.matrix for s in structures])
        lengths = np.linalg.norm(matrix, axis=2)  # a, b, c in Å
        unit = matrix / lengths[:, :, None]
        cosines = np.stack([(unit[:, 1] * unit[:, 2]).sum(1), (unit[:, 0] * unit[:, 2]).sum(1), (unit[:, 0] * unit[:, 1]).sum(1)], axis=1)
        angles = np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))  # α, β, γ in degrees
        coords = np.concatenate([[site.frac_coords for site in s] for s in structures]) % 1.0
        coords[coords >= 1.0] = 0.0  # -1e-17 % 1.0 == 1.0 in floating point
        header = np.zeros(mask.shape + (layout.N_HEADER,))
        header[mask, layout.Z] = np.concatenate(numbers)
        header[mask, layout.X : layout.ZC + 1] = coords
        header[:, :, layout.A : layout.C + 1] = lengths[:, None, :]
        header[:, :, layout.ALPHA : layout.GAMMA + 1] = angles[:, None, :]
        header[:, :, layout.SPACEGROUP] = np.asarray(spacegroups, dtype=float)[:, None]
        header[~mask] = 0.0
        frac = header[:, :, layout.X : layout.ZC + 1]
        return header, frac, matrix, mask


def atomic_numbers(structure) -> list[int]:
    """Z of every site of an ordered structure.

    Raises:
        EncodingError: a site is disordered (partial occupancy or mixed species) or
            not a real element (Z outside 1–118).
    """
    numbers = []
    for site in structure:
        species = site.species
        if len(species) != 1:
            raise EncodingError("disordered site", "mixed species on a site; only ordered structures encode")
        ((element, occupancy),) = species.items()
        if abs(occupancy - 1.0) > 1e-8:
            raise EncodingError("disordered site", f"occupancy {occupancy:g}; only ordered structures encode")
        z = getattr(element, "Z", 0)
        if not 1 <= z <= MAX_Z:
            raise EncodingError("unknown element", f"{element} is not an element with Z in 1–{MAX_Z}")
        numbers.append(z)
    return numbers
