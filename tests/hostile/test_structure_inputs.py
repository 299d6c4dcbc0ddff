"""Hostile structure inputs: bad cells, bad text, odd file names, dying workers (issue 9 §1, §2, §6 encode sidecar).

Each bad row must be skipped with its id and reason while every good row is kept;
``--strict`` makes it one clear error. A NaN cell used to make spglib crash the
process (exit 139), so those checks run the CLI in a subprocess.
"""

from __future__ import annotations

import csv
import faulthandler
import gzip
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crystens_core import hookimpl
from crystens_core.cli import main
from crystens_core.data import load_dataset
from crystens_core.errors import DatasetError
from crystens_core.testing import temporary_plugin

GOOD = 3  # good rows beside each bad one


@pytest.fixture(scope="module")
def cifs(mp20_sample) -> list[tuple[str, str]]:
    """(id, CIF text) of a few real MP-20 structures."""
    return [(mp20_sample.ids[i], mp20_sample.structures[i].to(fmt="cif")) for i in range(GOOD + 1)]


def with_cell(cif: str, **values: str) -> str:
    """``cif`` with cell parameters replaced as raw text, e.g. ``with_cell(cif, length_a="nan")``."""
    for tag, value in values.items():
        cif, count = re.subn(rf"_cell_{tag}\s+\S+", f"_cell_{tag}   {value}", cif)
        assert count == 1, tag
    return cif


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        writer.writerows(rows)
    return path


def bad_and_good(cifs, bad_text: str) -> list[tuple[str, str]]:
    """The good rows with the bad one in the middle (id ``bad``)."""
    good = cifs[1:]
    return [good[0], ("bad", bad_text), *good[1:]]


def write_folder(folder: Path, rows: list[tuple[str, str]], suffix: str = ".cif") -> Path:
    folder.mkdir()
    for row_id, text in rows:
        (folder / f"{row_id}{suffix}").write_text(text)
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``crystens ARGS`` in a fresh process (a segfault shows as return code -11 / 139)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "crystens_core.cli", *args], capture_output=True, text=True, env=env, timeout=600)


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and "cif/s]" not in line and "%|" not in line]


# -- §1: one check for every structure, before spglib ---------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
@pytest.mark.parametrize("layout", ["folder", "csv"])
def test_encode_skips_a_bad_cell_and_keeps_every_good_row(cifs, tmp_path, value, layout):
    rows = bad_and_good(cifs, with_cell(cifs[0][1], length_a=value))
    source = write_folder(tmp_path / "cifs", rows) if layout == "folder" else write_rows(tmp_path / "rows.csv", rows)
    output = tmp_path / "out.npy"
    result = run_cli("encode", str(source), "-o", str(output))
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    meta = json.loads(output.with_suffix(".json").read_text())
    good_ids = [row_id for row_id, _ in rows if row_id != "bad"]
    assert meta["ids"] == sorted(good_ids) if layout == "folder" else meta["ids"] == good_ids
    assert meta["skipped"]["by_reason"] == {"invalid cell": {"count": 1, "ids": ["bad"]}}
    assert "a = " in meta["skipped"]["details"]["bad"]
    assert np.load(output).shape == (GOOD, 4, 64, 64)
    assert not list(tmp_path.glob("*.part"))


def test_encode_strict_makes_a_bad_cell_one_clear_error(cifs, tmp_path):
    source = write_rows(tmp_path / "rows.csv", bad_and_good(cifs, with_cell(cifs[0][1], length_a="nan")))
    output = tmp_path / "out.npy"
    result = run_cli("encode", str(source), "-o", str(output), "--strict")
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    (line,) = stderr_lines(result)
    assert line.startswith("error: ") and "'bad'" in line and "invalid cell" in line and "a = nan" in line, line
    assert not output.exists() and not list(tmp_path.glob("*.part")) and not output.with_suffix(".json").exists()


def test_evaluate_survives_a_nan_cell_on_the_reference_side(cifs, tmp_path):
    reference = write_folder(tmp_path / "reference", bad_and_good(cifs, with_cell(cifs[0][1], length_a="nan")))
    generated = write_folder(tmp_path / "generated", cifs[1:])
    report = tmp_path / "report"
    result = run_cli("evaluate", "--reference", str(reference), "--generated", str(generated), "--metric", "ks", "--gallery", "0", "-o", str(report))
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    record = json.loads((report / "metrics.json").read_text())
    assert record["reference"]["structures"] == GOOD
    assert record["reference"]["skipped_by_reason"] == {"invalid cell": 1}


def test_train_survives_a_nan_cell_in_its_data(cifs, tmp_path):
    pytest.importorskip("torch")
    data = write_rows(tmp_path / "rows.csv", bad_and_good(cifs, with_cell(cifs[0][1], length_a="inf")))
    run_dir = tmp_path / "run"
    result = run_cli("train", "--generator", "gan", "--data", str(data), "--steps", "1", "--batch-size", "2", "--option", "width=4", "--option", "device=cpu", "-o", str(run_dir))
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    record = json.loads((run_dir / "run.json").read_text())
    assert record["n_train"] == GOOD
    assert record["skipped"]["by_reason"] == {"invalid cell": {"count": 1, "ids": ["bad"]}}


@pytest.mark.parametrize(
    "cell, detail",
    [
        ({"length_b": "-5"}, "b = -5 Å"),
        ({"length_c": "0"}, "c = 0 Å"),
        ({"angle_gamma": "180"}, "gamma = 180°"),
        ({"angle_alpha": "-30"}, "alpha = -30°"),
        ({"angle_alpha": "10", "angle_beta": "10", "angle_gamma": "170"}, "do not make a cell"),
        ({"length_a": "1e400"}, "a = inf"),
        ({"length_a": "nan(3)"}, "a = nan"),
    ],
)
def test_load_dataset_rejects_a_cell_as_written_in_the_cif(cifs, tmp_path, cell, detail):
    dataset = load_dataset(write_rows(tmp_path / "rows.csv", bad_and_good(cifs, with_cell(cifs[0][1], **cell))))
    assert dataset.ids == [row_id for row_id, _ in cifs[1:]]
    assert dataset.skipped.counts == {"invalid cell": 1}
    assert detail in dataset.skipped.details["bad"]


def test_evaluate_rejects_a_negative_length_on_the_generated_side(cifs, tmp_path):
    generated = write_folder(tmp_path / "generated", bad_and_good(cifs, with_cell(cifs[0][1], length_a="-5")))
    reference = write_folder(tmp_path / "reference", cifs)
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", "--reference", str(reference), "--generated", str(generated), "--metric", "ks", "--gallery", "0", "-o", str(report)])
    assert result.exit_code == 0, result.output
    record = json.loads((report / "metrics.json").read_text())
    assert record["generated"]["structures"] == GOOD and record["generated"]["items"] == GOOD + 1
    assert [(issue["id"], issue["reason"]) for issue in record["skipped"]] == [("bad", "invalid cell")]


def test_structure_problem_names_what_is_wrong(mp20_sample):
    from pymatgen.core import Lattice, Structure

    from crystens_core.structures import cell_parameters_problem, structure_problem

    good = mp20_sample.structures[0]
    assert structure_problem(good) is None
    nan_cell = Structure(Lattice(np.where(np.eye(3) > 0, np.nan, 0.0)), ["Na"], [[0, 0, 0]])
    assert structure_problem(nan_cell) == ("invalid cell", "lattice matrix is not finite")
    flat = Structure(Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 1e-9]]), ["Na"], [[0, 0, 0]])
    assert structure_problem(flat)[0] == "invalid cell" and "volume" in structure_problem(flat)[1]
    far = Structure(Lattice.cubic(4), ["Na"], [[np.inf, 0, 0]])
    assert structure_problem(far)[0] == "invalid coordinates"
    empty = Structure(Lattice.cubic(4), [], [])
    assert structure_problem(empty) == ("empty structure", "no sites")
    dummy = Structure(Lattice.cubic(4), ["X0+"], [[0, 0, 0]])
    assert structure_problem(dummy)[0] == "unknown element"
    assert "c = -1 Å" in cell_parameters_problem({"a": 5.0, "b": 5.0, "c": -1.0})
    assert cell_parameters_problem({"a": 5.0, "b": 5.0, "c": 5.0, "alpha": 90, "beta": 90, "gamma": 90}) is None


def test_encoder_api_rejects_a_nan_cell_without_crashing(tmp_path):
    """The encoder checks structures given to it directly too (spglib would crash the process)."""
    code = (
        "import numpy as np\n"
        "from pymatgen.core import Lattice, Structure\n"
        "from crystens_core import get_encoder\n"
        "from crystens_core.errors import EncodingError\n"
        "s = Structure(Lattice.cubic(4), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])\n"
        "s.lattice = Lattice(np.where(np.eye(3) > 0, np.nan, 0.0))\n"
        "try:\n"
        "    get_encoder('crystens').encode(s)\n"
        "except EncodingError as exc:\n"
        "    print('refused:', exc.reason)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "refused: invalid cell"


# -- §1 defence in depth: a worker that dies costs only its row ------------------------------
class _CrashLayer:
    """A test-only layer that kills its (worker) process on structures of one formula."""

    name = "hostile-crash"
    formula = ""
    parent_pid = os.getpid()

    def channel(self, structure, max_sites):
        if os.getpid() != self.parent_pid and structure.composition.reduced_formula == self.formula:
            faulthandler.disable()  # no traceback dump from the worker in the test output
            os.kill(os.getpid(), signal.SIGSEGV)
        return np.zeros((12 + max_sites,) * 2, dtype=np.float32)


class _CrashPlugin:
    @hookimpl
    def crystens_register_layers(self, register):
        register("hostile-crash", _CrashLayer)


@pytest.fixture
def crash_layer():
    with temporary_plugin(_CrashPlugin(), "hostile-crash-plugin"):
        yield _CrashLayer


def test_a_dying_worker_costs_only_its_row(mp20_sample, crash_layer, tmp_path, monkeypatch):
    import crystens_core.encoding as encoding

    monkeypatch.setattr(encoding, "CHUNK_ROWS", 8)
    n = 40  # five chunks, two workers: the pool dies with other chunks in flight
    victim = 20
    crash_layer.formula = mp20_sample.structures[victim].composition.reduced_formula
    crash_layer.parent_pid = os.getpid()
    doomed = [mp20_sample.ids[i] for i in range(n) if mp20_sample.structures[i].composition.reduced_formula == crash_layer.formula]
    rows = [(mp20_sample.ids[i], mp20_sample.structures[i].to(fmt="cif")) for i in range(n)]
    source = write_rows(tmp_path / "rows.csv", rows)
    summary = encoding.encode_to_npy(source, tmp_path / "out.npy", encoder_config={"layers": ["hostile-crash"]}, workers=2, progress=False)
    assert summary.skipped.ids["worker crashed"] == doomed
    assert f"signal {int(signal.SIGSEGV)}" in summary.skipped.details[doomed[0]]
    assert summary.count == n - len(doomed) and summary.skipped.total == len(doomed)
    meta = json.loads((tmp_path / "out.json").read_text())
    assert meta["ids"] == [row_id for row_id, _ in rows if row_id not in doomed]
    assert np.load(tmp_path / "out.npy").shape == (n - len(doomed), 5, 64, 64)


# -- §6: the encode sidecar ----------------------------------------------------------------
def test_sidecar_is_written_atomically_after_the_tensors(mp20_sample, tmp_path, monkeypatch):
    import crystens_core.encoding as encoding
    from crystens_core import safe_io

    output = tmp_path / "out.npy"
    seen = []

    def recording(path, data, **kwargs):
        seen.append((Path(path), output.is_file(), (tmp_path / "out.npy.part").exists()))
        return safe_io.write_json_atomic(path, data, **kwargs)

    monkeypatch.setattr(encoding, "write_json_atomic", recording)
    source = write_rows(tmp_path / "rows.csv", [(mp20_sample.ids[i], mp20_sample.structures[i].to(fmt="cif")) for i in range(3)])
    encoding.encode_to_npy(source, output, progress=False)
    assert seen == [(tmp_path / "out.json", True, False)]


def test_a_failed_encode_leaves_no_stale_sidecar_and_no_part_file(mp20_sample, tmp_path, monkeypatch):
    import crystens_core.npy_writer as npy_writer
    from crystens_core.encoding import encode_to_npy

    source = write_rows(tmp_path / "rows.csv", [(mp20_sample.ids[i], mp20_sample.structures[i].to(fmt="cif")) for i in range(3)])
    output = tmp_path / "out.npy"
    encode_to_npy(source, output, progress=False)  # an earlier run's tensors and sidecar
    other = write_rows(tmp_path / "other.csv", [(mp20_sample.ids[i], mp20_sample.structures[i].to(fmt="cif")) for i in range(3, 5)])

    def failing_replace(source_path, target_path):
        raise OSError(28, "No space left on device", str(target_path))

    monkeypatch.setattr(npy_writer.os, "replace", failing_replace)
    with pytest.raises(OSError):
        encode_to_npy(other, output, progress=False)
    assert not (tmp_path / "out.npy.part").exists()
    assert not output.with_suffix(".json").exists()  # the old sidecar never outlives a new attempt


def test_output_ending_in_json_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["encode", "mp20-sample", "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 1 and "must not end in .json" in result.output
    assert not (tmp_path / "out.json").exists()


# -- §2: text that is not UTF-8 ---------------------------------------------------------------
def bytes_rows(cifs, bad: bytes, where: str = "cif") -> bytes:
    """A CSV (bytes) whose middle row has ``bad`` spliced into its id or its CIF's data_ line."""
    good = cifs[1:]
    out = [b"material_id,cif\r\n"]
    for index, (row_id, text) in enumerate(good):
        out.append(f'{row_id},"{text}"\r\n'.encode())
        if index == 0:
            bad_id = b"bad" + (bad if where == "id" else b"")
            cif = text.encode().replace(b"data_", b"data_" + (bad if where == "cif" else b""), 1)
            out.append(bad_id + b',"' + cif + b'"\r\n')
    return b"".join(out)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_row_that_is_not_utf8_is_skipped_with_its_id_and_byte(cifs, tmp_path, suffix):
    data = bytes_rows(cifs, b"Caf\xe9")
    path = tmp_path / f"rows{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    dataset = load_dataset(path)
    assert dataset.ids == [row_id for row_id, _ in cifs[1:]]
    assert dataset.skipped.ids["not UTF-8"] == ["bad"]
    detail = dataset.skipped.details["bad"]
    assert re.fullmatch(r"byte 0xe9 at byte \d+ of column 'cif', row starting at line \d+", detail), detail
    output = tmp_path / "out.npy"
    result = CliRunner().invoke(main, ["encode", str(path), "-o", str(output)])
    assert result.exit_code == 0, result.output
    meta = json.loads(output.with_suffix(".json").read_text())
    assert meta["ids"] == dataset.ids and meta["skipped"]["by_reason"]["not UTF-8"]["ids"] == ["bad"]


def test_evaluate_skips_a_generated_row_that_is_not_utf8(cifs, tmp_path):
    path = tmp_path / "generated.csv"
    path.write_bytes(bytes_rows(cifs, b"\xff\xfe"))
    reference = write_folder(tmp_path / "reference", cifs)
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", "--reference", str(reference), "--generated", str(path), "--metric", "ks", "--gallery", "0", "-o", str(report)])
    assert result.exit_code == 0, result.output
    record = json.loads((report / "metrics.json").read_text())
    assert [(issue["id"], issue["reason"]) for issue in record["skipped"]] == [("bad", "not UTF-8")]
    assert record["generated"]["structures"] == GOOD


def test_an_id_that_is_not_utf8_becomes_its_line_number(cifs, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(bytes_rows(cifs, b"\xc3\x28", where="id"))
    dataset = load_dataset(path)
    ((bad_id,),) = [dataset.skipped.ids["not UTF-8"]]
    assert re.fullmatch(r"line\d+", bad_id) and "column 'material_id'" in dataset.skipped.details[bad_id]
    assert dataset.ids == [row_id for row_id, _ in cifs[1:]]
    json.dumps(dataset.skipped.as_dict())  # printable, no lone surrogates


def test_a_corrupt_gzip_is_one_clear_error_naming_the_file(cifs, tmp_path):
    path = tmp_path / "rows.csv.gz"
    path.write_bytes(gzip.compress(bytes_rows(cifs, b""))[:-40])
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        load_dataset(path)


# -- §2: file names --------------------------------------------------------------------------
def test_cif_files_of_any_case_are_read_and_other_files_reported(cifs, tmp_path):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for (row_id, text), suffix in zip(cifs, [".cif", ".CIF", ".Cif", ".cIf"]):
        (folder / f"{row_id}{suffix}").write_text(text)
    (folder / "README.txt").write_text("not a crystal")
    dataset = load_dataset(folder)
    assert dataset.ids == sorted(row_id for row_id, _ in cifs)
    assert dataset.skipped.ids["not a CIF file"] == ["README.txt"]
    single = load_dataset(folder / f"{cifs[1][0]}.CIF")
    assert single.ids == [cifs[1][0]]


# -- numbers beside the CIF ----------------------------------------------------------------------
def test_a_space_group_column_with_garbage_falls_back_to_spglib(cifs, tmp_path):
    values = ["inf", "nan", "abc", "225.5", "1e400", "0", "12"]
    path = tmp_path / "rows.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif", "spacegroup.number"])
        for index, value in enumerate(values):
            writer.writerow([f"row-{index}", cifs[index % len(cifs)][1], value])
    dataset = load_dataset(path)
    assert dataset.spacegroups == [None] * 6 + [12]
    output = tmp_path / "out.npy"
    result = CliRunner().invoke(main, ["encode", str(path), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert json.loads(output.with_suffix(".json").read_text())["ids"] == [f"row-{index}" for index in range(len(values))]
