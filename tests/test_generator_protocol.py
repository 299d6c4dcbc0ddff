"""The generator contract of docs/plugins.md is true: a generator written from the docs alone,
installed as a third-party distribution, passes the conformance suite and runs through
``crystens train`` and ``crystens sample``; the built-in generators keep the same protocol."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from crystens_core import plugins
from crystens_core.errors import MissingDependencyError
from crystens_core.protocols import Generator
from crystens_core.testing import GENERATOR_CHECKS

sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))
from plugin_dists import make_distribution, plugin_site, run_crystens  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
MODULE = "gaussian_generator"


def documented_generator() -> tuple[str, str]:
    """The example plugin module and its entry-point line, taken from the generator section of docs/plugins.md."""
    text = DOCS.read_text()
    section = text[text.index("## crystens_register_generators") : text.index("## crystens_register_metrics")]
    module = next(block for block in re.findall(r"```python\n(.*?)```", section, re.DOTALL) if "class GaussianGenerator" in block)
    toml = next(block for block in re.findall(r"```toml\n(.*?)```", section, re.DOTALL) if MODULE in block)
    entry_point = re.search(r'^(\w+) = "([\w.:]+)"$', toml, re.MULTILINE)
    assert entry_point and entry_point.group(2) == MODULE, toml
    return module, entry_point.group(1)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The documented example installed as distribution ``gaussian-example`` in a tmp site folder on sys.path."""
    source, entry_point = documented_generator()
    folder = make_distribution(tmp_path / "site", "gaussian-example", {entry_point: MODULE}, {MODULE: source})
    with plugin_site(folder, monkeypatch, MODULE) as site_folder:
        yield site_folder


def test_the_documented_generator_passes_the_conformance_suite(site):
    generator = plugins.get_generator("gaussian")
    assert type(generator).__module__ == MODULE, "the generator must come from the installed distribution"
    assert isinstance(generator, Generator)
    for check in GENERATOR_CHECKS:
        check(generator)
    assert isinstance(generator, Generator)


def test_the_documented_generator_trains_and_samples_from_the_command_line(site, tmp_path):
    run_dir, samples = tmp_path / "run", tmp_path / "samples"
    trained = run_crystens(site, "train", "--generator", "gaussian", "--data", "mp20-sample", "--seed", "3", "--option", "spread=0.5", "-o", str(run_dir))
    assert trained.returncode == 0, trained.stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["settings"] == {"preset": "small", "spread": 0.5, "seed": 3, "batch_size": 64}
    assert record["steps"] == 1 and record["history"][0]["step"] == 1
    config = json.loads((run_dir / "model" / "crystens.json").read_text())
    assert config["plugin"] == "gaussian_example" and config["class"] == f"{MODULE}.GaussianGenerator"
    assert config["encoder"]["max_sites"] == 52, "the pipeline's encoder settings are saved with the model"

    sampled = run_crystens(site, "sample", str(run_dir), "-n", "8", "--seed", "1", "-o", str(samples))
    assert sampled.returncode == 0, sampled.stderr
    tensors = np.load(samples / "tensors.npy", allow_pickle=False)
    assert tensors.shape == (8, 4, 64, 64) and tensors.dtype == np.float32 and np.isfinite(tensors).all()
    summary = json.loads((samples / "summary.json").read_text())
    assert summary["count"] == 8 and summary["generator"] == "gaussian"

    refused = run_crystens(site, "sample", str(run_dir), "-n", "2", "--device", "cuda", "-o", str(tmp_path / "other"))
    assert refused.returncode != 0 and "device" in refused.stderr and "Traceback" not in refused.stderr


MEMBERS = ("step_", "history_", "get_config", "fit", "sample", "save_pretrained", "from_pretrained")


def test_the_protocol_states_what_the_conformance_suite_and_command_line_call():
    """Every member the core calls on a generator is in the protocol: an object lacking any one is not a Generator."""
    import inspect

    def with_members(names):
        return type("Partial", (), {name: (0 if name == "step_" else [] if name == "history_" else lambda self, *a, **k: None) for name in names})()

    assert isinstance(with_members(MEMBERS), Generator)
    for left_out in MEMBERS:
        assert not isinstance(with_members([m for m in MEMBERS if m != left_out]), Generator), f"the protocol does not require {left_out}"
    fit = inspect.signature(Generator.fit).parameters
    assert {"steps", "scaler", "encoder_config", "checkpoint_dir", "resume", "progress", "time_limit"} <= set(fit)
    assert {"seed", "progress"} <= set(inspect.signature(Generator.sample).parameters)


@pytest.mark.parametrize("name", plugins.list_components("generator"))
def test_the_built_in_generators_keep_the_protocol(name, skip_or_fail):
    try:
        generator = plugins.get_generator(name)
    except MissingDependencyError as exc:
        skip_or_fail(f"{name}: {exc}")
    assert isinstance(generator, Generator), f"{name}: missing {[m for m in MEMBERS if not hasattr(generator, m)]}"
