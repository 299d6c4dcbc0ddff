"""Progress bars for long work (tqdm, on stderr, off when not wanted)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def progress_bar(iterable: Iterable | None = None, *, desc: str = "", unit: str = "it", total: int | None = None, enable: bool = True, **kwargs: Any):
    """A tqdm bar around ``iterable``; a no-op wrapper when ``enable`` is False."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=not enable, dynamic_ncols=True, **kwargs)
