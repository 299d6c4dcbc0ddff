"""Checking structures before anything uses them, and small helpers metrics share (pymatgen imported lazily)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

#: Smallest cell volume accepted (Å³). Real crystals have several Å³ per atom; a cell
#: below this is flat or collapsed, and symmetry codes misbehave on it.
MIN_CELL_VOLUME = 1e-3

# Reasons a structure is rejected by :func:`structure_problem`.
INVALID_CELL = "invalid cell"
INVALID_COORDINATES = "invalid coordinates"
EMPTY_STRUCTURE = "empty structure"
UNKNOWN_ELEMENT = "unknown element"

#: Names of the cell parameters :func:`cell_parameters_problem` checks.
CELL_PARAMETERS = ("a", "b", "c", "alpha", "beta", "gamma")


def structure_list(structures: Any, argument: str) -> list:
    """``structures`` as a list of pymatgen Structures or None (failed decodes).

    Raises:
        TypeError: naming ``argument`` and the offending entry when it is not such a list.
    """
    from pymatgen.core import IStructure

    if structures is None or isinstance(structures, (str, bytes, IStructure)) or not hasattr(structures, "__len__"):
        raise TypeError(f"{argument} must be a list of pymatgen Structures (None for failed decodes), got {type(structures).__name__}")
    items = list(structures)
    for index, item in enumerate(items):
        if item is not None and not isinstance(item, IStructure):
            raise TypeError(f"{argument}[{index}] must be a pymatgen Structure or None, got {type(item).__name__}")
    return items


def content_key(structure) -> bytes:
    """A digest of a structure's lattice, fractional coordinates and species (identical structures, identical keys)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
    digest.update("|".join(site.species_string for site in structure).encode())
    return digest.digest()


def cell_parameters_problem(parameters: Mapping[str, float]) -> str | None:
    """Why cell parameters (lengths in Å, angles in degrees) do not make a cell, or None.

    Lengths must be finite and positive, angles finite and strictly between 0° and
    180°, and the metric tensor they give positive definite (the three angles must
    close a parallelepiped, e.g. not α = β = 10°, γ = 170°). Missing names are not checked.
    """
    for name in CELL_PARAMETERS:
        if name not in parameters:
            continue
        value = float(parameters[name])
        if not np.isfinite(value):
            return f"{name} = {value:g}"
        if name in ("a", "b", "c") and value <= 0:
            return f"{name} = {value:g} Å (a length must be positive)"
        if name not in ("a", "b", "c") and not 0 < value < 180:
            return f"{name} = {value:g}° (an angle must be strictly between 0° and 180°)"
    if all(name in parameters for name in ("alpha", "beta", "gamma")):
        cos_a, cos_b, cos_g = (np.cos(np.radians(float(parameters[name]))) for name in ("alpha", "beta", "gamma"))
        # det of the metric tensor divided by (abc)²; > 0 exactly when the angles make a cell
        determinant = 1 - cos_a**2 - cos_b**2 - cos_g**2 + 2 * cos_a * cos_b * cos_g
        if not determinant > 1e-12:
            angles = ", ".join(f"{float(parameters[name]):g}" for name in ("alpha", "beta", "gamma"))
            return f"angles α, β, γ = {angles}° do not make a cell (metric tensor not positive definite)"
    return None


def structure_problem(structure) -> tuple[str, str] | None:
    """Why ``structure`` is not a crystal any code should be given, as ``(reason, detail)``, or None.

    The one check every structure read or decoded by crystens goes through, before
    any spglib or other C-extension call (a NaN or infinite cell makes spglib crash
    the process). A structure read from a CIF has had the cell as written checked
    first (:func:`cell_parameters_problem`: pymatgen turns a = −5 Å into a
    valid-looking 5 Å cell). It checks:

    - the lattice matrix: finite, every length > 0, volume > :data:`MIN_CELL_VOLUME` Å³;
    - at least one site, finite fractional and Cartesian coordinates;
    - every species a real element (Z 1–118; oxidation states allowed, dummy species not).

    Returns:
        ``(reason, detail)`` with reason one of :data:`INVALID_CELL`,
        :data:`INVALID_COORDINATES`, :data:`EMPTY_STRUCTURE`, :data:`UNKNOWN_ELEMENT`.
    """
    from pymatgen.core.periodic_table import DummySpecies, Element, Species

    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
        return INVALID_CELL, "lattice matrix is not finite"
    with np.errstate(all="ignore"):
        lengths = np.linalg.norm(matrix, axis=1)
        volume = abs(float(np.linalg.det(matrix)))
    if not np.isfinite(lengths).all() or not (lengths > 0).all():
        return INVALID_CELL, "cell lengths " + ", ".join(f"{x:g}" for x in lengths) + " Å (each must be finite and positive)"
    if not np.isfinite(volume) or volume <= MIN_CELL_VOLUME:
        return INVALID_CELL, f"volume {volume:g} Å³ (must be finite and above {MIN_CELL_VOLUME:g} Å³)"
    if len(structure) == 0:
        return EMPTY_STRUCTURE, "no sites"
    with np.errstate(all="ignore"):
        frac = np.asarray(structure.frac_coords, dtype=float)
        cart = frac @ matrix
    if not np.isfinite(frac).all() or not np.isfinite(cart).all():
        bad = int(np.flatnonzero(~np.isfinite(cart).all(axis=1) | ~np.isfinite(frac).all(axis=1))[0])
        return INVALID_COORDINATES, f"site {bad} has non-finite coordinates {frac[bad].tolist()}"
    unknown = sorted(
        {str(species) for site in structure for species in site.species if isinstance(species, DummySpecies) or not isinstance(species, (Element, Species)) or not 1 <= species.Z <= 118}
    )
    if unknown:
        return UNKNOWN_ELEMENT, f"not an element: {', '.join(unknown)}"
    return None


@contextmanager
def quiet_spglib():
    """Silence spglib inside the block: its C-level messages ("spglib: ..." on stderr, unless
    the user set ``SPGLIB_WARNING`` themselves) and the Python warnings around it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "SPGLIB_WARNING" in os.environ:
            yield
            return
        os.environ["SPGLIB_WARNING"] = "OFF"
        try:
            yield
        finally:
            os.environ.pop("SPGLIB_WARNING", None)
