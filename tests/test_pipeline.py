"""The pipeline: every part is an attribute, replaceable by assignment."""

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core import get_decoder, get_generator, get_metric  # noqa: E402
from crystens_core.pipeline import CrystalPipeline  # noqa: E402


def test_fit_sample_evaluate_and_swap_parts(mp20_sample):
    data = mp20_sample.subset(range(40))
    pipeline = CrystalPipeline(get_generator("gan", width=4, batch_size=4, device="cpu"), metrics=["self-consistency", "ks"])
    pipeline.fit(data, steps=2, progress=False)
    assert pipeline.scaler is pipeline.generator.scaler_ and pipeline.generator.step_ == 2
    samples = pipeline.sample(5, seed=0)
    assert samples.tensors.shape == (5, 4, 64, 64) and len(samples.results) == 5
    figures = pipeline.evaluate(samples)
    assert figures["self-consistency"]["n_tensors"] == 5.0 and "ks_mean" in figures["ks"]
    pipeline.decoder = get_decoder("paper")
    assert type(pipeline.sample(2, seed=0).results[0]).__name__ == "DecodeResult"
    pipeline.metrics["self-consistency"] = get_metric("self-consistency", decoder="paper")
    assert pipeline.evaluate(samples)["self-consistency"]["n_tensors"] == 5.0


class SitesPerCell:
    """Sites per cell of each generated structure (NaN where decoding failed)."""

    requires = frozenset({"structures"})

    def get_config(self):
        return {}

    def compute(self, *, structures, reference=None, tensors=None):
        return self.compute_details(structures=structures)[0]

    def compute_details(self, *, structures, reference=None, tensors=None):
        sites = np.array([np.nan if s is None else len(s) for s in structures])
        return {"mean_sites": float(np.nanmean(sites))}, {"generated": {"n_sites": sites}}


def test_evaluate_keeps_details_aligned_with_the_tensors(mp20_sample, encoder):
    from crystens_core.pipeline import Samples

    data = mp20_sample.subset(range(20))
    tensors = encoder.encode_batch(data.structures, data.spacegroups)
    tensors[4] = 0.0  # a sample that does not decode
    pipeline = CrystalPipeline(None, metrics=["ks", "self-consistency"])
    pipeline.metrics["sites"] = SitesPerCell()
    samples = Samples(tensors, pipeline.decoder.decode_batch(tensors))
    details: dict = {}
    figures = pipeline.evaluate(samples, mp20_sample.subset(range(100, 140)).structures, details=details)
    assert figures["ks"]["n_generated"] == 20.0 and figures["self-consistency"]["decoded_fraction"] == 19 / 20
    assert "sun" not in figures  # no novelty/hull details: no S.U.N. rate
    sites = details["sites"]["generated"]["n_sites"]
    assert len(sites) == 20 and np.isnan(sites[4])
    assert list(np.delete(sites, 4)) == [len(s) for i, s in enumerate(data.structures) if i != 4]
    assert figures["sites"]["mean_sites"] == pytest.approx(np.mean([len(s) for i, s in enumerate(data.structures) if i != 4]))
    evaluation = pipeline.evaluate_with_details(samples, data.structures)
    assert set(evaluation.seconds) == {"ks", "self-consistency", "sites"} and evaluation.sun is None


def test_evaluate_never_hands_a_metric_a_structure_that_fails_the_check(mp20_sample):
    """A generated or reference structure with a NaN or flat cell reaches no metric (spglib would crash on it)."""
    import numpy as np
    from pymatgen.core import Lattice, Structure

    from crystens_core.pipeline import CrystalPipeline, Samples
    from crystens_core.results import DecodeResult

    class Recorder:
        """A metric that keeps what it was given."""

        requires = ("structures", "reference")

        def compute(self, *, structures, reference, **_):
            self.structures, self.reference = structures, reference
            return {"n_used": sum(s is not None for s in structures)}

    good = mp20_sample.structures[0]
    nan_cell = Structure(Lattice(np.diag([np.nan, 4.0, 4.0])), ["Na"], [[0, 0, 0]])
    flat = Structure(Lattice([[4.0, 0, 0], [4.0, 0, 0], [0, 0, 4.0]]), ["Cl"], [[0, 0, 0]])  # zero volume
    results = [DecodeResult(structure=s) for s in (good, nan_cell, flat)]
    recorder = Recorder()
    pipeline = CrystalPipeline("gan", metrics={"recorder": recorder})
    figures = pipeline.evaluate(Samples(np.zeros((3, 4, 64, 64), dtype=np.float32), results), reference=[good, nan_cell])
    assert figures["recorder"]["n_used"] == 1
    assert recorder.structures[0] is good and recorder.structures[1:] == [None, None]
    assert list(recorder.reference) == [good]


def test_a_swapped_decoder_is_the_one_a_real_run_uses(mp20_sample, tmp_path):
    """train → sample → decode → evaluate → report through the pipeline object, with its decoder replaced."""
    pipeline = CrystalPipeline(get_generator("gan", width=4, batch_size=4, device="cpu"), metrics=["self-consistency", "ks"])
    pipeline.decoder = get_decoder("paper", atom_clusters=2, coordinate_clusters=5)
    decoded_counts = []
    decode_batch = pipeline.decoder.decode_batch
    pipeline.decoder.decode_batch = lambda tensors, **options: decoded_counts.append(len(tensors)) or decode_batch(tensors, **options)
    lines = []
    record = pipeline.run(tmp_path, mp20_sample.subset(range(40)), samples=6, seed=1, steps=2, echo=lambda line, err=False: lines.append(line))

    assert decoded_counts == [6], "the run decoded with the decoder set on the pipeline, once"
    summary = json.loads((tmp_path / "samples" / "summary.json").read_text())
    assert summary["decoder"] == "paper" and summary["decoder_config"]["atom_clusters"] == 2 and summary["seed"] == 1
    tensors = np.load(tmp_path / "samples" / "tensors.npy", allow_pickle=False)
    again = get_decoder("paper", atom_clusters=2, coordinate_clusters=5).decode_batch(tensors)
    assert [r["ok"] for r in summary["results"]] == [r.ok for r in again]
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert record["decoder"] == written["decoder"] == "paper" and written["generated"]["settings"] == {"decoder": "paper"}
    assert written["generator"] == "gan" and written["steps"] == 2 and written["samples"] == 6
    assert written["metrics"]["self-consistency"]["n_tensors"] == 6.0 and "ks_mean" in written["metrics"]["ks"]
    assert (tmp_path / "report.html").is_file() and json.loads((tmp_path / "train" / "run.json").read_text())["steps"] == 2
    assert lines[0] == f"{mp20_sample.name}: 40 structures ({mp20_sample.skipped})" and lines[-1].startswith("report: ")


def test_crystens_run_only_parses_and_calls_the_pipeline(tmp_path, monkeypatch):
    """`crystens run` turns its options into one CrystalPipeline.run call: the decoder and metrics it built are the ones used."""
    from click.testing import CliRunner

    from crystens_core.cli import main

    calls = []
    real_run = CrystalPipeline.run

    def spy(self, folder, data, **options):
        calls.append((type(self.decoder).__name__, sorted(self.metrics), str(folder), data, options["samples"], options["seed"]))
        return real_run(self, folder, data, **options)

    monkeypatch.setattr(CrystalPipeline, "run", spy)
    args = ["run", "--generator", "gan", "--steps", "1", "--samples", "3", "--seed", "2", "--decoder", "paper", "--metric", "ks", "-o", str(tmp_path), "--option", "width=4", "--option", "device=cpu", "--batch-size", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert calls == [("PaperDecoder", ["ks"], str(tmp_path), "mp20-sample", 3, 2)]
    assert json.loads((tmp_path / "samples" / "summary.json").read_text())["decoder"] == "paper"
