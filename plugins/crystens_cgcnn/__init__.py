"""CGCNN property predictions and the ``cgcnn`` distribution metric (paper Fig. 7).

Seven pretrained Crystal Graph Convolutional Neural Networks (Xie & Grossman,
Phys. Rev. Lett. 120, 145301 (2018); weights MIT, trained on Materials Project
data) re-implemented in torch; the weights ship converted to safetensors + JSON.

    >>> from crystens_cgcnn import predict
    >>> values = predict(structures, ["formation_energy"])   # eV/atom, NaN where a structure failed

Importing this package is cheap; torch is imported on the first ``predict``.
"""

from __future__ import annotations

from crystens_cgcnn.properties import PROPERTIES

__all__ = ["PROPERTIES", "predict"]


def predict(structures, properties=None, *, batch_size: int = 256, progress: bool = False, **options):
    """CGCNN predictions, one float per structure (see :func:`crystens_cgcnn.inference.predict`).

    Args:
        structures: pymatgen Structures (None allowed: counted as a failure).
        properties: property names (``PROPERTIES``); None = all seven.
        batch_size: structures per forward pass.
        progress: show a progress bar.
        **options: ``device`` ("cpu"), ``weights_dir`` (None = shipped weights),
            ``num_threads`` (1; None = torch's setting).

    Returns:
        dict property → float64 array (NaN where a structure failed), with
        ``.reasons`` (per structure) and ``.failures`` (reason → count).
    """
    from crystens_core.plugins import require

    require("torch", "safetensors", extra="eval", what="CGCNN predictions")
    from crystens_cgcnn.inference import predict as _predict

    return _predict(structures, properties, batch_size=batch_size, progress=progress, **options)
