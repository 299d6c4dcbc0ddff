"""The paper's CGCNN metric (Fig. 7): predicted properties of generated vs reference crystals.

For each property the seven pretrained CGCNN models predict (formation and final
energy in eV/atom, band gap and Fermi energy in eV, bulk and shear modulus in
log10(GPa), Poisson ratio), the two-sample K-S statistic D and its p-value between
the reference and the generated predictions, and both means. Structures CGCNN
cannot make a graph of (None, no neighbour within 8 Å, unknown element, ...) are
counted in ``n_failed`` and left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crystens_cgcnn.properties import check_properties


class CGCNNMetric:
    """K-S statistic, p-value and means of CGCNN predictions, generated vs reference.

    Args:
        properties: property names (see ``crystens_cgcnn.PROPERTIES``); None = all seven.
        batch_size: structures per forward pass.
        device: torch device ("cpu", "cuda").
        num_threads: torch CPU threads while predicting; None = torch's setting.
    """

    requires = frozenset({"structures", "reference"})

    def __init__(self, properties: list[str] | None = None, batch_size: int = 256, device: str = "cpu", num_threads: int | None = 1):
        self.properties = properties
        self.batch_size = batch_size
        self.device = device
        self.num_threads = num_threads

    def get_config(self) -> dict[str, Any]:
        return {"properties": None if self.properties is None else list(self.properties), "batch_size": self.batch_size, "device": self.device, "num_threads": self.num_threads}

    def _predict(self, structures):
        from crystens_cgcnn.inference import predict

        return predict(list(structures), check_properties(self.properties), batch_size=self.batch_size, device=self.device, num_threads=self.num_threads)

    def figures(self, details: dict, **context: Any) -> list:
        """The report's paper Fig. 7 (see :func:`crystens_cgcnn.figures.property_violins`)."""
        from crystens_cgcnn.figures import property_violins

        return property_violins(details, **context)

    def compute(self, *, structures, reference, tensors=None) -> dict[str, float]:
        """Per property ``ks_<p>``, ``pvalue_<p>``, ``mean_<p>`` (generated), ``reference_mean_<p>``;
        ``ks_mean`` over properties; ``n_generated``, ``n_failed``, ``n_reference_failed``; the
        counts each figure is over: ``n_used_<p>`` and ``n_reference_used_<p>`` (structures
        with a prediction) and ``n_used_ks_mean`` (properties averaged).

        A property with no prediction on one side gives NaN.
        """
        return self.compute_details(structures=structures, reference=reference)[0]

    def compute_details(self, *, structures, reference, tensors=None) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
        """``compute``'s figures and the per-structure predictions of both sides.

        Returns:
            (figures, {"generated": {property: array aligned with structures}, "reference": {property: array}}),
            NaN where a structure failed.
        """
        from scipy.stats import ks_2samp

        generated, real = self._predict(structures), self._predict(reference)
        result: dict[str, float] = {}
        for name in generated:
            g, r = generated[name][np.isfinite(generated[name])], real[name][np.isfinite(real[name])]
            result[f"n_used_{name}"], result[f"n_reference_used_{name}"] = float(len(g)), float(len(r))
            if len(g) and len(r):
                test = ks_2samp(r, g)
                result[f"ks_{name}"], result[f"pvalue_{name}"] = float(test.statistic), float(test.pvalue)
            else:
                result[f"ks_{name}"], result[f"pvalue_{name}"] = float("nan"), float("nan")
            result[f"mean_{name}"] = float(g.mean()) if len(g) else float("nan")
            result[f"reference_mean_{name}"] = float(r.mean()) if len(r) else float("nan")
        statistics = [result[f"ks_{name}"] for name in generated]
        result["ks_mean"] = float(np.nanmean(statistics)) if not np.isnan(statistics).all() else float("nan")
        result["n_used_ks_mean"] = float(np.isfinite(statistics).sum())
        result["n_generated"] = float(len(generated.reasons))
        result["n_failed"] = float(generated.n_failed)
        result["n_reference_failed"] = float(real.n_failed)
        details = {"generated": dict(generated), "reference": dict(real)}
        return result, details
