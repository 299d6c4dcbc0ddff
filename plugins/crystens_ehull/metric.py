"""The ``ehull`` metric: energy above the convex hull of generated crystals (paper Fig. 8).

Each structure's formation energy (eV/atom) comes from an energy model (CHGNet by
default; see :mod:`crystens_ehull.models`), optionally after a CHGNet relaxation; its
energy above hull is the distance to the hull of known Materials Project phases
(:mod:`crystens_ehull.hull`). Structures that cannot be scored (None, an element
the hull or the model does not know, a model or relaxation failure) are counted
per reason and left out of the averages.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from crystens_ehull.models import MODELS, ModelError, _check_matgl_folder

#: Failure categories (the text before ":" of a reason) → the figure that counts them.
FAILURE_FIGURES = {
    "no structure": "n_failed_no_structure",
    "element not in the hull data": "n_failed_unsupported_element",
    "element not supported by the energy model": "n_failed_unsupported_element",
    "energy model failed": "n_failed_energy_model",
    "relaxation failed": "n_failed_relaxation",
    "hull failed": "n_failed_hull",
}


def _category(reason: str) -> str:
    return reason.split(":", 1)[0]


class EHullMetric:
    """Energy above hull (eV/atom) of generated structures from a machine-learned energy.

    Args:
        model: energy model: ``"chgnet"`` (CHGNet 0.3.0, offline), ``"m3gnet"`` (a
            matgl model folder given by ``model_path``) or ``"cgcnn"`` (formation
            energy from ``crystens_cgcnn``).
        model_path: local matgl model folder (``model.json``, ``model.pt``, ``state.pt``) for ``"m3gnet"``.
        references: JSON of fitted elemental chemical potentials (from
            ``python -m crystens_ehull.build_reference fit``); None = the shipped fit
            for the model (CHGNet 0.3.0, M3GNet-MP-2021.2.8-PES).
        hull: CSV(.gz) of known phases (``material_id``, ``formula``,
            ``formation_energy_per_atom``); None = the shipped Materials Project hull.
        relax: relax each structure (positions and cell) with CHGNet before scoring.
        max_steps: relaxation steps at most per structure.
        fmax: relaxation force tolerance (eV/Å).
        device: torch device of the models ("cpu", "cuda").
        batch_size: structures per forward pass.
        score_reference: also score the reference structures (as many model
            evaluations again); their energies go into the details' reference side.
        threads: torch CPU threads while scoring (None: torch's setting). On a machine
            whose cores are busy, 1 was 10-20 times faster than torch's default.
        progress: show progress bars.

    Attributes:
        reasons_: after :meth:`compute`, one entry per generated structure: None or why it failed.
        failures_: reason category → count.
    """

    def __init__(
        self,
        model: str = "chgnet",
        model_path: str | None = None,
        references: str | None = None,
        hull: str | None = None,
        relax: bool = False,
        max_steps: int = 500,
        fmax: float = 0.1,
        device: str = "cpu",
        batch_size: int = 16,
        score_reference: bool = False,
        threads: int | None = None,
        progress: bool = True,
    ):
        if model not in MODELS:
            raise ModelError(f"unknown energy model {model!r} for metric 'ehull'; available: {', '.join(MODELS)}")
        if model == "m3gnet":
            _check_matgl_folder(model_path)
        if references is not None and not Path(references).is_file():
            raise ModelError(f"references {references!r}: no such chemical-potential file")
        if hull is not None and not Path(hull).is_file():
            raise ModelError(f"hull {hull!r}: no such file")
        if int(max_steps) < 1 or int(batch_size) < 1 or (threads is not None and int(threads) < 1):
            raise ValueError(f"max_steps, batch_size and threads must be at least 1, got {max_steps}, {batch_size} and {threads}")
        self.model = model
        self.model_path = None if model_path is None else str(model_path)
        self.references = None if references is None else str(references)
        self.hull = None if hull is None else str(hull)
        self.relax = bool(relax)
        self.max_steps = int(max_steps)
        self.fmax = float(fmax)
        self.device = device
        self.batch_size = int(batch_size)
        self.score_reference = bool(score_reference)
        self.threads = None if threads is None else int(threads)
        self.progress = bool(progress)
        self.requires = frozenset({"structures", "reference"} if score_reference else {"structures"})
        self._energy_model = None
        self._hull = None
        self.reasons_: list[str | None] = []
        self.failures_: Counter = Counter()

    def get_config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_path": self.model_path,
            "references": self.references,
            "hull": self.hull,
            "relax": self.relax,
            "max_steps": self.max_steps,
            "fmax": self.fmax,
            "device": self.device,
            "batch_size": self.batch_size,
            "score_reference": self.score_reference,
            "threads": self.threads,
            "progress": self.progress,
        }

    # -- parts -------------------------------------------------------------------------------
    def convex_hull(self):
        """The hull structures are measured against (loaded once)."""
        from crystens_ehull.hull import ConvexHull

        if self._hull is None:
            self._hull = ConvexHull.shipped() if self.hull is None else ConvexHull.from_file(self.hull)
        return self._hull

    def energy_model(self):
        """The energy model (loaded on first use)."""
        from crystens_ehull.models import energy_model

        if self._energy_model is None:
            self._energy_model = energy_model(self.model, model_path=self.model_path, references=self.references, device=self.device, batch_size=self.batch_size)
        return self._energy_model

    def score(self, structures, *, desc: str = "ehull") -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """Energy above hull and formation energy (both eV/atom) per structure, NaN with a reason where one fails."""
        if self.threads is None:
            return self._score(structures, desc)
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._score(structures, desc)
        finally:
            torch.set_num_threads(before)

    def _score(self, structures, desc: str) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        from crystens_core.progress import progress_bar
        from crystens_ehull.models import PotentialModel, relax_structures

        structures = list(structures)
        n = len(structures)
        hull = self.convex_hull()
        model = self.energy_model()
        reasons: list[str | None] = [None] * n
        for i, structure in enumerate(structures):
            if structure is None:
                reasons[i] = "no structure"
            else:
                unknown = {el.symbol for el in structure.composition.elements} - hull.elements
                if unknown:
                    reasons[i] = f"element not in the hull data: {', '.join(sorted(unknown))}"
        todo = [i for i in range(n) if reasons[i] is None]
        candidates = [structures[i] for i in todo]
        formation = np.full(n, np.nan)
        if todo:
            if self.relax:
                bar = progress_bar(total=len(todo), desc=f"{desc}: relax (chgnet)", unit="structure", enable=self.progress)
                relaxed, chgnet_energies, relax_reasons = relax_structures(candidates, max_steps=self.max_steps, fmax=self.fmax, device=self.device, bar=bar)
                bar.close()
                for i, reason in zip(todo, relax_reasons):
                    reasons[i] = reason
                keep = [k for k, reason in enumerate(relax_reasons) if reason is None]
                todo, candidates = [todo[k] for k in keep], [relaxed[k] for k in keep]
            bar = progress_bar(total=len(todo), desc=f"{desc}: {self.model}", unit="structure", enable=self.progress)
            if self.relax and self.model == "chgnet" and isinstance(model, PotentialModel):
                # The relaxation's last CHGNet energy is the energy of the relaxed structure.
                values, model_reasons = model.formation_from_total(candidates, chgnet_energies[keep], [None] * len(candidates))
                bar.update(len(candidates))
            else:
                values, model_reasons = model.formation_energies(candidates, bar=bar)
            bar.close()
            for k, (i, value, reason) in enumerate(zip(todo, values, model_reasons)):
                if reason is None and not np.isfinite(value):
                    reason = model_reasons[k] = "energy model failed: non-finite energy"
                formation[i], reasons[i] = value, reason
            scored = [k for k, reason in enumerate(model_reasons) if reason is None]
            compositions = [None] * n
            for k in scored:
                compositions[todo[k]] = candidates[k].composition
        else:
            compositions = [None] * n
        e_hull, hull_reasons = hull.e_above_hull_many(compositions, formation)
        for i in range(n):
            if reasons[i] is None and hull_reasons[i] is not None:
                reasons[i] = hull_reasons[i]
            if reasons[i] is not None:
                e_hull[i] = formation[i] = np.nan
        return e_hull, formation, reasons

    # -- the metric --------------------------------------------------------------------------
    def figures(self, details: dict, **context: Any) -> list:
        """The report's paper Fig. 8 (see :func:`crystens_ehull.figures.e_above_hull_histogram`)."""
        from crystens_ehull.figures import e_above_hull_histogram

        return e_above_hull_histogram(details, **context)

    def compute_details(self, *, structures, reference=None, tensors=None) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
        """Figures and per-structure values.

        Returns:
            ``(figures, details)``: figures as :meth:`compute`; details
            ``{"generated": {"e_above_hull", "formation_energy"}, "reference": {...}}``
            (eV/atom, aligned with ``structures``, NaN where a structure failed; the
            reference side only with ``score_reference=True`` and a reference given).
        """
        if structures is None:
            raise ValueError("metric 'ehull' needs structures (a list of pymatgen Structures, None for failed ones)")
        e_hull, formation, reasons = self.score(structures, desc="ehull")
        self.reasons_ = reasons
        self.failures_ = Counter(_category(r) for r in reasons if r)
        figures = summarise(e_hull)
        figures["n_used"] = figures["n_scored"]  # every figure is over the scored structures
        figures["n_structures"] = float(len(e_hull))
        figures["n_failed"] = float(sum(self.failures_.values()))
        for figure in dict.fromkeys(FAILURE_FIGURES.values()):
            figures[figure] = float(sum(count for category, count in self.failures_.items() if FAILURE_FIGURES.get(category) == figure))
        details: dict[str, dict[str, np.ndarray]] = {"generated": {"e_above_hull": e_hull, "formation_energy": formation}, "reference": {}}
        if self.score_reference and reference is not None:
            ref_hull, ref_formation, _ = self.score(reference, desc="ehull reference")
            details["reference"] = {"e_above_hull": ref_hull, "formation_energy": ref_formation}
            reference_figures = summarise(ref_hull)
            figures.update({f"reference_{name}": value for name, value in reference_figures.items()})
            figures["n_reference_used"] = reference_figures["n_scored"]
        return figures, details

    def compute(self, *, structures, reference=None, tensors=None) -> dict[str, float]:
        """Energy above hull over the structures that could be scored.

        Returns:
            ``e_above_hull_mean`` and ``e_above_hull_median`` (eV/atom),
            ``frac_e_above_hull_le_0.1`` and ``frac_e_above_hull_le_0`` (share of the
            scored structures at most 0.1 / 0 eV/atom above the hull; NaN when none
            was scored), ``n_scored`` (also ``n_used``: every figure is over them; with
            ``score_reference``, ``n_reference_used`` for the ``reference_*`` figures),
            ``n_structures``, ``n_failed`` and one
            ``n_failed_<reason>`` count per reason (no structure, unsupported element,
            energy model, relaxation, hull).
        """
        return self.compute_details(structures=structures, reference=reference, tensors=tensors)[0]


def summarise(e_hull: np.ndarray) -> dict[str, float]:
    """Mean, median and the shares at most 0.1 and 0 eV/atom above hull of the finite values."""
    scored = e_hull[np.isfinite(e_hull)]
    nan = float("nan")
    return {
        "e_above_hull_mean": float(scored.mean()) if scored.size else nan,
        "e_above_hull_median": float(np.median(scored)) if scored.size else nan,
        "frac_e_above_hull_le_0.1": float((scored <= 0.1).mean()) if scored.size else nan,
        "frac_e_above_hull_le_0": float((scored <= 0.0).mean()) if scored.size else nan,
        "n_scored": float(scored.size),
    }
