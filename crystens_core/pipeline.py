"""`CrystalPipeline`: encoder → scaler → generator → decoder → metrics, every part swappable.

Each part is a plain attribute; replacing one is an assignment::

    pipeline = CrystalPipeline(generator="gan")
    pipeline.decoder = get_decoder("paper")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crystens_core.plugins import get_decoder, get_encoder, get_generator, get_metric
from crystens_core.results import DecodeResult
from crystens_core.scaler import FieldScaler


@dataclass
class Samples:
    """What :meth:`CrystalPipeline.sample` returns: the raw tensors and their decodings."""

    tensors: np.ndarray
    results: list[DecodeResult] = field(default_factory=list)

    @property
    def structures(self) -> list:
        """The decoded structures (failed decodings left out)."""
        return [r.structure for r in self.results if r.ok]

    @property
    def aligned_structures(self) -> list:
        """One entry per tensor: its structure, or None where decoding failed (what metrics get)."""
        return [r.structure for r in self.results]


class CrystalPipeline:
    """Train a generator on crystals, sample new ones, decode and evaluate them.

    Args:
        generator: a generator instance or a registered name.
        encoder: an encoder instance (default ``crystens``, 52 sites).
        decoder: a decoder instance (default ``auto``).
        metrics: metric instances or names (a dict name → metric, or a list of names).
        scaler: a fitted :class:`FieldScaler`; fitted on the training tensors when None.
    """

    def __init__(self, generator: Any, *, encoder: Any = None, decoder: Any = None, metrics: Any = (), scaler: FieldScaler | None = None):
        self.generator = get_generator(generator) if isinstance(generator, str) else generator
        self.encoder = encoder if encoder is not None else get_encoder("crystens")
        self.decoder = decoder if decoder is not None else get_decoder("auto")
        if isinstance(metrics, dict):
            self.metrics = dict(metrics)
        else:
            self.metrics = {m if isinstance(m, str) else type(m).__name__: get_metric(m) if isinstance(m, str) else m for m in metrics}
        self.scaler = scaler
        self.reference_: Any = []  # the training dataset after fit (its name reaches the metrics)

    def encode(self, dataset) -> np.ndarray:
        """Raw tensors of a :class:`~crystens_core.data.CrystalDataset` (its space groups when it has them)."""
        return self.encoder.encode_batch(dataset.structures, dataset.spacegroups)

    def fit(self, dataset, **fit_options: Any) -> "CrystalPipeline":
        """Encode ``dataset``, fit the scaler (if not given) and train the generator.

        ``fit_options`` go to the generator's ``fit`` (``steps``, ``checkpoint_dir``,
        ``allow_data_change``, ...); ``data_name`` (recorded with the data's fingerprint in
        checkpoints) defaults to the dataset's name when the generator's ``fit`` takes it.
        """
        tensors = self.encode(dataset)
        if self.scaler is None:
            self.scaler = FieldScaler(getattr(self.generator, "feature_range", (0.0, 1.0))).fit(tensors)
        config = self.encoder.get_config() if hasattr(self.encoder, "get_config") else {}
        if getattr(dataset, "name", "") and "data_name" in inspect.signature(self.generator.fit).parameters:
            fit_options.setdefault("data_name", dataset.name)
        self.generator.fit(tensors, scaler=self.scaler, encoder_config=config, **fit_options)
        self.reference_ = dataset
        return self

    def sample(self, n: int, *, seed: int = 0, progress: bool = False) -> Samples:
        """``n`` generated tensors, decoded by ``self.decoder``."""
        tensors = self.generator.sample(n, seed=seed, progress=progress)
        return Samples(tensors, self.decoder.decode_batch(tensors, progress=progress))

    def evaluate(self, samples: Samples, reference: list | None = None, details: dict | None = None) -> dict[str, dict[str, Any]]:
        """Every metric on the samples; ``reference`` defaults to the training structures.

        Metrics get one structure per tensor (None where decoding failed or the structure
        fails :func:`crystens_core.structures.structure_problem`). A metric that
        raises gives ``{"error": "..."}`` and the others still run. ``figures["sun"]``
        (the S.U.N. rate) is added when the metrics' details have ``is_unique``,
        ``is_novel`` and ``e_above_hull``.

        Args:
            samples: what :meth:`sample` returned.
            reference: reference structures (default: the training set).
            details: when given, filled with metric name → ``{"generated": {...},
                "reference": {...}}`` from the metrics that have ``compute_details``.
        """
        evaluation = self.evaluate_with_details(samples, reference)
        if details is not None:
            details.update(evaluation.details)
        figures = dict(evaluation.figures)
        if evaluation.sun is not None and "sun" not in figures:
            figures["sun"] = evaluation.sun
        return figures

    def evaluate_with_details(self, samples: Samples, reference: list | None = None):
        """Like :meth:`evaluate`, returning a :class:`crystens_core.evaluation.Evaluation`."""
        from crystens_core.evaluation import checked_reference, run_metrics
        from crystens_core.structures import structure_problem

        structures = [s if s is not None and structure_problem(s) is None else None for s in samples.aligned_structures]
        reference_structures, _ = checked_reference(reference if reference is not None else self.reference_)
        return run_metrics(self.metrics, tensors=samples.tensors, structures=structures, reference=reference_structures)
