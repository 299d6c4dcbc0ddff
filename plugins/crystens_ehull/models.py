"""Energy models for the energy above hull: formation energies (eV/atom) of many structures.

- ``chgnet``: CHGNet 0.3.0 (the weights ship in the ``chgnet`` wheel; offline), total
  energies turned into formation energies with fitted chemical potentials;
- ``m3gnet``: a matgl model from a *local* folder (``model.json``, ``model.pt``,
  ``state.pt``): a potential (total energies + chemical potentials, like CHGNet) or a
  formation-energy model (used directly);
- ``cgcnn``: the pretrained CGCNN formation-energy network of ``crystens_cgcnn``.

Every model returns one value per structure, NaN with a reason where a structure
fails; one bad structure never stops the others. Heavy libraries (torch, chgnet,
matgl) are imported when a model is created.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crystens_ehull.references import ChemicalPotentials, ReferencesError

MODELS = ("chgnet", "m3gnet", "cgcnn")
CHGNET_VERSION = "0.3.0"
MATGL_FILES = ("model.json", "model.pt", "state.pt")


class ModelError(ValueError):
    """An energy model that cannot be used (unknown name, missing or unreadable folder)."""


@contextlib.contextmanager
def _quiet():
    """Silence the libraries' banners and per-call warnings (stdout and warnings only)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _batches(indices: Sequence[int], size: int):
    for start in range(0, len(indices), size):
        yield list(indices[start : start + size])


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


# -- total-energy models (potentials) -----------------------------------------------------
class PotentialModel:
    """A model of total energies; formation energies come from fitted chemical potentials.

    Subclasses implement :meth:`_predict_batch` (total energies in eV/atom of a list of
    structures, raising on failure) and set ``key`` (the name of its reference fit).
    """

    key = ""
    batch_size = 16

    def __init__(self, references: str | Path | None = None):
        self.references_path = references
        self._references: ChemicalPotentials | None = None

    @property
    def references(self) -> ChemicalPotentials:
        if self._references is None:
            if self.references_path is not None:
                self._references = ChemicalPotentials.from_json(self.references_path)
            else:
                self._references = ChemicalPotentials.shipped(self.key)
        return self._references

    def _predict_batch(self, structures: list) -> np.ndarray:
        raise NotImplementedError

    def total_energies(self, structures: Sequence, *, bar=None) -> tuple[np.ndarray, list[str | None]]:
        """Total energies (eV/atom), NaN with a reason where a structure fails.

        A batch that fails is retried one structure at a time, so that only the
        structures that cause the failure are lost.
        """
        values = np.full(len(structures), np.nan)
        reasons: list[str | None] = [None] * len(structures)
        todo = [i for i, s in enumerate(structures) if s is not None]
        for i, s in enumerate(structures):
            if s is None:
                reasons[i] = "no structure"
        for batch in _batches(todo, self.batch_size):
            try:
                values[batch] = self._predict_batch([structures[i] for i in batch])
            except Exception:
                for i in batch:
                    try:
                        values[i] = self._predict_batch([structures[i]])[0]
                    except Exception as exc:
                        reasons[i] = f"energy model failed: {_short(exc)}"
            if bar is not None:
                bar.update(len(batch))
        for i in np.flatnonzero(~np.isfinite(values)):
            if reasons[i] is None:
                reasons[i] = "energy model failed: non-finite energy"
        return values, reasons

    def formation_from_total(self, structures: Sequence, energies_per_atom: np.ndarray, reasons: list[str | None]) -> tuple[np.ndarray, list[str | None]]:
        """Formation energies (eV/atom) from total energies with the fitted chemical potentials."""
        references = self.references
        formation = np.full(len(structures), np.nan)
        reasons = list(reasons)
        for i, structure in enumerate(structures):
            if reasons[i] is None:
                try:
                    formation[i] = references.formation_energy(structure.composition, energies_per_atom[i])
                except KeyError as exc:
                    reasons[i] = f"element not supported by the energy model: {exc.args[0]}"
        return formation, reasons

    def formation_energies(self, structures: Sequence, *, bar=None) -> tuple[np.ndarray, list[str | None]]:
        """Formation energies (eV/atom), NaN with a reason where a structure fails."""
        self.references  # fail early (before any model work) when there are none
        energies, reasons = self.total_energies(structures, bar=bar)
        return self.formation_from_total(structures, energies, reasons)


@functools.lru_cache(maxsize=4)
def load_chgnet(device: str = "cpu"):
    """The CHGNet 0.3.0 model shipped in the ``chgnet`` wheel (loaded once per device)."""
    from crystens_core.plugins import require

    require("chgnet", "torch", extra="eval", what=f"energy model 'chgnet' (CHGNet {CHGNET_VERSION})")
    from chgnet.model import CHGNet

    with _quiet():
        return CHGNet.load(model_name=CHGNET_VERSION, use_device=device, verbose=False)


class CHGNetModel(PotentialModel):
    """CHGNet 0.3.0 total energies (offline: the weights are in the wheel).

    Args:
        device: torch device ("cpu", "cuda").
        batch_size: structures per forward pass.
        references: chemical-potential JSON; None = the shipped fit.
    """

    name = "chgnet"
    key = f"chgnet-{CHGNET_VERSION}"

    def __init__(self, device: str = "cpu", batch_size: int = 16, references: str | Path | None = None):
        super().__init__(references)
        self.device = device
        self.batch_size = batch_size
        self.model = load_chgnet(device)

    def _predict_batch(self, structures: list) -> np.ndarray:
        with _quiet():
            predictions = self.model.predict_structure(structures, task="e", batch_size=len(structures))
        if isinstance(predictions, dict):
            predictions = [predictions]
        return np.array([float(p["e"]) for p in predictions])


def _check_matgl_folder(model_path: str | Path | None) -> Path:
    if model_path is None:
        raise ModelError(
            "energy model 'm3gnet' needs model_path=, a local matgl model folder (with model.json, model.pt, "
            "state.pt; e.g. M3GNet-MP-2021.2.8-PES): matgl would otherwise download models from a hub at run time, "
            "which crystens does not do"
        )
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise ModelError(f"model_path {str(model_path)!r}: no such folder (a local matgl model folder is expected)")
    missing = [name for name in MATGL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"model_path {str(model_path)!r}: not a matgl model folder, missing {', '.join(missing)}")
    return folder


@functools.lru_cache(maxsize=4)
def load_matgl(folder: str):
    """A matgl model from a local folder, loaded once.

    Raises:
        ModelError: the folder is not a loadable matgl model (old or foreign format).
    """
    from crystens_core.plugins import require

    require("matgl", "torch", extra="m3gnet", what="energy model 'm3gnet' (matgl)")
    import matgl
    import torch

    safe = []
    try:  # formation-energy models store a Normalizer, which torch's safe loader must be told about
        from matgl.data.transformer import Normalizer

        safe.append(Normalizer)
    except ImportError:
        pass
    try:
        with _quiet(), torch.serialization.safe_globals(safe):
            return matgl.load_model(folder)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ModelError(f"model_path {folder!r}: matgl {matgl.__version__} cannot load this model ({_short(cause)})") from exc


class MatglPotentialModel(PotentialModel):
    """Total energies of a matgl potential (e.g. M3GNet-MP-2021.2.8-PES) from a local folder.

    Args:
        model_path: the model folder.
        device: torch device.
        batch_size: structures per forward pass.
        references: chemical-potential JSON; None = the shipped fit for this folder name.
    """

    name = "m3gnet"

    def __init__(self, model_path: str | Path, device: str = "cpu", batch_size: int = 16, references: str | Path | None = None, model=None):
        super().__init__(references)
        self.folder = _check_matgl_folder(model_path)
        self.key = f"matgl-{self.folder.name}"
        self.device = device
        self.batch_size = batch_size
        self.potential = model if model is not None else load_matgl(str(self.folder.resolve()))
        self.potential.calc_forces = False
        self.potential.calc_stresses = False
        self.potential.calc_hessian = False
        self.potential.to(device)

    def _predict_batch(self, structures: list) -> np.ndarray:
        import matgl
        import torch
        from matgl.ext.pymatgen import Structure2Graph
        from torch_geometric.data import Batch

        converter = Structure2Graph(element_types=self.potential.model.element_types, cutoff=self.potential.model.cutoff)
        graphs, lattices, states = [], [], []
        for structure in structures:
            graph, lattice, state = converter.get_graph(structure)
            graphs.append(graph)
            lattices.append(lattice)
            states.append(state)
        state = torch.tensor(np.asarray(states, dtype=float), dtype=matgl.float_th).reshape(len(structures), -1)
        with _quiet(), torch.no_grad():
            energies = self.potential(Batch.from_data_list(graphs), torch.cat(lattices), state)[0]
        return energies.detach().cpu().numpy().astype(float) / np.array([len(s) for s in structures])


class DirectModel:
    """Base of models that predict formation energies directly (no chemical potentials)."""

    def formation_energies(self, structures: Sequence, *, bar=None) -> tuple[np.ndarray, list[str | None]]:
        raise NotImplementedError


class MatglFormationModel(DirectModel):
    """A matgl formation-energy model (e.g. MEGNet-MP-2018.6.1-Eform) from a local folder, in eV/atom."""

    name = "m3gnet"

    def __init__(self, model_path: str | Path, device: str = "cpu", model=None):
        self.folder = _check_matgl_folder(model_path)
        self.key = f"matgl-{self.folder.name}"
        self.device = device
        self.model = model if model is not None else load_matgl(str(self.folder.resolve()))

    def formation_energies(self, structures: Sequence, *, bar=None) -> tuple[np.ndarray, list[str | None]]:
        values = np.full(len(structures), np.nan)
        reasons: list[str | None] = [None] * len(structures)
        for i, structure in enumerate(structures):
            if structure is None:
                reasons[i] = "no structure"
            else:
                try:
                    with _quiet():
                        values[i] = float(self.model.predict_structure(structure))
                    if not np.isfinite(values[i]):
                        raise ValueError("non-finite energy")
                except Exception as exc:
                    values[i] = np.nan
                    reasons[i] = f"energy model failed: {_short(exc)}"
            if bar is not None:
                bar.update(1)
        return values, reasons


class CGCNNModel(DirectModel):
    """CGCNN formation energy (eV/atom) from ``crystens_cgcnn`` (Xie & Grossman 2018, MP-trained).

    Args:
        device: torch device.
        batch_size: structures per forward pass.
    """

    name = "cgcnn"
    key = "cgcnn-formation-energy"

    def __init__(self, device: str = "cpu", batch_size: int = 256):
        import importlib.util

        if importlib.util.find_spec("crystens_cgcnn") is None:
            raise ModelError("energy model 'cgcnn' needs the crystens_cgcnn plugin, which is not installed")
        self.device = device
        self.batch_size = batch_size

    def formation_energies(self, structures: Sequence, *, bar=None) -> tuple[np.ndarray, list[str | None]]:
        from crystens_cgcnn import predict

        predictions = predict(list(structures), ["formation_energy"], batch_size=self.batch_size, device=self.device)
        reasons = [None if r is None else ("no structure" if s is None else f"energy model failed: {r}") for s, r in zip(structures, predictions.reasons)]
        if bar is not None:
            bar.update(len(structures))
        values = np.asarray(predictions["formation_energy"], dtype=float)
        for i in np.flatnonzero(~np.isfinite(values)):
            reasons[i] = reasons[i] or "energy model failed: non-finite energy"
        return values, reasons


def energy_model(name: str, *, model_path: str | Path | None = None, references: str | Path | None = None, device: str = "cpu", batch_size: int = 16):
    """The energy model called ``name`` (one of :data:`MODELS`).

    Raises:
        ModelError: unknown name, or a model folder that is missing or cannot be loaded.
        ReferencesError: a potential with no chemical potentials (none shipped, none given).
    """
    if name == "chgnet":
        model = CHGNetModel(device=device, batch_size=batch_size, references=references)
    elif name == "m3gnet":
        folder = _check_matgl_folder(model_path)
        loaded = load_matgl(str(folder.resolve()))
        from matgl.apps.pes import Potential

        if isinstance(loaded, Potential):
            model = MatglPotentialModel(folder, device=device, batch_size=batch_size, references=references, model=loaded)
        elif callable(getattr(loaded, "predict_structure", None)):
            model = MatglFormationModel(folder, device=device, model=loaded)
        else:
            raise ModelError(f"model_path {str(model_path)!r}: a matgl {type(loaded).__name__}, neither a potential nor a formation-energy model")
    elif name == "cgcnn":
        model = CGCNNModel(device=device, batch_size=max(batch_size, 64))
    else:
        raise ModelError(f"unknown energy model {name!r}; available: {', '.join(MODELS)}")
    if isinstance(model, PotentialModel):
        model.references  # noqa: B018 - raise ReferencesError now, not after the model work
    return model


@functools.lru_cache(maxsize=2)
def _optimizer(device: str):
    from chgnet.model import StructOptimizer

    with _quiet():
        return StructOptimizer(model=load_chgnet(device), optimizer_class="FIRE", use_device=device, on_isolated_atoms="ignore")


def relax_structures(structures: Sequence, *, max_steps: int = 500, fmax: float = 0.1, device: str = "cpu", bar=None) -> tuple[list, np.ndarray, list[str | None]]:
    """Relax positions and cell with CHGNet (FIRE, ASE FrechetCellFilter).

    Args:
        structures: Structures (None allowed).
        max_steps: optimiser steps at most per structure.
        fmax: force convergence (eV/Å).
        device: torch device.

    Returns:
        relaxed structures (None where relaxation failed), their final CHGNet total
        energies (eV/atom), and a reason per structure (None where it worked).
    """
    optimizer = _optimizer(device)
    relaxed: list = [None] * len(structures)
    energies = np.full(len(structures), np.nan)
    reasons: list[str | None] = [None] * len(structures)
    for i, structure in enumerate(structures):
        if structure is None:
            reasons[i] = "no structure"
        else:
            try:
                with _quiet():
                    result = optimizer.relax(structure, fmax=fmax, steps=max_steps, relax_cell=True, verbose=False)
                final = result["final_structure"]
                for key in list(final.site_properties):
                    final.remove_site_property(key)
                relaxed[i] = final
                energies[i] = float(result["trajectory"].energies[-1]) / len(final)
                if not np.isfinite(energies[i]):
                    raise ValueError("non-finite energy")
            except Exception as exc:
                relaxed[i], energies[i] = None, np.nan
                reasons[i] = f"relaxation failed: {_short(exc)}"
        if bar is not None:
            bar.update(1)
    return relaxed, energies, reasons


__all__ = ["MODELS", "ModelError", "ReferencesError", "energy_model", "relax_structures", "load_chgnet", "load_matgl"]
