"""StructureMatcher made fast for set comparisons, with results identical to calling it on every pair.

``StructureMatcher.fit`` (``primitive_cell=True``, ``attempt_supercell=False``, the
default) answers False unless both structures have the same fractional
composition and, after Niggli reduction and reduction to the primitive cell, the
same number of sites. So this module reduces every structure once, keys it by
(reduced composition, primitive site count) and calls ``fit`` with
``skip_structure_reduction=True`` only within a key. Reduced structures are
cached per process by structure content, so a reference set is reduced once.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from crystens_core.structures import content_key

#: StructureMatcher tolerances used by CDVAE (match rate), DiffCSP and their successors.
CDVAE_TOLERANCES = {"ltol": 0.3, "stol": 0.5, "angle_tol": 10.0}
_CACHE_SIZE = 200_000
_reduced_cache: OrderedDict[bytes, tuple[Any, tuple]] = OrderedDict()


def composition_group(structure) -> tuple:
    """The fractional composition as a hashable key (species with oxidation states stay distinct, as in SpeciesComparator)."""
    fractional = structure.composition.fractional_composition
    return tuple(sorted((str(species), round(float(amount), 8)) for species, amount in fractional.items()))


@dataclass(frozen=True)
class Prepared:
    """A structure reduced once (Niggli, then primitive cell) and its matching group."""

    reduced: Any
    group: tuple


def prepare(structure) -> Prepared:
    """Reduce ``structure`` as ``StructureMatcher.fit`` would and key it (cached per process by content)."""
    key = content_key(structure)
    hit = _reduced_cache.get(key)
    if hit is not None:
        _reduced_cache.move_to_end(key)
        return Prepared(*hit)
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reduced = Structure.from_sites(structure).get_reduced_structure(reduction_algo="niggli").get_primitive_structure()
    entry = (reduced, (composition_group(structure), len(reduced)))
    _reduced_cache[key] = entry
    if len(_reduced_cache) > _CACHE_SIZE:
        _reduced_cache.popitem(last=False)
    return Prepared(*entry)


def clear_cache() -> None:
    """Forget every cached reduced structure."""
    _reduced_cache.clear()


class GroupedMatcher:
    """Pairwise StructureMatcher decisions over sets, compared only within (composition, primitive size) groups.

    Args:
        ltol: fractional length tolerance.
        stol: site tolerance (fraction of the average free length per atom, (V/N)^(1/3)).
        angle_tol: angle tolerance (degrees).
    """

    def __init__(self, ltol: float = 0.3, stol: float = 0.5, angle_tol: float = 10.0):
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self.matcher = StructureMatcher(ltol=ltol, stol=stol, angle_tol=angle_tol, primitive_cell=True, scale=True, attempt_supercell=False)

    def fit(self, first: Prepared, second: Prepared) -> bool:
        """``StructureMatcher.fit(first, second)`` on the prepared structures."""
        if first.group != second.group:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(self.matcher.fit(first.reduced, second.reduced, skip_structure_reduction=True))
