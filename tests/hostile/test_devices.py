"""One rule for the `device` setting, in training and in sampling, torch and Keras alike (issue 9 §7)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core import get_generator  # noqa: E402
from crystens_core.devices import DeviceError, DeviceRequest, parse_device  # noqa: E402
from crystens_core.errors import CrystensError  # noqa: E402
from crystens_core.testing import sample_tensors  # noqa: E402
from crystens_torch.generator import resolve_device  # noqa: E402

TINY = {"width": 4, "batch_size": 4}
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


def test_device_spellings():
    assert parse_device("auto") == DeviceRequest("auto", None)
    assert parse_device(" GPU:2 ") == DeviceRequest("cuda", 2) == parse_device("cuda:2")
    assert parse_device("mps") == DeviceRequest("mps", None)
    for bad in ("tpu", "cpu:1", "cuda:-1", "cuda:x", "", None, 3, ["cuda"]):
        with pytest.raises(DeviceError, match="device must be one of"):
            parse_device(bad)


def test_torch_resolves_every_setting_to_a_device_this_machine_has():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if GPUS else resolve_device("auto").type)
    with pytest.raises(DeviceError, match=rf"'cuda:{GPUS}'.*" + ("sees no GPU" if GPUS == 0 else f"sees {GPUS} GPU")):
        resolve_device(f"cuda:{GPUS}")


def test_training_refuses_a_gpu_it_cannot_use_instead_of_ignoring_it(tmp_path):
    """Before: fit trained on another device (here the CPU) without a word, while sample failed on it.
    Now the setting is refused when the generator is made (or, if changed later, when fit starts)."""
    with pytest.raises(CrystensError, match=f"'cuda:{GPUS}'"):
        get_generator("gan", **TINY, device=f"cuda:{GPUS}").fit(sample_tensors(), steps=1, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert not (tmp_path / "ckpt").exists()
    model = get_generator("gan", **TINY, device="cpu")
    model.settings["device"] = f"cuda:{GPUS}"
    with pytest.raises(DeviceError, match=f"'cuda:{GPUS}'"):
        model.fit(sample_tensors(), steps=1, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert model.step_ == 0 and not (tmp_path / "ckpt").exists()
    with pytest.raises(CrystensError, match="device must be one of"):
        get_generator("gan", **TINY, device="tpu").fit(sample_tensors(), steps=1, progress=False)


def test_sampling_follows_the_same_rule(tmp_path):
    trained = get_generator("gan", **TINY, device="cpu").fit(sample_tensors(), steps=1, progress=False)
    folder = trained.save_pretrained(tmp_path / "model")
    with pytest.raises(CrystensError, match=f"'cuda:{GPUS}'"):
        type(trained).from_pretrained(folder, device=f"cuda:{GPUS}").sample(2)
    model = type(trained).from_pretrained(folder, device="cpu")
    model.settings["device"] = f"cuda:{GPUS}"
    with pytest.raises(DeviceError, match=f"'cuda:{GPUS}'"):
        model.sample(2)


@pytest.mark.skipif(GPUS == 0, reason="needs a CUDA GPU")
def test_training_and_sampling_use_the_gpu_asked_for():
    index = GPUS - 1
    model = get_generator("gan", **TINY, device=f"cuda:{index}").fit(sample_tensors(), steps=2, progress=False)
    assert {p.device for p in model.modules_["generator"].parameters()} == {torch.device("cuda", index)}
    assert np.isfinite(model.sample(2)).all()
    assert {p.device for p in model.modules_["generator"].parameters()} == {torch.device("cuda", index)}


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="the Keras generators need `pip install crystens[tf]`")
def test_keras_follows_the_same_rule():
    """Before: a missing GPU was silently replaced by the CPU (TensorFlow's soft placement)."""
    from crystens_keras.backend import tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    settings = {"width": 1, "dense_layers": 1, "batch_size": 4}
    for device, reason in ((f"gpu:{gpus}", "GPU"), (f"cuda:{gpus}", "GPU"), ("mps", "torch"), ("tpu", "device must be one of")):
        with pytest.raises(CrystensError, match=reason):
            get_generator("gan-keras", **settings, device=device).fit(sample_tensors(), steps=1, progress=False)
        model = get_generator("gan-keras", **settings, device="cpu")
        model.settings["device"] = device
        with pytest.raises(DeviceError, match=reason):
            model.fit(sample_tensors(), steps=1, progress=False)
