"""Paths taken from data stay inside their folder; decode and sample outputs are atomic and strict JSON (issue 9 §3, §5, §6).

Real structures: the first mp20-sample structures, written to a CSV whose
``material_id`` column holds hostile ids, encoded and decoded through the CLI.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crystens_core.cli import main
from crystens_core.data import load_dataset
from crystens_core.decoded_output import SUMMARY_NAME, sidecar_ids, write_decoded
from crystens_core.evaluation import UNSAFE_PATH, read_generated
from crystens_core.plugins import get_decoder
from crystens_core.testing import sample_tensors

#: Ids a CSV can hold that are not file names: climbing out, absolute, nested, empty after cleaning, clashing.
HOSTILE_IDS = ["../escaped", "../../escaped-twice", "{absolute}", "a/b", "a_b", "..", "con", "OK-1", "ok-1", "ok-1", "x:y*?<>|\t", "Ω/ω"]


def strict_json(path: Path):
    """Parse ``path`` refusing NaN and Infinity, as any strict JSON reader does."""

    def refuse(constant):
        raise ValueError(f"{path} holds {constant}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def files_below(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def hostile_csv(tmp_path) -> tuple[Path, list[str]]:
    """A CSV of real structures whose material_ids are :data:`HOSTILE_IDS`."""
    from pymatgen.io.cif import CifWriter

    structures = load_dataset("mp20-sample").structures[: len(HOSTILE_IDS)]
    ids = [item.format(absolute=tmp_path / "absolute") for item in HOSTILE_IDS]
    path = tmp_path / "data" / "hostile.csv"
    path.parent.mkdir()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        for item_id, structure in zip(ids, structures):
            writer.writerow([item_id, str(CifWriter(structure))])
    return path, ids


def test_decode_keeps_every_cif_inside_the_output_folder(hostile_csv, tmp_path):
    """CSV material_id → crystens encode → crystens decode: no file outside -o, a summary naming every id."""
    source, ids = hostile_csv
    tensors = tmp_path / "data" / "tensors.npy"
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(source), "-o", str(tensors)])
    assert result.exit_code == 0, result.output
    encoded_ids = json.loads(tensors.with_suffix(".json").read_text())["ids"]
    assert len(encoded_ids) == len(ids) and "../escaped" in encoded_ids
    before = files_below(tmp_path)
    output = tmp_path / "work" / "out"
    result = runner.invoke(main, ["decode", str(tensors), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert files_below(tmp_path) - before == files_below(output), "decode wrote outside its output folder"
    summary = strict_json(output / SUMMARY_NAME)
    assert [record["id"] for record in summary["results"]] == encoded_ids  # the original ids, unchanged
    names = [record["cif"] for record in summary["results"] if record["ok"]]
    assert summary["decoded"] == len(names) >= len(ids) - 2
    assert len({name.lower() for name in names}) == len(names), "two ids share a CIF"
    for name in names:
        assert "/" not in name and not name.startswith(".") and (output / name).is_file()
    assert {p.name for p in files_below(output)} == {*names, SUMMARY_NAME}


def test_decode_with_an_unreadable_sidecar_numbers_the_tensors(tmp_path):
    tensors = tmp_path / "t.npy"
    np.save(tensors, sample_tensors()[:3])
    cases = {
        "not JSON": "{",
        "deeply nested": '{"ids": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "ids of the wrong type": json.dumps({"ids": [{"id": "a"}, ["b"], None]}),
        "ids not a list": json.dumps({"ids": "abc"}),
    }
    for case, text in cases.items():
        tensors.with_suffix(".json").write_text(text)
        result = CliRunner().invoke(main, ["decode", str(tensors), "-o", str(tmp_path / case)])
        assert result.exit_code == 0, (case, result.output)
        assert "warning:" in result.output and "t.json" in result.output and "numbered" in result.output, (case, result.output)
        assert [r["id"] for r in strict_json(tmp_path / case / SUMMARY_NAME)["results"]] == ["000000", "000001", "000002"], case


def test_sidecar_ids_are_returned_as_strings(tmp_path):
    tensors = tmp_path / "t.npy"
    tensors.with_suffix(".json").write_text(json.dumps({"ids": [7, "mp-1"]}))
    assert sidecar_ids(tensors, 2) == (["7", "mp-1"], None)


class _Decoded:
    """A decoding result whose summary holds what real results can: infinities and NaN."""

    def __init__(self, result):
        self._result = result
        self.ok, self.reason, self.structure = result.ok, result.reason, result.structure

    def summary(self):
        return {**self._result.summary(), "consistency": {"max_distance_error": float("inf"), "lattice_error": float("nan")}}

    def to_cif(self):
        return self._result.to_cif()


def test_summary_json_is_strict(tmp_path):
    results = [_Decoded(r) for r in get_decoder("auto").decode_batch(sample_tensors()[:2])]
    write_decoded(tmp_path, ["a", "b"], results, {"decoder": "auto", "limit": float("inf")})
    summary = strict_json(tmp_path / SUMMARY_NAME)
    assert summary["limit"] is None and summary["results"][0]["consistency"]["max_distance_error"] is None


def test_a_structure_that_cannot_be_written_costs_only_its_item(tmp_path):
    class Unwritable(_Decoded):
        def to_cif(self):
            raise ValueError("pymatgen refused it")

    decoded = get_decoder("auto").decode_batch(sample_tensors()[:3])
    results = [_Decoded(decoded[0]), Unwritable(decoded[1]), _Decoded(decoded[2])]
    summary = write_decoded(tmp_path, ["a", "b", "c"], results, {})
    assert [r["ok"] for r in summary["results"]] == [True, False, True]
    assert summary["results"][1]["reason"].startswith("cif writing failed: ValueError: pymatgen refused it")
    assert summary["failures_by_reason"] == {"cif writing failed": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cif", "c.cif", SUMMARY_NAME]


@pytest.fixture
def renames(monkeypatch):
    """Every ``os.replace`` target, in order (atomic writes end in one)."""
    targets: list[str] = []
    replace = os.replace

    def record(source, target, *args, **kwargs):
        targets.append(Path(target).name)
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", record)
    return targets


def test_decode_writes_every_file_by_rename_summary_last(tmp_path, renames):
    tensors = tmp_path / "t.npy"
    np.save(tensors, sample_tensors()[:4])
    output = tmp_path / "out"
    result = CliRunner().invoke(main, ["decode", str(tensors), "-o", str(output)])
    assert result.exit_code == 0, result.output
    written = {p.name for p in output.iterdir()}
    assert set(renames) == written and renames[-1] == SUMMARY_NAME
    assert not [p for p in output.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_a_crash_while_writing_leaves_the_previous_summary(tmp_path, monkeypatch):
    tensors = tmp_path / "t.npy"
    np.save(tensors, sample_tensors()[:2])
    output = tmp_path / "out"
    assert CliRunner().invoke(main, ["decode", str(tensors), "-o", str(output)]).exit_code == 0
    previous = (output / SUMMARY_NAME).read_text()
    replace = os.replace

    def killed_before_summary(source, target, *args, **kwargs):
        if Path(target).name == SUMMARY_NAME:
            raise KeyboardInterrupt("killed")
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", killed_before_summary)
    np.save(tensors, sample_tensors()[2:5])
    result = CliRunner().invoke(main, ["decode", str(tensors), "-o", str(output)])
    assert result.exit_code != 0 and "Aborted" in result.output  # click's answer to Ctrl-C
    assert (output / SUMMARY_NAME).read_text() == previous
    assert not [p for p in output.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_sample_writes_every_file_by_rename_summary_last(tmp_path, renames):
    pytest.importorskip("torch", reason="sampling needs a torch generator")
    from crystens_core import get_generator

    get_generator("gan", width=4, batch_size=4, device="cpu").fit(sample_tensors(), steps=1, progress=False).save_pretrained(tmp_path / "model")
    renames.clear()
    output = tmp_path / "samples"
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "model"), "-n", "3", "-o", str(output)])
    assert result.exit_code == 0, result.output
    written = {p.name for p in output.iterdir()}
    assert "tensors.npy" in written and set(renames) == written and renames[-1] == SUMMARY_NAME


@pytest.fixture
def decoded_folder(tmp_path) -> Path:
    folder = tmp_path / "run" / "decoded"
    write_decoded(folder, ["a", "b", "c", "d"], get_decoder("auto").decode_batch(sample_tensors()[:4]), {"decoder": "auto"})
    return folder


def test_evaluate_reads_no_cif_named_outside_the_decoded_folder(decoded_folder, tmp_path):
    summary = json.loads((decoded_folder / SUMMARY_NAME).read_text())
    assert all(record["ok"] for record in summary["results"])
    outside = tmp_path / "run" / "secret.cif"
    outside.write_text((decoded_folder / "a.cif").read_text())
    (decoded_folder / "link.cif").symlink_to(outside)
    summary["results"][0]["cif"] = "../secret.cif"
    summary["results"][1]["cif"] = str(outside)
    summary["results"][2]["cif"] = "link.cif"
    summary["results"][3]["cif"] = ["d.cif"]
    (decoded_folder / SUMMARY_NAME).write_text(json.dumps(summary))
    generated = read_generated(decoded_folder)
    assert generated.counts()["structures"] == 0
    skipped = generated.skipped.as_dict()
    assert skipped["by_reason"] == {UNSAFE_PATH: {"count": 4, "ids": ["a", "b", "c", "d"]}}, skipped
    details = " ".join(str(d) for d in skipped["details"].values())
    assert "points outside" in details and "not a string" in details


def test_evaluate_survives_a_deeply_nested_summary(decoded_folder):
    (decoded_folder / SUMMARY_NAME).write_text('{"results": ' + "[" * 100_000 + "]" * 100_000 + "}")
    generated = read_generated(decoded_folder)  # read as a plain folder of CIFs
    assert generated.counts()["structures"] == 4


def test_evaluate_npy_with_an_unreadable_sidecar_numbers_the_tensors(tmp_path):
    tensors = tmp_path / "t.npy"
    np.save(tensors, sample_tensors()[:3])
    tensors.with_suffix(".json").write_text('{"ids": ' + "[" * 100_000 + "]" * 100_000 + "}")
    generated = read_generated(tensors)
    assert generated.ids == ["000000", "000001", "000002"]
    warned = generated.warnings.as_dict()
    assert warned["by_reason"] == {"unreadable ids": {"count": 1, "ids": ["t.json"]}}, warned
    assert "nested too deeply" in warned["details"]["t.json"]


def test_report_files_are_written_by_rename(tmp_path, renames):
    from crystens_core.report import write_comparison, write_report

    write_report(tmp_path / "a", {"metrics": {}, "skipped": [], "warnings": []}, {}, [], [], gallery=0)
    assert {"metrics.json", "details.npz", "report.md", "report.html"} <= set(renames)
    renames.clear()
    write_comparison([tmp_path / "a"], tmp_path / "compare")
    assert {"compare.md", "compare.html", "compare.json"} <= set(renames)


def test_compare_refuses_a_deeply_nested_metrics_file(tmp_path):
    from crystens_core.report import write_comparison

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "run"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "metrics.json: JSON nested too deeply" in result.output, result.output
    with pytest.raises(ValueError, match="nested too deeply"):
        write_comparison([tmp_path / "run"], tmp_path / "out")


def test_safe_filename_never_leaves_the_folder_nor_hides():
    from crystens_core.safe_io import safe_filename

    taken: set[str] = set()
    stems = [safe_filename(item, taken=taken) for item in ["../../x", "..", ".hidden", "a/b", "a_b", "CON", "con.cif", "", "x"]]
    assert stems == ["x", "item", "hidden", "a_b", "a_b-2", "_CON", "_con.cif", "item-2", "x-2"]
    assert all(not s.startswith(".") and "/" not in s for s in stems)


def test_read_json_bounds_what_it_reads(tmp_path):
    from crystens_core.safe_io import UntrustedFileError, read_json

    cases = {"deep.json": "[" * 33 + "]" * 33, "latin1.json": b'{"id": "\xe9"}', "broken.json": "{", "big.json": "[" + "0," * 600 + "0]"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content.encode() if isinstance(content, str) else content)
    reasons = {"deep.json": "nested too deeply", "latin1.json": "not UTF-8", "broken.json": "not valid JSON", "big.json": "more than the 1000 accepted"}
    for name, reason in reasons.items():
        with pytest.raises(UntrustedFileError, match=reason) as raised:
            read_json(tmp_path / name, max_bytes=1000)
        assert str(tmp_path / name) in str(raised.value)
    os.mkfifo(tmp_path / "fifo.json")  # would block a plain read
    with pytest.raises(UntrustedFileError, match="not a regular file"):
        read_json(tmp_path / "fifo.json")
    assert read_json(tmp_path / "deep.json", max_depth=40) is not None


def test_train_writes_run_json_by_rename_as_strict_json(tmp_path, renames):
    pytest.importorskip("torch", reason="training needs a torch generator")
    result = CliRunner().invoke(main, ["train", "--generator", "gan", "--steps", "1", "--batch-size", "4", "--option", "width=4", "--option", "device=cpu", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "run.json" in renames
    assert strict_json(tmp_path / "run" / "run.json")["steps"] == 1
