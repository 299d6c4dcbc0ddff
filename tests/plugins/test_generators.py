"""The torch generators: conformance, real training, resume, bad checkpoints."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core import get_generator  # noqa: E402
from crystens_core.pretrained import PretrainedError  # noqa: E402
from crystens_core.testing import parametrize_with_checks, sample_tensors  # noqa: E402
from crystens_torch.generator import latest_checkpoint  # noqa: E402

TINY = {"width": 4, "batch_size": 4, "device": "cpu"}


@parametrize_with_checks([get_generator("gan", **TINY), get_generator("wgan-gp", critic_steps=2, **TINY)])
def test_conformance(component, check):
    check(component)


@pytest.mark.parametrize("name", ["gan", "wgan-gp"])
def test_kill_and_resume_reaches_the_same_state(name, tmp_path):
    """Train 6 steps in one go, or 4 steps, 'crash', then resume to 6: identical weights."""
    tensors = sample_tensors()
    settings = {**TINY, "checkpoint_every": 2}
    straight = get_generator(name, **settings).fit(tensors, steps=6, checkpoint_dir=tmp_path / "a", progress=False)
    interrupted = get_generator(name, **settings).fit(tensors, steps=4, checkpoint_dir=tmp_path / "b", progress=False)
    del interrupted  # the process dies; only the checkpoint folder survives
    assert json.loads((tmp_path / "b" / "latest").read_text())["step"] == 4
    resumed = get_generator(name, **settings).fit(tensors, steps=6, checkpoint_dir=tmp_path / "b", progress=False)
    assert resumed.step_ == 6 and len(resumed.history_) == 6
    for key, value in straight.modules_["generator"].state_dict().items():
        torch.testing.assert_close(resumed.modules_["generator"].state_dict()[key], value, rtol=0, atol=0, msg=key)
    np.testing.assert_array_equal(straight.sample(2, seed=0), resumed.sample(2, seed=0))


def test_a_partial_checkpoint_is_never_taken_for_a_complete_one(tmp_path):
    tensors = sample_tensors()
    get_generator("gan", **TINY, checkpoint_every=2).fit(tensors, steps=2, checkpoint_dir=tmp_path, progress=False)
    (tmp_path / ".step-00000004.tmp").mkdir()  # what a kill during the next write leaves behind
    assert latest_checkpoint(tmp_path).name == "step-00000002"
    resumed = get_generator("gan", **TINY, checkpoint_every=2).fit(tensors, steps=4, checkpoint_dir=tmp_path, progress=False)
    assert resumed.step_ == 4


def test_bad_pretrained_folders_name_the_problem(tmp_path):
    model = get_generator("gan", **TINY).fit(sample_tensors(), steps=1, progress=False)
    good = model.save_pretrained(tmp_path / "good")
    missing = tmp_path / "missing"
    shutil.copytree(good, missing)
    (missing / "model.safetensors").unlink()
    with pytest.raises(PretrainedError, match="missing model.safetensors"):
        type(model).from_pretrained(missing)
    with pytest.raises(PretrainedError, match="written by plugin 'crystens_gan'"):
        get_generator("wgan-gp", **TINY).from_pretrained(good)
    wrong = tmp_path / "wrong"
    shutil.copytree(good, wrong)
    wide = get_generator("gan", width=8, batch_size=4, device="cpu").fit(sample_tensors(), steps=1, progress=False)
    wide.save_pretrained(tmp_path / "wide")
    shutil.copy(tmp_path / "wide" / "model.safetensors", wrong / "model.safetensors")
    with pytest.raises(PretrainedError, match="has shape .* the model expects"):
        type(model).from_pretrained(wrong)
    with pytest.raises(PretrainedError, match="not valid JSON"):
        (wrong / "crystens.json").write_text("{")
        type(model).from_pretrained(wrong)


def test_resuming_with_other_settings_is_refused(tmp_path):
    tensors = sample_tensors()
    get_generator("gan", **TINY).fit(tensors, steps=1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(PretrainedError, match="trained with"):
        get_generator("gan", width=8, batch_size=4, device="cpu").fit(tensors, steps=2, checkpoint_dir=tmp_path, progress=False)


def test_unknown_settings_and_presets_are_named():
    with pytest.raises(ValueError, match="unknown setting.*widht"):
        get_generator("gan", widht=3)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_generator("wgan-gp", preset="huge")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan", "wgan-gp"])
def test_training_on_real_data_moves_the_samples_towards_the_data(name, mp20_tensors):
    """After a short real training run the generated lattice lengths are closer to the data's
    than those of the untrained network (measured on the raw header)."""
    from crystens_core import layout

    model = get_generator(name, width=8, batch_size=16, device="cpu", seed=1)
    model.fit(mp20_tensors, steps=1, progress=False)
    before = model.sample(64, seed=3)
    model.fit(mp20_tensors, steps=150, progress=False)
    after = model.sample(64, seed=3)
    target = np.median(mp20_tensors[:, 0, layout.A, 12][mp20_tensors[:, 0, layout.Z, 12] > 0])
    error = lambda t: abs(np.median(t[:, 0, layout.A, 12]) - target)  # noqa: E731
    assert error(after) < error(before)
