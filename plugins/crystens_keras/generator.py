"""`KerasGenerator`: the Keras 3 (TensorFlow) backend of the generator contract.

The Keras twin of ``crystens_torch.generator.TorchGenerator``: subclasses define the
networks (:meth:`build`), the optimisers (:meth:`make_optimizers`), one optimisation
step in graph code (:meth:`train_step`, compiled once with ``tf.function``) and
sampling in scaled space (:meth:`generate`). The training loop (progress bar,
``time_limit``, checkpoints that resume exactly), chunked ``sample`` and
``save_pretrained`` / ``from_pretrained`` live in
:class:`crystens_core.generator_base.GeneratorBase`; this class implements its
backend hooks: the device scope, the step's random numbers, the channels-first ↔
volume layout, and a Keras weights file ``model.weights.h5`` plus the optimiser
state in ``optimizer.h5`` (no pickles).

Reproducible by construction, like the torch generators: the batch indices and
every random number of step ``t`` — latents, instance noise, interpolation weights
(stateless TensorFlow ops seeded from a per-step key) and the dropout masks (the
dropout layers' seed generators are reset each step) — are functions of
``(seed, t)``, so a run resumed from the checkpoint of step ``t`` continues exactly
as the uninterrupted one. Initial weights depend only on ``seed``.
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crystens_core.devices import DeviceError, DeviceRequest, check_gpu_index, parse_device
from crystens_core.generator_base import GeneratorBase
from crystens_core.pretrained import CONFIG_NAME, TRAINER_NAME, PretrainedError
from crystens_keras.backend import keras, tf
from crystens_keras.networks import from_volume, to_volume

WEIGHTS_NAME = "model.weights.h5"
OPTIMIZER_NAME = "optimizer.h5"


class _Networks(keras.Model):
    """Holds the named networks as attributes so that one Keras weights file stores them all
    (``model.weights.h5`` with a group per network; ``keras.Model.load_weights`` reads it)."""

    def __init__(self, networks: dict[str, keras.Model]):
        super().__init__(name="networks")
        for name, network in networks.items():
            setattr(self, name, network)
        self.built = True


class KerasGenerator(GeneratorBase):
    """Base class of the Keras generators.

    Args:
        preset: "small" (trains on a 2-core CPU in minutes) or "paper" (the paper's
            networks and hyperparameters, for a GPU).
        **settings: any value of the preset to override (see ``PRESETS`` of the
            subclass), and the common ``batch_size``, ``steps``, ``seed``,
            ``checkpoint_every`` (steps), ``keep_checkpoints``, ``device`` ("auto":
            TensorFlow's placement; "cpu", "gpu" or "gpu:N") and ``jit_compile``
            (compile the training step with XLA).
    """

    COMMON: ClassVar[dict[str, Any]] = {"seed": 0, "device": "auto", "jit_compile": False, "checkpoint_every": 100, "keep_checkpoints": 2}
    weights_name: ClassVar[str] = WEIGHTS_NAME
    checkpoint_files: ClassVar[tuple[str, ...]] = (CONFIG_NAME, WEIGHTS_NAME, OPTIMIZER_NAME, TRAINER_NAME)

    def __init__(self, preset: str = "small", **settings: Any):
        super().__init__(preset, **settings)
        self.networks_: dict[str, keras.Model] | None = None
        self.optimizers_: dict[str, keras.optimizers.Optimizer] = {}
        self._compiled_step = None

    @classmethod
    def _device_problem(cls, device: str) -> str | None:
        """The checks of :meth:`_device` without entering a device scope."""
        try:
            _device_request(device)
        except DeviceError as exc:
            return str(exc)
        return None

    # -- to be defined by subclasses -------------------------------------------------------
    def build(self, channels: int, size: int) -> dict[str, keras.Model]:
        """The networks for tensors (channels, size, size); they see (size, size, channels, 1) volumes."""
        raise NotImplementedError

    def make_optimizers(self, networks: dict[str, keras.Model]) -> dict[str, keras.optimizers.Optimizer]:
        """One optimiser per trained network, keyed like ``networks``."""
        raise NotImplementedError

    def train_step(self, batch: tf.Tensor, key: tf.Tensor, sigma: tf.Tensor) -> dict[str, tf.Tensor]:
        """One optimisation step (graph code) on a scaled batch of volumes (n, S, S, C, 1).

        Args:
            key: int32 (2,) seed of this step's stateless random numbers.
            sigma: float32 scalar, this step's instance-noise σ (0 when unused).

        Returns:
            Named scalar losses.
        """
        raise NotImplementedError

    def generate(self, count: int, key: tf.Tensor) -> tf.Tensor:
        """``count`` scaled volumes (count, S, S, C, 1) in ``feature_range``."""
        raise NotImplementedError

    def noise_level(self) -> float:
        """The instance-noise σ of the current step (0 unless a subclass uses it)."""
        return 0.0

    # -- building -------------------------------------------------------------------------------
    def _device(self):
        """A ``tf.device`` scope for the ``device`` setting, read as the torch generators read it
        (:mod:`crystens_core.devices`): nothing for "auto" (TensorFlow's placement).

        Raises:
            DeviceError: a misspelt setting, "mps", or a GPU TensorFlow does not see.
        """
        request = _device_request(self.settings["device"])
        if request.kind == "auto":
            return contextlib.nullcontext()
        if request.kind == "cuda":
            return tf.device(f"/GPU:{request.index or 0}")
        return tf.device("/CPU:0")

    def _ensure_built(self, channels: int, size: int) -> None:
        if self.networks_ is not None:
            return
        # Keras draws initial weights and dropout seeds from Python's `random`; seed it for
        # the build only and leave the caller's random state as it was.
        state = random.getstate()
        random.seed(int(self.settings["seed"]))
        try:
            with self._device():
                networks = self.build(channels, size)
                optimizers = self.make_optimizers(networks)
                for name, optimizer in optimizers.items():
                    optimizer.build(networks[name].trainable_variables)
        finally:
            random.setstate(state)
        self.networks_, self.optimizers_ = networks, optimizers
        self._dropout_seeds = [
            layer.seed_generator for network in networks.values() for layer in network._flatten_layers() if isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator)
        ]
        self._compiled_step = None

    def _step_function(self):
        if self._compiled_step is None:
            self._compiled_step = tf.function(self.train_step, jit_compile=bool(self.settings["jit_compile"]), reduce_retracing=True)
        return self._compiled_step

    def _reseed_dropout(self, base: int) -> None:
        for index, generator in enumerate(self._dropout_seeds):
            generator.state.assign(np.array([base + index, 0], dtype=generator.state.dtype))

    def _is_built(self) -> bool:
        return self.networks_ is not None

    def _check_device(self) -> None:
        self._device()

    # -- training -------------------------------------------------------------------------------
    def _training(self):
        return self._device()

    def _step_draws(self, seed: int, count: int, batch_size: int) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
        """The batch indices, the int32 (2,) key of the step's stateless random numbers and the
        dropout layers' seed, one NumPy generator drawing them in that order."""
        rng = np.random.default_rng(seed)
        indices = rng.integers(count, size=batch_size)
        key, dropout_seed = rng.integers(0, 2**31 - 1, size=2, dtype=np.int64), int(rng.integers(0, 2**30))
        return indices, (key, dropout_seed)

    def _train_batch(self, batch: np.ndarray, draws: tuple[np.ndarray, int]) -> dict[str, tf.Tensor]:
        key, dropout_seed = draws
        self._reseed_dropout(dropout_seed)
        return self._step_function()(tf.constant(to_volume(batch)), tf.constant(key, dtype=tf.int32), tf.constant(self.noise_level(), dtype=tf.float32))

    # -- sampling -------------------------------------------------------------------------------
    def _sampling(self):
        return self._device()

    def _generate_batch(self, count: int, seed: int) -> np.ndarray:
        key = np.random.default_rng(seed).integers(0, 2**31 - 1, size=2)
        return from_volume(np.asarray(self.generate(count, tf.constant(key, dtype=tf.int32)), dtype=np.float32))

    # -- weights ----------------------------------------------------------------------------------
    def _save_weights(self, path: Path) -> None:
        temporary = path.with_name(path.name.replace(".weights.h5", ".tmp.weights.h5"))
        with warnings.catch_warnings():
            # Keras' own np.array(variable) under NumPy 2 (harmless; one warning per variable).
            warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword", category=DeprecationWarning)
            _Networks(self.networks_).save_weights(str(temporary))
        os.replace(temporary, path)

    def _load_weights(self, path: Path) -> None:
        """Load ``model.weights.h5``; names the network and shapes that do not fit."""
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                stored = {name: _dataset_shapes(handle[name]) for name in handle if isinstance(handle[name], h5py.Group) and name != "vars"}
        except OSError as exc:
            raise PretrainedError(f"{path}: not a readable Keras weights file ({exc})") from exc
        for name, network in self.networks_.items():
            if name not in stored:
                raise PretrainedError(f"{path}: missing the weights of network {name!r} (the file holds {sorted(stored)})")
            expected = sorted(tuple(v.shape) for v in network.weights)
            if stored[name] != expected:
                extra = _difference(stored[name], expected)
                missing = _difference(expected, stored[name])
                raise PretrainedError(f"{path}: network {name!r} has shape(s) {extra} in the file where the model expects {missing}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns before the error it raises below
            try:
                _Networks(self.networks_).load_weights(str(path))
            except ValueError as exc:
                raise PretrainedError(f"{path}: the weights do not fit the model ({str(exc).splitlines()[0]})") from exc

    def _save_optimizer_state(self, folder: Path) -> dict[str, Any]:
        import h5py

        path = folder / OPTIMIZER_NAME
        with h5py.File(path, "w") as handle:
            for name, optimizer in self.optimizers_.items():
                group = handle.create_group(name)
                for index, variable in enumerate(optimizer.variables):
                    dataset = group.create_dataset(f"{index:04d}", data=variable.numpy())
                    dataset.attrs["path"] = variable.path
        return {}

    def _load_optimizer_state(self, folder: Path, trainer: dict[str, Any]) -> None:
        import h5py

        path = folder / OPTIMIZER_NAME
        with h5py.File(path, "r") as handle:
            for name, optimizer in self.optimizers_.items():
                if name not in handle:
                    raise PretrainedError(f"{path}: missing the state of optimiser {name!r}")
                group = handle[name]
                if len(group) != len(optimizer.variables):
                    raise PretrainedError(f"{path}: optimiser {name!r} has {len(group)} variables in the file, the model's has {len(optimizer.variables)}")
                for index, variable in enumerate(optimizer.variables):
                    value = group[f"{index:04d}"][()]
                    if tuple(value.shape) != tuple(variable.shape):
                        raise PretrainedError(f"{path}: optimiser variable {group[f'{index:04d}'].attrs.get('path')!r} has shape {value.shape}, the model expects {tuple(variable.shape)}")
                    variable.assign(value)

    # -- checkpoints ----------------------------------------------------------------------------
    def _check_checkpoint_files(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        """Open the HDF5 weight and optimiser files and walk their structure (a truncated file fails)."""
        import h5py

        for name in (WEIGHTS_NAME, OPTIMIZER_NAME):
            try:
                with h5py.File(directory / name, "r") as handle:
                    handle.visititems(lambda _, item: None)
            except (OSError, KeyError, RuntimeError, ValueError) as exc:
                raise PretrainedError(f"{directory / name}: not a readable HDF5 file ({exc})") from exc


def _device_request(setting: Any) -> DeviceRequest:
    """A ``device`` setting parsed and checked for TensorFlow ("mps" refused, GPUs counted).

    Raises:
        DeviceError: a misspelt setting, "mps", or a GPU TensorFlow does not see.
    """
    request = parse_device(setting)
    if request.kind == "mps":
        raise DeviceError("device 'mps' is for the torch generators; TensorFlow calls an Apple GPU 'gpu'")
    check_gpu_index(request, len(tf.config.list_physical_devices("GPU")), "TensorFlow")
    return request


def _dataset_shapes(group) -> list[tuple[int, ...]]:
    """Sorted shapes of every dataset below an HDF5 group."""
    import h5py

    shapes: list[tuple[int, ...]] = []
    group.visititems(lambda _, item: shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None)
    return sorted(shapes)


def _difference(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Elements of ``a`` not matched one-to-one in ``b`` (multiset difference)."""
    rest = list(b)
    out = []
    for item in a:
        if item in rest:
            rest.remove(item)
        else:
            out.append(item)
    return out
