"""The contracts components keep, as typed :class:`typing.Protocol` classes.

:class:`Generator` is exactly what the core calls on a generator:
:class:`crystens_core.pipeline.CrystalPipeline` (which ``crystens train/sample/run``
call), :func:`crystens_core.pretrained.load_generator` and the conformance suite
(:mod:`crystens_core.testing`). ``isinstance(model, Generator)`` checks that the
members exist (not their signatures). This module imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - types only
    import numpy as np

    from crystens_core.scaler import FieldScaler


@runtime_checkable
class Generator(Protocol):
    """A model of the distribution of CrysTens tensors (C, S, S), C channels, S = 12 + max_sites.

    The registered factory (usually the class) is called as ``factory(preset=PRESET,
    **settings)`` by ``crystens train`` (``settings`` from ``--option KEY=VALUE``,
    ``--batch-size`` and ``--seed``), and ``type(model)(**model.get_config())`` must
    rebuild the same configuration.

    Optional members the core reads with a default: ``name`` (str, recorded in a
    sample folder's ``summary.json``; default ""), ``feature_range`` ((low, high),
    the scaled interval the pipeline fits its :class:`FieldScaler` to; default
    (0.0, 1.0)), and the ``fit`` keywords ``data_name`` (passed only when ``fit``
    names it) and ``allow_data_change`` (passed, as True, only on
    ``crystens train --allow-data-change``).
    """

    #: Optimisation steps done so far (after ``fit``, ``from_pretrained`` or a resume).
    step_: int
    #: One JSON-able record per step done, e.g. ``{"step": 1, "loss": 0.5}`` (floats; NaN is written as null).
    history_: list[dict[str, float]]

    def get_config(self) -> dict[str, Any]:
        """The constructor keyword arguments (``preset`` included), JSON-serialisable."""
        ...

    def fit(
        self,
        tensors: np.ndarray,
        *,
        steps: int | None = None,
        scaler: FieldScaler | None = None,
        encoder_config: dict[str, Any] | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = True,
        progress: bool = True,
        time_limit: float | None = None,
    ) -> Generator:
        """Train on raw tensors (N, C, S, S) float32 in physical units (a memory map is fine); returns self.

        Args:
            steps: total steps to reach, counting those already done (None: the generator's default).
            scaler: a fitted :class:`FieldScaler` over ``feature_range``; None: fit one on ``tensors``.
            encoder_config: the encoder's ``get_config()``, to save with the model.
            checkpoint_dir: a folder for checkpoints (``crystens train`` passes ``RUN/checkpoints``).
            resume: continue from the newest checkpoint in ``checkpoint_dir``, if any.
            progress: show a progress bar.
            time_limit: stop after this many seconds of training (s), checkpointed.
        """
        ...

    def sample(self, n: int, *, seed: int = 0, progress: bool = False) -> np.ndarray:
        """``n`` raw tensors (n, C, S, S), finite float32 in physical units, ready for a decoder.

        The same ``seed`` gives the same tensors, another seed other ones; entries that
        are zero by construction (``crystens_core.layout.field_index_map(C, S) < 0``) are 0.
        """
        ...

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the fitted model to ``directory`` (created): ``crystens.json`` and its weights file; returns the folder."""
        ...

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> Generator:
        """Load a folder written by :meth:`save_pretrained`; ``overrides`` are settings
        (``crystens sample --device D`` passes ``device=D``).

        Raises:
            crystens_core.pretrained.PretrainedError: the folder is not one of this
                generator's, or a file is missing (the message says "missing …") or damaged.
        """
        ...
