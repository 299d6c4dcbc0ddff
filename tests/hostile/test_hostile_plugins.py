"""Hostile plugins: built-in names are reserved, duplicates are reported conflicts, SystemExit is contained (issue 9 §4)."""

from __future__ import annotations

import json

import pytest

import crystens_core
from crystens_core import hookimpl, plugins
from crystens_core.errors import PluginError
from plugin_dists import make_distribution, plugin_site, plugin_source, run_crystens, stderr_lines


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A tmp site folder first on sys.path, with a registry that loads afresh (and a clean one afterwards)."""
    folder = tmp_path / "site"
    folder.mkdir()
    with plugin_site(folder, monkeypatch, "hostile_") as site_folder:
        yield site_folder


def plugins_json(site) -> dict[str, dict]:
    result = run_crystens(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    return {record["name"]: record for record in json.loads(result.stdout)["plugins"]}


def test_third_party_decoder_auto_under_an_earlier_entry_point_is_refused(site):
    """Entry point `aaa_takeover` sorts before every built-in and registers decoder `auto`: refused, the built-in keeps it."""
    make_distribution(site, "takeover", {"aaa_takeover": "hostile_takeover"}, {"hostile_takeover": plugin_source(("decoder", "auto"), ("decoder", "takeover-extra"))})
    records = plugins_json(site)
    builtin = records["crystens_auto_decoder"]
    assert builtin["state"] == "ok" and builtin["error"] is None and builtin["components"] == ["decoder:auto"]
    hostile = records["aaa_takeover"]
    assert hostile["distribution"] == "takeover" and not hostile["builtin"]
    assert hostile["refused"] == ["decoder 'auto' is reserved by the built-in plugin 'crystens_auto_decoder'; not registered"]
    assert hostile["components"] == ["decoder:takeover-extra"]  # its other component still registers
    # in-process: the built-in answers to `auto`
    assert type(crystens_core.get_decoder("auto")).__name__ == "AutoDecoder"
    assert crystens_core.list_components("decoder").count("auto") == 1
    table = run_crystens(site, "plugins")
    assert "refused: decoder 'auto' is reserved by the built-in plugin 'crystens_auto_decoder'" in table.stdout


def test_third_party_entry_point_named_like_a_builtin_plugin_is_refused_not_imported(site, tmp_path):
    marker = tmp_path / "imported"
    source = plugin_source(("generator", "gan"), ("generator", "evil-gan"), on_import=f"open({str(marker)!r}, 'w').close()")
    make_distribution(site, "evil-gan", {"crystens_gan": "hostile_gan"}, {"hostile_gan": source})
    records = plugins_json(site)
    assert records["crystens_gan"]["builtin"] and records["crystens_gan"]["state"] == "ok"
    assert "generator:gan" in records["crystens_gan"]["components"]
    refused = records["crystens_gan (evil-gan)"]
    assert refused["state"] == "REFUSED" and refused["distribution"] == "evil-gan" and refused["entry_point"] == "crystens_gan"
    assert refused["refused"] == ["entry point 'crystens_gan' is the name of a built-in plugin (reserved); not loaded"]
    assert refused["components"] == [] and not marker.exists()
    loaded = crystens_core.load_plugins()
    assert "evil-gan" not in crystens_core.list_components("generator")
    assert loaded["crystens_gan"].builtin and loaded["crystens_gan (evil-gan)"].blocked


def test_two_distributions_with_one_entry_point_name_are_a_conflict(site):
    for distribution in ("first-dist", "second-dist"):
        module = f"hostile_{distribution.replace('-', '_')}"
        make_distribution(site, distribution, {"shared_name": module}, {module: plugin_source(("metric", f"{distribution}-metric"))})
    records = plugins_json(site)
    assert "shared_name" not in records  # neither silently wins the name
    first, second = records["shared_name (first-dist)"], records["shared_name (second-dist)"]
    assert first["state"] == second["state"] == "REFUSED"
    assert first["refused"] == ["entry point 'shared_name' is also declared by distribution 'second-dist': conflict, neither is loaded"]
    assert "'first-dist'" in second["refused"][0]
    metrics = crystens_core.list_components("metric")
    assert "first-dist-metric" not in metrics and "second-dist-metric" not in metrics


def test_system_exit_at_import_is_contained(site):
    """A plugin calling sys.exit(3) at import used to end every command with exit 3 and no output."""
    make_distribution(site, "exits", {"exits_on_import": "hostile_exits"}, {"hostile_exits": plugin_source(("metric", "never"), on_import="sys.exit(3)")})
    records = plugins_json(site)
    assert records["exits_on_import"]["state"] == "BROKEN"
    assert records["exits_on_import"]["error"] == "import failed: SystemExit: 3"
    assert records["crystens_auto_decoder"]["state"] == "ok"
    listing = run_crystens(site, "data", "list")
    assert listing.returncode == 0 and "mp20-sample" in listing.stdout, listing.stderr


def test_system_exit_from_a_hook_and_from_a_factory_are_contained(site, tmp_path):
    make_distribution(site, "hook-exits", {"hook_exits": "hostile_hook"}, {"hostile_hook": plugin_source(("decoder", "hooked"), on_register="raise SystemExit(4)")})
    make_distribution(site, "factory-exits", {"factory_exits": "hostile_factory"}, {"hostile_factory": plugin_source(("decoder", "quitter"), factory_body="sys.exit(5)")})
    loaded = crystens_core.load_plugins()
    assert loaded["hook_exits"].error == "crystens_register_decoders failed: SystemExit: 4"
    assert loaded["factory_exits"].error is None and loaded["factory_exits"].components == ["decoder:quitter"]
    with pytest.raises(PluginError, match=r"plugin 'factory_exits': creating decoder 'quitter' raised SystemExit: 5"):
        crystens_core.get_decoder("quitter")
    import numpy as np

    np.save(tmp_path / "t.npy", np.zeros((1, 4, 64, 64), dtype=np.float32))
    result = run_crystens(site, "decode", str(tmp_path / "t.npy"), "-o", str(tmp_path / "out"), "--decoder", "quitter")
    assert result.returncode == 1
    assert stderr_lines(result) == ["error: plugin 'factory_exits': creating decoder 'quitter' raised SystemExit: 5"]

    class Interrupted:  # Ctrl-C is not contained
        @hookimpl
        def crystens_register_metrics(self, register):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        plugins.registry().register_plugin(Interrupted(), "interrupted")
