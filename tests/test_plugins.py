"""The plugin system: discovery, registration, errors, disabling, temporary plugins."""

from importlib import metadata

import pytest

import crystens_core
from crystens_core import hookimpl, plugins
from crystens_core.errors import UnknownComponentError

BUILTINS = {
    "crystens_tensor": ["encoder:crystens"],
    "crystens_paper_decoder": ["decoder:paper"],
    "crystens_auto_decoder": ["decoder:auto"],
    "crystens_self_consistency": ["metric:self-consistency"],
}


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry that loads afresh, restored to a clean one afterwards."""
    plugins.reset_registry()
    try:
        yield plugins
    finally:
        monkeypatch.undo()
        plugins.reset_registry()


class _EntryPoint:
    """Stands in for an installed entry point whose module cannot be imported."""

    def __init__(self, name, value):
        self.name, self.value, self.dist = name, value, None

    def load(self):
        return metadata.EntryPoint(self.name, self.value, "crystens").load()


def test_builtins_are_entry_point_plugins_with_versions():
    loaded = crystens_core.load_plugins()
    for name, components in BUILTINS.items():
        info = loaded[name]
        assert info.builtin and info.error is None, info
        assert info.version == crystens_core.__version__
        assert info.components == components


def test_load_is_idempotent():
    first = crystens_core.load_plugins()
    second = crystens_core.load_plugins()
    assert first.keys() == second.keys()
    assert plugins.registry().components["decoder"]["auto"] is plugins.registry().components["decoder"]["auto"]


def test_get_returns_new_configured_instances():
    a = crystens_core.get_decoder("auto", merge_tolerance=0.3)
    b = crystens_core.get_decoder("auto")
    assert a is not b and a.merge_tolerance == 0.3 and b.merge_tolerance == 0.5
    assert crystens_core.get_encoder("crystens", max_sites=20).size == 32
    assert "self-consistency" in crystens_core.list_components("metric")


def test_unknown_component_lists_available_names():
    with pytest.raises(UnknownComponentError) as info:
        crystens_core.get_decoder("nope")
    assert isinstance(info.value, KeyError)
    assert "unknown decoder 'nope'" in str(info.value)
    assert "auto" in str(info.value) and "paper" in str(info.value)
    with pytest.raises(ValueError, match="kinds"):
        crystens_core.list_components("widget")


def test_temporary_plugin_registers_and_unregisters():
    class Constant:
        requires = frozenset({"structures"})

        def get_config(self):
            return {}

        def compute(self, *, structures, tensors=None, reference=None):
            return {"count": float(len(structures))}

    class Plugin:
        @hookimpl
        def crystens_register_metrics(self, register):
            register("count", Constant, description="number of structures")

    registry = plugins.registry()
    registry.register_plugin(Plugin(), "temporary")
    try:
        assert crystens_core.get_metric("count").compute(structures=[1, 2]) == {"count": 2.0}
        assert registry.plugins["temporary"].components == ["metric:count"]
    finally:
        registry.unregister_plugin("temporary")
    assert "count" not in crystens_core.list_components("metric")


def test_broken_hook_and_name_clash_are_recorded_not_fatal():
    """A raising hook marks its plugin BROKEN; a clashing component name is refused and recorded, the rest registers."""
    class Broken:
        @hookimpl
        def crystens_register_decoders(self, register):
            raise RuntimeError("boom")

    class Clash:
        @hookimpl
        def crystens_register_decoders(self, register):
            register("auto", object)
            register("clash-own", object)

    class SecondClash:
        @hookimpl
        def crystens_register_decoders(self, register):
            register("clash-own", object)

    registry = plugins.registry()
    registry.register_plugin(Broken(), "broken")
    registry.register_plugin(Clash(), "clash")
    registry.register_plugin(SecondClash(), "second-clash")
    try:
        assert "boom" in registry.plugins["broken"].error and registry.plugins["broken"].state == "BROKEN"
        clash = registry.plugins["clash"]
        assert clash.refused == ["decoder 'auto' is reserved by the built-in plugin 'crystens_auto_decoder'; not registered"]
        assert clash.components == ["decoder:clash-own"] and clash.error is None and clash.state == "ok"
        assert registry.plugins["second-clash"].refused == ["decoder 'clash-own' is already registered by plugin 'clash'; not registered"]
        assert type(crystens_core.get_decoder("auto")).__name__ == "AutoDecoder"
        with pytest.raises(UnknownComponentError, match="plugins that failed to load: broken;"):
            crystens_core.get_decoder("missing")
    finally:
        for name in ("broken", "clash", "second-clash"):
            registry.unregister_plugin(name)


def test_unimportable_entry_point_is_reported_and_others_load(fresh_registry, monkeypatch):
    real = metadata.entry_points

    def entry_points(group=None, **kwargs):
        found = list(real(group=group, **kwargs))
        return found + [_EntryPoint("ghost", "crystens_ghost_plugin_that_does_not_exist.plugin")]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    loaded = fresh_registry.load_plugins()
    assert "import failed: ModuleNotFoundError" in loaded["ghost"].error
    assert loaded["crystens_auto_decoder"].error is None
    assert crystens_core.get_decoder("paper") is not None


def test_disable_plugins_environment(fresh_registry, monkeypatch):
    monkeypatch.setenv("CRYSTENS_DISABLE_PLUGINS", "crystens_paper_decoder, crystens_self_consistency")
    loaded = fresh_registry.load_plugins()
    assert loaded["crystens_paper_decoder"].disabled
    assert loaded["crystens_paper_decoder"].components == []
    assert "paper" not in crystens_core.list_components("decoder")
    with pytest.raises(UnknownComponentError):
        crystens_core.get_metric("self-consistency")


def test_hook_implementation_may_take_fewer_arguments():
    """Specs only ever gain arguments; an implementation naming none of them still runs."""
    seen = []

    class Minimal:
        @hookimpl
        def crystens_register_layers(self):
            seen.append(True)

    registry = plugins.registry()
    registry.register_plugin(Minimal(), "minimal")
    try:
        assert seen == [True] and registry.plugins["minimal"].error is None
    finally:
        registry.unregister_plugin("minimal")


def test_importing_the_core_imports_no_deep_learning_library():
    import subprocess
    import sys

    code = "import sys, crystens_core; crystens_core.load_plugins(); print(sorted(m for m in ('torch', 'tensorflow', 'diffusers', 'imagen_pytorch', 'sklearn') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
