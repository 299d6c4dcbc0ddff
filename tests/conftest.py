"""Shared fixtures: real structures from the shipped samples and ../shared/data."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real CSVs); tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (the shared data folder beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mp20_sample():
    from crystens_core.data import load_dataset

    return load_dataset("mp20-sample")


@pytest.fixture(scope="session")
def mpts52_sample():
    from crystens_core.data import load_dataset

    return load_dataset("mpts52-sample")


@pytest.fixture(scope="session")
def encoder():
    from crystens_core import get_encoder

    return get_encoder("crystens")


@pytest.fixture(scope="session")
def mp20_tensors(mp20_sample, encoder):
    """Raw tensors of the 1000 mp20-sample structures (space groups from the data)."""
    return encoder.encode_batch(mp20_sample.structures, mp20_sample.spacegroups)


@pytest.fixture(scope="session")
def mpts52_tensors(mpts52_sample, encoder):
    return encoder.encode_batch(mpts52_sample.structures)
