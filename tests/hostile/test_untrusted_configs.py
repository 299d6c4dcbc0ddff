"""A run folder's config is untrusted input: checked before anything is built (issue 9 §6).

Each case edits the ``crystens.json`` of a real (one-step) pretrained folder the way
the issue reports it — sizes that would allocate terabytes, negative widths, a device
this machine does not have, arguments of the wrong JSON type, 100 000-deep JSON, a
scaler for a 4096-wide tensor — and expects one :class:`PretrainedError` that names the
file, the key and the reason; ``crystens sample`` prints it as one line. The same
checks refuse ``--option KEY=VALUE`` on ``crystens train``.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core import get_generator  # noqa: E402
from crystens_core.cli import _parse_config, main  # noqa: E402
from crystens_core.errors import CrystensError, SettingsError  # noqa: E402
from crystens_core.generator_base import GeneratorBase  # noqa: E402
from crystens_core.pretrained import CONFIG_NAME, PretrainedError, load_generator  # noqa: E402
from crystens_core.testing import sample_tensors  # noqa: E402

TINY = {"width": 4, "batch_size": 4, "device": "cpu"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A gan trained one step on real mp20-sample tensors and saved."""
    folder = tmp_path_factory.mktemp("pretrained") / "model"
    get_generator("gan", **TINY).fit(sample_tensors(), steps=1, progress=False).save_pretrained(folder)
    return folder


def edited(pretrained: Path, tmp_path: Path, change) -> Path:
    """A copy of ``pretrained`` whose crystens.json record went through ``change(record)``."""
    folder = tmp_path / "edited"
    shutil.copytree(pretrained, folder)
    record = json.loads((folder / CONFIG_NAME).read_text())
    change(record)
    (folder / CONFIG_NAME).write_text(json.dumps(record))
    return folder


def refused(folder: Path, *words: str) -> str:
    """The message of the PretrainedError loading ``folder`` raises; it names the file and ``words``."""
    with pytest.raises(PretrainedError) as raised:
        load_generator(folder)
    message = str(raised.value)
    assert str(folder / CONFIG_NAME) in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("latent_dim", 10**9, "must be in [1, 4096]"),  # a Linear of 1e9 inputs: terabytes
        ("latent_dim", 1e9, "must be int, got float"),
        ("width", -5, "must be in [1, 512]"),
        ("device", "cuda:7", "cuda:7"),
        ("device", "tpu", "device must be one of"),
        ("betas", {"beta1": 0.5}, "must be list, got dict"),
        ("betas", [0.5, 2.0], "item 1: must be in [0.0, 1.0]"),
        ("lr", float("nan"), "must be finite"),
        ("joint_generator_pass", "yes", "must be bool, got str"),
        ("batch_size", 0, "must be in [1, 65536]"),
    ],
)
def test_bad_setting_in_crystens_json_is_refused_before_building(pretrained, tmp_path, key, value, reason):
    folder = edited(pretrained, tmp_path, lambda record: record["arguments"].update({key: value}))
    refused(folder, repr(key), reason)


def test_unknown_setting_and_preset_in_crystens_json(pretrained, tmp_path):
    refused(edited(pretrained, tmp_path / "a", lambda record: record["arguments"].update(self=1)), "unknown setting(s) self")
    refused(edited(pretrained, tmp_path / "b", lambda record: record["arguments"].update(preset=["small"])), "unknown preset")


def test_arguments_as_a_list(pretrained, tmp_path):
    folder = edited(pretrained, tmp_path, lambda record: record.update(arguments=[["width", 4]]))
    refused(folder, "'arguments'", "must be a JSON object")


def test_deeply_nested_json(pretrained, tmp_path):
    folder = tmp_path / "deep"
    shutil.copytree(pretrained, folder)
    depth = 100_000
    (folder / CONFIG_NAME).write_text('{"format": "crystens.generator", "arguments": ' + "[" * depth + "]" * depth + "}")
    refused(folder, "nested too deeply")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda scaler: scaler.update(size=4096), ("size", "[13, 524]")),  # 4 × 4096² entries: GBs
        (lambda scaler: scaler.update(channels=1000), ("channels", "[4, 32]")),
        (lambda scaler: scaler["fields"]["Z"].__setitem__(1, float("inf")), ("fields.Z", "finite")),
        (lambda scaler: scaler["fields"].update(Z=[5.0, 1.0]), ("'Z'", "low 5.0 is above high 1.0")),
        (lambda scaler: scaler.update(feature_range="0-1"), ("feature_range", "two numbers")),
    ],
)
def test_bad_scaler_is_refused(pretrained, tmp_path, change, words):
    def edit(record):
        change(record["scaler"])
        if record["scaler"].get("size") == 4096:
            record["shape"] = [4, 4096, 4096]  # consistent, so only the size bound can refuse it

    refused(edited(pretrained, tmp_path, edit), "scaler", *words)


def test_bad_record_fields(pretrained, tmp_path):
    refused(edited(pretrained, tmp_path / "a", lambda record: record.update(encoder="crystens")), "'encoder'", "JSON object")
    refused(edited(pretrained, tmp_path / "b", lambda record: record.update(trained_steps=-3)), "'trained_steps'", "non-negative integer")
    refused(edited(pretrained, tmp_path / "c", lambda record: record.update(shape={"c": 4})), "'shape'", "JSON array")


def test_weights_linked_from_outside_the_folder_are_refused(pretrained, tmp_path):
    folder = tmp_path / "linked"
    shutil.copytree(pretrained, folder)
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(folder / "model.safetensors", outside)
    (folder / "model.safetensors").symlink_to(outside)
    refused(folder, "weights file", "points outside")


def test_config_linked_from_outside_the_folder_is_refused(pretrained, tmp_path):
    folder = tmp_path / "linked"
    shutil.copytree(pretrained, folder)
    outside = tmp_path / "elsewhere.json"
    shutil.move(folder / CONFIG_NAME, outside)
    (folder / CONFIG_NAME).symlink_to(outside)
    with pytest.raises(PretrainedError, match="config file 'crystens.json' points outside"):
        load_generator(folder)


def test_sample_refuses_a_run_folder_whose_model_lies_elsewhere(pretrained, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model").symlink_to(pretrained)
    result = CliRunner().invoke(main, ["sample", str(run), "-n", "1", "-o", str(tmp_path / "samples")])
    assert result.exit_code == 1 and "model folder 'model' points outside" in result.output, result.output


def test_override_device_is_checked_too(pretrained):
    with pytest.raises(PretrainedError, match="'device'.*cuda:7"):
        type(load_generator(pretrained)).from_pretrained(pretrained, device="cuda:7")


def test_crystens_sample_prints_one_line(pretrained, tmp_path):
    folder = edited(pretrained, tmp_path, lambda record: record["arguments"].update(latent_dim=10**9))
    result = CliRunner().invoke(main, ["sample", str(folder), "-n", "2", "-o", str(tmp_path / "samples")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "latent_dim" in result.output and CONFIG_NAME in result.output
    assert not (tmp_path / "samples").exists()


def test_crystens_sample_device_overrides_an_unavailable_saved_device(pretrained, tmp_path):
    """A model saved on a GPU machine samples on a CPU-only one with --device cpu."""
    folder = edited(pretrained, tmp_path, lambda record: record["arguments"].update(device="cuda:7"))
    refused_run = CliRunner().invoke(main, ["sample", str(folder), "-n", "2", "-o", str(tmp_path / "refused")])
    assert refused_run.exit_code == 1 and "cuda:7" in refused_run.output
    result = CliRunner().invoke(main, ["sample", str(folder), "-n", "2", "-o", str(tmp_path / "samples"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "samples" / "summary.json").read_text())["count"] == 2


def test_train_refuses_the_preset_as_an_option(tmp_path):
    result = CliRunner().invoke(main, ["train", "--generator", "gan", "--option", "preset=paper", "--steps", "1", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--preset" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("option", "reason"),
    [("width=-5", "'width' = -5: must be in [1, 512]"), ("latent_dim=1e9", "'latent_dim' = 1000000000.0: must be int"), ("device=cuda:7", "cuda:7"), ("betas=[0.5]", "needs 2 items")],
)
def test_train_option_goes_through_the_same_checks(tmp_path, option, reason):
    result = CliRunner().invoke(main, ["train", "--generator", "gan", "--option", option, "--steps", "1", "-o", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert reason in result.output and "Traceback" not in result.output
    with pytest.raises(SettingsError, match=re.escape(reason)):  # the API refuses the same value the same way
        get_generator("gan", **_parse_config((option,)))


def test_settings_error_is_a_crystens_error():
    assert issubclass(SettingsError, CrystensError) and issubclass(PretrainedError, CrystensError)


BUILT_IN_GENERATORS = [
    "crystens_gan.model:VanillaGAN",
    "crystens_wgan_gp.model:WGANGP",
    "crystens_ddpm.model:DDPMGenerator",
    "crystens_imagen.model:ImagenGenerator",
    "crystens_keras.gan:KerasGAN",
    "crystens_keras.wgan_gp:KerasWGANGP",
]


@pytest.mark.parametrize("path", BUILT_IN_GENERATORS)
def test_every_number_of_every_built_in_generator_has_bounds(path):
    """Sizes bound the memory a run folder can make crystens allocate: none may be left open."""
    module_name, _, class_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:  # the generator's optional library is not installed
        pytest.skip(f"{path}: {exc}")
    assert issubclass(cls, GeneratorBase)
    for preset, values in (("common", cls.COMMON), *cls.PRESETS.items()):
        for name, value in values.items():
            items = value if isinstance(value, list) else [value]
            if value is None or any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
                assert name in cls.SETTING_BOUNDS, f"{cls.name}: setting {name!r} ({preset}) has no SETTING_BOUNDS entry"
            if name != "device":  # every preset value passes the checks
                cls.check_settings("small" if preset == "common" else preset, {name: value})


@pytest.mark.parametrize(("setting", "reason"), [({"width": -5}, "must be in [1, 256]"), ({"device": "gpu:7"}, "'cuda:7'"), ({"dropout": 1.5}, "must be in [0.0, 0.95]"), ({"lr_discriminator": "fast"}, "must be float or int or null, got str")])
def test_keras_settings_are_checked_the_same_way(setting, reason):
    pytest.importorskip("tensorflow", reason="the Keras generators need `pip install crystens[tf]`")
    with pytest.raises(SettingsError, match=re.escape(reason)):
        get_generator("gan-keras", **setting)
