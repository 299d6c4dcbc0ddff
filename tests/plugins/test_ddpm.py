"""The diffusers DDPM generator: conformance, DDIM and DDPM sampling, resume."""

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the ddpm generator needs `pip install crystens[diffusion]`")

from crystens_core import get_generator  # noqa: E402
from crystens_core.testing import parametrize_with_checks, sample_tensors  # noqa: E402

TINY = {"block_out_channels": [8, 8], "norm_num_groups": 4, "batch_size": 2, "inference_steps": 2, "device": "cpu"}


@parametrize_with_checks([get_generator("ddpm", **TINY)])
def test_conformance(component, check):
    check(component)


def test_full_ddpm_sampler_and_unknown_sampler():
    model = get_generator("ddpm", **{**TINY, "sampler": "ddpm", "timesteps": 3}).fit(sample_tensors(), steps=1, progress=False)
    assert model.sample(1, seed=0).shape == (1, 4, 64, 64)
    model.settings["sampler"] = "euler"
    with pytest.raises(ValueError, match="sampler must be"):
        model.sample(1, seed=0)


def test_resume_is_exact(tmp_path):
    tensors = sample_tensors()
    straight = get_generator("ddpm", **TINY).fit(tensors, steps=3, progress=False)
    get_generator("ddpm", **TINY, checkpoint_every=2).fit(tensors, steps=2, checkpoint_dir=tmp_path, progress=False)
    resumed = get_generator("ddpm", **TINY, checkpoint_every=2).fit(tensors, steps=3, checkpoint_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(straight.sample(1, seed=4), resumed.sample(1, seed=4))
