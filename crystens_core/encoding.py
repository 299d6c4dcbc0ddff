"""Encode a whole dataset (CSV, CIF folder or named set) into a ``.npy`` file.

Rows are parsed and encoded in chunks, optionally by worker processes (CIF parsing
and spglib dominate the cost), and appended to the output as they arrive. Bad rows
are skipped with a reason; a JSON file beside the output records the encoder, its
settings, the ids in row order and the skip report.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core.data.dataset import SPACEGROUP_COLUMNS, SkipReport, parse_row, read_source, row_ids
from crystens_core.errors import DatasetError, EncodingError
from crystens_core.npy_writer import NpyAppender

CHUNK_ROWS = 128


@dataclass
class EncodeSummary:
    """What :func:`encode_to_npy` wrote."""

    output: Path
    metadata: Path
    count: int
    shape: tuple[int, ...]
    skipped: SkipReport = field(default_factory=SkipReport)


def metadata_path(tensors: str | Path) -> Path:
    """The JSON file that travels with a tensor file (``x.npy`` → ``x.json``)."""
    return Path(tensors).with_suffix(".json")


def _spacegroup(row: dict[str, str]) -> int | None:
    for column in SPACEGROUP_COLUMNS:
        value = row.get(column)
        if value:
            try:
                return int(float(value))
            except ValueError:
                return None
    return None


def _encode_chunk(encoder_name: str, config: dict[str, Any], chunk: list[tuple[str, str, int | None]]):
    """Parse and encode one chunk of (id, cif, space group) rows; runs in a worker."""
    from crystens_core.plugins import get_encoder

    encoder = get_encoder(encoder_name, **config)
    skipped = SkipReport()
    kept: list[tuple[str, Any, int | None]] = []
    for row_id, text, spacegroup in chunk:
        structure, problem = parse_row(text, encoder.max_sites)
        if problem:
            skipped.add(problem[0], row_id, problem[1])
        else:
            kept.append((row_id, structure, spacegroup))
    try:
        tensors = encoder.encode_batch([s for _, s, _ in kept], [g for _, _, g in kept])
        return [i for i, _, _ in kept], tensors, skipped
    except EncodingError:
        pass  # find the bad rows one at a time
    ids, rows = [], []
    for row_id, structure, spacegroup in kept:
        try:
            rows.append(encoder.encode(structure, spacegroup))
            ids.append(row_id)
        except EncodingError as exc:
            skipped.add(exc.reason, row_id, exc.detail)
    shape = (0,) + tuple(encoder.shape)
    return ids, (np.stack(rows) if rows else np.zeros(shape, np.float32)), skipped


def encode_to_npy(
    source: str | Path,
    output: str | Path,
    *,
    encoder: str = "crystens",
    encoder_config: dict[str, Any] | None = None,
    workers: int = 1,
    strict: bool = False,
    progress: bool = True,
) -> EncodeSummary:
    """Encode every row of ``source`` into ``output`` (.npy, float32, (N, C, S, S)).

    Args:
        source: named dataset, CSV/CSV.gz with a ``cif`` column, or a folder of CIFs.
        output: the ``.npy`` path; ``output`` with suffix ``.json`` gets the metadata.
        encoder: encoder name; ``encoder_config`` its keyword arguments.
        workers: processes that parse and encode (1: in this process).
        strict: raise on the first bad row instead of skipping it.
        progress: show a progress bar.

    Raises:
        DatasetError: unreadable source, or a bad row with ``strict``.
    """
    from crystens_core.plugins import get_encoder
    from crystens_core.progress import progress_bar

    config = dict(encoder_config or {})
    instance = get_encoder(encoder, **config)
    config = instance.get_config() if hasattr(instance, "get_config") else config
    name, columns, rows = read_source(source)
    ids = row_ids(rows, columns)
    records = [(row_id, row.get("cif") or "", _spacegroup(row)) for row_id, row in zip(ids, rows)]
    chunks = [records[i : i + CHUNK_ROWS] for i in range(0, len(records), CHUNK_ROWS)]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    skipped = SkipReport()
    kept_ids: list[str] = []
    executor = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        results = executor.map(_encode_chunk, [encoder] * len(chunks), [config] * len(chunks), chunks) if executor else (_encode_chunk(encoder, config, c) for c in chunks)
        with NpyAppender(output, tuple(instance.shape)) as writer, progress_bar(total=len(records), desc=f"encode {name}", unit="cif", enable=progress) as bar:
            for chunk, (chunk_ids, tensors, chunk_skipped) in zip(chunks, results):
                if strict and chunk_skipped.total:
                    reason = next(iter(chunk_skipped.counts))
                    first = chunk_skipped.ids[reason][0]
                    raise DatasetError(f"{name}: row {first!r}: {reason} ({chunk_skipped.details.get(first, '')})")
                writer.append(tensors)
                kept_ids.extend(chunk_ids)
                skipped.merge(chunk_skipped)
                bar.update(len(chunk))
    finally:
        if executor:
            executor.shutdown(cancel_futures=True)
    metadata = metadata_path(output)
    metadata.write_text(
        json.dumps(
            {"source": str(source), "encoder": encoder, "encoder_config": config, "shape": [len(kept_ids), *instance.shape], "ids": kept_ids, "skipped": skipped.as_dict()},
            indent=1,
        )
        + "\n"
    )
    return EncodeSummary(output, metadata, len(kept_ids), (len(kept_ids), *instance.shape), skipped)
