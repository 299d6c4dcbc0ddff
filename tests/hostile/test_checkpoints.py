"""Damaged checkpoints, pointers out of the run folder, kills during a commit, other data on resume (issue 9 §3, §6).

Each corruption is made on a real run: the ``small`` preset trained a few steps on
mp20-sample, with checkpoints at steps 2 and 4 and ``latest`` naming step 4. Resuming
must take the newest intact checkpoint (step 4 when only the pointer is damaged, step 2
when step 4 is) with a warning that names the damaged checkpoint (or pointer) and why.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core import get_generator  # noqa: E402
from crystens_core.pretrained import (  # noqa: E402
    LATEST,
    CheckpointMismatchError,
    CheckpointWarning,
    PretrainedError,
    commit_checkpoint,
    latest_checkpoint,
    newest_intact_checkpoint,
)
from crystens_core.safe_io import UnsafePathError  # noqa: E402

#: The small preset, a batch of 8 (a few seconds per run on a CPU), checkpoints every 2 steps.
SETTINGS = {"device": "cpu", "batch_size": 8, "checkpoint_every": 2, "keep_checkpoints": 3}
#: Per backend: generator, model weights file, optimiser file, a trainer.json field resuming needs.
BACKENDS = {
    "torch": ("gan", "model.safetensors", "optimizer.safetensors", "optimizers"),
    "keras": ("gan-keras", "model.weights.h5", "optimizer.h5", "history"),
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_field(path: Path, field: str) -> None:
    record = json.loads(path.read_text())
    del record[field]
    path.write_text(json.dumps(record))


#: name → (damage done to the run folder, text the warning must hold besides the damaged part's name).
CORRUPTIONS = {
    "latest-without-checkpoint": (lambda root, files: (root / LATEST).write_text('{"step": 4}'), "latest", "no 'checkpoint' folder name"),
    "trainer-without-field": (lambda root, files: _drop_field(root / "step-00000004" / "trainer.json", files["field"]), "step-00000004", "trainer.json"),
    "truncated-optimizer": (lambda root, files: _truncate(root / "step-00000004" / files["optimizer"]), "step-00000004", "optimizer"),
    "truncated-model": (lambda root, files: _truncate(root / "step-00000004" / files["model"]), "step-00000004", "model"),
    "latest-to-missing-folder": (lambda root, files: (root / LATEST).write_text('{"checkpoint": "step-00000009", "step": 9}'), "latest", "does not exist"),
    "unparsable-latest": (lambda root, files: (root / LATEST).write_text('{"checkpoint": "step-0000'), "latest", "not valid JSON"),
    "latest-climbing-out": (lambda root, files: (root / LATEST).write_text('{"checkpoint": "../../etc"}'), "latest", "outside"),
    "latest-absolute": (lambda root, files: (root / LATEST).write_text(json.dumps({"checkpoint": str(root.parent / "elsewhere")})), "latest", "outside"),
}


@pytest.fixture(scope="module")
def mp20_tensors_200():
    """Raw tensors of the first 200 mp20-sample structures."""
    from crystens_core import get_encoder
    from crystens_core.data import load_dataset

    dataset = load_dataset("mp20-sample")
    return get_encoder("crystens").encode_batch(dataset.structures[:200], dataset.spacegroups[:200])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mp20_tensors_200):
    """Per backend: a checkpoint folder with step-2 and step-4 (latest → step-4), and the weights of the model at step 4."""
    out = {}
    for backend, (name, model_file, optimizer_file, field) in BACKENDS.items():
        if backend == "keras" and importlib.util.find_spec("tensorflow") is None:
            continue
        root = tmp_path_factory.mktemp(backend) / "checkpoints"
        model = get_generator(name, preset="small", **SETTINGS).fit(mp20_tensors_200, steps=4, checkpoint_dir=root, progress=False, data_name="mp20-sample[:200]")
        assert sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000004"]
        out[backend] = {"root": root, "name": name, "files": {"model": model_file, "optimizer": optimizer_file, "field": field}, "state": _weights(model)}
    return out


def _weights(model) -> dict[str, np.ndarray]:
    if hasattr(model, "modules_"):
        return {f"{k}.{n}": v.detach().numpy().copy() for k, m in model.modules_.items() for n, v in m.state_dict().items()}
    return {f"{k}/{v.path}": v.numpy().copy() for k, network in model.networks_.items() for v in network.weights}


def _copy_run(runs, backend, tmp_path) -> tuple[dict, Path]:
    if backend not in runs:
        pytest.skip("the Keras generators need `pip install crystens[tf]`")
    run = runs[backend]
    root = tmp_path / "checkpoints"
    shutil.copytree(run["root"], root)
    return run, root


@pytest.mark.slow
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_damaged_checkpoint_falls_back_to_the_newest_intact_one(runs, mp20_tensors_200, tmp_path, backend, corruption):
    run, root = _copy_run(runs, backend, tmp_path)
    damage, culprit, reason = CORRUPTIONS[corruption]
    damage(root, run["files"])
    fallback = 4 if culprit == "latest" else 2
    model = get_generator(run["name"], preset="small", **SETTINGS)
    # Keras only loads (no training: its first step costs a graph trace); torch trains on to
    # step 4 from the fallback and must land exactly where the undamaged run did.
    steps = 4 if backend == "torch" else fallback
    with pytest.warns(CheckpointWarning) as caught:
        model.fit(mp20_tensors_200, steps=steps, checkpoint_dir=root, progress=False, data_name="mp20-sample[:200]")
    message = "; ".join(str(w.message) for w in caught if issubclass(w.category, CheckpointWarning))
    assert f"resuming from step-0000000{fallback}" in message and culprit in message and reason in message, message
    assert model.step_ == steps and [r["step"] for r in model.history_] == list(range(1, steps + 1))
    if backend == "torch":
        for key, value in run["state"].items():
            np.testing.assert_array_equal(_weights(model)[key], value, err_msg=key)
    if fallback == 2 and backend == "torch":  # training on rewrote the damaged step 4 whole
        assert latest_checkpoint(root).name == "step-00000004"
        assert json.loads((root / "step-00000004" / "trainer.json").read_text())["optimizers"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_no_intact_checkpoint_is_one_clear_error_naming_each(runs, mp20_tensors_200, tmp_path, backend):
    run, root = _copy_run(runs, backend, tmp_path)
    _truncate(root / "step-00000004" / run["files"]["model"])
    _drop_field(root / "step-00000002" / "trainer.json", "step")
    with pytest.raises(PretrainedError, match="no intact checkpoint") as raised:
        get_generator(run["name"], preset="small", **SETTINGS).fit(mp20_tensors_200, steps=6, checkpoint_dir=root, progress=False)
    assert "step-00000004" in str(raised.value) and "step-00000002" in str(raised.value) and "'step'" in str(raised.value)


def test_a_step_folder_linking_out_of_the_run_folder_is_never_used(tmp_path):
    outside = tmp_path / "outside" / "step-00000009"
    outside.mkdir(parents=True)
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "step-00000009").symlink_to(outside, target_is_directory=True)
    (root / LATEST).write_text('{"checkpoint": "step-00000009"}')
    used: list[Path] = []
    with pytest.raises(UnsafePathError):
        latest_checkpoint(root)
    with pytest.raises(PretrainedError, match="outside"):
        newest_intact_checkpoint(root, used.append)
    assert used == []


# -- commit_checkpoint under kills ---------------------------------------------------------------
class _Killed(BaseException):
    """What a kill -9 at this point would have left (nothing after it runs)."""


def _write(step: int, version: str):
    def write(folder: Path) -> None:
        for part in ("a", "b"):
            (folder / f"{part}.txt").write_text(f"{step} {version} {part}")
        (folder / "complete").write_text("")

    return write


def _check_whole(folder: Path) -> None:
    """The synthetic checkpoint is whole: both parts of one version and the completion mark."""
    parts = [(folder / f"{p}.txt").read_text().rsplit(" ", 1)[0] if (folder / f"{p}.txt").is_file() else None for p in ("a", "b")]
    if not (folder / "complete").is_file() or parts[0] is None or parts[0] != parts[1]:
        raise PretrainedError(f"{folder}: incomplete")


def _kill_at(monkeypatch, call: int):
    """Raise _Killed at the ``call``-th file-system change (rename, link, tree removal, with half a removal done)."""
    counter = {"calls": 0}

    def wrap(function, partial=None):
        def wrapper(*args, **kwargs):
            counter["calls"] += 1
            if counter["calls"] == call:
                if partial is not None:
                    partial(*args)
                raise _Killed
            return function(*args, **kwargs)

        return wrapper

    def half_removal(path, *args):
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        for file in files[: len(files) // 2 + 1]:
            file.unlink()

    monkeypatch.setattr(os, "replace", wrap(os.replace))
    monkeypatch.setattr(os, "link", wrap(os.link))
    monkeypatch.setattr(shutil, "rmtree", wrap(shutil.rmtree, half_removal))
    return counter


@pytest.mark.parametrize("keep", [1, 2])
def test_a_kill_at_any_point_of_a_commit_leaves_latest_on_a_whole_checkpoint(tmp_path, monkeypatch, keep):
    """Saving step 4 again while `latest` names it (a fresh run in an old folder), killed at each file-system change."""
    call = 0
    while True:
        call += 1
        root = tmp_path / f"kill-{call}"
        commit_checkpoint(root, 2, _write(2, "old"), keep=keep)
        commit_checkpoint(root, 4, _write(4, "old"), keep=keep)
        counter = _kill_at(monkeypatch, call)
        try:
            commit_checkpoint(root, 4, _write(4, "new"), keep=keep)
            killed = False
        except _Killed:
            killed = True
        monkeypatch.undo()
        pointed = latest_checkpoint(root)  # never dangling
        _check_whole(pointed)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointWarning)  # and no fallback was needed
            assert newest_intact_checkpoint(root, _check_whole) == pointed
        assert (pointed / "a.txt").read_text().startswith("4 ")
        if not killed:
            assert (pointed / "a.txt").read_text() == "4 new a" and pointed.name == "step-00000004"
            assert sorted(p.name for p in root.iterdir()) == sorted([LATEST, "step-00000004"] + (["step-00000002"] if keep == 2 else []))
            break
        # the next commit after the kill cleans up what the kill left
        commit_checkpoint(root, 6, _write(6, "next"), keep=keep)
        assert latest_checkpoint(root).name == "step-00000006"
        assert not [p.name for p in root.iterdir() if p.name.startswith(".")]
    assert counter["calls"] >= 5 and call >= 5  # link, pointer, discard (rename + removal), replace, pointer, cleanup


def test_pruning_keeps_checkpoints_newer_than_the_one_written(tmp_path):
    """Checkpoints ahead of a fresh run (an old run's, or a damaged one passed over) are not pruned away."""
    for step in (2, 4, 6):
        commit_checkpoint(tmp_path, step, _write(step, "old"), keep=2)
    commit_checkpoint(tmp_path, 2, _write(2, "new"), keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000002", "step-00000004", "step-00000006"]
    assert latest_checkpoint(tmp_path).name == "step-00000002"


# -- other data on resume -----------------------------------------------------------------------
def test_resuming_on_other_data_is_refused_or_accepted_with_a_warning(mp20_tensors_200, tmp_path):
    first, other = mp20_tensors_200[:100], mp20_tensors_200[100:]
    settings = {"width": 4, "batch_size": 4, "device": "cpu", "checkpoint_every": 1}
    get_generator("gan", **settings).fit(first, steps=1, checkpoint_dir=tmp_path, progress=False, data_name="first.csv")
    trainer = json.loads((tmp_path / "step-00000001" / "trainer.json").read_text())
    assert trainer["data"]["name"] == "first.csv" and trainer["data"]["count"] == 100 and len(trainer["data"]["sha256"]) == 64
    with pytest.raises(CheckpointMismatchError, match=r"trained on 'first.csv' \(100 tensors.*this run's data is 'other.csv' \(100 tensors.*allow.data.change"):
        get_generator("gan", **settings).fit(other, steps=2, checkpoint_dir=tmp_path, progress=False, data_name="other.csv")
    assert latest_checkpoint(tmp_path).name == "step-00000001"  # nothing was trained or written
    same = get_generator("gan", **settings).fit(first.copy(), steps=2, checkpoint_dir=tmp_path, progress=False, data_name="first.csv again")
    assert same.step_ == 2  # the same tensors under another name resume silently
    with pytest.warns(CheckpointWarning, match="trained on 'first.csv again'.*'other.csv'.*continuing on the new data"):
        changed = get_generator("gan", **settings).fit(other, steps=3, checkpoint_dir=tmp_path, progress=False, data_name="other.csv", allow_data_change=True)
    assert changed.step_ == 3
    assert json.loads((tmp_path / "step-00000003" / "trainer.json").read_text())["data"]["name"] == "other.csv"


@pytest.mark.slow
def test_crystens_train_names_both_datasets_and_accepts_the_change_with_a_flag(mp20_sample, tmp_path):
    """Through the CLI: two CSVs of different mp20-sample rows."""
    from click.testing import CliRunner

    from crystens_core.cli import main

    for name, rows in (("first.csv", slice(0, 30)), ("second.csv", slice(30, 60))):
        with (tmp_path / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["material_id", "cif"])
            writer.writerows([i, s.to(fmt="cif")] for i, s in zip(list(mp20_sample.ids)[rows], list(mp20_sample.structures)[rows]))
    base = ["train", "--generator", "gan", "--option", "width=4", "--batch-size", "4", "--option", "device=cpu", "-o", str(tmp_path / "run")]
    runner = CliRunner()
    done = runner.invoke(main, [*base, "--data", str(tmp_path / "first.csv"), "--steps", "1"])
    assert done.exit_code == 0, done.output
    refused = runner.invoke(main, [*base, "--data", str(tmp_path / "second.csv"), "--steps", "2"])
    assert refused.exit_code != 0
    assert "first.csv" in refused.output and "second.csv" in refused.output and "--allow-data-change" in refused.output
    assert "Traceback" not in refused.output
    accepted = runner.invoke(main, [*base, "--data", str(tmp_path / "second.csv"), "--steps", "2", "--allow-data-change"])
    assert accepted.exit_code == 0, accepted.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["steps"] == 2
    warned = [line for line in accepted.output.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "second.csv" in warned[0] and "CheckpointWarning" not in accepted.output  # one line, no Python form
