"""The ``device`` setting of the generators: one spelling for every deep-learning library.

``"auto"`` (the library's best device), ``"cpu"``, ``"cuda"`` (also ``"gpu"``: the
process's GPU), ``"cuda:N"`` (also ``"gpu:N"``: GPU number N) or ``"mps"`` (Apple).
:func:`parse_device` checks the spelling only; each library's plugin turns the
result into its own device and checks that the device exists (for torch:
``crystens_torch.generator.resolve_device``), for training and sampling alike.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from crystens_core.errors import CrystensError

_DEVICE = re.compile(r"^(auto|cpu|cuda|gpu|mps)(?::(\d{1,3}))?$")


class DeviceError(CrystensError, ValueError):
    """A ``device`` setting that is misspelt or names a device this machine does not have."""


class DeviceRequest(NamedTuple):
    """A parsed ``device`` setting: ``kind`` is "auto", "cpu", "cuda" or "mps"; ``index`` a GPU number or None."""

    kind: str
    index: int | None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(setting: Any) -> DeviceRequest:
    """Parse a ``device`` setting ("gpu" is read as "cuda"; case is ignored).

    Raises:
        DeviceError: not a string of the forms above (an index only with cuda/gpu).
    """
    match = _DEVICE.match(setting.strip().lower()) if isinstance(setting, str) else None
    if match is None or (match.group(2) is not None and match.group(1) not in ("cuda", "gpu")):
        raise DeviceError(f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'gpu', 'gpu:N' or 'mps', got {setting!r}")
    kind = "cuda" if match.group(1) == "gpu" else match.group(1)
    return DeviceRequest(kind, int(match.group(2)) if match.group(2) is not None else None)


def check_gpu_index(request: DeviceRequest, available: int, library: str) -> None:
    """Refuse a cuda request when ``library`` sees fewer than the GPUs it needs.

    Raises:
        DeviceError: no GPU at all for "cuda", or no GPU number ``index``.
    """
    if request.kind != "cuda":
        return
    if available == 0:
        raise DeviceError(f"device {str(request)!r}: {library} sees no GPU on this machine (use device 'cpu' or 'auto')")
    if request.index is not None and request.index >= available:
        raise DeviceError(f"device {str(request)!r}: {library} sees {available} GPU(s), numbered 0 to {available - 1}")
