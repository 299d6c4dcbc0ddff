"""Batched CGCNN predictions for a list of structures, failures counted per reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from crystens_cgcnn.graph import MAX_NEIGHBORS, RADIUS, CrystalGraph, GraphError, build_graph, gaussian_centres
from crystens_cgcnn.model import atom_features, load_model
from crystens_cgcnn.properties import check_properties


class Predictions(dict):
    """``{property: (n,) float64 array}``, NaN where a structure failed.

    Attributes:
        reasons: one entry per structure: None, or why it has no prediction.
        failures: reason → count (the reason categories of ``reasons``).
    """

    def __init__(self, values: dict[str, np.ndarray], reasons: list[str | None]):
        super().__init__(values)
        self.reasons = reasons
        self.failures = Counter(reason.split(":")[0] for reason in reasons if reason)

    @property
    def n_failed(self) -> int:
        """Structures without a prediction."""
        return sum(self.failures.values())


def _batch_tensors(graphs: Sequence[CrystalGraph], features: np.ndarray, centres: torch.Tensor, device: torch.device):
    """Concatenate graphs into CGCNN's batched inputs (neighbour indices offset per crystal)."""
    sizes = np.array([len(g.numbers) for g in graphs])
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    numbers = np.concatenate([g.numbers for g in graphs])
    neighbors = np.concatenate([g.neighbors + offset for g, offset in zip(graphs, offsets)])
    distances = torch.from_numpy(np.concatenate([g.distances for g in graphs]))
    var = float(centres[1] - centres[0])
    # Expanded in float64 then cast, as the original (numpy) does.
    nbr_fea = torch.exp(-((distances.unsqueeze(-1) - centres) ** 2) / var**2).to(torch.float32)
    atom_fea = torch.from_numpy(features[numbers])
    crystal_index = torch.from_numpy(np.repeat(np.arange(len(graphs)), sizes))
    return atom_fea.to(device), nbr_fea.to(device), torch.from_numpy(neighbors).to(device), crystal_index.to(device)


def predict(
    structures,
    properties=None,
    *,
    batch_size: int = 256,
    progress: bool = False,
    device: str = "cpu",
    weights_dir: str | Path | None = None,
    num_threads: int | None = 1,
) -> Predictions:
    """CGCNN predictions of the pretrained Materials Project models, one float per structure.

    Units: formation_energy and final_energy eV/atom, band_gap eV, fermi_energy eV,
    bulk_modulus and shear_modulus log10(GPa), poisson_ratio dimensionless.

    Args:
        structures: pymatgen ``Structure`` objects; None entries (failed decodes) are allowed.
        properties: names from :data:`crystens_cgcnn.properties.PROPERTIES`; None = all seven.
        batch_size: structures per forward pass.
        progress: show a progress bar.
        device: torch device for the networks ("cpu", "cuda").
        weights_dir: folder of converted weights; None = the ones shipped with crystens.
        num_threads: torch CPU threads while predicting (restored afterwards); None =
            leave torch's setting. One is the default: the network is small and
            memory-bound, and several OpenMP threads stall badly when the cores are
            shared (measured in docs/metrics-cgcnn.md).

    Returns:
        :class:`Predictions`: a dict property → float64 array aligned with
        ``structures`` (NaN where one failed), with ``reasons`` and ``failures``.

    Raises:
        ValueError: unknown property or batch_size < 1.
        CGCNNWeightsError: weight files missing or unreadable.
    """
    names = check_properties(properties)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    models = [load_model(name, weights_dir) for name in names]
    features = atom_features(weights_dir)
    for model in models:
        graph = model.record["graph"]
        if graph["radius"] != RADIUS or graph["max_num_nbr"] != MAX_NEIGHBORS:
            raise ValueError(f"{model.name}: graph settings {graph} differ from radius {RADIUS} Å, {MAX_NEIGHBORS} neighbours")
    centres = torch.from_numpy(gaussian_centres())
    torch_device = torch.device(device)
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        values, reasons = _predict_batches(list(structures), names, models, features, centres, torch_device, batch_size, progress)
    finally:
        torch.set_num_threads(previous_threads)
    return Predictions(values, reasons)


def _predict_batches(structures, names, models, features, centres, torch_device, batch_size, progress):
    from crystens_core.progress import progress_bar

    known = ~np.isnan(features).any(axis=1)
    values = {name: np.full(len(structures), np.nan) for name in names}
    reasons: list[str | None] = [None] * len(structures)
    bar = progress_bar(total=len(structures), desc="cgcnn", unit="structure", enable=progress)
    for start in range(0, len(structures), batch_size):
        chunk = range(start, min(start + batch_size, len(structures)))
        graphs, kept = [], []
        for index in chunk:
            try:
                graphs.append(build_graph(structures[index], known))
                kept.append(index)
            except GraphError as exc:
                reasons[index] = str(exc)
            except Exception as exc:  # anything odd in one structure must not stop the others
                reasons[index] = f"graph construction failed: {type(exc).__name__}: {exc}"
        if graphs:
            inputs = _batch_tensors(graphs, features, centres, torch_device)
            for name, model in zip(names, models):
                values[name][kept] = model(*inputs, len(graphs)).double().cpu().numpy()
        bar.update(len(chunk))
    bar.close()
    bad = ~np.all([np.isfinite(v) for v in values.values()], axis=0) if values else np.zeros(0, bool)
    for index in np.flatnonzero(bad):
        if reasons[index] is None:
            reasons[index] = "non-finite prediction"
            for array in values.values():
                array[index] = np.nan
    return values, reasons
