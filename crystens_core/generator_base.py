"""What every generator shares, whatever its deep-learning library.

:class:`GeneratorBase` holds the presets and settings (the constructor arguments),
the fitted scaler, the encoder settings, the step counter and loss history, the
``crystens.json`` record, the checks before training starts or resumes, and the one
training loop, sampling loop and checkpoint code of every generator: batch indices
and step seeds, history, progress bar, checkpoint cadence, the time limit (agreed
across processes), resume from the newest intact checkpoint, ``sample`` in chunks
with unscaling and the structural-zero mask, ``save_pretrained`` / ``from_pretrained``.

A backend (a base class per deep-learning library) implements only the hooks listed
in :class:`GeneratorBase` ("backend hooks"): build, one training step, one generation
call, weight and optimiser I/O and the cross-process agreement. This module imports
no deep-learning library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crystens_core import __version__, layout
from crystens_core.errors import CrystensError, SettingsError
from crystens_core.pretrained import (
    CONFIG_NAME,
    FORMAT,
    TRAINER_NAME,
    WEIGHTS_NAME,
    CheckpointMismatchError,
    CheckpointWarning,
    PretrainedError,
    commit_checkpoint,
    newest_intact_checkpoint,
    read_pretrained_config,
    write_json_atomic,
)
from crystens_core.safe_io import path_inside, read_json
from crystens_core.scaler import FieldScaler


def step_seed(seed: int, step: int, process: int = 0) -> int:
    """The seed of the random numbers of training step ``step`` (or of the sampling
    chunk starting at index ``step``) in process ``process``: a function of the three
    only, so that a run resumed at step ``step`` draws what the uninterrupted run would."""
    return (int(seed) * 1_000_003 + int(step)) * 1_009 + int(process)


def data_fingerprint(tensors: np.ndarray, name: str | None = None, *, chunk: int = 256) -> dict[str, Any]:
    """What identifies the training data of a run: its name, the number of tensors and a
    SHA-256 over the shape and the raw tensors as little-endian float32 (read in chunks
    of ``chunk`` tensors, so a memory map is not loaded whole)."""
    digest = hashlib.sha256(repr(tuple(int(v) for v in tensors.shape)).encode())
    for start in range(0, len(tensors), chunk):
        digest.update(np.ascontiguousarray(tensors[start : start + chunk], dtype="<f4").tobytes())
    return {"name": str(name) if name else f"{len(tensors)} tensors", "count": int(len(tensors)), "sha256": digest.hexdigest()}


def batch_rows(tensors: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``tensors[indices]``, in the order of ``indices``; a memory map is read in ascending
    row order (each distinct row once), so a batch costs one forward pass over the file."""
    if not isinstance(tensors, np.memmap):
        return tensors[indices]
    rows, order = np.unique(indices, return_inverse=True)
    return np.asarray(tensors[rows])[order.reshape(-1)]


def annealed(start: float, step: int, steps: int) -> float:
    """``start`` decayed linearly to 0 over ``steps`` steps (0 from step ``steps`` on)."""
    if start <= 0 or steps <= 0:
        return 0.0
    return float(start) * max(0.0, 1.0 - step / steps)


@dataclass(frozen=True)
class SettingBound:
    """The values a generator setting may take (inclusive), checked before anything is built.

    Attributes:
        low, high: range of a number, or of every item of a list of numbers.
        choices: the strings allowed (empty: any).
        items: fewest and most items of a list setting.
    """

    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    items: tuple[int, int] | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already of the right type) is out of bounds, or None."""
        if isinstance(value, list):
            if self.items is not None and not self.items[0] <= len(value) <= self.items[1]:
                fewest, most = self.items
                return f"needs {fewest if fewest == most else f'{fewest} to {most}'} items, got {len(value)}"
            return next((f"item {i}: {p}" for i, p in ((i, self.problem(v)) for i, v in enumerate(value)) if p), None)
        if isinstance(value, str):
            return f"must be one of {', '.join(map(repr, self.choices))}" if self.choices and value not in self.choices else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                return f"must be in [{self.low if self.low is not None else '-inf'}, {self.high if self.high is not None else 'inf'}]"
        return None


def _json_kind(value: Any) -> str:
    """The JSON type of a setting value: bool, int, float, str, list, null (or the Python type)."""
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


class GeneratorBase:
    """Presets, settings, scaler, the pretrained record, the training and sampling loops.

    Backend hooks (what a deep-learning library's base class implements; everything
    else is here): :meth:`_ensure_built` and :meth:`_is_built` (networks and
    optimisers), :meth:`_step_draws` (a step's batch indices and random state from its
    seed) and :meth:`_train_batch` (one training step), :meth:`_generate_batch` (one
    generation call), :meth:`_save_weights` / :meth:`_load_weights` and
    :meth:`_save_optimizer_state` / :meth:`_load_optimizer_state` (weight and optimiser
    files), and :meth:`_agree` (agree on a flag across processes). Optional:
    :meth:`_check_device`, :meth:`_training` and :meth:`_sampling` (contexts around the
    loops), :meth:`_process` and :meth:`_writes_checkpoint` (multi-process runs).

    Args:
        preset: a key of ``PRESETS`` ("small" for a CPU, "paper" for the paper's settings).
        **settings: any value of the preset or of ``COMMON`` to override; an unknown
            name is an error that lists the valid ones.
    """

    #: Generator name and plugin, used only where the class is not registered: the
    #: registration is the source of truth (see :meth:`registration`).
    name: ClassVar[str] = ""
    plugin: ClassVar[str] = ""
    #: Preset name → settings (each subclass defines both "small" and "paper").
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Settings every preset of the family accepts.
    COMMON: ClassVar[dict[str, Any]] = {}
    #: The scaled range the networks produce.
    feature_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    #: The weights file of a pretrained or checkpoint folder.
    weights_name: ClassVar[str] = WEIGHTS_NAME
    #: Setting name → the values it may take; subclasses extend it (``{**Base.SETTING_BOUNDS, ...}``).
    #: Every number and list of numbers of the presets should have one: sizes bound the memory
    #: a setting read from a run folder can make crystens allocate.
    SETTING_BOUNDS: ClassVar[dict[str, SettingBound]] = {
        "batch_size": SettingBound(1, 65_536),
        "steps": SettingBound(0, 10**10),
        "seed": SettingBound(0, 2**32 - 1),
        "checkpoint_every": SettingBound(1, 10**10),
        "keep_checkpoints": SettingBound(0, 10_000),
        "lr": SettingBound(0.0, 10.0),
        "betas": SettingBound(0.0, 1.0, items=(2, 2)),
    }
    #: The files of a training checkpoint folder (each checked before resuming).
    checkpoint_files: ClassVar[tuple[str, ...]] = (CONFIG_NAME, WEIGHTS_NAME, TRAINER_NAME)

    def __init__(self, preset: str = "small", **settings: Any):
        self.check_settings(preset, settings)
        self.preset = preset
        self.overrides = dict(settings)
        self.settings = {**self.COMMON, **self.PRESETS[preset], **settings}
        self.step_ = 0
        self.history_: list[dict[str, float]] = []
        self.scaler_: FieldScaler | None = None
        self.encoder_config_: dict[str, Any] = {}

    # -- configuration ------------------------------------------------------------------------
    @classmethod
    def check_settings(cls, preset: Any, settings: dict[str, Any]) -> None:
        """Check constructor arguments before anything is built (they may come from a file).

        Each setting must be a known name, of the JSON type the presets give it (an
        integer is accepted where a float is expected; null only where a preset has
        it), finite, within :attr:`SETTING_BOUNDS`, and ``device`` must name a device
        of this machine.

        Raises:
            SettingsError: naming the setting, its value and the reason.
        """
        if not isinstance(preset, str) or preset not in cls.PRESETS:
            raise SettingsError(f"{cls.name}: unknown preset {preset!r:.80}; presets: {', '.join(cls.PRESETS)}")
        known = {**cls.COMMON, **cls.PRESETS[preset]}
        unknown = sorted(str(name) for name in settings if name not in known)
        if unknown:
            raise SettingsError(f"{cls.name}: unknown setting(s) {', '.join(unknown)}; settings: {', '.join(sorted(known))}")
        for name, value in settings.items():
            problem = cls._setting_problem(name, value)
            if problem is not None:
                raise SettingsError(f"{cls.name}: setting {name!r} = {value!r:.80}: {problem}")

    @classmethod
    def _setting_problem(cls, name: str, value: Any) -> str | None:
        """Why ``value`` cannot be setting ``name`` (type from the presets, bounds, device), or None."""
        examples = [values[name] for values in (cls.COMMON, *cls.PRESETS.values()) if name in values]
        bound = cls.SETTING_BOUNDS.get(name)
        kinds = {_json_kind(example) for example in examples}
        if "null" in kinds and bound is not None:  # off in every preset: the bound says what it takes when on
            kinds |= {"float"} if bound.low is not None or bound.high is not None else {"str"} if bound.choices else set()
        item_kinds = {_json_kind(item) for example in examples if isinstance(example, list) for item in example}
        for allowed in (kinds, item_kinds):
            if "float" in allowed:
                allowed.add("int")
        if _json_kind(value) not in kinds:
            return f"must be {' or '.join(sorted(kinds))}, got {_json_kind(value)}"
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(value, list) and _json_kind(item) not in item_kinds:
                return f"items must be {' or '.join(sorted(item_kinds))}, got {_json_kind(item)}"
            if isinstance(item, float) and not math.isfinite(item):
                return "must be finite"
        if name == "device" and isinstance(value, str):
            return cls._device_problem(value)
        return bound.problem(value) if bound is not None else None

    @classmethod
    def _device_problem(cls, device: str) -> str | None:
        """Why ``device`` names no usable device of this machine (None: it does); the
        library bases override this."""
        return None

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return {"preset": self.preset, **self.overrides}

    @classmethod
    def class_path(cls) -> str:
        """``module.Class``, as recorded in ``crystens.json``."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, S, S) of the tensors the model was fitted on."""
        if self.scaler_ is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return (self.scaler_.channels_, self.scaler_.size_, self.scaler_.size_)

    # -- training -------------------------------------------------------------------------------
    def _begin_fit(
        self,
        tensors: np.ndarray,
        steps: int | None,
        scaler: FieldScaler | None,
        encoder_config: dict[str, Any] | None,
        checkpoint_dir: str | Path | None,
        resume: bool,
        data_name: str | None = None,
        allow_data_change: bool = False,
    ) -> tuple[np.ndarray, int, Path | None]:
        """Check the tensors, resume from the newest intact checkpoint or set the scaler up, build.

        A damaged checkpoint is passed over (with a :class:`CheckpointWarning`) for the
        newest older one that is whole; a checkpoint of other settings, shape or data is
        refused (:class:`CheckpointMismatchError`) unless ``allow_data_change`` accepts
        other data, with a warning.

        Returns:
            The tensors as an array (a memory map stays one), the total number of
            steps to reach and the checkpoint folder (or None).
        """
        if not isinstance(tensors, np.ndarray):
            tensors = np.asarray(tensors)
        if tensors.ndim != 4 or tensors.shape[2] != tensors.shape[3] or len(tensors) == 0:
            raise ValueError(f"fit needs raw tensors of shape (N, C, S, S), got {tensors.shape}")
        total = int(steps if steps is not None else self.settings["steps"])
        checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.data_ = data_fingerprint(tensors, data_name) if checkpoint_dir else {}
        shape = tuple(tensors.shape[1:])

        def resume_from(folder: Path) -> None:
            record, trainer = self._validate_checkpoint(folder)
            self._check_resumable(record, folder, shape, trainer, allow_data_change)
            try:
                self._load_checkpoint(folder, record, trainer)
            except CrystensError:
                raise
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # damage the checks above missed
                raise PretrainedError(f"{folder}: cannot be loaded ({type(exc).__name__}: {exc})") from exc

        latest = newest_intact_checkpoint(checkpoint_dir, resume_from) if checkpoint_dir and resume else None
        if latest is None:
            if self.scaler_ is None:
                self.scaler_ = scaler if scaler is not None else FieldScaler(self.feature_range).fit(tensors)
            self.encoder_config_ = dict(encoder_config or self.encoder_config_)
        if self.shape != shape:
            raise ValueError(f"tensors have shape {shape}, the model was built for {self.shape}")
        self._ensure_built(*self.shape[:2])
        return tensors, total, checkpoint_dir

    # -- backend hooks ------------------------------------------------------------------------
    def _ensure_built(self, channels: int, size: int) -> None:
        """Build the networks and optimisers for tensors (channels, size, size) once."""
        raise NotImplementedError

    def _is_built(self) -> bool:
        """Whether the networks exist (built, fitted or loaded)."""
        raise NotImplementedError

    def _check_device(self) -> None:
        """Raise :class:`crystens_core.devices.DeviceError` if the ``device`` setting names a
        device this machine does not have (called before anything is built)."""

    def _training(self) -> contextlib.AbstractContextManager[Any]:
        """A context around the training loop (device placement, process group, …)."""
        return contextlib.nullcontext()

    def _process(self) -> tuple[int, int]:
        """(index of this process, number of processes) of the running training."""
        return 0, 1

    def _agree(self, flag: bool) -> bool:
        """``flag`` agreed across the processes of a training run: true when any process's is."""
        return flag

    def _step_draws(self, seed: int, count: int, batch_size: int) -> tuple[np.ndarray, Any]:
        """A training step's ``batch_size`` indices into ``count`` tensors and the backend's
        random state for the step, all drawn from ``seed`` (see :func:`step_seed`)."""
        raise NotImplementedError

    def _train_batch(self, batch: np.ndarray, draws: Any) -> Mapping[str, Any]:
        """One training step on a scaled batch (n, C, S, S) float32 with the state of
        :meth:`_step_draws`; returns named scalar losses."""
        raise NotImplementedError

    def _sampling(self) -> contextlib.AbstractContextManager[Any]:
        """A context around the sampling loop (device placement, evaluation mode, …)."""
        return contextlib.nullcontext()

    def _generate_batch(self, count: int, seed: int) -> np.ndarray:
        """``count`` scaled tensors (count, C, S, S) float32, their random numbers drawn from ``seed``."""
        raise NotImplementedError

    def _save_weights(self, path: Path) -> None:
        """Write the network weights to ``path`` (:attr:`weights_name`), atomically."""
        raise NotImplementedError

    def _load_weights(self, path: Path) -> None:
        """Load the network weights of ``path``; PretrainedError naming what does not fit."""
        raise NotImplementedError

    def _save_optimizer_state(self, folder: Path) -> dict[str, Any]:
        """Write the optimisers' state into a checkpoint folder; returns what ``trainer.json`` adds."""
        raise NotImplementedError

    def _load_optimizer_state(self, folder: Path, trainer: dict[str, Any]) -> None:
        """Restore the optimisers from a checked checkpoint folder and its ``trainer.json``."""
        raise NotImplementedError

    def _writes_checkpoint(self) -> bool:
        """Whether this process writes the checkpoint (after the processes meet, in a multi-process run)."""
        return True

    # -- the training loop ----------------------------------------------------------------------
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
        data_name: str | None = None,
        allow_data_change: bool = False,
    ) -> "GeneratorBase":
        """Train on raw tensors (N, C, S, S), continuing from the last checkpoint if any.

        The batch indices and random numbers of step ``t`` come from
        ``step_seed(seed, t, process)``, so a run resumed from the checkpoint of step
        ``t`` continues exactly as the uninterrupted run would have.

        Args:
            tensors: raw CrysTens tensors in physical units (a memory map is fine).
            steps: total optimisation steps to reach (default: the preset's ``steps``).
            scaler: a fitted :class:`FieldScaler`; fitted on ``tensors`` when None.
            encoder_config: the encoder settings, saved with the model.
            checkpoint_dir: where checkpoints go (every ``checkpoint_every`` steps and at the end).
            resume: continue from the latest checkpoint in ``checkpoint_dir``.
            progress: show a progress bar with the losses and samples per second.
            time_limit: stop (and checkpoint) after this many seconds of training; in a
                multi-process run all processes stop at the same step (the first
                process out of time decides).
            data_name: what the tensors are (e.g. the dataset name), recorded with their
                fingerprint in each checkpoint.
            allow_data_change: resume from a checkpoint trained on other data (with a
                warning) instead of refusing.

        Returns:
            self

        Raises:
            DeviceError: the ``device`` setting names a device this machine does not have.
            PretrainedError: no checkpoint of ``checkpoint_dir`` is intact, or the newest
                intact one is for other settings or data (damaged ones are passed over
                with a warning).
        """
        from crystens_core.progress import progress_bar

        self._check_device()
        tensors, total, checkpoint_dir = self._begin_fit(tensors, steps, scaler, encoder_config, checkpoint_dir, resume, data_name, allow_data_change)
        batch_size = int(self.settings["batch_size"])
        with self._training():
            process, processes = self._process()
            first_step, started = self.step_, time.perf_counter()
            bar = progress_bar(total=total, initial=self.step_, desc=f"train {self.name}", unit="step", enable=progress and process == 0)
            with bar:
                while self.step_ < total:
                    indices, draws = self._step_draws(step_seed(self.settings["seed"], self.step_, process), len(tensors), batch_size)
                    raw = batch_rows(tensors, indices)
                    losses = self._train_batch(self.scaler_.scale(raw), draws)
                    self.step_ += 1
                    record = {"step": self.step_, **{k: float(v) for k, v in losses.items()}}
                    self.history_.append(record)
                    elapsed = time.perf_counter() - started
                    throughput = (self.step_ - first_step) * batch_size * processes / max(elapsed, 1e-9)
                    bar.set_postfix({**{k: f"{v:.4g}" for k, v in record.items() if k != "step"}, "samples/s": f"{throughput:.1f}"}, refresh=False)
                    bar.update(1)
                    out_of_time = time_limit is not None and elapsed >= time_limit
                    if time_limit is not None:
                        # Each process has its own clock: stop together, or one checkpoints
                        # while the others wait for it in the next step's gradient exchange.
                        out_of_time = self._agree(out_of_time)
                    if checkpoint_dir and (self.step_ % self.settings["checkpoint_every"] == 0 or self.step_ == total or out_of_time):
                        self._save_checkpoint(checkpoint_dir)
                    if out_of_time:
                        break
        self.training_seconds_ = time.perf_counter() - started
        return self

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, n: int, *, seed: int = 0, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """``n`` raw tensors (n, C, S, S) in physical units, channels first, ready for a decoder.

        Generated in chunks of ``batch_size`` (default: the larger of the ``batch_size``
        setting and 64), the chunk starting at index ``i`` from ``step_seed(seed, i)``;
        clipped to ``feature_range`` and unscaled. Entries that are zero by construction
        in the layout are set to zero.
        """
        from crystens_core.progress import progress_bar

        if not self._is_built() or self.scaler_ is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit() or from_pretrained() first")
        batch_size = int(batch_size or max(self.settings["batch_size"], 64))
        channels, size, _ = self.shape
        structural_zero = layout.field_index_map(channels, size) < 0
        low, high = self.feature_range
        chunks = []
        with self._sampling(), progress_bar(total=n, desc=f"sample {self.name}", unit="tensor", enable=progress) as bar:
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                scaled = np.asarray(self._generate_batch(count, step_seed(seed, start, 0)), dtype=np.float32)
                raw = self.scaler_.unscale(np.clip(scaled, low, high))
                raw[:, structural_zero] = 0.0
                chunks.append(raw.astype(np.float32, copy=False))
                bar.update(count)
        return np.concatenate(chunks) if chunks else np.zeros((0, channels, size, size), np.float32)

    # -- checkpoints ------------------------------------------------------------------------------
    def _save_checkpoint(self, root: Path) -> Path:
        """Write ``root/step-XXXXXXXX`` atomically (weights, optimiser state, history, config),
        point ``root/latest`` at it and prune old ones."""
        if not self._writes_checkpoint():
            return Path(root)

        def write(folder: Path) -> None:
            self._save_weights(folder / self.weights_name)
            extra = self._save_optimizer_state(folder)
            (folder / TRAINER_NAME).write_text(json.dumps(self._trainer_record(**extra)))
            (folder / CONFIG_NAME).write_text(json.dumps(self._record(), indent=1))

        return commit_checkpoint(root, self.step_, write, keep=int(self.settings["keep_checkpoints"]))

    def _load_checkpoint(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        """Restore networks, optimisers, step and history from a checked checkpoint folder."""
        self._restore(record, directory)
        self._load_weights(directory / self.weights_name)
        self._load_optimizer_state(directory, trainer)
        self.step_ = int(trainer["step"])
        self.history_ = list(trainer["history"])

    def _restore(self, record: dict[str, Any], directory: Path) -> None:
        """Scaler, encoder settings and step from a record, and the networks built (weights not loaded)."""
        self._restore_record(record, directory)
        self._ensure_built(*self.shape[:2])

    def _validate_checkpoint(self, directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``crystens.json`` record and ``trainer.json`` of a whole checkpoint folder.

        Reads and checks every file without loading anything into the model.

        Raises:
            PretrainedError: a file is missing, leads out of the folder, or is truncated
                or malformed (the message names it).
        """
        for name in self.checkpoint_files:
            if not path_inside(directory, name, what="checkpoint file").is_file():
                raise PretrainedError(f"{directory}: missing {name}")
        record = self._read_record(directory)
        trainer = read_json(directory / TRAINER_NAME, error=PretrainedError)
        if not isinstance(trainer, dict) or type(trainer.get("step")) is not int or not isinstance(trainer.get("history"), list):
            raise PretrainedError(f"{directory / TRAINER_NAME}: needs an integer 'step' and a 'history' list")
        if trainer["step"] != record.get("trained_steps"):
            raise PretrainedError(f"{directory}: {TRAINER_NAME} is at step {trainer['step']}, {CONFIG_NAME} at {record.get('trained_steps')}")
        self._check_checkpoint_files(directory, record, trainer)
        return record, trainer

    def _check_checkpoint_files(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        """Check the weight and optimiser files of a checkpoint (headers and sizes); PretrainedError if damaged."""

    def _trainer_record(self, **extra: Any) -> dict[str, Any]:
        """The ``trainer.json`` of a checkpoint: step, loss history, training-data fingerprint, ``extra``."""
        return {"step": self.step_, "history": self.history_, "data": getattr(self, "data_", {}), **extra}

    # -- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``crystens.json`` and the weights file (:attr:`weights_name`) to ``directory`` (created)."""
        if not self._is_built():
            raise RuntimeError(f"{self.name} is not fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_weights(directory / self.weights_name)
        write_json_atomic(directory / CONFIG_NAME, self._record())
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> "GeneratorBase":
        """Load a folder written by :meth:`save_pretrained` (or a checkpoint folder).

        Args:
            directory: the folder.
            **overrides: settings to change, e.g. ``device="cpu"``.

        Raises:
            PretrainedError: missing files, another plugin's or class's folder, or
                weights whose names or shapes do not fit the model.
        """
        directory = Path(directory)
        record = cls._read_record(directory)
        generator = cls._from_record(record, directory, **overrides)
        generator._restore(record, directory)
        generator._load_weights(directory / cls.weights_name)
        return generator

    def _record(self) -> dict[str, Any]:
        """The ``crystens.json`` record of a pretrained or checkpoint folder."""
        name, plugin = self.registration()
        return {
            "format": FORMAT,
            "plugin": plugin,
            "generator": name,
            "class": self.class_path(),
            "crystens_version": __version__,
            "arguments": self.get_config(),
            "shape": list(self.shape),
            "scaler": self.scaler_.to_dict(),
            "encoder": self.encoder_config_,
            "trained_steps": self.step_,
            "weights": self.weights_name,
        }

    @classmethod
    def _read_record(cls, directory: Path) -> dict[str, Any]:
        """The checked record of a folder written by this generator's class and plugin."""
        return read_pretrained_config(directory, expected_class=cls.class_path(), expected_plugin=cls.registration()[1])

    @classmethod
    def registration(cls) -> tuple[str, str]:
        """``(generator name, plugin)`` this class is registered under; the class's ``name`` and ``plugin`` if it is not.

        A subclass registered by another plugin records that plugin, not the one it inherits.
        """
        from crystens_core.plugins import registry

        component = registry().component_of_class("generator", cls)
        return (component.name, component.plugin) if component is not None else (cls.name, cls.plugin)

    @classmethod
    def _from_record(cls, record: dict[str, Any], directory: Path, **overrides: Any) -> "GeneratorBase":
        """A generator with a record's arguments and ``overrides``, checked before it is built.

        Raises:
            PretrainedError: a setting is unknown, of the wrong type or out of bounds
                (the message names the folder's ``crystens.json`` and the setting).
        """
        arguments = {**record["arguments"], **overrides}
        preset = arguments.pop("preset", "small")
        try:
            cls.check_settings(preset, arguments)
        except SettingsError as exc:
            raise PretrainedError(f"{Path(directory) / CONFIG_NAME}: {exc}") from None
        return cls(preset, **arguments)

    def _restore_record(self, record: dict[str, Any], directory: Path) -> None:
        """Scaler, encoder settings and step counter from a record (networks not touched)."""
        try:
            self.scaler_ = FieldScaler.from_dict(record["scaler"])
            channels, size, _ = (int(v) for v in record["shape"])
        except (KeyError, ValueError, TypeError) as exc:
            raise PretrainedError(f"{directory / CONFIG_NAME}: bad scaler or shape ({exc})") from exc
        if self.shape != (channels, size, size):
            raise PretrainedError(f"{directory / CONFIG_NAME}: shape {record['shape']} does not match its scaler {list(self.shape)}")
        self.encoder_config_ = record.get("encoder", {})
        self.step_ = int(record.get("trained_steps", 0))

    def _check_resumable(self, record: dict[str, Any], directory: Path, shape: tuple[int, ...], trainer: dict[str, Any], allow_data_change: bool = False) -> None:
        """Refuse an intact checkpoint of other settings, tensor shape or training data.

        Raises:
            CheckpointMismatchError: the checkpoint belongs to another run; for other
                data, unless ``allow_data_change`` (then a warning names both datasets).
        """
        if tuple(record.get("shape", ())) != tuple(shape):
            raise CheckpointMismatchError(f"{directory}: checkpoint is for tensors of shape {tuple(record.get('shape', ()))}, the data has {tuple(shape)}")
        if record["arguments"] != self.get_config():
            raise CheckpointMismatchError(f"{directory}: checkpoint was trained with {record['arguments']}, this generator has {self.get_config()}")
        recorded, current = trainer.get("data"), getattr(self, "data_", {})
        if not current or not isinstance(recorded, dict) or not recorded.get("sha256") or recorded.get("sha256") == current.get("sha256"):
            return  # nothing to compare (a checkpoint without a fingerprint) or the same data
        change = f"{directory} was trained on {_describe_data(recorded)}, this run's data is {_describe_data(current)}"
        if not allow_data_change:
            raise CheckpointMismatchError(f"{change}; to continue training on the new data pass allow_data_change=True (crystens train --allow-data-change), or train into a new folder")
        warnings.warn(f"{change}; continuing on the new data (allow_data_change)", CheckpointWarning, stacklevel=3)


def _describe_data(fingerprint: dict[str, Any]) -> str:
    """``'name' (N tensors, sha256 0123456789ab…)`` for messages."""
    return f"{fingerprint.get('name')!r} ({fingerprint.get('count')} tensors, sha256 {str(fingerprint.get('sha256'))[:12]}…)"
