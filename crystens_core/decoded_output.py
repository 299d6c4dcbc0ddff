"""The folder ``crystens decode`` and ``crystens sample`` write: one CIF per decoded tensor and ``summary.json``.

The CIFs are named after the tensors' ids — for ``crystens decode`` the ``ids`` of the
``.json`` beside an encoded ``.npy``, i.e. whatever the source CSV's ``material_id``
held. Ids are data, not paths: each becomes a safe file name
(:func:`crystens_core.safe_io.safe_filename`, clashes numbered ``-2``, ``-3``, ...)
that is checked to stay inside the folder, and ``summary.json`` keeps the original
id beside the file name. Every file is written atomically, ``summary.json`` last and
as strict JSON, so a folder with a ``summary.json`` is complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from crystens_core.safe_io import UntrustedFileError, path_inside, read_json, safe_filename, write_json_atomic, write_text_atomic

SUMMARY_NAME = "summary.json"
TENSORS_NAME = "tensors.npy"
#: Failure reason recorded when a decoded structure could not be written as CIF.
CIF_WRITE_FAILED = "cif writing failed"


def numbered_ids(count: int) -> list[str]:
    """``000000``, ``000001``, ...: the ids of tensors that come without any."""
    return [f"{i:06d}" for i in range(count)]


def sidecar_ids(tensors: str | Path, count: int) -> tuple[list[str], str | None]:
    """The ids of the ``count`` tensors in ``tensors`` (a ``.npy``), from the ``.json`` beside it.

    Returns:
        ``(ids, problem)``: the sidecar's ids as strings, or numbered ids when there is
        no sidecar (``problem`` None) or it cannot be used (``problem`` says why).
    """
    from crystens_core.encoding import metadata_path

    meta = metadata_path(tensors)
    if not meta.exists():
        return numbered_ids(count), None
    try:
        record = read_json(meta)
    except UntrustedFileError as exc:
        return numbered_ids(count), f"{exc}; tensors numbered instead"
    ids = record.get("ids") if isinstance(record, dict) else None
    if not isinstance(ids, list) or len(ids) != count:
        found = f"{len(ids)} ids" if isinstance(ids, list) else "no list of ids"
        return numbered_ids(count), f"{meta}: {found} for {count} tensors; tensors numbered instead"
    if not all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in ids):
        return numbered_ids(count), f"{meta}: ids must be strings or integers; tensors numbered instead"
    return [str(item) for item in ids], None


def write_decoded(folder: str | Path, ids: Sequence[str], results: Iterable, header: dict[str, Any]) -> dict[str, Any]:
    """Write one CIF per decoded tensor and ``summary.json`` (per-tensor records, failure counts).

    Args:
        folder: the output folder (created).
        ids: one id per result; the CIF of a result is ``<safe_filename(id)>.cif``.
        results: decoding results (``ok``, ``reason``, ``summary()``, ``to_cif()``).
        header: fields put first in ``summary.json`` (decoder, its settings, source).

    Returns:
        The summary as written: ``count``, ``decoded``, ``failures_by_reason`` and
        ``results`` (``id`` as given, ``cif`` the file name, or ``reason``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records, reasons, taken = [], Counter(), set()
    for tensor_id, result in zip(ids, results):
        record = {"id": str(tensor_id), **result.summary()}
        if result.ok:
            name = f"{safe_filename(tensor_id, taken=taken)}.cif"
            try:
                text = result.to_cif()
            except Exception as exc:  # a structure pymatgen cannot write costs only its own item
                record.update(ok=False, reason=f"{CIF_WRITE_FAILED}: {type(exc).__name__}: {exc}")
            else:
                write_text_atomic(path_inside(folder, name, what="CIF file name"), text)
                record["cif"] = name
        if not record["ok"]:
            reasons[str(record.get("reason") or "unknown").split(":")[0]] += 1
        records.append(record)
    summary = {**header, "count": len(records), "decoded": sum(bool(r["ok"]) for r in records), "failures_by_reason": dict(reasons), "results": records}
    write_json_atomic(folder / SUMMARY_NAME, summary)
    return summary


def decoded_lines(summary: dict[str, Any], folder: str | Path) -> list[str]:
    """What ``crystens decode`` and ``crystens sample`` print about a summary from :func:`write_decoded`."""
    lines = [f"decoded {summary['decoded']} of {summary['count']} tensors into {folder} (summary.json)"]
    lines += [f"  failed: {reason} ({count})" for reason, count in Counter(summary["failures_by_reason"]).most_common()]
    return lines
