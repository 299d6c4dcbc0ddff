"""`TorchGenerator`: the generator contract implemented once for torch models.

Subclasses define the networks (:meth:`build`), one optimisation step
(:meth:`train_step`) and sampling in scaled space (:meth:`generate`); this class
does the rest (presets, settings, scaler and the ``crystens.json`` record come from
:class:`crystens_core.generator_base.GeneratorBase`, shared with the Keras
generators): the training loop with a progress bar,
Accelerate (one process on this CPU, DDP across GPUs or nodes with ``accelerate
launch``), mixed precision on GPU, atomic checkpoints that resume exactly, and
``save_pretrained`` / ``from_pretrained`` as JSON + safetensors.

Training is reproducible by construction: the batch indices and the random
numbers of step ``t`` come from a generator seeded with ``(seed, t, process)``, so
a run resumed from the checkpoint of step ``t`` continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from crystens_core import layout
from crystens_core.devices import DeviceError, check_gpu_index, parse_device
from crystens_core.generator_base import GeneratorBase, SettingBound, step_seed
from crystens_core.pretrained import (
    CONFIG_NAME,
    LATEST,
    TRAINER_NAME,
    WEIGHTS_NAME,
    PretrainedError,
    check_safetensors,
    commit_checkpoint,
    latest_checkpoint,
    write_json_atomic,
)
from crystens_core.scaler import FieldScaler
from crystens_torch import state as state_io

__all__ = ["LATEST", "OPTIMIZER_NAME", "TRAINER_NAME", "TorchGenerator", "latest_checkpoint", "resolve_device", "step_generator"]

OPTIMIZER_NAME = "optimizer.safetensors"


def resolve_device(setting: str) -> torch.device:
    """The torch device of a ``device`` setting: the one rule for training and sampling.

    ``"auto"`` → cuda, then mps, then cpu; ``"cuda"`` (or ``"gpu"``) → the process's
    GPU (its own one in a multi-process run); ``"cuda:N"`` → GPU N; ``"cpu"``, ``"mps"``.

    Raises:
        DeviceError: a misspelt setting, or a device this machine does not have.
    """
    request = parse_device(setting)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if request.kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if request.kind == "cuda":
        check_gpu_index(request, torch.cuda.device_count() if torch.cuda.is_available() else 0, "torch")
        return torch.device("cuda", request.index) if request.index is not None else torch.device("cuda")
    if request.kind == "mps" and not mps:
        raise DeviceError(f"device {setting!r}: torch has no MPS (Apple GPU) backend on this machine")
    return torch.device(request.kind)


def step_generator(seed: int, step: int, process: int = 0, device: str = "cpu") -> torch.Generator:
    """The random-number generator of one training step (reproducible across resumes)."""
    return torch.Generator(device=device).manual_seed(step_seed(seed, step, process))


class TorchGenerator(GeneratorBase):
    """Base class of the torch generators.

    Args:
        preset: "small" (learns something visible in minutes on a 2-core CPU) or
            "paper" (the paper's sizes and hyperparameters).
        **settings: any value of the preset to override (see ``PRESETS`` of the subclass),
            and the common ``batch_size``, ``steps``, ``checkpoint_every`` (steps),
            ``seed``, ``device`` ("auto", "cpu", "cuda", …) and ``mixed_precision``
            ("auto": bf16/fp16 on CUDA, none elsewhere; or "no", "fp16", "bf16").
    """

    COMMON: ClassVar[dict[str, Any]] = {"seed": 0, "device": "auto", "mixed_precision": "auto", "checkpoint_every": 100, "keep_checkpoints": 2}
    checkpoint_files: ClassVar[tuple[str, ...]] = (CONFIG_NAME, WEIGHTS_NAME, OPTIMIZER_NAME, TRAINER_NAME)
    #: True when a training step leaves some parameters without gradients (DDP must know).
    find_unused_parameters: ClassVar[bool] = False
    SETTING_BOUNDS = {**GeneratorBase.SETTING_BOUNDS, "mixed_precision": SettingBound(choices=("auto", "no", "fp16", "bf16"))}

    def __init__(self, preset: str = "small", **settings: Any):
        super().__init__(preset, **settings)
        self.modules_: dict[str, torch.nn.Module] | None = None

    @classmethod
    def _device_problem(cls, device: str) -> str | None:
        try:
            resolve_device(device)
        except DeviceError as exc:
            return str(exc)
        return None

    # -- to be defined by subclasses -------------------------------------------------------
    def build(self, channels: int, size: int) -> dict[str, torch.nn.Module]:
        """The networks for tensors of shape (channels, size, size)."""
        raise NotImplementedError

    def make_optimizers(self, modules: dict[str, torch.nn.Module]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batch: torch.Tensor, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """One optimisation step on a scaled batch; returns named losses (detached)."""
        raise NotImplementedError

    def generate(self, count: int, rng: torch.Generator) -> torch.Tensor:
        """``count`` scaled tensors (count, C, S, S) in ``feature_range``."""
        raise NotImplementedError

    # -- building -----------------------------------------------------------------------------
    def _ensure_built(self, channels: int, size: int) -> None:
        if self.modules_ is None:
            torch.manual_seed(self.settings["seed"])
            self.modules_ = self.build(channels, size)
            self.optimizers_ = self.make_optimizers(self.modules_)

    # -- training -------------------------------------------------------------------------------
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
    ) -> "TorchGenerator":
        """Train on raw tensors (N, C, S, S), continuing from the last checkpoint if any.

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
        from accelerate import Accelerator, DistributedDataParallelKwargs

        from crystens_core.progress import progress_bar

        device = resolve_device(self.settings["device"])
        tensors, total, checkpoint_dir = self._begin_fit(tensors, steps, scaler, encoder_config, checkpoint_dir, resume, data_name, allow_data_change)

        ddp = DistributedDataParallelKwargs(find_unused_parameters=self.find_unused_parameters)
        accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision=self._mixed_precision(), kwargs_handlers=[ddp])
        if device.index is not None and accelerator.num_processes > 1:
            raise DeviceError(f"device {self.settings['device']!r} names one GPU, but each of the {accelerator.num_processes} processes trains on its own: use 'cuda' or 'auto'")
        # Accelerate places a single process on the current GPU: make that the one asked for.
        on_device = torch.cuda.device(device.index) if device.type == "cuda" and device.index is not None else contextlib.nullcontext()
        on_device.__enter__()
        try:
            names = list(self.modules_) + list(self.optimizers_)
            prepared = accelerator.prepare(*self.modules_.values(), *self.optimizers_.values())
            prepared = prepared if isinstance(prepared, tuple) else (prepared,)
            raw_modules = self.modules_
            self.modules_ = dict(zip(names[: len(raw_modules)], prepared[: len(raw_modules)]))
            self.optimizers_ = dict(zip(names[len(raw_modules) :], prepared[len(raw_modules) :]))
            self.accelerator_ = accelerator
            batch_size = int(self.settings["batch_size"])
            first_step, started = self.step_, time.perf_counter()
            bar = progress_bar(total=total, initial=self.step_, desc=f"train {self.name}", unit="step", enable=progress and accelerator.is_main_process)
            with bar:
                while self.step_ < total:
                    rng = step_generator(self.settings["seed"], self.step_, accelerator.process_index)
                    indices = torch.randint(len(tensors), (batch_size,), generator=rng).numpy()
                    raw = tensors[np.sort(indices)] if isinstance(tensors, np.memmap) else tensors[indices]
                    batch = torch.from_numpy(self.scaler_.scale(raw)).to(accelerator.device)
                    losses = self.train_step(batch, rng)
                    self.step_ += 1
                    record = {"step": self.step_, **{k: float(v) for k, v in losses.items()}}
                    self.history_.append(record)
                    elapsed = time.perf_counter() - started
                    throughput = (self.step_ - first_step) * batch_size * accelerator.num_processes / max(elapsed, 1e-9)
                    bar.set_postfix({**{k: f"{v:.4g}" for k, v in record.items() if k != "step"}, "samples/s": f"{throughput:.1f}"}, refresh=False)
                    bar.update(1)
                    out_of_time = time_limit is not None and elapsed >= time_limit
                    if time_limit is not None and accelerator.num_processes > 1:
                        # Each process has its own clock: stop together, or one checkpoints
                        # while the others wait for it in the next step's gradient exchange.
                        flag = torch.tensor([float(out_of_time)], device=accelerator.device)
                        out_of_time = bool(accelerator.reduce(flag, reduction="max").item())
                    if checkpoint_dir and (self.step_ % self.settings["checkpoint_every"] == 0 or self.step_ == total or out_of_time):
                        self._save_checkpoint(checkpoint_dir)
                    if out_of_time:
                        break
        finally:
            on_device.__exit__(None, None, None)
            self.modules_ = {k: accelerator.unwrap_model(m) for k, m in self.modules_.items()}
            self.optimizers_ = {k: getattr(o, "optimizer", o) for k, o in self.optimizers_.items()}
        self.training_seconds_ = time.perf_counter() - started
        return self

    def _mixed_precision(self) -> str:
        choice = self.settings["mixed_precision"]
        if choice != "auto":
            return choice
        if resolve_device(self.settings["device"]).type != "cuda":
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """``n`` raw tensors (n, C, S, S) in physical units, ready for a decoder.

        Entries that are zero by construction in the layout are set to zero.
        """
        from crystens_core.progress import progress_bar

        if self.modules_ is None or self.scaler_ is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit() or from_pretrained() first")
        device = resolve_device(self.settings["device"])
        for module in self.modules_.values():
            module.to(device).eval()
        batch_size = int(batch_size or max(self.settings["batch_size"], 64))
        channels, size, _ = self.shape
        structural_zero = torch.from_numpy(layout.field_index_map(channels, size) < 0)
        low, high = self.feature_range
        chunks = []
        with progress_bar(total=n, desc=f"sample {self.name}", unit="tensor", enable=progress) as bar:
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                scaled = self.generate(count, step_generator(seed, start, 0, device)).float().clamp(low, high).cpu()
                raw = torch.from_numpy(self.scaler_.unscale(scaled.numpy()))
                chunks.append(raw.masked_fill(structural_zero, 0.0).numpy())
                bar.update(count)
        for module in self.modules_.values():
            module.train()
        return np.concatenate(chunks) if chunks else np.zeros((0, channels, size, size), np.float32)

    # -- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``crystens.json`` and ``model.safetensors`` to ``directory`` (created)."""
        from safetensors.torch import save_file

        if self.modules_ is None:
            raise RuntimeError(f"{self.name} is not fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(state_io.modules_state(self.modules_), str(directory / (WEIGHTS_NAME + ".tmp")))
        os.replace(directory / (WEIGHTS_NAME + ".tmp"), directory / WEIGHTS_NAME)
        write_json_atomic(directory / CONFIG_NAME, self._record())
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> "TorchGenerator":
        """Load a folder written by :meth:`save_pretrained` (or a checkpoint folder).

        Args:
            directory: the folder.
            **overrides: settings to change, e.g. ``device="cpu"``.

        Raises:
            PretrainedError: missing files, another plugin's or class's folder, or
                weights whose names or shapes do not fit the model.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        record = cls._read_record(directory)
        generator = cls._from_record(record, directory, **overrides)
        generator._restore(record, directory)
        try:
            weights = load_file(str(directory / WEIGHTS_NAME))
        except Exception as exc:
            raise PretrainedError(f"{directory / WEIGHTS_NAME}: not a readable safetensors file ({exc})") from exc
        state_io.load_modules_state(generator.modules_, weights, str(directory / WEIGHTS_NAME))
        return generator

    def _restore(self, record: dict[str, Any], directory: Path) -> None:
        self._restore_record(record, directory)
        self._ensure_built(*self.shape[:2])

    # -- checkpoints ----------------------------------------------------------------------------
    def _save_checkpoint(self, root: Path) -> Path:
        """Write ``root/step-XXXXXXXX`` atomically, point ``root/latest`` at it, prune old ones."""
        from safetensors.torch import save_file

        accelerator = getattr(self, "accelerator_", None)
        if accelerator is not None:
            accelerator.wait_for_everyone()
            if not accelerator.is_main_process:
                return root
        unwrap = accelerator.unwrap_model if accelerator is not None else (lambda m: m)

        def write(temporary: Path) -> None:
            save_file(state_io.modules_state({k: unwrap(m) for k, m in self.modules_.items()}), str(temporary / WEIGHTS_NAME))
            optimizer_tensors, optimizer_plain = {}, {}
            for name, optimizer in self.optimizers_.items():
                tensors, plain = state_io.optimizer_state(name, getattr(optimizer, "optimizer", optimizer))
                optimizer_tensors.update(tensors)
                optimizer_plain[name] = plain
            save_file(optimizer_tensors, str(temporary / OPTIMIZER_NAME))
            (temporary / TRAINER_NAME).write_text(json.dumps(self._trainer_record(optimizers=optimizer_plain)))
            (temporary / CONFIG_NAME).write_text(json.dumps(self._record(), indent=1))

        return commit_checkpoint(root, self.step_, write, keep=int(self.settings["keep_checkpoints"]))

    def _check_checkpoint_files(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        optimizers = trainer.get("optimizers")
        if not isinstance(optimizers, dict) or not optimizers or not all(isinstance(v, dict) and {"param_groups", "state"} <= v.keys() for v in optimizers.values()):
            raise PretrainedError(f"{directory / TRAINER_NAME}: no optimiser state ('optimizers')")
        check_safetensors(directory / WEIGHTS_NAME)
        check_safetensors(directory / OPTIMIZER_NAME)

    def _load_checkpoint(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        self._restore(record, directory)
        state_io.load_modules_state(self.modules_, load_file(str(directory / WEIGHTS_NAME)), str(directory / WEIGHTS_NAME))
        optimizer_tensors = load_file(str(directory / OPTIMIZER_NAME))
        for name, optimizer in self.optimizers_.items():
            if name not in trainer["optimizers"]:
                raise PretrainedError(f"{directory / TRAINER_NAME}: no state of optimiser {name!r}")
            state_io.load_optimizer_state(name, optimizer, optimizer_tensors, trainer["optimizers"][name])
        self.step_ = int(trainer["step"])
        self.history_ = list(trainer["history"])
