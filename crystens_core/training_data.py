"""Training tensors encoded once to a memory-mapped ``.npy``, cached by a fingerprint.

:meth:`CrystalPipeline.fit <crystens_core.pipeline.CrystalPipeline.fit>` encodes its
dataset in chunks of :data:`CHUNK_STRUCTURES` into ``<folder>/<fingerprint>.npy``
(float32, (N, C, S, S)) with a JSON record beside it, and trains from
``np.load(..., mmap_mode="r")``, so the tensors (MPTS-52: 40 000 × 4 × 64 × 64 float32,
≈ 2.6 GB) are never all in memory. The fingerprint is a SHA-256 over the encoder's
class and settings and, per structure, its id, lattice, fractional coordinates,
species and space group: a resumed run on the same data and encoder reuses the file,
any change gives a new one. A cache whose record or ``.npy`` does not match (wrong
header, shape, dtype or size: a crash or a damaged disk) is rebuilt with a
:class:`TrainingCacheWarning`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core.npy_writer import NpyAppender
from crystens_core.safe_io import read_json, write_json_atomic

FORMAT = "crystens.TrainingTensors"
FORMAT_VERSION = 1
#: Structures encoded per block written to the cache (bounds the memory of encoding).
CHUNK_STRUCTURES = 256


class TrainingCacheWarning(UserWarning):
    """A cached training-tensor file was unusable and is being rebuilt."""


def encoder_identity(encoder: Any) -> dict[str, Any]:
    """The encoder's class path and settings (what decides the tensors besides the data)."""
    config = encoder.get_config() if hasattr(encoder, "get_config") else {}
    return {"class": f"{type(encoder).__module__}.{type(encoder).__qualname__}", "config": json.loads(json.dumps(config, sort_keys=True, default=repr))}


def dataset_fingerprint(dataset: Any, encoder: Any) -> str:
    """SHA-256 (hex) of the encoder identity and every structure's id, lattice (Å), fractional
    coordinates, species and space group, in order."""
    digest = hashlib.sha256(json.dumps(encoder_identity(encoder), sort_keys=True).encode())
    ids = list(getattr(dataset, "ids", None) or range(len(dataset.structures)))
    for row_id, structure, spacegroup in zip(ids, dataset.structures, dataset.spacegroups):
        digest.update(f"\x00{row_id}\x00{spacegroup}\x00{len(structure)}\x00".encode())
        digest.update(np.ascontiguousarray(structure.lattice.matrix, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(structure.frac_coords, dtype="<f8").tobytes())
        digest.update("|".join(site.species_string for site in structure).encode())
    digest.update(f"\x00{len(dataset.structures)}".encode())
    return digest.hexdigest()


def _open_cached(tensors_path: Path, record_path: Path, fingerprint: str) -> np.memmap | None:
    """The cached tensors as a read-only memory map, or None (with a warning when a cache is
    there but unusable: unreadable record, other fingerprint, bad header, shape, dtype or size)."""
    if not tensors_path.exists() and not record_path.exists():
        return None
    try:
        record = read_json(record_path, error=ValueError)
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("fingerprint") != fingerprint:
            raise ValueError("its record is missing or describes other data")
        shape = tuple(record.get("shape") or ())
        tensors = np.load(tensors_path, mmap_mode="r", allow_pickle=False)
        if tensors.shape != shape or tensors.dtype != np.float32 or tensors.ndim != 4:
            raise ValueError(f"it holds {tensors.dtype} {tensors.shape}, its record says float32 {shape}")
        if tensors_path.stat().st_size != tensors.offset + tensors.nbytes:
            raise ValueError(f"it is {tensors_path.stat().st_size} bytes, {tensors.offset + tensors.nbytes} expected")
        return tensors
    except (OSError, ValueError, TypeError) as exc:
        warnings.warn(f"{tensors_path}: cached training tensors are unusable ({exc}); encoding the data again", TrainingCacheWarning, stacklevel=3)
        return None


def cached_tensors(dataset: Any, encoder: Any, folder: str | Path) -> np.memmap:
    """The raw training tensors of ``dataset`` as a read-only memory map of
    ``folder/<fingerprint>.npy``, encoded (in chunks of :data:`CHUNK_STRUCTURES`) only when
    that file is missing or unusable. Both files are written atomically, the record last."""
    folder = Path(folder)
    fingerprint = dataset_fingerprint(dataset, encoder)
    tensors_path = folder / f"{fingerprint}.npy"
    record_path = tensors_path.with_suffix(".json")
    tensors = _open_cached(tensors_path, record_path, fingerprint)
    if tensors is not None:
        return tensors
    folder.mkdir(parents=True, exist_ok=True)
    record_path.unlink(missing_ok=True)  # a stale record must never describe the new tensors
    structures, spacegroups = dataset.structures, dataset.spacegroups
    writer = NpyAppender(tensors_path, tuple(encoder.shape))
    try:
        for start in range(0, len(structures), CHUNK_STRUCTURES):
            end = start + CHUNK_STRUCTURES
            writer.append(encoder.encode_batch(structures[start:end], spacegroups[start:end]))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    shape = [writer.rows, *encoder.shape]
    write_json_atomic(record_path, {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": fingerprint, "data_name": str(getattr(dataset, "name", "") or ""), "encoder": encoder_identity(encoder), "shape": shape, "dtype": "float32"})
    return np.load(tensors_path, mmap_mode="r", allow_pickle=False)
