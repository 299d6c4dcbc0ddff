"""Elemental chemical potentials that turn a model's total energies into formation energies.

A machine-learned potential predicts total energies on its own scale (CHGNet:
MPtrj, with Materials Project corrections folded in differently from the DFT
formation energies). Per-element chemical potentials μ_el (eV/atom) are fitted by
least squares over Materials Project structures so that

    E_model / N − Σ_el (n_el / N) μ_el  ≈  ΔH_f(DFT)   (eV/atom),

then a structure's formation energy is its model energy per atom minus the
μ-weighted composition. Fits ship as JSON in ``crystens_ehull/data`` (written by
``python -m crystens_ehull.build_reference fit``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystens_ehull.hull import shipped_data_path


class ReferencesError(ValueError):
    """Chemical potentials that are missing or unreadable (the message says which file and why)."""


@dataclass
class ChemicalPotentials:
    """Fitted elemental chemical potentials of one energy model.

    Attributes:
        model: the energy model they belong to (e.g. ``chgnet-0.3.0``).
        potentials: element symbol → μ (eV/atom).
        metadata: how they were fitted (data, counts, held-out MAE in eV/atom).
    """

    model: str
    potentials: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def elements(self) -> frozenset[str]:
        return frozenset(self.potentials)

    def formation_energy(self, composition, energy_per_atom: float) -> float:
        """Formation energy (eV/atom) of ``composition`` with model total energy ``energy_per_atom`` (eV/atom).

        Raises:
            KeyError: an element without a fitted potential (the message names it).
        """
        fractions = composition.fractional_composition.get_el_amt_dict()
        missing = sorted(set(fractions) - set(self.potentials))
        if missing:
            raise KeyError(f"no {self.model} chemical potential for {', '.join(missing)}")
        return float(energy_per_atom - sum(x * self.potentials[el] for el, x in fractions.items()))

    def to_json(self, path: str | Path) -> None:
        payload = {"model": self.model, "chemical_potentials_eV_per_atom": dict(sorted(self.potentials.items())), **self.metadata}
        Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path) -> ChemicalPotentials:
        """Load a file written by :meth:`to_json`.

        Raises:
            ReferencesError: the file is missing or not a chemical-potential file.
        """
        path = Path(path)
        if not path.is_file():
            raise ReferencesError(f"{path}: no such chemical-potential file")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            potentials = {str(k): float(v) for k, v in payload.pop("chemical_potentials_eV_per_atom").items()}
            model = str(payload.pop("model"))
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError) as exc:
            raise ReferencesError(f"{path}: not a chemical-potential file ({type(exc).__name__}: {exc})") from exc
        return cls(model, potentials, payload)

    @classmethod
    def shipped(cls, model: str) -> ChemicalPotentials:
        """The fit crystens ships for ``model`` (e.g. ``chgnet-0.3.0``).

        Raises:
            ReferencesError: none is shipped for this model; the message says how to fit one.
        """
        path = shipped_data_path(f"references-{model}.json")
        if not path.is_file():
            shipped = sorted(p.name[len("references-") : -len(".json")] for p in path.parent.glob("references-*.json"))
            raise ReferencesError(
                f"no chemical potentials are shipped for energy model {model!r} (shipped: {', '.join(shipped) or 'none'}); "
                "fit them with `python -m crystens_ehull.build_reference fit` and pass the JSON as references=PATH"
            )
        return cls.from_json(path)


def composition_matrix(compositions: Sequence, elements: Sequence[str]) -> np.ndarray:
    """Atom fractions, one row per composition, one column per element of ``elements``."""
    column = {el: j for j, el in enumerate(elements)}
    matrix = np.zeros((len(compositions), len(elements)))
    for i, composition in enumerate(compositions):
        for el, x in composition.fractional_composition.get_el_amt_dict().items():
            matrix[i, column[el]] = x
    return matrix


def fit_chemical_potentials(compositions: Sequence, energies_per_atom: Sequence[float], formation_energies: Sequence[float], *, loss: str = "huber", scale: float = 0.1) -> dict[str, float]:
    """Per-element μ (eV/atom) so that model energy − Σ x_el μ_el matches DFT formation energies.

    Args:
        compositions: pymatgen Compositions of the fitting structures.
        energies_per_atom: model total energies (eV/atom).
        formation_energies: DFT formation energies (eV/atom).
        loss: ``"linear"`` (ordinary least squares) or a robust scipy loss (``"huber"``,
            ``"soft_l1"``) so that a few structures the model gets badly wrong do not
            shift every μ.
        scale: residual (eV/atom) where the robust loss starts to flatten.

    Returns:
        element symbol → μ for every element present in ``compositions``.
    """
    from scipy.optimize import least_squares

    elements = sorted({el for c in compositions for el in c.get_el_amt_dict()})
    matrix = composition_matrix(compositions, elements)
    target = np.asarray(energies_per_atom, dtype=float) - np.asarray(formation_energies, dtype=float)
    start, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    if loss != "linear":
        start = least_squares(lambda mu: matrix @ mu - target, start, loss=loss, f_scale=scale, jac=lambda mu: matrix).x
    return {el: float(mu) for el, mu in zip(elements, start)}
