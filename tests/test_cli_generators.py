"""`crystens train`, `sample` and `run` end to end on real data (tiny networks, few steps)."""

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core.cli import main  # noqa: E402

TINY = ["--option", "width=4", "--option", "device=cpu", "--batch-size", "4"]


def test_train_then_sample(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    result = runner.invoke(main, ["train", "--generator", "gan", "--data", "mpts52-sample", "--steps", "3", "-o", str(run_dir), *TINY])
    assert result.exit_code == 0, result.output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["steps"] == 3 and record["n_train"] == 200 and len(record["history"]) == 3
    assert (run_dir / "model" / "model.safetensors").is_file() and (run_dir / "checkpoints" / "latest").is_file()
    # The same command again resumes: with --steps 5 it trains only the two missing steps.
    result = runner.invoke(main, ["train", "--generator", "gan", "--data", "mpts52-sample", "--steps", "5", "-o", str(run_dir), *TINY])
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in json.loads((run_dir / "run.json").read_text())["history"]] == [1, 2, 3, 4, 5]
    result = runner.invoke(main, ["sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "samples")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "samples" / "summary.json").read_text())
    assert summary["count"] == 4 and summary["generator"] == "gan"
    assert (tmp_path / "samples" / "tensors.npy").is_file()
    assert len(list((tmp_path / "samples").glob("*.cif"))) == summary["decoded"]


def test_run_writes_a_report(tmp_path):
    out = tmp_path / "report"
    args = ["run", "--generator", "wgan-gp", "--steps", "2", "--samples", "6", "--metric", "ks", "--metric", "self-consistency", "--option", "critic_steps=1", "-o", str(out), *TINY]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["generator"] == "wgan-gp" and report["steps"] == 2 and report["samples"] == 6
    assert set(report["metrics"]) == {"ks", "self-consistency"}
    assert report["metrics"]["self-consistency"]["n_tensors"] == 6.0
    assert "## ks" in (out / "report.md").read_text()


def test_errors_are_clear(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--generator", "nope", "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "unknown generator 'nope'" in result.output and "gan" in result.output
    result = runner.invoke(main, ["sample", str(tmp_path), "-n", "2", "-o", str(tmp_path / "s")])
    assert result.exit_code != 0 and "missing crystens.json" in result.output
    result = runner.invoke(main, ["train", "--generator", "gan", "--option", "widht=3", "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "unknown setting(s) widht" in result.output


def test_missing_torch_names_the_extra(monkeypatch):
    import importlib.util

    from crystens_core import get_generator
    from crystens_core.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r'pip install "crystens\[torch\]"'):
        get_generator("gan")


FULL_DATA_TINY = {
    "gan": ["width=4"],
    "wgan-gp": ["width=4", "critic_steps=1"],
    "ddpm": ["block_out_channels=[8, 8]", "norm_num_groups=4"],
    "imagen": ["dim=8", "dim_mults=[1, 2]", "timesteps=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("generator", sorted(FULL_DATA_TINY))
def test_every_generator_trains_on_the_full_data(tmp_path, shared_data, monkeypatch, generator):
    import importlib.util

    needs = {"ddpm": "diffusers", "imagen": "imagen_pytorch"}.get(generator)
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{generator} needs {needs}")
    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    options = [part for option in FULL_DATA_TINY[generator] + ["device=cpu"] for part in ("--option", option)]
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--generator", generator, "--data", "mp-20:pilot_val", "--steps", "2", "--batch-size", "2", "-o", str(run_dir), *options])
    assert result.exit_code == 0, result.output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["n_train"] == 1000 and record["steps"] == 2
    losses = [value for step in record["history"] for key, value in step.items() if key != "step"]
    assert losses and all(value == value and abs(value) < 1e6 for value in losses)  # finite
