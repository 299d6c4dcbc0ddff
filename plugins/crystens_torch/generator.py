"""`TorchGenerator`: the torch backend of the generator contract.

Subclasses define the networks (:meth:`build`), the optimisers
(:meth:`make_optimizers`), one optimisation step (:meth:`train_step`) and sampling
in scaled space (:meth:`generate`). The training loop, sampling loop, checkpoints
and resume live in :class:`crystens_core.generator_base.GeneratorBase`, shared with
the Keras generators; this class implements its backend hooks for torch: Accelerate
around the loop (one process on this CPU, DDP across GPUs or nodes with ``accelerate
launch``), mixed precision on GPU, a step's batch indices and random numbers from a
``torch.Generator`` seeded with ``(seed, t, process)``, the time limit agreed across
processes (an all-reduce), and weights and optimiser state as safetensors + JSON.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from crystens_core.devices import DeviceError, check_gpu_index, parse_device
from crystens_core.generator_base import GeneratorBase, SettingBound, step_seed
from crystens_core.pretrained import (
    CONFIG_NAME,
    LATEST,
    TRAINER_NAME,
    WEIGHTS_NAME,
    PretrainedError,
    check_safetensors,
    latest_checkpoint,
)
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

    def _is_built(self) -> bool:
        return self.modules_ is not None

    def _check_device(self) -> None:
        resolve_device(self.settings["device"])

    # -- training -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _training(self) -> Iterator[None]:
        """Accelerate around the loop (one process on a CPU, DDP across GPUs or nodes with
        ``accelerate launch``), mixed precision on GPU; the networks unwrapped afterwards."""
        from accelerate import Accelerator, DistributedDataParallelKwargs

        device = resolve_device(self.settings["device"])
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
            yield
        finally:
            on_device.__exit__(None, None, None)
            self.modules_ = {k: accelerator.unwrap_model(m) for k, m in self.modules_.items()}
            self.optimizers_ = {k: getattr(o, "optimizer", o) for k, o in self.optimizers_.items()}

    def _process(self) -> tuple[int, int]:
        return self.accelerator_.process_index, self.accelerator_.num_processes

    def _agree(self, flag: bool) -> bool:
        accelerator = self.accelerator_
        if accelerator.num_processes <= 1:
            return flag
        tensor = torch.tensor([float(flag)], device=accelerator.device)
        return bool(accelerator.reduce(tensor, reduction="max").item())

    def _step_draws(self, seed: int, count: int, batch_size: int) -> tuple[np.ndarray, torch.Generator]:
        rng = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randint(count, (batch_size,), generator=rng).numpy(), rng

    def _train_batch(self, batch: np.ndarray, draws: torch.Generator) -> dict[str, torch.Tensor]:
        return self.train_step(torch.from_numpy(batch).to(self.accelerator_.device), draws)

    def _mixed_precision(self) -> str:
        choice = self.settings["mixed_precision"]
        if choice != "auto":
            return choice
        if resolve_device(self.settings["device"]).type != "cuda":
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"

    # -- sampling -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _sampling(self) -> Iterator[None]:
        """No gradients, the networks on the ``device`` setting's device in evaluation mode."""
        self._sample_device = resolve_device(self.settings["device"])
        for module in self.modules_.values():
            module.to(self._sample_device).eval()
        with torch.no_grad():
            yield
        for module in self.modules_.values():
            module.train()

    def _generate_batch(self, count: int, seed: int) -> np.ndarray:
        rng = torch.Generator(device=self._sample_device).manual_seed(seed)
        return self.generate(count, rng).float().cpu().numpy()

    # -- weights and optimisers -------------------------------------------------------------------
    def _unwrapped_modules(self) -> dict[str, torch.nn.Module]:
        accelerator = getattr(self, "accelerator_", None)
        return {k: accelerator.unwrap_model(m) for k, m in self.modules_.items()} if accelerator is not None else self.modules_

    def _save_weights(self, path: Path) -> None:
        from safetensors.torch import save_file

        temporary = path.with_name(path.name + ".tmp")
        save_file(state_io.modules_state(self._unwrapped_modules()), str(temporary))
        os.replace(temporary, path)

    def _load_weights(self, path: Path) -> None:
        from safetensors.torch import load_file

        try:
            weights = load_file(str(path))
        except Exception as exc:
            raise PretrainedError(f"{path}: not a readable safetensors file ({exc})") from exc
        state_io.load_modules_state(self.modules_, weights, str(path))

    def _writes_checkpoint(self) -> bool:
        accelerator = getattr(self, "accelerator_", None)
        if accelerator is None:
            return True
        accelerator.wait_for_everyone()
        return accelerator.is_main_process

    def _save_optimizer_state(self, folder: Path) -> dict[str, Any]:
        from safetensors.torch import save_file

        optimizer_tensors, optimizer_plain = {}, {}
        for name, optimizer in self.optimizers_.items():
            tensors, plain = state_io.optimizer_state(name, getattr(optimizer, "optimizer", optimizer))
            optimizer_tensors.update(tensors)
            optimizer_plain[name] = plain
        save_file(optimizer_tensors, str(folder / OPTIMIZER_NAME))
        return {"optimizers": optimizer_plain}

    def _check_checkpoint_files(self, directory: Path, record: dict[str, Any], trainer: dict[str, Any]) -> None:
        optimizers = trainer.get("optimizers")
        if not isinstance(optimizers, dict) or not optimizers or not all(isinstance(v, dict) and {"param_groups", "state"} <= v.keys() for v in optimizers.values()):
            raise PretrainedError(f"{directory / TRAINER_NAME}: no optimiser state ('optimizers')")
        check_safetensors(directory / WEIGHTS_NAME)
        check_safetensors(directory / OPTIMIZER_NAME)

    def _load_optimizer_state(self, folder: Path, trainer: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        optimizer_tensors = load_file(str(folder / OPTIMIZER_NAME))
        for name, optimizer in self.optimizers_.items():
            if name not in trainer["optimizers"]:
                raise PretrainedError(f"{folder / TRAINER_NAME}: no state of optimiser {name!r}")
            state_io.load_optimizer_state(name, optimizer, optimizer_tensors, trainer["optimizers"][name])
