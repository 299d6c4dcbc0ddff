"""Saving and loading generators as plain files (no pickles).

A pretrained folder holds ``crystens.json`` — the plugin, the class, the crystens
version, the constructor arguments, the fitted scaler and the encoder settings —
and the weights in ``model.safetensors`` (or the file the record's ``weights`` field
names, e.g. ``model.weights.h5`` for Keras). :func:`read_pretrained_config` checks a
folder before anything is loaded and names what is missing or wrong.

Training checkpoints are such folders too, ``root/step-XXXXXXXX`` with the optimiser
state and ``trainer.json`` beside, committed atomically by :func:`commit_checkpoint`
and found through the ``root/latest`` pointer (:func:`latest_checkpoint`). A run
resumes from :func:`newest_intact_checkpoint`: the pointed-at checkpoint, or, when
that one (or the pointer) is damaged, the newest older one that is whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crystens_core.errors import CrystensError
from crystens_core.safe_io import UnsafePathError, path_inside, read_json, write_json_atomic  # write_json_atomic: re-exported for plugins

CONFIG_NAME = "crystens.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "crystens.generator"
LATEST = "latest"
TRAINER_NAME = "trainer.json"


class PretrainedError(CrystensError, ValueError):
    """A pretrained or checkpoint folder that cannot be loaded; the message says why."""


class CheckpointMismatchError(PretrainedError):
    """An intact checkpoint of another run: other settings, tensor shape or training data."""


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was passed over in favour of an older intact one."""


#: Name of a committed checkpoint folder: ``step-`` and the zero-padded step number.
_STEP_FOLDER = re.compile(r"^step-(\d{8,})$")
#: Bytes per element of the safetensors dtypes.
_SAFETENSORS_ITEM_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
#: Largest safetensors header read (bytes); real headers are kilobytes.
_MAX_SAFETENSORS_HEADER = 100 * 2**20


def read_pretrained_config(directory: str | Path, *, expected_class: str | None = None, expected_plugin: str | None = None) -> dict[str, Any]:
    """The ``crystens.json`` record of a pretrained folder, checked.

    Raises:
        PretrainedError: the folder, the config or the weights file is missing, the
            config is not JSON or not a crystens generator, or it was written by
            another plugin or class than ``expected_*``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PretrainedError(f"{directory}: no such folder")
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise PretrainedError(f"{directory}: missing {CONFIG_NAME} (not a crystens generator folder)")
    try:
        path_inside(directory, CONFIG_NAME, what="config file")
    except UnsafePathError as exc:
        raise PretrainedError(str(exc)) from None
    record = read_json(config_path, error=PretrainedError)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise PretrainedError(f"{config_path}: not a crystens generator record (format {record.get('format') if isinstance(record, dict) else None!r})")
    for key, kind in (("plugin", str), ("class", str), ("generator", str), ("arguments", dict), ("encoder", dict), ("scaler", dict), ("shape", list)):
        if key not in record and key in ("plugin", "class", "generator", "arguments"):
            raise PretrainedError(f"{config_path}: missing field {key!r}")
        if key in record and not isinstance(record[key], kind):
            raise PretrainedError(f"{config_path}: field {key!r} must be a JSON {_JSON_KINDS[kind]}, got {type(record[key]).__name__} {_short_repr(record[key])}")
    steps = record.get("trained_steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise PretrainedError(f"{config_path}: field 'trained_steps' must be a non-negative integer, got {_short_repr(steps)}")
    if expected_plugin and record["plugin"] != expected_plugin:
        raise PretrainedError(f"{directory}: written by plugin {record['plugin']!r} (generator {record['generator']!r}), not {expected_plugin!r}")
    if expected_class and record["class"] != expected_class:
        raise PretrainedError(f"{directory}: holds a {record['class']} ({record['generator']!r}), not a {expected_class}")
    weights = record.get("weights", WEIGHTS_NAME)
    if not isinstance(weights, str) or Path(weights).name != weights or weights in ("", ".", ".."):
        raise PretrainedError(f"{config_path}: field 'weights' must be a file name in the folder, got {_short_repr(weights)}")
    try:
        weights_path = path_inside(directory, weights, what="weights file")
    except UnsafePathError as exc:
        raise PretrainedError(f"{config_path}: {exc}") from None
    if not weights_path.is_file():
        raise PretrainedError(f"{directory}: missing {weights}")
    return record


_JSON_KINDS = {str: "string", dict: "object", list: "array"}


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about untrusted values."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def commit_checkpoint(root: str | Path, step: int, write: Callable[[Path], None], *, keep: int = 2) -> Path:
    """Write checkpoint ``root/step-XXXXXXXX`` atomically and point ``root/latest`` at it.

    ``write(folder)`` fills a temporary folder ``root/.step-XXXXXXXX.tmp``, which is
    then renamed; the ``latest`` pointer is replaced atomically after that, and all
    but the newest ``keep`` checkpoints up to this step are deleted (newer ones, left
    by an earlier run, are not touched). Saving a step that is already on disk while
    ``latest`` names it first points ``latest`` at a hard-linked copy of the old
    folder, so that a kill at any moment leaves ``latest`` naming a whole checkpoint.

    Returns:
        The checkpoint folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{int(step):08d}"
    final, temporary, previous = root / name, root / f".{name}.tmp", root / f".{name}.previous"
    _remove_folder(temporary)
    temporary.mkdir()
    write(temporary)
    if final.exists():
        if _pointer_names(root) == name:
            _remove_folder(previous)
            shutil.copytree(final, previous, copy_function=_link_or_copy)
            write_json_atomic(root / LATEST, {"checkpoint": previous.name, "step": int(step)})
        _discard_folder(final)
    os.replace(temporary, final)
    write_json_atomic(root / LATEST, {"checkpoint": name, "step": int(step)})
    for leftover in root.glob(".step-*"):  # copies and folders of killed commits, no longer named by `latest`
        if leftover.is_dir():
            _remove_folder(leftover)
    older = [folder for folder in _step_folders(root) if _step_of(folder) < int(step)]
    for old in older[max(int(keep) - 1, 0) :] if keep > 0 else ():
        _discard_folder(old)
    return final


def _link_or_copy(source: str, destination: str) -> str:
    """Hard-link ``source`` to ``destination`` (a copy where the file system has no links)."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
    return destination


def _remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _discard_folder(folder: Path) -> None:
    """Delete a folder by first renaming it to a hidden name, so a kill never leaves half a checkpoint."""
    trash = folder.with_name(f".{folder.name}.trash-{os.getpid()}")
    _remove_folder(trash)
    try:
        os.replace(folder, trash)
    except OSError:
        return
    _remove_folder(trash)


def _step_of(folder: Path) -> int:
    match = _STEP_FOLDER.match(folder.name)
    return int(match.group(1)) if match else -1


def _step_folders(root: Path) -> list[Path]:
    """The ``step-XXXXXXXX`` folders of ``root``, newest (highest step) first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _STEP_FOLDER.match(p.name) and p.is_dir()), key=_step_of, reverse=True)


def _pointer_names(root: Path) -> str | None:
    """The folder name ``root/latest`` holds, or None when it is missing or unreadable."""
    try:
        record = read_json(root / LATEST, error=PretrainedError, max_bytes=2**16)
    except PretrainedError:
        return None
    return record.get("checkpoint") if isinstance(record, dict) else None


def latest_checkpoint(root: str | Path) -> Path | None:
    """The checkpoint folder ``root/latest`` points at, or None when there is no pointer.

    Raises:
        PretrainedError: the pointer is not a JSON object with a ``checkpoint`` folder
            name, or names a folder that does not exist.
        UnsafePathError: the pointer names a folder outside ``root`` (``..``, an
            absolute path or a symbolic link out).
    """
    root = Path(root)
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    record = read_json(pointer, error=PretrainedError, max_bytes=2**16)
    name = record.get("checkpoint") if isinstance(record, dict) else None
    if not isinstance(name, str):
        raise PretrainedError(f"{pointer}: no 'checkpoint' folder name in {str(record)[:80]!r}")
    target = path_inside(root, name, what=f"{pointer}: checkpoint")
    if target == root.resolve():
        raise PretrainedError(f"{pointer}: checkpoint {name!r} is the checkpoint folder itself")
    if not target.is_dir():
        raise PretrainedError(f"{pointer} points at {name}, which does not exist")
    return target


def newest_intact_checkpoint(root: str | Path, check: Callable[[Path], Any]) -> Path | None:
    """The checkpoint of ``root`` to resume from: the one ``latest`` names if it is whole,
    else the newest ``step-*`` folder that is.

    ``check(folder)`` validates (and may load) a candidate; it raises
    :class:`PretrainedError` for a damaged one, which is then passed over with a
    :class:`CheckpointWarning` naming it and why. A :class:`CheckpointMismatchError`
    (an intact checkpoint of other settings or data) is raised at once. Candidates
    are never taken from outside ``root``.

    Returns:
        The folder ``check`` accepted, or None when ``root`` holds no checkpoint.

    Raises:
        PretrainedError: checkpoints exist but none is whole (each named with its reason).
    """
    root = Path(root)
    problems: list[str] = []
    candidates: list[Path] = []
    try:
        pointed = latest_checkpoint(root)
    except (PretrainedError, UnsafePathError) as exc:
        problems.append(f"{root / LATEST}: {_reason(exc, root / LATEST)}")
    else:
        if pointed is not None:
            candidates.append(pointed)
        elif _step_folders(root):
            problems.append(f"{root / LATEST}: missing")
    for folder in _step_folders(root):
        try:
            folder = path_inside(root, folder.name, what="checkpoint")
        except UnsafePathError as exc:
            problems.append(str(exc))
            continue
        if folder not in candidates:
            candidates.append(folder)
    for folder in candidates:
        try:
            check(folder)
        except CheckpointMismatchError:
            raise
        except (PretrainedError, UnsafePathError) as exc:
            problems.append(f"{folder.name}: {_reason(exc, folder)}")
            continue
        if problems:
            warnings.warn(f"{root}: resuming from {folder.name}; passed over: {'; '.join(problems)}", CheckpointWarning, stacklevel=2)
        return folder
    if problems:
        raise PretrainedError(f"{root}: no intact checkpoint to resume from ({'; '.join(problems)}); move the folder away or train with --no-resume")
    return None


def _reason(error: Exception, prefix: Path) -> str:
    """An error message without the leading path it repeats."""
    message, start = str(error), f"{prefix}: "
    return message[len(start) :] if message.startswith(start) else message


def check_safetensors(path: str | Path) -> dict[str, Any]:
    """The header of a safetensors file after checking it against the file's size.

    Reads only the header: every tensor's dtype, shape and byte range must agree, and
    the ranges must end exactly at the end of the file (a truncated or padded file fails).

    Raises:
        PretrainedError: missing, truncated or malformed file (the message says which).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise PretrainedError(f"{path}: truncated ({size} bytes, no safetensors header)")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(size - 8, _MAX_SAFETENSORS_HEADER):
                raise PretrainedError(f"{path}: truncated or not safetensors (header of {length} bytes in a file of {size})")
            header = json.loads(handle.read(length).decode("utf-8"))
    except PretrainedError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PretrainedError(f"{path}: not a readable safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise PretrainedError(f"{path}: safetensors header is not a JSON object")
    end_of_data = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in entry["data_offsets"])
            count = 1
            for extent in entry["shape"]:
                if int(extent) < 0:
                    raise ValueError("negative extent")
                count *= int(extent)
            expected = count * _SAFETENSORS_ITEM_SIZE[entry["dtype"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise PretrainedError(f"{path}: bad header entry for tensor {key!r} ({exc!r})") from exc
        if not 0 <= begin <= end or end - begin != expected:
            raise PretrainedError(f"{path}: tensor {key!r} has byte range {begin}..{end} for {expected} bytes of data")
        end_of_data = max(end_of_data, end)
    if 8 + length + end_of_data != size:
        raise PretrainedError(f"{path}: truncated or padded: the header describes {8 + length + end_of_data} bytes, the file has {size}")
    return header


def load_generator(directory: str | Path, **overrides: Any):
    """Load any pretrained generator folder with the plugin that wrote it.

    The class named in ``crystens.json`` is imported only from the package of the
    plugin that registers the recorded generator name, never from elsewhere.
    """
    import importlib

    from crystens_core.plugins import registry

    record = read_pretrained_config(directory)
    component = registry().component("generator", record["generator"])
    factory = component.factory
    if not hasattr(factory, "from_pretrained"):
        plugin_module = registry().manager.get_plugin(component.plugin)
        package = getattr(plugin_module, "__name__", "").split(".")[0]
        module_name, _, class_name = record["class"].rpartition(".")
        if not package or module_name.split(".")[0] != package:
            raise PretrainedError(f"{directory}: class {record['class']!r} is not part of plugin {component.plugin!r}")
        factory = getattr(importlib.import_module(module_name), class_name, None)
        if factory is None or not hasattr(factory, "from_pretrained"):
            raise PretrainedError(f"{directory}: {record['class']!r} cannot load pretrained folders")
    return factory.from_pretrained(directory, **overrides)
