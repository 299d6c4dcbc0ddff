"""Shared fixtures: real structures from the shipped samples, tests/fixtures/ and ../shared.

Small references are committed under tests/fixtures/ so that the fidelity tests
run on a fresh clone. Tests that need the full ../shared folder skip without it,
except under ``CI=true``, where a missing ../shared is a failure, not a skip.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
FIXTURES = REPO / "tests" / "fixtures"


def in_ci() -> bool:
    """True under ``CI=true`` (or 1/yes): what a test needs must be there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(message: str, hint: str = "") -> None:
    """Skip the test with ``message``, or fail it under ``CI=true``, where what it needs must be there."""
    if in_ci():
        pytest.fail(f"{message}; CI=true requires it{hint}", pytrace=False)
    pytest.skip(message)


def require(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise skip with a reason, or fail under ``CI=true``."""
    if not path.exists():
        missing(f"{path} ({what}) is not present", " (put the shared folder beside the repository)")
    return path


@pytest.fixture(scope="session")
def skip_or_fail():
    """:func:`missing` for test modules (which cannot import conftest reliably: tests/data has its own)."""
    return missing


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real CSVs): skips when absent, fails when absent under CI=true."""
    return require(SHARED_DATA, "the shared data folder beside the repository")


@pytest.fixture(scope="session")
def shared_path():
    """``shared_path("weights/cgcnn", "what it is")``: a path under ../shared, with the same skip/CI rule."""
    return lambda relative, what: require(SHARED / relative, what)


@pytest.fixture(scope="session")
def program():
    """``program("chromium", "chromium-browser", install="...")``: the first one on PATH; skips, or fails under CI=true, without any."""
    import shutil

    def find(*names: str, install: str) -> str:
        for name in names:
            if path := shutil.which(name):
                return path
        missing(f"{' / '.join(names)} is not installed ({install})")

    return find


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures/: small committed references (see its README.md)."""
    return FIXTURES


@pytest.fixture(scope="session")
def carbon24_csv() -> Path:
    """The first 300 rows of the Carbon-24 test split (committed fixture)."""
    return FIXTURES / "carbon24_test_head.csv.gz"


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
