"""Named datasets: resolution from $CRYSTENS_DATA_DIR, and `fetch` against a local HTTP server only."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from crystens_core.data import load_dataset
from crystens_core.data import sources
from crystens_core.data.sources import DATASETS, fetch, resolve
from crystens_core.errors import DatasetError


# -- local resolution ------------------------------------------------------------------------
def test_named_splits_resolve_from_the_data_dir(monkeypatch, shared_data):
    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    assert resolve("mpts-52:test") == shared_data / "mpts_52" / "test.csv.gz"
    assert resolve("mp-20:pilot_val") == shared_data / "mp_20" / "pilot_val.csv.gz"
    assert resolve("perov-5:test") == shared_data / "perov_5" / "test.csv.gz"
    assert resolve("carbon-24:test", download=False) == shared_data / "carbon_24" / "test.csv.gz"


def test_named_split_reads_real_rows(monkeypatch, shared_data):
    import helpers
    from crystens_core.data.dataset import read_source

    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    _, rows = helpers.read_rows(shared_data / "mp_20" / "pilot_val.csv.gz")
    name, columns, raw = read_source("mp-20:pilot_val")
    assert name == "mp-20:pilot_val" and "cif" in columns and "spacegroup.number" in columns
    assert len(raw) == 1000 and [r["material_id"] for r in raw] == [r["material_id"] for r in rows]


def test_unknown_split_lists_the_local_splits(monkeypatch, shared_data):
    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    with pytest.raises(DatasetError) as info:
        resolve("mp-20:nope")
    message = str(info.value)
    assert "'nope'" in message
    local = message.split("(local: ")[1].split(")")[0].split(", ")
    assert local == ["biternary_test", "biternary_val", "pilot_test", "pilot_train", "pilot_val"]
    assert "train, val, test" in message
    assert sources.local_splits(DATASETS["mp-20"]) == local
    assert sources.local_splits(DATASETS["mp20-sample"]) == []


def test_unknown_name_and_sample_split_are_errors(monkeypatch, shared_data):
    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    with pytest.raises(DatasetError, match="unknown dataset 'nope'.*mp20-sample"):
        resolve("nope:test")
    with pytest.raises(DatasetError, match="has no splits"):
        resolve("mp20-sample:test")
    assert resolve("mp20-sample") == sources.SAMPLES / "mp20-sample.csv.gz"
    assert resolve("mpts52-sample").is_file()


def test_missing_without_download_names_the_places_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(DatasetError, match="CRYSTENS_DATA_DIR") as info:
        resolve("carbon-24:val", download=False)
    assert str(tmp_path / "crystens-cache" / "carbon_24" / "val.csv") in str(info.value)


# -- fetch against a local server --------------------------------------------------------------
def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_downloads_and_records_the_checksum(local_server, tmp_path):
    served = local_server.root / "mp_20" / "test.csv"
    destination = tmp_path / "dl" / "sub" / "test.csv"
    assert fetch(local_server.url("mp_20/test.csv"), destination, progress=False) == destination
    assert destination.read_bytes() == served.read_bytes()
    record = destination.with_name("test.csv.sha256")
    assert record.read_text().strip() == _sha(served)
    assert local_server.requests == ["/mp_20/test.csv"]
    assert sorted(p.name for p in destination.parent.iterdir()) == ["test.csv", "test.csv.sha256"]  # no .part left


def test_fetch_with_a_pinned_checksum(local_server, tmp_path):
    served = local_server.root / "mp_20" / "test.csv"
    destination = tmp_path / "dl" / "test.csv"
    fetch(local_server.url("mp_20/test.csv"), destination, _sha(served), progress=False)
    assert destination.read_bytes() == served.read_bytes()


def test_wrong_pinned_checksum_raises_and_leaves_no_file(local_server, tmp_path):
    destination = tmp_path / "dl" / "test.csv"
    with pytest.raises(DatasetError, match="does not match the expected 0{64}"):
        fetch(local_server.url("mp_20/test.csv"), destination, "0" * 64, progress=False)
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []  # neither the file, a .part nor a .sha256 record
    assert local_server.requests == ["/mp_20/test.csv"]


def test_cached_file_is_reused_without_the_server(local_server, tmp_path):
    served = local_server.root / "mp_20" / "test.csv"
    url = local_server.url("mp_20/test.csv")
    destination = tmp_path / "dl" / "test.csv"
    fetch(url, destination, progress=False)
    local_server.stop()
    assert fetch(url, destination, progress=False) == destination  # no server: must come from the cache
    assert fetch(url, destination, _sha(served), progress=False) == destination
    assert destination.read_bytes() == served.read_bytes()
    assert local_server.requests == ["/mp_20/test.csv"]


def test_download_failure_is_a_dataset_error(local_server, tmp_path):
    destination = tmp_path / "dl" / "absent.csv"
    with pytest.raises(DatasetError, match="cannot download"):
        fetch(local_server.url("mp_20/absent.csv"), destination, progress=False)
    assert not destination.exists() and list(destination.parent.iterdir()) == []
    local_server.stop()
    with pytest.raises(DatasetError, match="cannot download"):
        fetch(local_server.url("mp_20/test.csv"), destination, progress=False, timeout=5)


def test_corrupted_cache_is_downloaded_again(local_server, tmp_path):
    served = local_server.root / "mp_20" / "test.csv"
    url = local_server.url("mp_20/test.csv")
    destination = tmp_path / "dl" / "test.csv"
    fetch(url, destination, progress=False)
    destination.write_bytes(destination.read_bytes()[:-100] + b"corrupted!")
    fetch(url, destination, progress=False)  # checked against the recorded checksum
    assert destination.read_bytes() == served.read_bytes()
    assert len(local_server.requests) == 2
    # the same with a pinned checksum and no record
    destination.with_name("test.csv.sha256").unlink()
    destination.write_bytes(b"material_id,cif\n")
    fetch(url, destination, _sha(served), progress=False)
    assert destination.read_bytes() == served.read_bytes() and len(local_server.requests) == 3


def test_changed_upstream_file_fails_the_recorded_checksum(local_server, tmp_path):
    """Trust on first use: a cached file that is corrupt *and* an upstream that changed is an error."""
    served = local_server.root / "mp_20" / "test.csv"
    url = local_server.url("mp_20/test.csv")
    destination = tmp_path / "dl" / "test.csv"
    fetch(url, destination, progress=False)
    original = served.read_bytes()
    destination.write_bytes(b"corrupt")
    served.write_bytes(original + b"\n")
    with pytest.raises(DatasetError, match="does not match"):
        fetch(url, destination, progress=False)
    assert not destination.exists()


def test_named_dataset_downloads_into_the_cache(local_server, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.delenv("CRYSTENS_DATA_DIR", raising=False)
    monkeypatch.setenv("CRYSTENS_CACHE_DIR", str(cache))
    spec = dataclasses.replace(DATASETS["mp-20"], url=f"http://127.0.0.1:{local_server.port}/{{folder}}/{{split}}.csv")
    monkeypatch.setitem(sources.DATASETS, "mp-20", spec)

    path = resolve("mp-20:test")
    assert path == cache / "mp_20" / "test.csv"
    assert path.read_bytes() == (local_server.root / "mp_20" / "test.csv").read_bytes()
    assert (cache / "mp_20" / "test.csv.sha256").is_file()
    assert local_server.requests == ["/mp_20/test.csv"]

    dataset = load_dataset("mp-20:test")
    assert dataset.ids == [row["material_id"] for row in local_server.rows]
    assert [s.composition.reduced_formula for s in dataset] == [row["pretty_formula"] for row in local_server.rows]
    assert local_server.requests == ["/mp_20/test.csv"]  # the second time it came from the cache

    local_server.stop()
    assert resolve("mp-20:test", download=False) == path
    assert len(load_dataset("mp-20:test")) == len(local_server.rows)


def test_data_dir_wins_over_download(local_server, monkeypatch, shared_data):
    monkeypatch.setenv("CRYSTENS_DATA_DIR", str(shared_data))
    spec = dataclasses.replace(DATASETS["mpts-52"], url=f"http://127.0.0.1:{local_server.port}/{{folder}}/{{split}}.csv")
    monkeypatch.setitem(sources.DATASETS, "mpts-52", spec)
    assert resolve("mpts-52:test") == shared_data / "mpts_52" / "test.csv.gz"
    assert local_server.requests == []


def test_network_guard_is_active():
    """The autouse guard really refuses non-local connections (so no test can reach the internet)."""
    import socket

    with socket.socket() as sock, pytest.raises(RuntimeError, match="network"):
        sock.connect(("93.184.216.34", 80))
