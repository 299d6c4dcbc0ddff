"""Named datasets: the samples crystens ships, and the benchmark sets, resolved locally or downloaded.

A name is ``NAME`` or ``NAME:SPLIT`` (``mp-20:test``). Full sets resolve, in order, from

1. ``$CRYSTENS_DATA_DIR/<folder>/<split>.csv[.gz]`` (CI and benchmarks point it at ../shared/data),
2. the download cache ``$CRYSTENS_CACHE_DIR`` (default ``~/.cache/crystens``),
3. a download from the public CDVAE / DiffCSP repositories into that cache, checked
   against a SHA-256: the pinned one where the registry has it, otherwise the one
   recorded beside the cached file at its first download (trust on first use).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from crystens_core.errors import DatasetError

DATA_DIR_ENV = "CRYSTENS_DATA_DIR"
CACHE_DIR_ENV = "CRYSTENS_CACHE_DIR"
SAMPLES = Path(__file__).parent / "samples"
CDVAE_URL = "https://raw.githubusercontent.com/txie-93/cdvae/main/data/{folder}/{split}.csv"
DIFFCSP_URL = "https://raw.githubusercontent.com/jiaor17/DiffCSP/main/data/{folder}/{split}.csv"


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset.

    Attributes:
        name: what users type.
        description: one line for `crystens data list`.
        folder: sub-folder of the data directory (and of the download URL).
        url: download URL template with ``{folder}`` and ``{split}``; empty for shipped samples.
        splits: the splits the public source has.
        default_split: used when the name has no ``:split``.
        sample_file: for shipped samples, the file under ``crystens_core/data/samples``.
        sha256: pinned checksums by split, where known.
    """

    name: str
    description: str
    folder: str = ""
    url: str = ""
    splits: tuple[str, ...] = ("train", "val", "test")
    default_split: str = "train"
    sample_file: str = ""
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def shipped(self) -> bool:
        return bool(self.sample_file)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mp20-sample", "1000 MP-20 training structures (1–20 sites), shipped with crystens", sample_file="mp20-sample.csv.gz"),
        DatasetSpec("mpts52-sample", "200 MPTS-52 test structures with 21–52 sites, shipped with crystens", sample_file="mpts52-sample.csv.gz"),
        DatasetSpec("mp-20", "MP-20 (CDVAE): 45 231 Materials Project structures with ≤ 20 sites", "mp_20", CDVAE_URL),
        DatasetSpec("mpts-52", "MPTS-52 (DiffCSP): 40 476 structures with ≤ 52 sites, split by year", "mpts_52", DIFFCSP_URL),
        DatasetSpec("perov-5", "Perov-5 (CDVAE): 18 928 cubic perovskites, 5 sites", "perov_5", CDVAE_URL),
        DatasetSpec("carbon-24", "Carbon-24 (CDVAE): 10 153 carbon structures with 6–24 sites", "carbon_24", CDVAE_URL),
    )
}


def split_name(name: str) -> tuple[str, str | None]:
    """``"mp-20:test"`` → ``("mp-20", "test")``."""
    base, _, split = name.partition(":")
    return base, (split or None)


def is_named(name: str) -> bool:
    return split_name(name)[0] in DATASETS


def data_dir() -> Path | None:
    """The local data directory from ``$CRYSTENS_DATA_DIR``, or None."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads are kept (``$CRYSTENS_CACHE_DIR`` or ``~/.cache/crystens``)."""
    value = os.environ.get(CACHE_DIR_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "crystens"


def local_splits(spec: DatasetSpec) -> list[str]:
    """Splits of ``spec`` present in the local data directory."""
    root = data_dir()
    if spec.shipped or root is None or not (root / spec.folder).is_dir():
        return []
    names = {p.name.split(".csv")[0] for p in (root / spec.folder).iterdir() if ".csv" in p.name}
    return sorted(names)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, destination: Path, sha256: str | None = None, *, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``destination`` atomically and check its SHA-256.

    An existing file is reused when it matches ``sha256`` (or, with no pinned
    checksum, the checksum recorded in ``<destination>.sha256`` at its first
    download). A new download goes to a temporary file that is renamed into place
    only after it is complete and verified.

    Raises:
        DatasetError: the download failed or its checksum does not match.
    """
    from crystens_core.progress import progress_bar

    destination = Path(destination)
    record = destination.with_name(destination.name + ".sha256")
    expected = sha256 or (record.read_text().strip() if record.is_file() else None)
    if destination.is_file():
        actual = sha256_of(destination)
        if expected is None or actual == expected:
            return destination
        destination.unlink()  # corrupt or changed: download again
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except Exception as exc:
                raise DatasetError(f"cannot download {url}: {exc}") from exc
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress_bar(desc=f"download {destination.name}", unit="B", total=total, enable=progress, unit_scale=True) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        bar.update(len(block))
        actual = sha256_of(Path(temporary))
        if expected is not None and actual != expected:
            raise DatasetError(f"{url}: SHA-256 {actual} does not match the expected {expected}")
        os.replace(temporary, destination)
        record.write_text(actual + "\n")
        return destination
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def resolve(name: str, *, download: bool = True) -> Path:
    """The CSV file of a named dataset (see the module docstring for the order).

    Raises:
        DatasetError: unknown name or split, or the file is neither local nor downloadable.
    """
    base, split = split_name(name)
    if base not in DATASETS:
        raise DatasetError(f"unknown dataset {base!r}; known: {', '.join(DATASETS)}")
    spec = DATASETS[base]
    if spec.shipped:
        if split is not None:
            raise DatasetError(f"{base} is a shipped sample and has no splits")
        return SAMPLES / spec.sample_file
    split = split or spec.default_split
    root = data_dir()
    if root is not None:
        for suffix in (".csv.gz", ".csv"):
            candidate = root / spec.folder / f"{split}{suffix}"
            if candidate.is_file():
                return candidate
    if split not in spec.splits:
        local = local_splits(spec)
        raise DatasetError(f"{base}: no split {split!r} locally" + (f" (local: {', '.join(local)})" if local else "") + f"; downloadable splits: {', '.join(spec.splits)}")
    cached = cache_dir() / spec.folder / f"{split}.csv"
    if download:
        return fetch(spec.url.format(folder=spec.folder, split=split), cached, spec.sha256.get(split))
    if cached.is_file():
        return cached
    raise DatasetError(f"{name}: not in ${DATA_DIR_ENV} ({root}) nor in the cache {cached}")
