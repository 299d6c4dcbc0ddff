"""Append arrays to a ``.npy`` file whose length is known only at the end.

The header is written with a fixed size and rewritten on close with the final
row count, so the file is an ordinary ``.npy`` (``np.load(path, mmap_mode="r")``)
and nothing is copied twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HEADER_BYTES = 128  # magic (6) + version (2) + length (2) + padded dict, a multiple of 64
MAGIC = b"\x93NUMPY\x01\x00"


def _header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.lib.format.dtype_to_descr(dtype), shape)
    body_length = HEADER_BYTES - len(MAGIC) - 2
    if len(text) + 1 > body_length:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    body = text.ljust(body_length - 1) + "\n"
    return MAGIC + body_length.to_bytes(2, "little") + body.encode("latin1")


class NpyAppender:
    """Write rows of shape ``item_shape`` to ``path`` one block at a time.

    The file is written under a temporary name and renamed into place by
    :meth:`close`, so a crash never leaves a truncated ``.npy`` behind.
    """

    def __init__(self, path: str | Path, item_shape: tuple[int, ...], dtype=np.float32):
        self.path = Path(path)
        self.item_shape = tuple(item_shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._temporary = self.path.with_name(self.path.name + ".part")
        self._handle = open(self._temporary, "wb")
        self._handle.write(_header((0,) + self.item_shape, self.dtype))

    def append(self, block: np.ndarray) -> None:
        """Append (n, *item_shape) rows."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.item_shape:
            raise ValueError(f"block rows have shape {block.shape[1:]}, expected {self.item_shape}")
        self._handle.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> Path:
        """Write the final header and move the file into place."""
        self._handle.seek(0)
        self._handle.write(_header((self.rows,) + self.item_shape, self.dtype))
        self._handle.flush()
        os.fsync(self._handle.fileno())  # the data is on disk before the name says it is complete
        self._handle.close()
        os.replace(self._temporary, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        self._handle.close()
        self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> "NpyAppender":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
