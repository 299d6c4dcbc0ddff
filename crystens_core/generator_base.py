"""What every generator shares, whatever its deep-learning library.

:class:`GeneratorBase` holds the presets and settings (the constructor arguments),
the fitted scaler, the encoder settings, the step counter and loss history, the
``crystens.json`` record, and the checks before training starts or resumes. The
torch base (``crystens_torch.generator.TorchGenerator``) and the Keras base
(``crystens_keras.generator.KerasGenerator``) add the networks, the training loop,
sampling and the weight files. This module imports no deep-learning library.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crystens_core import __version__
from crystens_core.errors import CrystensError, SettingsError
from crystens_core.pretrained import (
    CONFIG_NAME,
    FORMAT,
    TRAINER_NAME,
    WEIGHTS_NAME,
    CheckpointMismatchError,
    CheckpointWarning,
    PretrainedError,
    newest_intact_checkpoint,
    read_pretrained_config,
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
    """Presets, settings, scaler and the pretrained record of a generator.

    Args:
        preset: a key of ``PRESETS`` ("small" for a CPU, "paper" for the paper's settings).
        **settings: any value of the preset or of ``COMMON`` to override; an unknown
            name is an error that lists the valid ones.
    """

    #: Registered generator name and the entry-point name of its plugin.
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

    def _ensure_built(self, channels: int, size: int) -> None:
        """Build the networks and optimisers for tensors (channels, size, size) once."""
        raise NotImplementedError

    def _load_checkpoint(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        """Restore networks, optimisers, step and history from a checked checkpoint folder."""
        raise NotImplementedError

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
    def _record(self) -> dict[str, Any]:
        """The ``crystens.json`` record of a pretrained or checkpoint folder."""
        return {
            "format": FORMAT,
            "plugin": self.plugin,
            "generator": self.name,
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
        return read_pretrained_config(directory, expected_class=cls.class_path(), expected_plugin=cls.plugin)

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
