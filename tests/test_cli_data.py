"""`crystens data list/info`, `encode` and `decode` on real structures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crystens_core.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
import helpers  # noqa: E402  (tests/data/helpers.py)

NAMES = ["mp20-sample", "mpts52-sample", "mp-20", "mpts-52", "perov-5", "carbon-24"]


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No data directory or cache from the caller's shell."""
    monkeypatch.delenv("CRYSTENS_DATA_DIR", raising=False)
    monkeypatch.setenv("CRYSTENS_CACHE_DIR", str(tmp_path / "cache"))
    return monkeypatch


@pytest.fixture
def bad_rows_csv(tmp_path) -> helpers.BadCsv:
    return helpers.write_csv_with_bad_rows(tmp_path / "with_bad_rows.csv")


@pytest.fixture
def small_csv(tmp_path):
    """20 real MP-20 validation rows."""
    columns, rows = helpers.read_rows(limit=20)
    return helpers.write_csv(tmp_path / "small.csv", columns, rows), rows


# -- data list / info --------------------------------------------------------------------------
def test_data_list_names_all_six(env):
    result = invoke("data", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:6]] == NAMES
    assert "shipped" in lines[0] and "download (train, val, test)" in lines[2]
    assert "CRYSTENS_DATA_DIR" in lines[-1]


def test_data_list_shows_local_splits(env, shared_data):
    env.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    result = invoke("data", "list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(NAMES) <= set(lines)
    assert "local: biternary_test, biternary_val, pilot_test, pilot_train, pilot_val" in lines["mp-20"]
    assert "local: test" in lines["mpts-52"] and "local: test" in lines["carbon-24"]
    assert "CRYSTENS_DATA_DIR" not in result.stdout


def test_data_info_json_of_the_mp20_sample(env):
    result = invoke("data", "info", "mp20-sample", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["name"] == "mp20-sample" and info["structures"] == 1000 and info["skipped"] == 0
    assert info["atoms_per_cell"]["min"] == 1 and info["atoms_per_cell"]["max"] == 20
    assert 1 < info["atoms_per_cell"]["mean"] < 20
    assert info["spacegroups"]["count"] > 1 and "formation_energy_per_atom" in info["properties"]
    assert info["skip_report"] == {"skipped": 0, "by_reason": {}, "details": {}}


def test_data_info_prints_the_skip_counts(env, bad_rows_csv):
    result = invoke("data", "info", bad_rows_csv.path, "--max-sites", "20")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("with_bad_rows.csv: 8 structures (skipped 4 rows (")
    for reason in helpers.BAD_IDS:
        assert f"1 {reason}" in first
    assert "properties: " in result.stdout and "formation_energy_per_atom" in result.stdout

    as_json = json.loads(invoke("data", "info", bad_rows_csv.path, "--max-sites", "20", "--json").stdout)
    assert {r: e["ids"] for r, e in as_json["skip_report"]["by_reason"].items()} == {r: [i] for r, i in helpers.BAD_IDS.items()}


def test_data_info_strict_fails_naming_the_row(env, bad_rows_csv):
    result = invoke("data", "info", bad_rows_csv.path, "--strict")
    assert result.exit_code != 0
    assert "bad-unparsable" in result.output and "Traceback" not in result.output


def test_data_info_of_an_unknown_source(env):
    result = invoke("data", "info", "nope")
    assert result.exit_code != 0
    assert "nope" in result.output and "not a file, a folder or a named dataset" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- encode / decode ---------------------------------------------------------------------------
def test_encode_decode_round_trip(env, small_csv, tmp_path):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    source, rows = small_csv
    tensors = tmp_path / "t.npy"
    result = invoke("encode", source, "-o", tensors)
    assert result.exit_code == 0, result.output
    assert "wrote 20 tensors of shape (4, 64, 64)" in result.stdout and "skipped 0 rows" in result.stdout
    assert np.load(tensors, mmap_mode="r").shape == (20, 4, 64, 64)
    ids = [row["material_id"] for row in rows]
    assert json.loads(tensors.with_suffix(".json").read_text())["ids"] == ids

    out = tmp_path / "decoded"
    result = invoke("decode", tensors, "-o", out)
    assert result.exit_code == 0, result.output
    assert "decoded 20 of 20" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["decoded"] == 20 and summary["count"] == 20 and summary["failures_by_reason"] == {}
    assert [r["id"] for r in summary["results"]] == ids
    assert sorted(p.stem for p in out.glob("*.cif")) == sorted(ids)

    matcher = StructureMatcher()
    for row, record in zip(rows, summary["results"]):
        original = helpers.structure_from_cif(row["cif"])
        decoded = helpers.structure_from_cif((out / record["cif"]).read_text())
        assert record["formula"] == original.composition.reduced_formula
        assert record["spacegroup"] == int(row["spacegroup.number"])
        assert matcher.fit(original, decoded), row["material_id"]


def test_encode_skips_bad_rows_and_reports_them(env, bad_rows_csv, tmp_path):
    tensors = tmp_path / "t.npy"
    result = invoke("encode", bad_rows_csv.path, "-o", tensors)
    assert result.exit_code == 0, result.output
    assert "wrote 8 tensors" in result.stdout and "skipped 4 rows" in result.stdout
    for reason, row_id in helpers.BAD_IDS.items():
        assert f"  {reason}: 1 (e.g. {row_id})" in result.stdout
    result = invoke("encode", bad_rows_csv.path, "-o", tmp_path / "strict.npy", "--strict")
    assert result.exit_code != 0 and "bad-unparsable" in result.output
    assert not (tmp_path / "strict.npy").exists()


def test_decode_records_failures_with_reasons(env, small_csv, tmp_path):
    from crystens_core import get_encoder
    from crystens_core.data import load_dataset

    source, rows = small_csv
    good = get_encoder("crystens").encode(load_dataset(source)[0], int(rows[0]["spacegroup.number"]))
    array = np.stack([good] * 4)
    array[0] = np.nan  # all NaN
    array[1, 0, 0, 12] = np.nan  # one NaN in a cell the decoder reads (the first atom's Z); NaN in padding is ignored
    array[2] = 500.0  # garbage
    path = tmp_path / "bad.npy"
    np.save(path, array)

    out = tmp_path / "out"
    result = invoke("decode", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert "decoded 1 of 4" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 4 and summary["decoded"] == 1
    assert all("NaN or infinite" in r["reason"] for r in summary["results"][:2])
    assert sum(summary["failures_by_reason"].values()) == 3
    results = summary["results"]
    assert [r["ok"] for r in results] == [False, False, False, True]
    assert all(r["reason"] for r in results[:3]) and results[3]["reason"] is None
    assert results[2]["reason"] != results[0]["reason"]
    assert [p.name for p in out.glob("*.cif")] == [results[3]["cif"]] == ["000003.cif"]  # no sidecar: numbered ids
    assert "failed: lattice length 500 Å is above 300 Å" in result.stdout and result.stdout.count("  failed: ") == 3


def test_decode_of_a_non_npy_file_is_a_clear_error(env, tmp_path):
    path = tmp_path / "text.npy"
    path.write_text("material_id,cif\nthis is not an array\n")
    result = invoke("decode", path, "-o", tmp_path / "out")
    assert result.exit_code != 0
    assert f"{path}: not a .npy file of tensors" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()

    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((3, 3), np.float32))
    result = invoke("decode", flat, "-o", tmp_path / "out")
    assert result.exit_code != 0 and "expected (N, C, S, S) tensors, got shape (3, 3)" in result.output

    result = invoke("decode", tmp_path / "absent.npy", "-o", tmp_path / "out")
    assert result.exit_code != 0 and "does not exist" in result.output
