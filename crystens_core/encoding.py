"""Encode a whole dataset (CSV, CIF folder or named set) into a ``.npy`` file.

Rows are parsed and encoded in chunks, optionally by worker processes (CIF parsing
and spglib dominate the cost), and appended to the output as they arrive. Bad rows
are skipped with a reason; a JSON file beside the output records the encoder, its
settings, the ids in row order and the skip report.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core.data.dataset import SPACEGROUP_COLUMNS, SkipReport, parse_row, read_source_report, row_ids, spacegroup_number
from crystens_core.errors import DatasetError, EncodingError
from crystens_core.npy_writer import NpyAppender
from crystens_core.safe_io import write_json_atomic

CHUNK_ROWS = 128
#: Skip reason of a row whose worker process died while parsing or encoding it.
WORKER_CRASHED = "worker crashed"


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
            return spacegroup_number(value)
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


def _send_encoded_chunk(connection, encoder_name: str, config: dict[str, Any], chunk: list[tuple[str, str, int | None]]) -> None:
    """Child-process body of :func:`_encode_alone`: encode ``chunk`` and send the result back."""
    try:
        connection.send(_encode_chunk(encoder_name, config, chunk))
    finally:
        connection.close()


def _encode_alone(encoder_name: str, config: dict[str, Any], chunk: list[tuple[str, str, int | None]]):
    """:func:`_encode_chunk` in a process of its own: its result, or the signal that ended the process.

    Returns:
        ``(result, None)``, or ``(None, why)`` when the process died without answering.
    """
    import multiprocessing

    receiver, sender = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.Process(target=_send_encoded_chunk, args=(sender, encoder_name, config, chunk), daemon=True)
    process.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:
        result = None
    finally:
        receiver.close()
        process.join()
    if result is not None:
        return result, None
    code = process.exitcode
    return None, (f"worker crashed (signal {-code})" if code is not None and code < 0 else f"worker crashed (exit status {code})")


def _encode_isolated(encoder_name: str, config: dict[str, Any], chunk: list[tuple[str, str, int | None]], shape: tuple[int, ...]):
    """Encode a chunk whose worker died: the whole chunk in a fresh process, then, if that dies too,
    each row in a process of its own, so only the rows that crash the process are lost (skipped as
    ``WORKER_CRASHED`` with the signal)."""
    result, _ = _encode_alone(encoder_name, config, chunk)
    if result is not None:
        return result
    ids: list[str] = []
    blocks: list[np.ndarray] = [np.zeros((0, *shape), np.float32)]
    skipped = SkipReport()
    for record in chunk:
        result, why = _encode_alone(encoder_name, config, [record])
        if result is None:
            skipped.add(WORKER_CRASHED, record[0], f"{why} while parsing or encoding this row")
            continue
        ids.extend(result[0])
        blocks.append(np.asarray(result[1], dtype=np.float32))
        skipped.merge(result[2])
    return ids, np.concatenate(blocks), skipped


def _pooled_results(encoder_name: str, config: dict[str, Any], chunks: list, workers: int, shape: tuple[int, ...]) -> Iterator[tuple[list[str], np.ndarray, SkipReport]]:
    """Each chunk's :func:`_encode_chunk` result, in order, from ``workers`` processes.

    At most ``2 * workers`` chunks are in flight (bounded memory). When a worker dies
    (a C extension crashing on a row), the pool is lost with every chunk in flight:
    those are redone with :func:`_encode_isolated` and a fresh pool takes the rest.
    """
    window = 2 * workers
    executor = ProcessPoolExecutor(max_workers=workers)
    futures: dict[int, Future] = {}
    submitted = 0
    try:
        for index, chunk in enumerate(chunks):
            while submitted < len(chunks) and submitted < index + window:
                try:
                    futures[submitted] = executor.submit(_encode_chunk, encoder_name, config, chunks[submitted])
                except BrokenProcessPool as exc:  # a worker died since the last result: redone below
                    futures[submitted] = Future()
                    futures[submitted].set_exception(exc)
                submitted += 1
            future = futures.pop(index)
            try:
                yield future.result()
                continue
            except BrokenProcessPool:
                pass
            executor.shutdown(wait=True, cancel_futures=True)
            for later, other in list(futures.items()):  # results that were lost with the pool
                if not other.done() or other.cancelled() or other.exception() is not None:
                    futures[later] = _finished(_encode_isolated(encoder_name, config, chunks[later], shape))
            executor = ProcessPoolExecutor(max_workers=workers)
            yield _encode_isolated(encoder_name, config, chunk, shape)
    finally:
        executor.shutdown(cancel_futures=True)


def _finished(result: Any) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


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

    Bad rows (unreadable text, unparsable CIF, invalid cell, ...) are skipped with
    their id and reason; with ``workers`` > 1 a row that makes its worker process die
    is skipped too ("worker crashed (signal N)") and the others are kept. The ``.npy``
    is written under a temporary name and renamed into place, then the ``.json``
    beside it is written atomically (a stale one is removed first), so a crash never
    leaves a truncated file or a sidecar that does not match the tensors.

    Args:
        source: named dataset, CSV/CSV.gz with a ``cif`` column, or a folder of CIFs.
        output: the ``.npy`` path; ``output`` with suffix ``.json`` gets the metadata.
        encoder: encoder name; ``encoder_config`` its keyword arguments.
        workers: processes that parse and encode (1: in this process).
        strict: raise on the first bad row instead of skipping it.
        progress: show a progress bar.

    Raises:
        DatasetError: unreadable source, an output path whose metadata file would be
            itself, or a bad row with ``strict``.
    """
    from crystens_core.plugins import get_encoder
    from crystens_core.progress import progress_bar

    output = Path(output)
    metadata = metadata_path(output)
    if metadata == output:
        raise DatasetError(f"{output}: the output must not end in .json (the metadata is written to OUTPUT with suffix .json)")
    if workers < 1:
        raise DatasetError(f"workers must be at least 1, got {workers}")
    config = dict(encoder_config or {})
    instance = get_encoder(encoder, **config)
    config = instance.get_config() if hasattr(instance, "get_config") else config
    shape = tuple(instance.shape)
    name, columns, rows, skipped = read_source_report(source)
    records = []
    for row_id, row in zip(row_ids(rows, columns), rows):
        problem = getattr(row, "problem", None)
        if problem is not None:  # e.g. not UTF-8: never parsed
            if strict:
                raise DatasetError(f"{name}: row {row_id!r}: {problem[0]} ({problem[1]})")
            skipped.add(problem[0], row_id, problem[1])
        else:
            records.append((row_id, row.get("cif") or "", _spacegroup(row)))
    chunks = [records[i : i + CHUNK_ROWS] for i in range(0, len(records), CHUNK_ROWS)]
    output.parent.mkdir(parents=True, exist_ok=True)
    kept_ids: list[str] = []
    results = _pooled_results(encoder, config, chunks, workers, shape) if workers > 1 else (_encode_chunk(encoder, config, c) for c in chunks)
    writer = NpyAppender(output, shape)
    try:
        with progress_bar(total=len(records), desc=f"encode {name}", unit="cif", enable=progress) as bar:
            for chunk, (chunk_ids, tensors, chunk_skipped) in zip(chunks, results):
                if strict and chunk_skipped.total:
                    reason = next(iter(chunk_skipped.counts))
                    first = chunk_skipped.ids[reason][0]
                    raise DatasetError(f"{name}: row {first!r}: {reason} ({chunk_skipped.details.get(first, '')})")
                writer.append(tensors)
                kept_ids.extend(chunk_ids)
                skipped.merge(chunk_skipped)
                bar.update(len(chunk))
        metadata.unlink(missing_ok=True)  # a stale sidecar must never describe the new tensors
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if hasattr(results, "close"):
            results.close()  # shuts the worker pool down
    write_json_atomic(
        metadata,
        {"source": str(source), "encoder": encoder, "encoder_config": config, "shape": [len(kept_ids), *shape], "ids": kept_ids, "skipped": skipped.as_dict()},
    )
    return EncodeSummary(output, metadata, len(kept_ids), (len(kept_ids), *shape), skipped)
