"""The Keras generators `gan-keras` and `wgan-gp-keras`: conformance, exact resume, weight files,
the paper's layer stacks, the fast layers, and that nothing else imports TensorFlow."""

import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None:  # not importorskip: tensorflow must come through crystens_keras.backend
    pytest.skip("the Keras generators need `pip install crystens[tf]` (tensorflow-cpu)", allow_module_level=True)

from crystens_core import get_generator  # noqa: E402
from crystens_core.pretrained import PretrainedError, latest_checkpoint  # noqa: E402
from crystens_core.testing import parametrize_with_checks, sample_tensors  # noqa: E402

#: Tiny networks (the paper's layer stacks with one filter per width unit) and batches.
TINY = {
    "gan-keras": {"width": 1, "dense_layers": 1, "batch_size": 4, "device": "cpu"},
    "wgan-gp-keras": {"width": 1, "critic_steps": 2, "batch_size": 4, "device": "cpu"},
}


#: One instance per generator: the conformance checks train it 2 steps, the fixture below reuses it.
GENERATORS = {name: get_generator(name, **settings) for name, settings in TINY.items()}


@parametrize_with_checks(list(GENERATORS.values()))
def test_conformance(component, check):
    check(component)


def _state(model):
    """Every network weight and optimiser variable, by path."""
    state = {f"{name}/{v.path}": v.numpy() for name, network in model.networks_.items() for v in network.weights}
    state.update({f"{name}/{v.path}": v.numpy() for name, optimizer in model.optimizers_.items() for v in optimizer.variables})
    return state


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Per generator: the instance trained 2 steps on real tensors, its step-2 checkpoint
    folder (what fit writes every ``checkpoint_every`` steps), a saved copy, its state and samples."""
    out = {}
    for name, model in GENERATORS.items():
        root = tmp_path_factory.mktemp(name)
        model.fit(sample_tensors(), steps=2, progress=False)  # nothing to do if the conformance checks did it
        assert model.step_ == 2
        model._save_checkpoint(root / "checkpoints")
        model.save_pretrained(root / "model")
        out[name] = {"model": model, "root": root, "state": _state(model), "samples": model.sample(3, seed=4)}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TINY))
def test_kill_and_resume_reaches_the_same_state(name, runs):
    """A fresh process resuming from the step-2 checkpoint to step 4 ends where the run that
    kept going in memory ends: identical weights, Adam moments and iteration counts,
    batch-norm statistics, history and samples."""
    run = runs[name]
    tensors, root = sample_tensors(), run["root"]
    assert json.loads((root / "checkpoints" / "latest").read_text())["step"] == 2
    resumed = get_generator(name, **TINY[name]).fit(tensors, steps=4, checkpoint_dir=root / "checkpoints", progress=False)
    straight = run["model"].fit(tensors, steps=4, progress=False)
    assert resumed.step_ == 4 and [r["step"] for r in resumed.history_] == [1, 2, 3, 4]
    assert resumed.history_ == straight.history_
    assert all(np.isfinite(v) for record in resumed.history_ for v in record.values())
    final, expected = _state(resumed), _state(straight)
    assert final.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(final[key], value, err_msg=key)
    assert any(not np.array_equal(run["state"][key], final[key]) for key in final if "kernel" in key), "training changed no weight"
    np.testing.assert_array_equal(straight.sample(2, seed=0), resumed.sample(2, seed=0))
    assert json.loads((root / "checkpoints" / "latest").read_text())["step"] == 4


def test_saved_folder_is_json_and_a_keras_weights_file(runs):
    import h5py

    from crystens_core.pretrained import load_generator

    for name, run in runs.items():
        folder = run["root"] / "model"
        record = json.loads((folder / "crystens.json").read_text())
        assert record["generator"] == name and record["plugin"] == "crystens_keras" and record["weights"] == "model.weights.h5"
        assert record["trained_steps"] == 2 and record["shape"] == [4, 64, 64]
        assert sorted(p.name for p in folder.iterdir()) == ["crystens.json", "model.weights.h5"]
        with h5py.File(folder / "model.weights.h5") as handle:
            assert {"generator", run["model"].opponent} <= set(handle)
        loaded = load_generator(folder)  # through the registry, like `crystens sample`
        np.testing.assert_array_equal(loaded.sample(3, seed=4), run["samples"])
        assert sorted(p.name for p in latest_checkpoint(run["root"] / "checkpoints").iterdir()) == ["crystens.json", "model.weights.h5", "optimizer.h5", "trainer.json"]


def test_bad_pretrained_folders_name_the_problem(runs, tmp_path):
    model = runs["gan-keras"]["model"]
    good = runs["gan-keras"]["root"] / "model"
    missing = tmp_path / "missing"
    shutil.copytree(good, missing)
    (missing / "model.weights.h5").unlink()
    with pytest.raises(PretrainedError, match="missing model.weights.h5"):
        type(model).from_pretrained(missing)
    with pytest.raises(PretrainedError, match="written by plugin 'crystens_keras' .*gan-keras"):
        get_generator("gan", width=4, device="cpu").from_pretrained(good)
    with pytest.raises(PretrainedError, match="holds a crystens_keras.gan.KerasGAN"):
        type(get_generator("wgan-gp-keras")).from_pretrained(good)
    wrong = tmp_path / "wrong"
    shutil.copytree(good, wrong)
    record = json.loads((wrong / "crystens.json").read_text())
    record["arguments"]["width"] = 2  # the file holds width-1 weights
    (wrong / "crystens.json").write_text(json.dumps(record))
    with pytest.raises(PretrainedError, match="network 'generator' has shape.* the model expects"):
        type(model).from_pretrained(wrong)
    (wrong / "model.weights.h5").write_bytes(b"not hdf5")
    record["arguments"]["width"] = 1
    (wrong / "crystens.json").write_text(json.dumps(record))
    with pytest.raises(PretrainedError, match="not a readable Keras weights file"):
        type(model).from_pretrained(wrong)
    (wrong / "crystens.json").write_text("{")
    with pytest.raises(PretrainedError, match="not valid JSON"):
        type(model).from_pretrained(wrong)


def test_resuming_with_other_settings_or_data_is_refused(runs):
    root = runs["gan-keras"]["root"]
    tensors = sample_tensors()
    with pytest.raises(PretrainedError, match="trained with"):
        get_generator("gan-keras", **{**TINY["gan-keras"], "width": 2}).fit(tensors, steps=3, checkpoint_dir=root / "checkpoints", progress=False)
    with pytest.raises(PretrainedError, match="checkpoint is for tensors of shape"):
        get_generator("gan-keras", **TINY["gan-keras"]).fit(tensors[:, :3], steps=3, checkpoint_dir=root / "checkpoints", progress=False)


def test_unknown_settings_presets_and_devices_are_named():
    with pytest.raises(ValueError, match="unknown setting.*critic_step"):
        get_generator("wgan-gp-keras", critic_step=3)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_generator("gan-keras", preset="huge")
    with pytest.raises(ValueError, match="device must be"):  # refused before anything is built
        get_generator("gan-keras", **{**TINY["gan-keras"], "device": "tpu"})
    with pytest.raises(RuntimeError, match="not fitted"):
        get_generator("gan-keras").sample(1)


def test_paper_presets_build_the_networks_of_the_paper():
    """SPEC.md §7 for the (4, 64, 64) tensor: layer stacks, shapes and parameter counts (no training)."""
    from crystens_core.scaler import FieldScaler

    tensors = sample_tensors()
    expected = {
        "gan-keras": {
            "generator": [("Conv3DTranspose", f, (3, 3, 3), (1, 1, 1)) for f in (256, 128, 128, 128, 64, 64, 64, 64)]
            + [("Conv3DTranspose", 32, (2, 2, 2), (2, 2, 2)), ("Conv3D", 1, (1, 1, 10), (1, 1, 10))],
            "discriminator": [("Conv3D", 32, (1, 1, 1), (1, 1, 1))] + [("Conv3D", 32, (3, 3, 1), (1, 1, 1))] * 3 + [("Conv3D", 64, (3, 3, 1), (1, 1, 1))]
            + [("Conv3D", 64, (7, 7, 1), (1, 1, 1))] * 4 + [("Conv3D", 128, (5, 5, 2), (5, 5, 1)), ("Conv3D", 256, (2, 2, 2), (2, 2, 2))],
        },
        "wgan-gp-keras": {
            "generator": [("Conv3DTranspose", f, (3, 3, 3), (1, 1, 1)) for f in (128, 128, 64, 64, 32, 32, 32, 32)]
            + [("Conv3DTranspose", 32, (2, 2, 2), (2, 2, 2)), ("Conv3D", 1, (1, 1, 10), (1, 1, 10))],
            "critic": [("Conv3D", 16, (1, 1, 1), (1, 1, 1))] * 2 + [("Conv3D", 16, (3, 3, 1), (1, 1, 1))] * 4 + [("Conv3D", 32, (7, 7, 1), (1, 1, 1))] * 3
            + [("Conv3D", 64, (7, 7, 1), (1, 1, 1)), ("Conv3D", 64, (5, 5, 2), (5, 5, 1)), ("Conv3D", 128, (2, 2, 2), (2, 2, 2))],
        },
    }
    counts = {}
    for name, networks in expected.items():
        model = get_generator(name, preset="paper")
        model.scaler_ = FieldScaler().fit(tensors)
        model._ensure_built(4, 64)
        assert model.settings["latent_dim"] == 128 and model.settings["batch_size"] == 64
        for network_name, stack in networks.items():
            network = model.networks_[network_name]
            convolutions = [getattr(layer, "layer", layer) for layer in network.layers if "Conv3D" in type(getattr(layer, "layer", layer)).__name__]
            found = [(type(c).__name__, c.filters, tuple(c.kernel_size), tuple(c.strides)) for c in convolutions]
            assert found == stack, f"{name} {network_name}"
            counts[f"{name}/{network_name}"] = network.count_params()
        assert model.networks_["generator"].output_shape == (None, 64, 64, 4, 1)
        opponent = model.networks_[model.opponent]
        assert opponent.input_shape == (None, 64, 64, 4, 1) and opponent.output_shape == (None, 1)
    gan, wgan = get_generator("gan-keras", preset="paper"), get_generator("wgan-gp-keras", preset="paper")
    assert (gan.settings["lr"], gan.settings["betas"]) == (1e-5, [0.9, 0.999])
    assert (wgan.settings["lr"], wgan.settings["betas"], wgan.settings["critic_steps"], wgan.settings["gp_weight"]) == (1e-4, [0.0, 0.9], 5, 10.0)
    # Recorded in docs/generators-keras.md; a change of the architecture must be deliberate.
    assert counts == {"gan-keras/generator": 7957349, "gan-keras/discriminator": 21479786, "wgan-gp-keras/generator": 1061667, "wgan-gp-keras/critic": 508562}


def test_the_critic_has_no_batch_norm_and_a_linear_output():
    from crystens_core.scaler import FieldScaler

    model = get_generator("wgan-gp-keras", preset="paper")
    model.scaler_ = FieldScaler().fit(sample_tensors())
    model._ensure_built(4, 64)
    critic = model.networks_["critic"]
    kinds = [type(layer).__name__ for layer in critic.layers]
    assert "BatchNormalization" not in kinds and kinds.count("GroupNormalization") == 12 and kinds.count("SpectralNormalization") == 13
    head = critic.layers[-1]
    assert head.name == "score_sn" and head.layer.activation.__name__ == "linear" and head.layer.units == 1


def test_fast_layers_compute_what_the_stock_keras_layers_compute():
    """Same weights → same outputs and gradients as keras.layers.Conv3D / Conv3DTranspose / BatchNormalization."""
    from crystens_keras import layers as fast
    from crystens_keras.backend import keras, tf

    rng = np.random.default_rng(0)
    cases = [
        (lambda m: m.Conv3D(3, (7, 7, 1)), (2, 20, 20, 4, 2)),
        (lambda m: m.Conv3D(3, (3, 3, 1), padding="same"), (2, 9, 9, 4, 2)),
        (lambda m: m.Conv3D(2, (1, 1, 10), strides=(1, 1, 10)), (2, 6, 6, 42, 3)),
        (lambda m: m.Conv3DTranspose(3, (2, 2, 2), strides=2), (2, 5, 6, 3, 4)),
        (lambda m: m.BatchNormalization(momentum=0.9), (4, 6, 5, 3, 2)),
    ]
    for make, shape in cases:
        stock, ours = make(keras.layers), make(fast)
        stock.build(shape)
        ours.build(shape)
        for a, b in zip(stock.weights, ours.weights):
            value = rng.normal(size=a.shape).astype(np.float32)
            if "variance" in a.path:
                value = np.abs(value)
            a.assign(value)
            b.assign(value)
        x = tf.constant(rng.normal(2.0, 3.0, size=shape).astype(np.float32))
        results = []
        for layer in (stock, ours):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(y**3)
            results.append([y] + tape.gradient(loss, [x] + layer.trainable_weights) + [v.numpy() for v in layer.non_trainable_weights])
        for a, b in zip(*results):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-4 * float(np.abs(np.asarray(a)).max() + 1), err_msg=type(stock).__name__)


@pytest.mark.slow
def test_nothing_but_the_keras_generators_imports_tensorflow():
    """Loading every plugin and building and training the torch generators leaves tensorflow
    and keras unimported; creating a Keras generator imports them."""
    code = (
        "import sys\n"
        "from crystens_core import get_generator, load_plugins, list_components\n"
        "from crystens_core.testing import sample_tensors\n"
        "plugins = load_plugins()\n"
        "assert 'crystens_keras' in plugins and not plugins['crystens_keras'].error, plugins.get('crystens_keras')\n"
        "assert {'gan-keras', 'wgan-gp-keras'} <= set(list_components('generator'))\n"
        "for kind in ('encoder', 'decoder', 'metric', 'layer'): list_components(kind)\n"
        "for name in ('gan', 'wgan-gp'):\n"
        "    get_generator(name, width=4, batch_size=4, device='cpu').fit(sample_tensors(), steps=1, progress=False)\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "get_generator('gan-keras')\n"
        "assert 'tensorflow' in sys.modules and 'keras' in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


@pytest.mark.slow
def test_a_torch_generator_trains_after_a_keras_one_in_the_same_process():
    """TensorFlow >= 2.20 crashes a later `import triton` (torch's first optimiser); the Keras
    backend module loads triton first. Without that this process dies with SIGSEGV."""
    code = (
        "from crystens_core import get_generator\n"
        "from crystens_core.testing import sample_tensors\n"
        "get_generator('gan-keras', width=1, dense_layers=1, batch_size=2).fit(sample_tensors(), steps=1, progress=False)\n"
        "get_generator('gan', width=4, batch_size=4, device='cpu').fit(sample_tensors(), steps=1, progress=False)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), f"return code {result.returncode}: {result.stderr[-2000:]}"
