"""The `crystens` command line: plugins and errors."""

import json

from click.testing import CliRunner

from crystens_core import hookimpl, plugins
from crystens_core.cli import main
from crystens_core.testing import temporary_plugin


def test_plugins_json_lists_builtins_with_components():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.output)["plugins"]}
    assert records["crystens_tensor"]["components"] == ["encoder:crystens"]
    assert records["crystens_tensor"]["descriptions"]["encoder:crystens"] == plugins.registry().component("encoder", "crystens").description
    assert records["crystens_auto_decoder"]["builtin"] is True
    assert records["crystens_auto_decoder"]["version"]


def test_plugins_shows_a_broken_plugin_and_still_lists_the_rest():
    class Broken:
        @hookimpl
        def crystens_register_metrics(self, register):
            raise ImportError("needs a library that is not installed")

    with temporary_plugin(Broken(), "broken-metrics"):
        result = CliRunner().invoke(main, ["plugins"])
        assert result.exit_code == 0
        assert "broken-metrics" in result.output and "BROKEN" in result.output
        assert "needs a library that is not installed" in result.output
        assert "decoder:auto" in result.output


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


def test_plugins_shows_each_components_description():
    class Described:
        @hookimpl
        def crystens_register_metrics(self, register):
            register("described", dict, description="counts things\nin two lines")
            register("undescribed", dict)

    registry = plugins.registry()
    with temporary_plugin(Described(), "described-plugin"):
        result = CliRunner().invoke(main, ["plugins"])
        assert result.exit_code == 0, result.output
        assert "    metric:described  counts things; in two lines\n" in result.output
        assert "    metric:undescribed\n" in result.output
        assert "    decoder:auto  " + registry.component("decoder", "auto").description in result.output
        result = CliRunner().invoke(main, ["plugins", "--json"])
        record = next(r for r in json.loads(result.output)["plugins"] if r["name"] == "described-plugin")
        assert record["descriptions"] == {"metric:described": "counts things\nin two lines", "metric:undescribed": ""}


def test_run_and_evaluate_share_the_metric_option_spelling(tmp_path):
    """`--metric-option METRIC.KEY=VALUE` reaches the metric on both commands (checked before any work starts)."""
    runner = CliRunner()
    for command in (["run", "--generator", "gan", "-o", str(tmp_path / "run")], ["evaluate", "--reference", "mp20-sample", "--generated", str(tmp_path), "-o", str(tmp_path / "report")]):
        result = runner.invoke(main, [*command, "--metric", "ks", "--metric-option", "ks.symprek=0.1"])
        assert result.exit_code == 1 and "metric 'ks': bad setting" in result.output and "symprek" in result.output, result.output
        result = runner.invoke(main, [*command, "--metric", "ks", "--metric-option", "symprec=0.1"])
        assert result.exit_code == 2 and "--metric-option" in result.output and "METRIC.KEY=VALUE" in result.output, result.output
    assert not (tmp_path / "run").exists()
