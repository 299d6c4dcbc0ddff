"""`encode_to_npy` on real rows with bad rows injected, and the `NpyAppender` it writes with."""

from __future__ import annotations

import json

import numpy as np
import pytest

import helpers
from crystens_core import encoding
from crystens_core.data.dataset import parse_cif
from crystens_core.encoding import encode_to_npy, metadata_path
from crystens_core.errors import DatasetError
from crystens_core.npy_writer import NpyAppender
from crystens_core.plugins import get_encoder


@pytest.fixture(scope="module")
def encoded(bad_csv, tmp_path_factory):
    """The bad-row CSV encoded once with the default encoder (max_sites=52), one process."""
    output = tmp_path_factory.mktemp("encoded") / "tensors.npy"
    summary = encode_to_npy(bad_csv.path, output, progress=False)
    return summary, output


def test_npy_has_one_tensor_per_good_row(encoded, bad_csv):
    summary, output = encoded
    array = np.load(output, mmap_mode="r")
    assert isinstance(array, np.memmap)
    assert array.shape == (8, 4, 64, 64) and array.dtype == np.float32
    assert summary.count == 8 and summary.shape == (8, 4, 64, 64) and summary.output == output
    assert np.isfinite(array).all() and (np.abs(array).reshape(8, -1).max(axis=1) > 0).all()
    assert not output.with_name(output.name + ".part").exists()


def test_sidecar_json_has_ids_in_order_and_the_skip_report(encoded, bad_csv):
    summary, output = encoded
    assert summary.metadata == metadata_path(output) == output.with_suffix(".json")
    meta = json.loads(summary.metadata.read_text())
    assert meta["ids"] == bad_csv.good_ids
    assert meta["shape"] == [8, 4, 64, 64]
    assert meta["encoder"] == "crystens" and meta["encoder_config"]["max_sites"] == 52
    assert meta["source"] == str(bad_csv.path)
    by_reason = meta["skipped"]["by_reason"]
    assert {reason: entry["count"] for reason, entry in by_reason.items()} == {reason: 1 for reason in helpers.BAD_IDS}
    assert {reason: entry["ids"] for reason, entry in by_reason.items()} == {reason: [row_id] for reason, row_id in helpers.BAD_IDS.items()}
    assert meta["skipped"]["skipped"] == 4
    assert dict(summary.skipped.counts) == {reason: 1 for reason in helpers.BAD_IDS}


def test_rows_equal_encoding_each_structure_alone(encoded, bad_csv):
    _, output = encoded
    array = np.load(output, mmap_mode="r")
    encoder = get_encoder("crystens")
    for index, row in enumerate(bad_csv.good_rows):
        expected = encoder.encode(parse_cif(row["cif"]), int(row["spacegroup.number"]))
        np.testing.assert_array_equal(array[index], expected, err_msg=row["material_id"])


def test_two_workers_give_an_identical_file(encoded, bad_csv, tmp_path):
    _, output = encoded
    parallel = tmp_path / "parallel.npy"
    summary = encode_to_npy(bad_csv.path, parallel, workers=2, progress=False)
    assert parallel.read_bytes() == output.read_bytes()
    meta, reference = json.loads(metadata_path(parallel).read_text()), json.loads(metadata_path(output).read_text())
    assert {k: v for k, v in meta.items() if k != "source"} == {k: v for k, v in reference.items() if k != "source"}
    assert summary.skipped.total == 4


def test_two_workers_over_several_chunks(bad_csv, encoded, tmp_path, monkeypatch):
    """12 rows in chunks of 3 (bad rows in several chunks): same ids, skips and values, in order."""
    _, output = encoded
    monkeypatch.setattr(encoding, "CHUNK_ROWS", 3)
    one, two = tmp_path / "one.npy", tmp_path / "two.npy"
    encode_to_npy(bad_csv.path, one, workers=1, progress=False)
    summary = encode_to_npy(bad_csv.path, two, workers=2, progress=False)
    assert two.read_bytes() == one.read_bytes()
    assert json.loads(metadata_path(two).read_text())["ids"] == bad_csv.good_ids
    assert {reason: list(ids) for reason, ids in summary.skipped.ids.items()} == {reason: [row_id] for reason, row_id in helpers.BAD_IDS.items()}
    # Equal values to the one-chunk file. (Not always equal bytes: the encoder pads a batch to
    # its largest structure with -0.0 in the pair channels, so signed zeros depend on chunking.)
    np.testing.assert_array_equal(np.load(two), np.load(output))


@pytest.mark.parametrize("workers", [1, 2])
def test_strict_raises_and_writes_nothing(bad_csv, tmp_path, workers):
    output = tmp_path / "strict.npy"
    with pytest.raises(DatasetError, match="bad-unparsable.*unparsable CIF"):
        encode_to_npy(bad_csv.path, output, strict=True, workers=workers, progress=False)
    assert list(tmp_path.iterdir()) == []  # no .npy, no .part, no .json


def test_smaller_max_sites_skips_more(bad_csv, tmp_path):
    sites = [len(parse_cif(r["cif"])) for r in bad_csv.good_rows]
    limit = sorted(sites)[len(sites) // 2]
    output = tmp_path / "small.npy"
    summary = encode_to_npy(bad_csv.path, output, encoder_config={"max_sites": limit}, progress=False)
    kept = [r["material_id"] for r, n in zip(bad_csv.good_rows, sites) if n <= limit]
    assert np.load(output, mmap_mode="r").shape == (len(kept), 4, 12 + limit, 12 + limit)
    assert json.loads(summary.metadata.read_text())["ids"] == kept
    assert summary.skipped.counts["too many sites"] == 1 + len(sites) - len(kept)


def test_only_bad_rows_gives_an_empty_npy(tmp_path):
    columns, rows = helpers.read_rows(limit=1)
    bad = [{**rows[0], "material_id": "x1", "cif": "not a cif"}, {**rows[0], "material_id": "x2", "cif": helpers.disordered_cif()}]
    source = helpers.write_csv(tmp_path / "bad_only.csv", columns, bad)
    summary = encode_to_npy(source, tmp_path / "empty.npy", progress=False)
    array = np.load(tmp_path / "empty.npy", mmap_mode="r")
    assert array.shape == (0, 4, 64, 64) and summary.count == 0
    assert json.loads(summary.metadata.read_text())["ids"] == []


def test_unreadable_source_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError):
        encode_to_npy(tmp_path / "nope.csv", tmp_path / "out.npy", progress=False)
    assert not (tmp_path / "out.npy").exists()


# -- NpyAppender ----------------------------------------------------------------------------
def test_appender_with_no_rows_writes_a_valid_empty_file(tmp_path):
    path = tmp_path / "empty.npy"
    with NpyAppender(path, (4, 8, 8)) as writer:
        pass
    assert writer.rows == 0
    for mode in ("r", None):
        array = np.load(path, mmap_mode=mode)
        assert array.shape == (0, 4, 8, 8) and array.dtype == np.float32


def test_appender_concatenates_blocks(tmp_path):
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(n, 4, 16, 16)) for n in (3, 0, 5, 1)]  # float64 in, float32 out
    path = tmp_path / "blocks.npy"
    with NpyAppender(path, (4, 16, 16)) as writer:
        for block in blocks:
            writer.append(block)
    assert writer.rows == 9
    array = np.load(path, mmap_mode="r")
    assert array.shape == (9, 4, 16, 16) and array.dtype == np.float32
    np.testing.assert_array_equal(array, np.concatenate(blocks).astype(np.float32))
    np.testing.assert_array_equal(np.load(path), array)  # also a plain np.load
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks.npy"]


def test_appender_rejects_wrong_row_shape(tmp_path):
    path = tmp_path / "bad.npy"
    with pytest.raises(ValueError, match="expected"):
        with NpyAppender(path, (4, 8, 8)) as writer:
            writer.append(np.zeros((2, 4, 8, 8)))
            writer.append(np.zeros((2, 4, 9, 9)))
    assert list(tmp_path.iterdir()) == []


def test_appender_leaves_nothing_behind_on_error_and_keeps_an_older_file(tmp_path):
    path = tmp_path / "out.npy"
    with pytest.raises(RuntimeError, match="boom"):
        with NpyAppender(path, (2, 3)) as writer:
            writer.append(np.ones((4, 2, 3)))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

    np.save(path, np.full((1, 2, 3), 7.0, np.float32))
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with NpyAppender(path, (2, 3)) as writer:
            writer.append(np.ones((4, 2, 3)))
            raise KeyboardInterrupt
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]
