"""The paper's distribution metric (Figs. 4–6): two-sample Kolmogorov–Smirnov statistics.

For each property the K-S statistic D (0: same distribution, 1: disjoint) and its
p-value are computed between the reference (training) structures and the
generated ones: lattice lengths a, b, c (Å), angles α, β, γ (degrees), space group
number (spglib), atomic numbers (pooled over all sites), density (g/cm³) and number
of elements per structure. ``compute_details`` also returns the property arrays
(aligned with the input lists, NaN for None entries) for plots. Space groups are
cached per process by structure content, so a reference set is analysed once.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
from crystens_core.structures import content_key, quiet_spglib, structure_list

PROPERTIES = ("a", "b", "c", "alpha", "beta", "gamma", "spacegroup", "atomic_number", "density", "n_elements")
#: Properties with one value per structure (atomic_number has one per site).
PER_STRUCTURE = tuple(name for name in PROPERTIES if name != "atomic_number")
_SPACEGROUP_CACHE_SIZE = 200_000
_spacegroup_cache: OrderedDict[tuple[bytes, float], float] = OrderedDict()


def spacegroup_number(structure, symprec: float = 0.1) -> float:
    """spglib space group number at ``symprec`` Å (NaN where spglib fails), cached per process by structure content."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    key = (content_key(structure), float(symprec))
    if key in _spacegroup_cache:
        _spacegroup_cache.move_to_end(key)
        return _spacegroup_cache[key]
    try:
        with quiet_spglib():
            number = float(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:  # spglib fails on some generated cells: count them out of this property only
        number = float("nan")
    _spacegroup_cache[key] = number
    if len(_spacegroup_cache) > _SPACEGROUP_CACHE_SIZE:
        _spacegroup_cache.popitem(last=False)
    return number


def per_structure_properties(structures, symprec: float = 0.1) -> dict[str, np.ndarray]:
    """Property arrays aligned with ``structures`` (NaN for None or where a value cannot be computed).

    Returns:
        a, b, c (Å), alpha, beta, gamma (degrees), spacegroup (spglib number at
        ``symprec`` Å), density (g/cm³) and n_elements, one value per structure; and
        atomic_number, pooled over every site of every structure (not aligned).
    """
    n = len(structures)
    values = {name: np.full(n, np.nan) for name in PER_STRUCTURE}
    atomic_numbers: list[int] = []
    for index, structure in enumerate(structures):
        if structure is None:
            continue
        for name, value in zip(("a", "b", "c", "alpha", "beta", "gamma"), structure.lattice.parameters):
            values[name][index] = value
        values["spacegroup"][index] = spacegroup_number(structure, symprec)
        try:
            values["density"][index] = float(structure.density)
        except Exception:  # a cell without volume
            pass
        values["n_elements"][index] = len(structure.composition.elements)
        atomic_numbers.extend(structure.atomic_numbers)
    for name in PER_STRUCTURE:
        values[name][~np.isfinite(values[name])] = np.nan
    values["atomic_number"] = np.asarray(atomic_numbers, dtype=float)
    return {name: values[name] for name in PROPERTIES}


def structure_properties(structures, symprec: float = 0.1) -> dict[str, np.ndarray]:
    """Property arrays with missing values left out (atomic numbers pooled over every site)."""
    aligned = per_structure_properties([s for s in structures if s is not None], symprec)
    return {name: values[~np.isnan(values)] for name, values in aligned.items()}


class KSMetric:
    """K-S statistic and p-value per property, generated vs reference.

    Args:
        symprec: spglib tolerance (Å) for the space groups.
    """

    requires = frozenset({"structures", "reference"})

    def __init__(self, symprec: float = 0.1):
        self.symprec = symprec

    def get_config(self) -> dict[str, Any]:
        return {"symprec": self.symprec}

    def compute(self, *, structures, reference, tensors=None) -> dict[str, float]:
        """``ks_<property>`` and ``pvalue_<property>`` for every property, plus ``ks_mean``.

        Properties with no values on one side (e.g. nothing decoded) give NaN. Counts:
        ``n_used_<property>`` and ``n_reference_used_<property>``, the generated and
        reference values each test was computed on (structures, or sites for
        ``atomic_number``; a None entry or a structure spglib cannot analyse is left
        out of that property), ``n_used_ks_mean`` (properties averaged),
        ``n_generated`` (entries given) and ``n_failed`` (None entries).
        """
        return self.compute_details(structures=structures, reference=reference)[0]

    def compute_details(self, *, structures, reference, tensors=None) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
        """The figures of :meth:`compute` and the property arrays of both sides.

        Details: ``{"generated": {...}, "reference": {...}}`` with a, b, c, alpha,
        beta, gamma, spacegroup, density and n_elements aligned with the input lists
        (NaN for None entries and failures). The site-pooled atomic numbers are not
        per structure, so they stay out of the details (reports pool them themselves).
        """
        from scipy.stats import ks_2samp

        structures = structure_list(structures, "structures")
        reference = structure_list(reference, "reference")
        generated = per_structure_properties(structures, self.symprec)
        real = per_structure_properties(reference, self.symprec)
        result: dict[str, float] = {}
        for name in PROPERTIES:
            g, r = generated[name][~np.isnan(generated[name])], real[name][~np.isnan(real[name])]
            result[f"n_used_{name}"], result[f"n_reference_used_{name}"] = float(len(g)), float(len(r))
            if len(g) and len(r):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # "exact calculation unsuccessful, switching to asymp"
                    test = ks_2samp(r, g)
                result[f"ks_{name}"], result[f"pvalue_{name}"] = float(test.statistic), float(test.pvalue)
            else:
                result[f"ks_{name}"], result[f"pvalue_{name}"] = float("nan"), float("nan")
        statistics = [result[f"ks_{name}"] for name in PROPERTIES]
        result["ks_mean"] = float(np.nanmean(statistics)) if not np.isnan(statistics).all() else float("nan")
        result["n_used_ks_mean"] = float(np.isfinite(statistics).sum())
        result["n_generated"] = float(len(structures))
        result["n_failed"] = float(sum(s is None for s in structures))
        per_structure = lambda values: {name: values[name] for name in PER_STRUCTURE}  # noqa: E731
        return result, {"generated": per_structure(generated), "reference": per_structure(real)}
