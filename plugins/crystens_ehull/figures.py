"""The report figure of the ``ehull`` metric: paper Fig. 8, the energy above hull of the generated structures."""

from __future__ import annotations

from typing import Any

from crystens_core.evaluation import STABILITY_THRESHOLD
from crystens_core.report import Figure, draw_histograms, finite_values


def e_above_hull_histogram(details: dict, *, name: str = "ehull", settings: dict[str, Any] | None = None, **_: Any) -> list[Figure]:
    """One figure: the histogram of ``e_above_hull`` with the stability threshold of this evaluation.

    Args:
        details: the metric's details; draws ``details["generated"]["e_above_hull"]``
            (and the reference side's, when the metric scored the reference).
        name: the metric's name in this run (for the title).
        settings: the evaluation settings (``stability_threshold_ev_per_atom``).
    """
    generated = details.get("generated", {}).get("e_above_hull")
    if generated is None:
        return []
    reference = details.get("reference", {}).get("e_above_hull")
    threshold = (settings or {}).get("stability_threshold_ev_per_atom", STABILITY_THRESHOLD)
    values = finite_values(generated)
    stable = int((values <= threshold).sum())
    share = f"{stable} of {len(generated)} generated structures ({stable / len(generated):.1%}) within {threshold} eV/atom of the hull" if len(generated) else "no structures"

    def draw(figure) -> None:
        axis = figure.subplots()
        draw_histograms(axis, [("generated", values, "C0")], "e_above_hull", reference=reference, title="", density=reference is not None and finite_values(reference).size > 0)
        axis.axvline(threshold, color="C3", linestyle="--", linewidth=1.2, label=f"stable ≤ {threshold} eV/atom")
        axis.legend(fontsize=8, frameon=False)
        axis.set_title(share, fontsize=10)
        figure.suptitle(f"Energy above hull (paper Fig. 8; metric {name})")

    caption = f"Energy above the convex hull (eV/atom) of the generated structures (paper Fig. 8); {share}. NaN (failed) structures are left out of the histogram."
    return [Figure("e-above-hull", "Energy above hull", caption, draw=draw, size=(9, 4.2), shows=("e_above_hull",))]
