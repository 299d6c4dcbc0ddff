"""CGCNN (Xie & Grossman, Phys. Rev. Lett. 120, 145301 (2018)) in plain torch, and its loader.

The modules and parameter names are those of the original ``cgcnn/model.py`` so
that the pretrained state dicts load key for key. Weights are read only from the
converted ``<property>.safetensors`` + ``<property>.json`` (see
:mod:`crystens_cgcnn.convert`); nothing here unpickles.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from torch import nn

from crystens_cgcnn.properties import ATOM_INIT_NAME, FORMAT, PROPERTIES, WEIGHTS_DIR


class CGCNNWeightsError(FileNotFoundError):
    """Converted CGCNN weights that are missing or unreadable; the message says which file and how to make it."""


class ConvLayer(nn.Module):
    """One gated graph convolution: v_i ← softplus(v_i + BN(Σ_j σ(z_ij W_f) ⊙ softplus(z_ij W_s)))."""

    def __init__(self, atom_fea_len: int, nbr_fea_len: int):
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)

    def forward(self, atom_fea: torch.Tensor, nbr_fea: torch.Tensor, nbr_idx: torch.Tensor) -> torch.Tensor:
        """Args: atom features (N, A), neighbour Gaussian features (N, M, G), neighbour indices (N, M)."""
        n, m = nbr_idx.shape
        total = torch.cat([atom_fea.unsqueeze(1).expand(n, m, self.atom_fea_len), atom_fea[nbr_idx], nbr_fea], dim=2)
        gated = self.bn1(self.fc_full(total).view(-1, 2 * self.atom_fea_len)).view(n, m, 2 * self.atom_fea_len)
        nbr_filter, nbr_core = gated.chunk(2, dim=2)
        summed = torch.sum(torch.sigmoid(nbr_filter) * nn.functional.softplus(nbr_core), dim=1)
        return nn.functional.softplus(atom_fea + self.bn2(summed))


class CrystalGraphConvNet(nn.Module):
    """Embedding → ``n_conv`` convolutions → mean pooling per crystal → ``n_h`` softplus layers → one output.

    Args:
        orig_atom_fea_len: element feature length (92).
        nbr_fea_len: Gaussian distance features (41).
        atom_fea_len: hidden site features.
        n_conv: convolution layers.
        h_fea_len: hidden crystal features.
        n_h: hidden layers after pooling.
    """

    def __init__(self, orig_atom_fea_len: int, nbr_fea_len: int, atom_fea_len: int = 64, n_conv: int = 3, h_fea_len: int = 128, n_h: int = 1):
        super().__init__()
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList([ConvLayer(atom_fea_len, nbr_fea_len) for _ in range(n_conv)])
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        if n_h > 1:
            self.fcs = nn.ModuleList([nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
        self.fc_out = nn.Linear(h_fea_len, 1)

    def forward(self, atom_fea: torch.Tensor, nbr_fea: torch.Tensor, nbr_idx: torch.Tensor, crystal_index: torch.Tensor, n_crystals: int) -> torch.Tensor:
        """The normalised prediction per crystal, shape (n_crystals,).

        Args:
            crystal_index: (N,) the crystal each site belongs to (sites of a crystal contiguous).
        """
        softplus = nn.functional.softplus
        atom_fea = self.embedding(atom_fea)
        for conv in self.convs:
            atom_fea = conv(atom_fea, nbr_fea, nbr_idx)
        sums = torch.zeros(n_crystals, atom_fea.shape[1], dtype=atom_fea.dtype, device=atom_fea.device).index_add_(0, crystal_index, atom_fea)
        counts = torch.bincount(crystal_index, minlength=n_crystals).to(atom_fea.dtype).unsqueeze(1)
        crys_fea = softplus(self.conv_to_fc(softplus(sums / counts)))
        for fc in getattr(self, "fcs", ()):
            crys_fea = softplus(fc(crys_fea))
        return self.fc_out(crys_fea).squeeze(1)


class PretrainedCGCNN:
    """A loaded model: the network (eval mode), its record and the target normaliser.

    Attributes:
        name: property name (see :data:`crystens_cgcnn.properties.PROPERTIES`).
        record: the JSON written by the converter (architecture, graph, normaliser, source).
        network: the :class:`CrystalGraphConvNet`.
    """

    def __init__(self, name: str, record: dict, network: CrystalGraphConvNet):
        self.name = name
        self.record = record
        self.network = network
        self.mean = float(record["normalizer"]["mean"])
        self.std = float(record["normalizer"]["std"])

    @torch.no_grad()
    def __call__(self, atom_fea, nbr_fea, nbr_idx, crystal_index, n_crystals) -> torch.Tensor:
        """Predictions in the property's units (``record["units"]``), shape (n_crystals,)."""
        return self.network(atom_fea, nbr_fea, nbr_idx, crystal_index, n_crystals) * self.std + self.mean


def _weights_dir(weights_dir: str | Path | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR


def _missing(path: Path) -> CGCNNWeightsError:
    return CGCNNWeightsError(
        f"CGCNN weights file {path} is missing; convert the original models once with "
        "`python -m crystens_cgcnn.convert /path/to/cgcnn/pretrained` (the folder of *.pth.tar files)"
    )


def read_record(name: str, weights_dir: str | Path | None = None) -> dict:
    """The JSON record of one converted model, checked.

    Raises:
        CGCNNWeightsError: the file is missing, not JSON, or not a crystens CGCNN record.
    """
    path = _weights_dir(weights_dir) / f"{name}.json"
    if not path.is_file():
        raise _missing(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CGCNNWeightsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CGCNNWeightsError(f"{path}: not a crystens CGCNN record (format {record.get('format') if isinstance(record, dict) else None!r}, expected {FORMAT!r})")
    return record


@functools.lru_cache(maxsize=None)
def _load(name: str, weights_dir: Path) -> PretrainedCGCNN:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    record = read_record(name, weights_dir)
    path = weights_dir / f"{name}.safetensors"
    if not path.is_file():
        raise _missing(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CGCNNWeightsError(f"{path}: unreadable safetensors file ({exc})") from exc
    network = CrystalGraphConvNet(**record["architecture"])
    result = network.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys if not key.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise CGCNNWeightsError(f"{path}: weights do not fit the architecture in {name}.json (missing {missing}, unexpected {result.unexpected_keys})")
    return PretrainedCGCNN(name, record, network.eval())


def load_model(name: str, weights_dir: str | Path | None = None) -> PretrainedCGCNN:
    """The pretrained model for property ``name`` (cached per process).

    Args:
        name: one of :data:`crystens_cgcnn.properties.PROPERTIES`.
        weights_dir: folder of converted weights; None = the ones shipped with crystens.

    Raises:
        ValueError: unknown property.
        CGCNNWeightsError: missing or unreadable weight files.
    """
    if name not in PROPERTIES:
        raise ValueError(f"unknown CGCNN property {name!r}; known: {', '.join(PROPERTIES)}")
    return _load(name, _weights_dir(weights_dir).resolve())


@functools.lru_cache(maxsize=None)
def _atom_features(weights_dir: Path):
    from crystens_cgcnn.graph import load_atom_features

    path = weights_dir / ATOM_INIT_NAME
    if not path.is_file():
        raise _missing(path)
    return load_atom_features(path)


def atom_features(weights_dir: str | Path | None = None):
    """The (101, 92) element feature table (row Z; NaN where no features) from ``atom_init.json``."""
    return _atom_features(_weights_dir(weights_dir).resolve())
