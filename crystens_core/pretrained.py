"""Saving and loading generators as plain files (no pickles).

A pretrained folder holds ``crystens.json`` — the plugin, the class, the crystens
version, the constructor arguments, the fitted scaler and the encoder settings —
and the weights in ``model.safetensors``. :func:`read_pretrained_config` checks a
folder before anything is loaded and names what is missing or wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from crystens_core.errors import CrystensError

CONFIG_NAME = "crystens.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "crystens.generator"


class PretrainedError(CrystensError, ValueError):
    """A pretrained or checkpoint folder that cannot be loaded; the message says why."""


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(data, out, indent=1)
            out.write("\n")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


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
        record = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise PretrainedError(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise PretrainedError(f"{config_path}: not a crystens generator record (format {record.get('format') if isinstance(record, dict) else None!r})")
    for key in ("plugin", "class", "generator", "arguments"):
        if key not in record:
            raise PretrainedError(f"{config_path}: missing field {key!r}")
    if expected_plugin and record["plugin"] != expected_plugin:
        raise PretrainedError(f"{directory}: written by plugin {record['plugin']!r} (generator {record['generator']!r}), not {expected_plugin!r}")
    if expected_class and record["class"] != expected_class:
        raise PretrainedError(f"{directory}: holds a {record['class']} ({record['generator']!r}), not a {expected_class}")
    if not (directory / WEIGHTS_NAME).is_file():
        raise PretrainedError(f"{directory}: missing {WEIGHTS_NAME}")
    return record


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
