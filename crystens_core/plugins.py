"""Plugin discovery and the component registry.

Plugins are modules advertised under the entry-point group ``crystens`` (the
built-ins too). :func:`load_plugins` imports them once, on first use; a plugin
that fails to import or whose hook raises is recorded with its error and the
rest keep working (``SystemExit`` from a plugin included; only Ctrl-C goes
through). ``CRYSTENS_DISABLE_PLUGINS`` (comma-separated plugin names) blocks
plugins before they are imported.

Built-in names are reserved: the built-in distribution (``crystens``) loads
first whatever the entry-point names, a third-party entry point that reuses a
built-in plugin name is refused, and so is a third-party component registered
under a name a built-in plugin already registers. Two third-party
distributions declaring the same entry-point name are a conflict: neither is
loaded. Every refusal is recorded on the plugin (``crystens plugins`` shows it).
"""

from __future__ import annotations

import os
import re
import threading
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from crystens_core import hookspecs
from crystens_core.errors import PluginError, UnknownComponentError

ENTRY_POINT_GROUP = "crystens"
DISABLE_ENV = "CRYSTENS_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "crystens"

#: Every hook spec named ``crystens_register_<plural>`` provides one component kind.
REGISTER_PREFIX = "crystens_register_"


def component_kinds(specs: Any = hookspecs) -> dict[str, str]:
    """Component kind → its registration hook, read from the hook specs of ``specs``.

    Each hook spec ``crystens_register_<plural>`` gives one kind, in definition
    order: ``<plural>`` without its final "s" (``crystens_register_encoders`` →
    ``"encoder"``), or the spec function's ``kind`` attribute where it sets one
    (a plural that is not the singular plus "s"). A new kind is therefore one
    hook spec; :func:`get_component` creates its components.
    """
    kinds: dict[str, str] = {}
    for hook_name, spec in vars(specs).items():
        if not hook_name.startswith(REGISTER_PREFIX) or not hasattr(spec, "crystens_spec"):
            continue
        kind = getattr(spec, "kind", None) or hook_name[len(REGISTER_PREFIX):].removesuffix("s")
        kinds[kind] = hook_name
    return kinds


#: Component kind → the registration hook that provides it (of the shipped hook specs).
KIND_HOOKS: dict[str, str] = component_kinds()


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
    #: ``"kind:name"`` → the ``description`` the plugin registered it with.
    descriptions: dict[str, str] = field(default_factory=dict)
    #: Entry-point name (differs from ``name`` only for a refused duplicate, keyed "name (distribution)").
    entry_point: str | None = None
    #: True when the whole plugin was refused (not imported); the reasons are in ``refused``.
    blocked: bool = False
    #: Why the plugin or some of its components were refused, one sentence each.
    refused: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """"disabled", "REFUSED" (not loaded), "BROKEN" (an error) or "ok"."""
        if self.disabled:
            return "disabled"
        if self.blocked:
            return "REFUSED"
        return "BROKEN" if self.error else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entry_point": self.entry_point or self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "disabled": self.disabled,
            "state": self.state,
            "error": self.error,
            "refused": list(self.refused),
            "components": list(self.components),
            "descriptions": {component: self.descriptions.get(component, "") for component in self.components},
        }


def _disabled_names() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _short_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _is_builtin(dist: Any) -> bool:
    return dist is not None and _normalized(dist.name) == BUILTIN_DISTRIBUTION


def _normalized(distribution_name: str | None) -> str:
    """PEP 503 form of a distribution name ("Crystens_Chemistry" → "crystens-chemistry")."""
    return re.sub(r"[-_.]+", "-", distribution_name or "").lower()


#: What a plugin may raise and still be contained: everything but Ctrl-C.
_CONTAINED = (Exception, SystemExit, GeneratorExit)


class PluginRegistry:
    """Owns the pluggy manager, the plugin records and the components."""

    def __init__(self, specs: Any = None) -> None:
        """``specs``: the module (or class) of hook specs; default :mod:`crystens_core.hookspecs` as it is now."""
        specs = hookspecs if specs is None else specs
        self.manager = pluggy.PluginManager("crystens")
        self.manager.add_hookspecs(specs)
        #: Component kind → its registration hook (:func:`component_kinds` of ``specs``).
        self.kinds: dict[str, str] = component_kinds(specs)
        self.plugins: dict[str, PluginInfo] = {}
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in self.kinds}
        self._loaded = False
        self._lock = threading.RLock()

    # -- loading ---------------------------------------------------------------
    def load(self) -> None:
        """Import every entry-point plugin once (idempotent, thread safe): built-ins first."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            disabled = _disabled_names()
            for entry_points in self._entry_points_by_name():
                entry_point = self._admit(entry_points)
                if entry_point is None:
                    continue
                info = self._info_of(entry_point)
                self.plugins[info.name] = info
                if info.name in disabled:
                    info.disabled = True
                    continue
                try:
                    module = entry_point.load()
                except _CONTAINED as exc:  # a broken plugin must not break the others
                    info.error = f"import failed: {_short_error(exc)}"
                    continue
                self._add(module, info)

    @staticmethod
    def _entry_points_by_name() -> list[list[Any]]:
        """Entry points grouped by name; groups holding a built-in first, then the rest, each in name order."""
        groups: dict[str, dict[tuple[str, str], Any]] = {}
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(entry_point, "dist", None)
            # the same distribution seen twice on sys.path is one declaration
            groups.setdefault(entry_point.name, {}).setdefault((_normalized(dist.name if dist else None), entry_point.value), entry_point)
        ordered = sorted(groups.items(), key=lambda item: (not any(_is_builtin(getattr(e, "dist", None)) for e in item[1].values()), item[0]))
        return [list(by_origin.values()) for _, by_origin in ordered]

    @staticmethod
    def _info_of(entry_point: Any) -> PluginInfo:
        dist = getattr(entry_point, "dist", None)
        return PluginInfo(
            name=entry_point.name,
            entry_point=entry_point.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            builtin=_is_builtin(dist),
        )

    def _admit(self, entry_points: list[Any]) -> Any | None:
        """The entry point to load among those sharing one name; the others are recorded as refused.

        A built-in keeps its name; third-party duplicates of a built-in name, or of
        each other, are refused (neither of two third-party duplicates loads).
        """
        if len(entry_points) == 1:
            return entry_points[0]
        builtin = next((e for e in entry_points if _is_builtin(getattr(e, "dist", None))), None)
        for entry_point in entry_points:
            if entry_point is builtin or _is_builtin(getattr(entry_point, "dist", None)):
                continue  # a second copy of the built-in distribution is the same plugin
            info = self._info_of(entry_point)
            if builtin is not None:
                reason = f"entry point {info.entry_point!r} is the name of a built-in plugin (reserved); not loaded"
            else:
                others = ", ".join(repr(self._info_of(e).distribution) for e in entry_points if e is not entry_point)
                reason = f"entry point {info.entry_point!r} is also declared by distribution {others}: conflict, neither is loaded"
            info.name = f"{info.entry_point} ({info.distribution})"
            info.blocked = True
            info.refused.append(reason)
            self.plugins[info.name] = info
        return builtin

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
        except _CONTAINED as exc:
            info.error = f"registration failed: {_short_error(exc)}"
            return
        for kind, hook_name in self.kinds.items():
            hook = getattr(self.manager.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                register = self._register_callback(kind, info)
                arguments = {"register": register}
                try:
                    impl.function(**{name: arguments[name] for name in impl.argnames if name in arguments})
                except _CONTAINED as exc:
                    info.error = f"{hook_name} failed: {_short_error(exc)}"

    def _register_callback(self, kind: str, info: PluginInfo) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], *, description: str = "") -> None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
            if not callable(factory):
                raise TypeError(f"{kind} {name!r}: factory must be callable, got {factory!r}")
            existing = self.components[kind].get(name)
            if existing is not None:  # refused and recorded; the plugin's other components still register
                owner = self.plugins.get(existing.plugin)
                if owner is not None and owner.builtin:
                    info.refused.append(f"{kind} {name!r} is reserved by the built-in plugin {existing.plugin!r}; not registered")
                else:
                    info.refused.append(f"{kind} {name!r} is already registered by plugin {existing.plugin!r}; not registered")
                return
            self.components[kind][name] = Component(kind, name, factory, info.name, str(description))
            info.components.append(f"{kind}:{name}")
            info.descriptions[f"{kind}:{name}"] = str(description)

        return register

    # -- lookup ----------------------------------------------------------------
    def _check_kind(self, kind: str) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(self.kinds)}")

    def component(self, kind: str, name: str) -> Component:
        """The registered component ``name`` of ``kind``; :class:`UnknownComponentError` if there is none."""
        self._check_kind(kind)
        self.load()
        try:
            return self.components[kind][name]
        except KeyError:
            broken = [p.name for p in self.plugins.values() if p.error]
            raise UnknownComponentError(kind, name, self.components[kind], broken) from None

    def create(self, kind: str, name: str, **config: Any) -> Any:
        """A new instance of a component; a plugin factory calling ``sys.exit`` raises :class:`PluginError`."""
        component = self.component(kind, name)
        try:
            return component.factory(**config)
        except (SystemExit, GeneratorExit) as exc:
            raise PluginError(f"plugin {component.plugin!r}: creating {kind} {name!r} raised {_short_error(exc) or type(exc).__name__}") from exc

    def component_of_class(self, kind: str, cls: type) -> Component | None:
        """The ``kind`` component whose factory is ``cls`` or a :func:`lazy_factory` of it (None if unregistered).

        Where one class is registered under several names, the one equal to the
        class's own ``name`` attribute wins, else the first registered.
        """
        self._check_kind(kind)
        self.load()
        target = f"{cls.__module__}:{cls.__qualname__}"
        matches = [c for c in self.components[kind].values() if c.factory is cls or getattr(c.factory, "target", None) == target]
        preferred = [c for c in matches if c.name == getattr(cls, "name", None)]
        return (preferred or matches or [None])[0]

    def names(self, kind: str) -> list[str]:
        """Sorted names of the registered components of ``kind``."""
        self._check_kind(kind)
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


def get_component(kind: str, name: str, **config: Any) -> Any:
    """A new instance of the ``kind`` component ``name`` ("encoder", "decoder", ... or any kind a hook spec adds).

    Raises :class:`UnknownComponentError` for an unknown name, ``ValueError`` for an unknown kind.
    """
    return _REGISTRY.create(kind, name, **config)


def get_encoder(name: str, **config: Any) -> Any:
    """``get_component("encoder", name, **config)``."""
    return get_component("encoder", name, **config)


def get_decoder(name: str, **config: Any) -> Any:
    """``get_component("decoder", name, **config)``."""
    return get_component("decoder", name, **config)


def get_generator(name: str, **config: Any) -> Any:
    """``get_component("generator", name, **config)``."""
    return get_component("generator", name, **config)


def get_metric(name: str, **config: Any) -> Any:
    """``get_component("metric", name, **config)``."""
    return get_component("metric", name, **config)


def get_layer(name: str, **config: Any) -> Any:
    """``get_component("layer", name, **config)``."""
    return get_component("layer", name, **config)


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
    factory.target = target  # type: ignore[attr-defined]  # lets the registry tell which class a name creates
    return factory
