"""The pipeline: every part is an attribute, replaceable by assignment."""

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
