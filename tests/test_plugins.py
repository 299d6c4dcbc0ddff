"""The plugin system: discovery, registration, errors, disabling, temporary plugins."""

from importlib import metadata

import pytest

import crystens_core
from crystens_core import hookimpl, plugins
from crystens_core.errors import UnknownComponentError
from crystens_core.testing import temporary_plugin

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
    with temporary_plugin(Plugin(), "temporary"):
        assert crystens_core.get_metric("count").compute(structures=[1, 2]) == {"count": 2.0}
        assert registry.plugins["temporary"].components == ["metric:count"]
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
    with temporary_plugin(Minimal(), "minimal"):
        assert seen == [True] and registry.plugins["minimal"].error is None


def test_importing_the_core_imports_no_deep_learning_library():
    import subprocess
    import sys

    code = "import sys, crystens_core; crystens_core.load_plugins(); print(sorted(m for m in ('torch', 'tensorflow', 'diffusers', 'imagen_pytorch', 'sklearn') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- component kinds come from the hook specs ----------------------------------------------------
def test_kinds_are_read_from_the_hook_specs():
    assert plugins.component_kinds() == {
        "encoder": "crystens_register_encoders",
        "decoder": "crystens_register_decoders",
        "generator": "crystens_register_generators",
        "metric": "crystens_register_metrics",
        "layer": "crystens_register_layers",
    }
    assert plugins.registry().kinds == plugins.component_kinds()
    assert type(crystens_core.get_component("decoder", "auto")) is type(crystens_core.get_decoder("auto"))
    assert crystens_core.get_component("encoder", "crystens", max_sites=20).size == 32
    with pytest.raises(ValueError, match="unknown component kind 'widget'; kinds: encoder, decoder"):
        crystens_core.get_component("widget", "auto")


def test_a_new_hook_spec_is_a_new_kind(fresh_registry, monkeypatch):
    """Adding ``crystens_register_refiners`` to the hook specs is all a new kind takes."""
    from crystens_core import hookspec, hookspecs

    @hookspec
    def crystens_register_refiners(register):
        """Register refiners: structure → relaxed structure."""

    @hookspec
    def crystens_register_pretrained_models(register):
        """Register pretrained models."""

    crystens_register_pretrained_models.kind = "pretrained"  # a plural that is not the singular + "s"
    monkeypatch.setattr(hookspecs, "crystens_register_refiners", crystens_register_refiners, raising=False)
    monkeypatch.setattr(hookspecs, "crystens_register_pretrained_models", crystens_register_pretrained_models, raising=False)
    registry = fresh_registry.reset_registry()

    class Identity:
        def __init__(self, steps=1):
            self.steps = steps

    class Plugin:
        @hookimpl
        def crystens_register_refiners(self, register):
            register("identity", Identity, description="returns the structure unchanged")

        @hookimpl
        def crystens_register_pretrained_models(self, register):
            register("tiny", dict)

    registry.register_plugin(Plugin(), "refining")
    assert list(registry.kinds)[-2:] == ["refiner", "pretrained"]
    assert crystens_core.list_components("refiner") == ["identity"]
    assert crystens_core.get_component("refiner", "identity", steps=3).steps == 3
    assert crystens_core.get_component("pretrained", "tiny", a=1) == {"a": 1}
    assert registry.plugins["refining"].components == ["refiner:identity", "pretrained:tiny"]
    assert registry.plugins["refining"].descriptions["refiner:identity"] == "returns the structure unchanged"
    with pytest.raises(UnknownComponentError, match="unknown refiner 'missing'"):
        crystens_core.get_component("refiner", "missing")


def test_descriptions_are_recorded_per_component():
    record = crystens_core.load_plugins()["crystens_auto_decoder"].as_dict()
    assert record["components"] == ["decoder:auto"]
    assert record["descriptions"]["decoder:auto"] == plugins.registry().component("decoder", "auto").description != ""


# -- a generator's recorded name and plugin come from its registration ---------------------------
def test_a_registered_generator_subclass_records_its_own_plugin(tmp_path):
    pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")
    import json

    from crystens_core.pretrained import CONFIG_NAME, load_generator
    from crystens_core.testing import sample_tensors
    from crystens_gan.model import VanillaGAN

    class ThirdPartyGAN(VanillaGAN):
        """Inherits ``name = "gan"`` and ``plugin = "crystens_gan"``; registered as another plugin's."""

    class Plugin:
        @hookimpl
        def crystens_register_generators(self, register):
            register("third-party-gan", ThirdPartyGAN, description="a GAN subclass from elsewhere")

    with temporary_plugin(Plugin(), "third_party"):
        tensors = sample_tensors()
        model = crystens_core.get_component("generator", "third-party-gan", width=4, batch_size=4, device="cpu")
        assert model.registration() == ("third-party-gan", "third_party")
        folder = model.fit(tensors, steps=1, progress=False).save_pretrained(tmp_path / "third")
        record = json.loads((folder / CONFIG_NAME).read_text())
        assert (record["plugin"], record["generator"]) == ("third_party", "third-party-gan")
        loaded = load_generator(folder)
        assert type(loaded) is ThirdPartyGAN and loaded.step_ == 1
        # the built-in class still records (and loads) as before
        builtin = crystens_core.get_generator("gan", width=4, batch_size=4, device="cpu").fit(tensors, steps=1, progress=False).save_pretrained(tmp_path / "gan")
        assert json.loads((builtin / CONFIG_NAME).read_text())["plugin"] == "crystens_gan"
        assert type(load_generator(builtin)) is VanillaGAN
