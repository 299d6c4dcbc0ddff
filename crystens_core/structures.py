"""Small helpers metrics share for lists of pymatgen structures (pymatgen imported lazily)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


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
