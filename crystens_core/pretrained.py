"""Saving and loading generators as plain files (no pickles).

A pretrained folder holds ``crystens.json`` — the plugin, the class, the crystens
version, the constructor arguments, the fitted scaler and the encoder settings —
and the weights in ``model.safetensors`` (or the file the record's ``weights`` field
names, e.g. ``model.weights.h5`` for Keras). :func:`read_pretrained_config` checks a
folder before anything is loaded and names what is missing or wrong.

Training checkpoints are such folders too, ``root/step-XXXXXXXX`` with the optimiser
state and ``trainer.json`` beside, committed atomically by :func:`commit_checkpoint`
and found through the ``root/latest`` pointer (:func:`latest_checkpoint`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crystens_core.errors import CrystensError
from crystens_core.safe_io import UnsafePathError, path_inside, read_json, write_json_atomic  # noqa: F401  (write_json_atomic: re-exported for plugins)

CONFIG_NAME = "crystens.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "crystens.generator"
LATEST = "latest"
TRAINER_NAME = "trainer.json"


class PretrainedError(CrystensError, ValueError):
    """A pretrained or checkpoint folder that cannot be loaded; the message says why."""


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
    but the newest ``keep`` checkpoints are deleted. A kill at any moment leaves the
    previous checkpoint and pointer intact.

    Returns:
        The checkpoint folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    temporary = root / f".step-{step:08d}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    write(temporary)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    write_json_atomic(root / LATEST, {"checkpoint": final.name, "step": step})
    for old in sorted(root.glob("step-*"))[: -int(keep)] if keep > 0 else ():
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    """The checkpoint folder ``root/latest`` points at, or None when there is no pointer.

    Raises:
        PretrainedError: the pointer names a folder that does not exist.
    """
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    target = Path(root) / json.loads(pointer.read_text())["checkpoint"]
    if not target.is_dir():
        raise PretrainedError(f"{pointer} points at {target.name}, which does not exist")
    return target


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
