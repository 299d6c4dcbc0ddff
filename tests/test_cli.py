"""The `crystens` command line: plugins and errors."""

import json

from click.testing import CliRunner

from crystens_core import hookimpl, plugins
from crystens_core.cli import main


def test_plugins_json_lists_builtins_with_components():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.output)["plugins"]}
    assert records["crystens_tensor"]["components"] == ["encoder:crystens"]
    assert records["crystens_auto_decoder"]["builtin"] is True
    assert records["crystens_auto_decoder"]["version"]


def test_plugins_shows_a_broken_plugin_and_still_lists_the_rest():
    class Broken:
        @hookimpl
        def crystens_register_metrics(self, register):
            raise ImportError("needs a library that is not installed")

    registry = plugins.registry()
    registry.register_plugin(Broken(), "broken-metrics")
    try:
        result = CliRunner().invoke(main, ["plugins"])
        assert result.exit_code == 0
        assert "broken-metrics" in result.output and "BROKEN" in result.output
        assert "needs a library that is not installed" in result.output
        assert "decoder:auto" in result.output
    finally:
        registry.unregister_plugin("broken-metrics")


def test_unknown_decoder_lists_the_available_ones(tmp_path):
    import numpy as np

    path = tmp_path / "t.npy"
    np.save(path, np.zeros((1, 4, 64, 64), np.float32))
    result = CliRunner().invoke(main, ["decode", str(path), "-o", str(tmp_path / "out"), "--decoder", "nope"])
    assert result.exit_code != 0
    assert "unknown decoder 'nope'" in result.output and "auto" in result.output


def test_decode_option_sets_decoder_settings(tmp_path, mp20_tensors):
    import numpy as np

    path = tmp_path / "t.npy"
    np.save(path, mp20_tensors[:3])
    result = CliRunner().invoke(main, ["decode", str(path), "-o", str(tmp_path / "out"), "--option", "merge_tolerance=0.2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["decoder_config"]["merge_tolerance"] == 0.2 and summary["decoded"] == 3
