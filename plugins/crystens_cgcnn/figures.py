"""The report figure of the ``cgcnn`` metric: paper Fig. 7, violin plots of the predicted properties."""

from __future__ import annotations

from typing import Any

import numpy as np

from crystens_core.report import REFERENCE_COLOUR, Figure, axis_label, finite_values, violin


def property_violins(details: dict, *, name: str = "cgcnn", values: dict[str, Any] | None = None, **_: Any) -> list[Figure]:
    """One figure: per predicted property, reference vs generated violins, K-S D in the titles.

    Args:
        details: the metric's details, ``{"generated": {property: array}, "reference": {...}}``.
        name: the metric's name in this run (for the caption).
        values: the metric's figures (``ks_<property>`` annotates each panel).
    """
    generated, reference = details.get("generated", {}), details.get("reference", {})
    names = list(generated)
    if not names:
        return []
    values = values or {}
    columns = min(4, len(names))
    rows = int(np.ceil(len(names) / columns))

    def draw(figure) -> None:
        axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
        for axis, prop in zip(axes, names):
            violin(axis, [finite_values(reference.get(prop)), finite_values(generated[prop])], ["reference", "generated"], [REFERENCE_COLOUR, "C0"])
            ks = next((values[k] for k in (f"ks_{prop}", f"{prop}_ks") if isinstance(values.get(k), (int, float))), None)
            axis.set_title(axis_label(prop) + (f"\nK-S D = {ks:.3f}" if ks is not None and np.isfinite(ks) else ""), fontsize=9)
            axis.tick_params(labelsize=8)
        for axis in axes[len(names) :]:
            axis.set_axis_off()
        figure.suptitle(f"CGCNN-predicted properties (paper Fig. 7; metric {name})")

    caption = f"Violin plots of the properties CGCNN predicts for the reference and the generated structures (paper Fig. 7), from the details of metric `{name}`."
    return [Figure("cgcnn", "CGCNN properties", caption, draw=draw, size=(3.3 * columns, 3.4 * rows))]
