"""Plugin discovery and the component registry.

Plugins are modules advertised under the entry-point group ``crystens`` (the
built-ins too). :func:`load_plugins` imports them once, on first use; a plugin
that fails to import or whose hook raises is recorded with its error and the
rest keep working. ``CRYSTENS_DISABLE_PLUGINS`` (comma-separated plugin names)
blocks plugins before they are imported.
"""

from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from crystens_core import hookspecs
from crystens_core.errors import UnknownComponentError

ENTRY_POINT_GROUP = "crystens"
DISABLE_ENV = "CRYSTENS_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "crystens"

#: Component kind → the registration hook that provides it.
KIND_HOOKS: dict[str, str] = {
    "encoder": "crystens_register_encoders",
    "decoder": "crystens_register_decoders",
    "generator": "crystens_register_generators",
    "metric": "crystens_register_metrics",
    "layer": "crystens_register_layers",
}


@dataclass(frozen=True)
class Component:
    """One registered component: its kind, name, factory and owning plugin."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""


@dataclass
class PluginInfo:
    """What `crystens plugins` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    disabled: bool = False
    error: str | None = None
    components: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "disabled": self.disabled,
            "error": self.error,
            "components": list(self.components),
        }


def _disabled_names() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _short_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class PluginRegistry:
    """Owns the pluggy manager, the plugin records and the components."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("crystens")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in KIND_HOOKS}
        self._loaded = False
        self._lock = threading.RLock()

    # -- loading ---------------------------------------------------------------
    def load(self) -> None:
        """Import every entry-point plugin once (idempotent, thread safe)."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            disabled = _disabled_names()
            for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
                if entry_point.name in self.plugins:
                    continue  # the same distribution seen twice on sys.path
                dist = getattr(entry_point, "dist", None)
                info = PluginInfo(
                    name=entry_point.name,
                    distribution=dist.name if dist else None,
                    version=dist.version if dist else None,
                    builtin=bool(dist and dist.name == BUILTIN_DISTRIBUTION),
                )
                self.plugins[info.name] = info
                if info.name in disabled:
                    info.disabled = True
                    continue
                try:
                    module = entry_point.load()
                except Exception as exc:  # a broken plugin must not break the others
                    info.error = f"import failed: {_short_error(exc)}"
                    continue
                self._add(module, info)

    def register_plugin(self, plugin: object, name: str, *, version: str | None = None) -> PluginInfo:
        """Register an in-process plugin object (a module or any object with hookimpls)."""
        with self._lock:
            self.load()
            if name in self.plugins:
                raise ValueError(f"a plugin named {name!r} is already registered")
            info = PluginInfo(name=name, version=version)
            self.plugins[name] = info
            self._add(plugin, info)
            return info

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and every component it registered."""
        with self._lock:
            self.plugins.pop(name, None)
            if self.manager.has_plugin(name):
                self.manager.unregister(name=name)
            for by_name in self.components.values():
                for component_name in [n for n, c in by_name.items() if c.plugin == name]:
                    del by_name[component_name]

    def _add(self, plugin: object, info: PluginInfo) -> None:
        try:
            self.manager.register(plugin, name=info.name)
        except Exception as exc:
            info.error = f"registration failed: {_short_error(exc)}"
            return
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(self.manager.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                register = self._register_callback(kind, info)
                arguments = {"register": register}
                try:
                    impl.function(**{name: arguments[name] for name in impl.argnames if name in arguments})
                except Exception as exc:
                    info.error = f"{hook_name} failed: {_short_error(exc)}"

    def _register_callback(self, kind: str, info: PluginInfo) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], *, description: str = "") -> None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
            if not callable(factory):
                raise TypeError(f"{kind} {name!r}: factory must be callable, got {factory!r}")
            existing = self.components[kind].get(name)
            if existing is not None:
                raise ValueError(f"{kind} {name!r} is already registered by plugin {existing.plugin!r}")
            self.components[kind][name] = Component(kind, name, factory, info.name, description)
            info.components.append(f"{kind}:{name}")

        return register

    # -- lookup ----------------------------------------------------------------
    def component(self, kind: str, name: str) -> Component:
        if kind not in KIND_HOOKS:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KIND_HOOKS)}")
        self.load()
        try:
            return self.components[kind][name]
        except KeyError:
            broken = [p.name for p in self.plugins.values() if p.error]
            raise UnknownComponentError(kind, name, self.components[kind], broken) from None

    def create(self, kind: str, name: str, **config: Any) -> Any:
        return self.component(kind, name).factory(**config)

    def names(self, kind: str) -> list[str]:
        if kind not in KIND_HOOKS:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KIND_HOOKS)}")
        self.load()
        return sorted(self.components[kind])


_REGISTRY = PluginRegistry()


def registry() -> PluginRegistry:
    """The process-wide registry (plugins load on first use)."""
    return _REGISTRY


def reset_registry() -> PluginRegistry:
    """Forget every plugin and load afresh on next use (tests, environment changes)."""
    global _REGISTRY
    _REGISTRY = PluginRegistry()
    return _REGISTRY


def load_plugins() -> dict[str, PluginInfo]:
    """Load every installed plugin (once) and return their records by name."""
    _REGISTRY.load()
    return dict(_REGISTRY.plugins)


def list_components(kind: str) -> list[str]:
    """Names of the registered components of ``kind`` ("encoder", "decoder", ...)."""
    return _REGISTRY.names(kind)


def get_encoder(name: str, **config: Any) -> Any:
    """A new encoder instance; raises :class:`UnknownComponentError` for unknown names."""
    return _REGISTRY.create("encoder", name, **config)


def get_decoder(name: str, **config: Any) -> Any:
    """A new decoder instance; raises :class:`UnknownComponentError` for unknown names."""
    return _REGISTRY.create("decoder", name, **config)


def get_generator(name: str, **config: Any) -> Any:
    """A new generator instance; raises :class:`UnknownComponentError` for unknown names."""
    return _REGISTRY.create("generator", name, **config)


def get_metric(name: str, **config: Any) -> Any:
    """A new metric instance; raises :class:`UnknownComponentError` for unknown names."""
    return _REGISTRY.create("metric", name, **config)


def get_layer(name: str, **config: Any) -> Any:
    """A new layer instance; raises :class:`UnknownComponentError` for unknown names."""
    return _REGISTRY.create("layer", name, **config)


def require(*modules: str, extra: str, what: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extra to install when a module is missing."""
    import importlib.util

    from crystens_core.errors import MissingDependencyError

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(module, extra, what)


def lazy_factory(target: str, *, requires: tuple[str, ...] = (), extra: str = "", what: str = "") -> Callable[..., Any]:
    """A factory for ``register`` that imports ``"package.module:Class"`` only when called.

    Plugins whose components need heavy libraries register this, so that loading
    the plugin stays cheap and a missing library is reported as the extra to install.
    """
    module_name, _, class_name = target.partition(":")

    def factory(**config: Any) -> Any:
        import importlib

        if requires:
            require(*requires, extra=extra, what=what or target)
        return getattr(importlib.import_module(module_name), class_name)(**config)

    factory.__qualname__ = factory.__name__ = f"lazy_{class_name}"
    return factory
