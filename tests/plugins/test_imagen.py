"""The imagen-pytorch cascade: offline import, conformance, the two U-Nets, resume."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("imagen_pytorch") is None:  # not importorskip: a plain import asks the hub for T5
    pytest.skip("the imagen generator needs `pip install crystens[imagen]`", allow_module_level=True)

from crystens_core import get_generator  # noqa: E402
from crystens_core.testing import parametrize_with_checks, sample_tensors  # noqa: E402

TINY = {"dim": 8, "dim_mults": [1, 2], "timesteps": 2, "batch_size": 2, "device": "cpu"}


@parametrize_with_checks([get_generator("imagen", **TINY)])
def test_conformance(component, check):
    check(component)


def test_import_never_asks_the_hub_for_t5(tmp_path):
    # An empty Hugging Face cache and no network: a plain `import imagen_pytorch` fails here.
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    code = "from crystens_imagen.offline import import_imagen; m = import_imagen(); print(m.t5.get_encoded_dim(m.t5.DEFAULT_T5_NAME))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "768"


def test_the_two_unets_take_turns():
    model = get_generator("imagen", **TINY)
    model.fit(sample_tensors(), steps=1, progress=False)
    before = {name: [p.detach().clone() for p in module.parameters()] for name, module in model.modules_.items()}
    model.fit(sample_tensors(), steps=2, progress=False)
    changed = {name: any(not np.array_equal(a, b.detach()) for a, b in zip(before[name], module.parameters())) for name, module in model.modules_.items()}
    assert changed == {"unet1": False, "unet2": True}  # step 2 trained U-Net 2 only
    assert [sorted(k for k in record if k != "step") for record in model.history_] == [["loss_unet1"], ["loss_unet2"]]
    assert all(np.isfinite(record[f"loss_unet{i + 1}"]) for i, record in enumerate(model.history_))


def test_resume_is_exact(tmp_path):
    tensors = sample_tensors()
    straight = get_generator("imagen", **TINY).fit(tensors, steps=3, progress=False)
    get_generator("imagen", **TINY, checkpoint_every=2).fit(tensors, steps=2, checkpoint_dir=tmp_path, progress=False)
    resumed = get_generator("imagen", **TINY, checkpoint_every=2).fit(tensors, steps=3, checkpoint_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(straight.sample(1, seed=4), resumed.sample(1, seed=4))


def test_sampling_timesteps_can_change_after_training(tmp_path):
    model = get_generator("imagen", **TINY).fit(sample_tensors(), steps=2, progress=False)
    model.save_pretrained(tmp_path)
    slower = type(model).from_pretrained(tmp_path, timesteps=3)
    assert slower.settings["timesteps"] == 3
    assert slower.sample(2, seed=0).shape == (2, 4, 64, 64)
    assert not np.array_equal(slower.sample(1, seed=0), model.sample(1, seed=0))
