"""Writing outputs safely: atomic files, strict JSON, and names taken from data.

Everything crystens writes goes through here, so that a kill leaves either the old
file or the new one (never half of one), JSON is always strict (no ``NaN`` or
``Infinity``), and no identifier read from a file — a CSV ``material_id``, an id in
a sidecar ``.json``, a pointer in a run folder — can choose a path outside the
folder it is meant for. JSON read back from a run folder or beside a data file goes
through :func:`read_json`, which bounds its size and nesting.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from crystens_core.errors import CrystensError

#: Characters kept in a file name made from an id; everything else becomes "_".
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._+=@-]+")
#: Longest file-name stem made from an id (most file systems allow 255 bytes).
MAX_STEM_LENGTH = 120
#: Names Windows refuses whatever the extension (kept out so run folders travel).
_RESERVED_STEMS = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


#: Largest JSON file read back from a run folder or beside a data file (bytes).
MAX_JSON_BYTES = 256 * 2**20
#: Deepest nesting accepted in such a file (crystens writes at most 5 levels).
MAX_JSON_DEPTH = 32


class UnsafePathError(CrystensError, ValueError):
    """A path read from data or a run folder points outside the folder it belongs to."""


class UntrustedFileError(CrystensError, ValueError):
    """A file read back from a run folder or beside a data file is unreadable or malformed."""


def safe_filename(item_id: Any, *, taken: set[str] | None = None, fallback: str = "item") -> str:
    """A file-name stem made from ``item_id`` that cannot leave its folder.

    Path separators, ``..``, control characters and anything outside
    ``[A-Za-z0-9._+=@-]`` become ``_``; leading and trailing dots and ``_`` are dropped; the stem is at most
    :data:`MAX_STEM_LENGTH` characters. With ``taken`` (a set of stems already used,
    compared case-insensitively and updated) a clash gets ``-2``, ``-3``, ... appended.
    Keep the original id beside the file (e.g. in a summary); the stem is not reversible.
    """
    stem = _UNSAFE_CHARACTERS.sub("_", str(item_id))[:MAX_STEM_LENGTH].strip("._") or fallback
    if stem.split(".")[0].lower() in _RESERVED_STEMS:
        stem = f"_{stem}"
    if taken is None:
        return stem
    candidate, counter = stem, 1
    while candidate.lower() in taken:
        counter += 1
        candidate = f"{stem}-{counter}"
    taken.add(candidate.lower())
    return candidate


def path_inside(root: str | Path, relative: str | Path, *, what: str = "path") -> Path:
    """``root / relative`` resolved, after checking it stays inside ``root``.

    Raises:
        UnsafePathError: ``relative`` is absolute, climbs out with ``..`` or leads
            out through a symbolic link.
    """
    root = Path(root).resolve()
    if not isinstance(relative, (str, os.PathLike)) or str(relative) in ("", "."):
        raise UnsafePathError(f"{what} {relative!r} in {root} is not a file or folder name")
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise UnsafePathError(f"{what} {str(relative)!r} points outside {root}")
    return candidate


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: str | Path, *, error: type[Exception] = UntrustedFileError, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse an untrusted JSON file, with every failure one ``error`` naming the file.

    Refused: a missing or non-regular file, one larger than ``max_bytes``, text that is
    not UTF-8 or not JSON, and nesting deeper than ``max_depth`` (deep nesting would
    otherwise end in a RecursionError in whatever walks the value).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{path}: {size} bytes, more than the {max_bytes} accepted for a JSON file")
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply (more than {max_depth} levels)") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (json.JSONDecodeError, OSError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from None
    if json_depth(value) > max_depth:
        raise error(f"{path}: JSON nested too deeply (more than {max_depth} levels)")
    return value


def json_safe(value: Any) -> Any:
    """NaN/inf → None and numpy scalars/arrays → Python values, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` only when the block ends
    without an exception (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as out:
        out.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as a ``.npy`` file atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as out:
        np.save(out, np.asarray(array), allow_pickle=False)


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 1) -> None:
    """Write ``data`` as strict JSON (NaN/inf → null) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(json_safe(data), indent=indent, allow_nan=False) + "\n")
