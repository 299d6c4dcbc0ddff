"""Module and optimizer state as safetensors + JSON (no pickles)."""

from __future__ import annotations

from typing import Any

import torch

from crystens_core.pretrained import PretrainedError


def modules_state(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, keyed ``"<module>.<name>"``, contiguous and on the CPU."""
    state = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            state[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous()
    return state


def load_modules_state(modules: dict[str, torch.nn.Module], state: dict[str, torch.Tensor], source: str) -> None:
    """Load :func:`modules_state` output; names the first missing, extra or mis-shaped tensor."""
    for prefix, module in modules.items():
        own = module.state_dict()
        wanted = {f"{prefix}.{k}" for k in own}
        missing = sorted(wanted - state.keys())
        if missing:
            raise PretrainedError(f"{source}: missing weights {missing[:3]}{' …' if len(missing) > 3 else ''}")
        for key, value in own.items():
            stored = state[f"{prefix}.{key}"]
            if stored.shape != value.shape:
                raise PretrainedError(f"{source}: weight {prefix}.{key} has shape {tuple(stored.shape)}, the model expects {tuple(value.shape)}")
        module.load_state_dict({k: state[f"{prefix}.{k}"] for k in own})
    extra = sorted(k for k in state if k.split(".", 1)[0] not in modules)
    if extra:
        raise PretrainedError(f"{source}: unexpected weights {extra[:3]} (a different model?)")


def optimizer_state(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state split into tensors (for safetensors) and plain values (for JSON)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": state_dict["param_groups"], "state": {}}
    for index, entry in state_dict["state"].items():
        plain["state"][str(index)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{name}.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain["state"][str(index)][key] = value
    return tensors, plain


def load_optimizer_state(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for index, values in plain["state"].items():
        state[int(index)] = dict(values)
    prefix = f"{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(index), {})[field] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})
