"""The paper's distribution metric (Figs. 4–6): two-sample Kolmogorov–Smirnov statistics.

For each property the K-S statistic D (0: same distribution, 1: disjoint) and its
p-value are computed between the reference (training) structures and the
generated ones: lattice lengths a, b, c (Å), angles α, β, γ (degrees), space group
number (spglib), atomic numbers (pooled over all sites), density (g/cm³) and number
of elements per structure.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

PROPERTIES = ("a", "b", "c", "alpha", "beta", "gamma", "spacegroup", "atomic_number", "density", "n_elements")


def structure_properties(structures, symprec: float = 0.1) -> dict[str, np.ndarray]:
    """Per-structure property arrays (atomic numbers pooled over every site)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    values: dict[str, list] = {name: [] for name in PROPERTIES}
    for structure in structures:
        for name, value in zip(("a", "b", "c", "alpha", "beta", "gamma"), structure.lattice.parameters):
            values[name].append(value)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values["spacegroup"].append(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
        except Exception:  # spglib fails on some generated cells: count them out of this property only
            pass
        values["atomic_number"].extend(structure.atomic_numbers)
        values["density"].append(float(structure.density))
        values["n_elements"].append(len(structure.composition.elements))
    return {name: np.asarray(v, dtype=float) for name, v in values.items()}


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

        Properties with no values on one side (e.g. nothing decoded) give NaN.
        """
        from scipy.stats import ks_2samp

        generated = structure_properties([s for s in structures if s is not None], self.symprec)
        real = structure_properties(reference, self.symprec)
        result: dict[str, float] = {}
        for name in PROPERTIES:
            if len(generated[name]) and len(real[name]):
                test = ks_2samp(real[name], generated[name])
                result[f"ks_{name}"], result[f"pvalue_{name}"] = float(test.statistic), float(test.pvalue)
            else:
                result[f"ks_{name}"], result[f"pvalue_{name}"] = float("nan"), float("nan")
        statistics = [result[f"ks_{name}"] for name in PROPERTIES]
        result["ks_mean"] = float(np.nanmean(statistics)) if not np.isnan(statistics).all() else float("nan")
        result["n_generated"] = float(len(structures))
        return result
