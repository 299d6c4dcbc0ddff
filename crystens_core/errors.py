"""Exceptions raised by the crystens core."""

from __future__ import annotations

from collections.abc import Iterable


class CrystensError(Exception):
    """Base class of every error crystens raises on purpose."""


class UnknownComponentError(CrystensError, KeyError):
    """A component name that no loaded plugin registers.

    Args:
        kind: "encoder", "decoder", "generator", "metric" or "layer".
        name: the name asked for.
        available: the names that are registered for this kind.
        broken_plugins: names of plugins that failed to load (they may have
            provided the component).
    """

    def __init__(self, kind: str, name: str, available: Iterable[str], broken_plugins: Iterable[str] = ()):
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        self.broken_plugins = sorted(broken_plugins)
        message = f"unknown {kind} {name!r}; available: {', '.join(self.available) or '(none)'}"
        if self.broken_plugins:
            message += f" (plugins that failed to load: {', '.join(self.broken_plugins)}; see `crystens plugins`)"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


class PluginError(CrystensError):
    """A plugin misbehaved while being used (for example called ``sys.exit`` from a factory)."""


class ReasonError(CrystensError, ValueError):
    """A failure with a short category ``reason`` (what skip reports count) and a ``detail``."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class EncodingError(ReasonError):
    """A structure that cannot be encoded; ``reason`` is a short category."""


class DatasetError(CrystensError, ValueError):
    """A dataset that cannot be read at all (missing file, missing column, bad checksum)."""


class InvalidStructureError(ReasonError):
    """A parsed structure that is not a crystal (bad cell, coordinates or elements); ``reason`` is a short category."""


class SettingsError(CrystensError, ValueError):
    """A component setting of the wrong type, outside its bounds, or unknown; the message names it."""


class MissingDependencyError(CrystensError, ImportError):
    """An optional library a component needs is not installed."""

    def __init__(self, package: str, extra: str, what: str):
        super().__init__(f"{what} needs {package!r}; install it with: pip install \"crystens[{extra}]\"")
