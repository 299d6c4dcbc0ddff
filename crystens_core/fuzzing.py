"""Adversarial tensors for decoders, and the checks every decoder must pass on them.

Used by ``benchmarks/fuzz_decoders.py`` (100 000 tensors) and by the bounded fuzz
test of the normal test run, so both draw from one factory. Tensor ``index`` under
``seed`` is always the same tensor (its generator is seeded with ``[seed, index]``),
so a run can be split across processes and any finding replayed alone::

    from crystens_core.fuzzing import adversarial_tensor, real_tensors
    kind, tensor = adversarial_tensor(4711, seed=0, real=real_tensors())

Kinds: ``real`` (clean tensors of the shipped samples), ``perturbed`` (those with
one to three hostile edits: noise, scaled or degenerate lattices, bad Z, NaN in
used or padding entries, extra or coincident sites, ...), ``lattice`` (random
lattice parameters over 18 decades), ``noise``, ``nonfinite``, ``extreme`` (1e308,
subnormals, −0), ``shape`` and ``dtype`` (wrong shapes, complex, bool, object,
strings, non-arrays).
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crystens_core import layout

#: Kinds of adversarial input and their share of a run.
KINDS: dict[str, float] = {
    "real": 0.04,
    "perturbed": 0.40,
    "lattice": 0.14,
    "noise": 0.08,
    "nonfinite": 0.10,
    "extreme": 0.08,
    "shape": 0.08,
    "dtype": 0.08,
}


@functools.lru_cache(maxsize=2)
def real_tensors(limit: int | None = None) -> np.ndarray:
    """Raw float32 tensors of the shipped mp20-sample and mpts52-sample structures,
    encoded by the ``crystens`` encoder with their space groups; the first ``limit``
    of each sample when given."""
    from crystens_core.data import load_dataset
    from crystens_core.plugins import get_encoder

    encoder = get_encoder("crystens")
    batches = []
    for name in ("mp20-sample", "mpts52-sample"):
        data = load_dataset(name)
        if limit is not None:
            data = data.subset(range(min(limit, len(data))))
        batches.append(encoder.encode_batch(data.structures, data.spacegroups))
    return np.concatenate(batches)


def _site_count(tensor: np.ndarray) -> int:
    """Occupied slots of a clean tensor (Z ≠ 0)."""
    return int(np.count_nonzero(tensor[0, layout.Z, layout.SITE_OFFSET :]))


def _set_header(tensor: np.ndarray, field_index: int | slice, sites: Any, values: Any) -> None:
    """Write header ``values`` into every base-channel copy (row and column) of ``sites``."""
    columns = layout.SITE_OFFSET + np.arange(tensor.shape[-1] - layout.SITE_OFFSET)[sites]
    values = np.asarray(values, dtype=np.float64)
    rows = np.atleast_1d(np.arange(layout.N_HEADER)[field_index])
    block = np.broadcast_to(values.reshape(len(rows), -1) if values.ndim else values, (len(rows), len(columns)))
    for channel in range(layout.BASE_CHANNELS):
        tensor[channel][np.ix_(rows, columns)] = block
        tensor[channel][np.ix_(columns, rows)] = block.T


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(10 ** rng.uniform(np.log10(low), np.log10(high)))


def _perturb(tensor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One hostile edit of a real tensor (float64 copy)."""
    n = max(_site_count(tensor), 1)
    size = tensor.shape[-1]
    edit = rng.integers(15)
    if edit == 0:  # noise on every used entry, relative to its size
        level = _log_uniform(rng, 1e-5, 1.0)
        used = tensor != 0
        tensor = tensor + used * rng.normal(0, level, tensor.shape) * (np.abs(tensor) + 1)
    elif edit == 1:  # every lattice length scaled by one factor
        _set_header(tensor, layout.LENGTHS, slice(0, n), tensor[0, layout.LENGTHS, layout.SITE_OFFSET : layout.SITE_OFFSET + n] * rng.choice([1e-30, 1e-6, 1e-3, 0.05, 20.0, 1e3, 1e6, 5e30, 1e300]))
    elif edit == 2:  # one length scaled: needles and plates
        axis = layout.A + int(rng.integers(3))
        _set_header(tensor, axis, slice(0, n), tensor[0, axis, layout.SITE_OFFSET : layout.SITE_OFFSET + n] * rng.choice([1e-3, 1e-2, 0.1, 50.0, 1e4]))
    elif edit == 3:  # a degenerate angle near 0° or 180°
        angle = layout.ALPHA + int(rng.integers(3))
        near = _log_uniform(rng, 1e-9, 5.0)
        _set_header(tensor, angle, slice(0, n), near if rng.random() < 0.5 else 180.0 - near)
    elif edit == 4:  # angles that barely or do not make a cell
        _set_header(tensor, layout.ANGLES, slice(0, n), rng.choice([[120, 120, 120], [60, 60, 120], [179, 90, 90], [1, 1, 1], [119.9, 119.9, 119.9], [90, 90, 0]]) + rng.normal(0, 0.01, 3))
    elif edit == 5:  # bad atomic numbers
        site = int(rng.integers(n))
        _set_header(tensor, layout.Z, slice(site, site + 1), rng.choice([0.49, -3.0, 118.6, 119.0, 500.0, 1e20, 0.5]))
    elif edit == 6:  # padding slots filled with noise or with copies of a site (more sites)
        extra = tensor[:, :, layout.SITE_OFFSET + n :]
        if extra.shape[-1]:
            if rng.random() < 0.5:
                count = int(rng.integers(1, extra.shape[-1] + 1))
                for slot in range(n, n + count):
                    source = layout.SITE_OFFSET + int(rng.integers(n))
                    tensor[:, :, layout.SITE_OFFSET + slot] = tensor[:, :, source]
                    tensor[:, layout.SITE_OFFSET + slot, :] = tensor[:, source, :]
            else:
                tensor[:, layout.SITE_OFFSET + n :, :] = rng.normal(0, _log_uniform(rng, 1e-3, 10), tensor[:, layout.SITE_OFFSET + n :, :].shape)
    elif edit == 7:  # space group out of range or fractional
        _set_header(tensor, layout.SPACEGROUP, slice(0, n), rng.choice([0.0, -1.0, 230.6, 231.0, 1e6, 1e300, 12.5, float(rng.integers(1, 231))]))
    elif edit == 8:  # NaN or inf in one unused (padding) entry
        fields = layout.field_index_map(tensor.shape[0], size)
        used = np.zeros_like(fields, dtype=bool)
        used[: layout.BASE_CHANNELS, : layout.N_HEADER, layout.SITE_OFFSET : layout.SITE_OFFSET + n] = True
        used[: layout.BASE_CHANNELS, layout.SITE_OFFSET : layout.SITE_OFFSET + n, : layout.N_HEADER] = True
        used[: layout.BASE_CHANNELS, layout.SITE_OFFSET : layout.SITE_OFFSET + n, layout.SITE_OFFSET : layout.SITE_OFFSET + n] = True
        free = np.flatnonzero(~used.ravel())
        tensor.ravel()[free[rng.integers(free.size)]] = rng.choice([np.nan, np.inf, -np.inf])
    elif edit == 9:  # NaN or inf in one used entry
        entry = (int(rng.integers(layout.BASE_CHANNELS)), int(rng.integers(layout.N_HEADER)), layout.SITE_OFFSET + int(rng.integers(n)))
        tensor[entry] = rng.choice([np.nan, np.inf, -np.inf])
    elif edit == 10:  # coordinates far outside [0, 1)
        _set_header(tensor, layout.COORDINATES, slice(0, n), rng.choice([-1.0, 1.0]) * _log_uniform(rng, 1.0, 1e300) * rng.random((3, n)))
    elif edit == 11:  # every site moved onto the first: coincident sites
        first = tensor[0, layout.COORDINATES, layout.SITE_OFFSET].copy()
        _set_header(tensor, layout.COORDINATES, slice(0, n), np.repeat(first[:, None], n, axis=1) + rng.normal(0, _log_uniform(rng, 1e-12, 1e-3), (3, n)))
    elif edit == 12:  # one base channel zeroed or negated
        channel = int(rng.integers(layout.BASE_CHANNELS))
        tensor[channel] *= rng.choice([0.0, -1.0])
    elif edit == 13:  # copies that disagree wildly (only the row copy of channel 0 changed)
        row = int(rng.integers(layout.N_HEADER))
        tensor[0, row, layout.SITE_OFFSET : layout.SITE_OFFSET + n] *= rng.choice([-1.0, 1e3, 1e-3, 1e30])
    else:  # subnormal or negative-zero entries everywhere that is empty
        empty = tensor == 0
        tensor[empty] = rng.choice([-0.0, 5e-324, 1e-310, -1e-45])
    return tensor


def _random_lattice(tensor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real tensor with random lengths (1e-6–1e12 Å) and angles (0–180°)."""
    n = max(_site_count(tensor), 1)
    lengths = [_log_uniform(rng, 1e-6, 1e12) for _ in range(3)] if rng.random() < 0.5 else [_log_uniform(rng, 0.3, 300) for _ in range(3)]
    angles = rng.uniform(0, 180, 3) if rng.random() < 0.5 else rng.uniform(40, 140, 3)
    _set_header(tensor, slice(layout.A, layout.GAMMA + 1), slice(0, n), np.r_[lengths, angles])
    return tensor


def _noise(rng: np.random.Generator) -> np.ndarray:
    size = layout.size_for(int(rng.choice([20, 52])))
    scale = _log_uniform(rng, 1e-3, 1e3)
    tensor = rng.normal(0, scale, (4, size, size))
    if rng.random() < 0.5:  # positive header values look more like a crystal
        tensor[:, : layout.N_HEADER] = np.abs(tensor[:, : layout.N_HEADER])
        tensor[:, :, : layout.N_HEADER] = np.abs(tensor[:, :, : layout.N_HEADER])
    return tensor.astype(rng.choice([np.float32, np.float64]))


def _nonfinite(tensor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    count = int(rng.integers(1, 50)) if rng.random() < 0.8 else tensor.size
    positions = rng.integers(tensor.size, size=count)
    tensor.ravel()[positions] = rng.choice([np.nan, np.inf, -np.inf], size=count)
    return tensor


def _extreme(tensor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    value = rng.choice([1e308, -1e308, np.finfo(np.float64).max, np.finfo(np.float32).max, 1e30, 5e-324, 1e-310, -0.0, 1e-45])
    choice = rng.integers(3)
    if choice == 0:  # the whole tensor
        return np.full(tensor.shape, value)
    if choice == 1:  # every used entry
        return np.where(tensor != 0, value, tensor)
    return tensor * value  # scaled (overflows to inf)


def _bad_shape(tensor: np.ndarray, rng: np.random.Generator) -> Any:
    n = max(_site_count(tensor), 1)
    options: list[Callable[[], Any]] = [
        lambda: tensor[0],  # 2-D
        lambda: tensor[:3],  # too few channels
        lambda: tensor[None],  # 4-D: a batch of one
        lambda: tensor[None, None],  # 5-D
        lambda: tensor[:, :, :-1],  # not square
        lambda: tensor[:, : layout.SITE_OFFSET, : layout.SITE_OFFSET],  # no site slot
        lambda: tensor[:, : layout.SITE_OFFSET + 1, : layout.SITE_OFFSET + 1],  # one slot
        lambda: tensor[:, : layout.SITE_OFFSET + max(n - 1, 1), : layout.SITE_OFFSET + max(n - 1, 1)],  # truncated
        lambda: np.zeros((4, 0, 0)),
        lambda: np.zeros(()),
        lambda: tensor.ravel(),
        lambda: np.concatenate([tensor, tensor[:1]], axis=0),  # 5 channels (a layer)
        lambda: tensor.transpose(1, 2, 0),  # channels last
        lambda: np.pad(tensor, ((0, 0), (0, 40), (0, 40))),  # a bigger side: more slots
        lambda: np.tile(tensor, (1, 3, 3)),  # header values spread over many slots
    ]
    return options[int(rng.integers(len(options)))]()


def _bad_dtype(tensor: np.ndarray, rng: np.random.Generator) -> Any:
    options: list[Callable[[], Any]] = [
        lambda: tensor.astype(np.complex128) + 1j * rng.normal(size=tensor.shape),
        lambda: tensor.astype(np.complex64),  # imaginary part zero: still complex
        lambda: tensor.astype(bool),
        lambda: tensor.astype(np.int64),
        lambda: tensor.astype(np.int8),
        lambda: tensor.astype(np.uint8),
        lambda: tensor.astype(np.float16),
        lambda: tensor.astype(object),
        lambda: tensor.astype(str),
        lambda: np.zeros(tensor.shape, dtype="datetime64[s]"),
        lambda: tensor.tolist(),  # nested lists of floats
        lambda: None,
        lambda: "tensor.npy",
        lambda: 3.0,
        lambda: {"tensor": tensor},
        lambda: [[["a"]]],
    ]
    return options[int(rng.integers(len(options)))]()


def adversarial_tensor(index: int, seed: int, real: np.ndarray) -> tuple[str, Any]:
    """Adversarial input number ``index`` of run ``seed``: ``(kind, tensor)``.

    Args:
        index: position in the run (≥ 0).
        seed: run seed.
        real: (N, C, S, S) clean tensors to start from (:func:`real_tensors`).
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _adversarial_tensor(np.random.default_rng([seed, index]), real)


def _adversarial_tensor(rng: np.random.Generator, real: np.ndarray) -> tuple[str, Any]:
    kind = str(rng.choice(list(KINDS), p=np.array(list(KINDS.values())) / sum(KINDS.values())))
    base = real[int(rng.integers(len(real)))].astype(np.float64)
    if kind == "real":
        return kind, base.astype(np.float32)
    if kind == "perturbed":
        for _ in range(int(rng.integers(1, 4))):
            base = _perturb(base, rng)
        return kind, base.astype(rng.choice([np.float32, np.float64]))
    if kind == "lattice":
        return kind, _random_lattice(base, rng)
    if kind == "noise":
        return kind, _noise(rng)
    if kind == "nonfinite":
        return kind, _nonfinite(base, rng)
    if kind == "extreme":
        return kind, _extreme(base, rng)
    if kind == "shape":
        return kind, _bad_shape(base, rng)
    return kind, _bad_dtype(base, rng)


# -- decoders and their options ---------------------------------------------------------------
#: Settings of the decoder skeleton every decoder takes (crystens_core.decoding.TensorDecoder).
COMMON_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"snap_to_spacegroup": True},
    {"distance": "fractional"},
    {"snap_to_spacegroup": True, "distance": "fractional"},
    {"merge_tolerance": 0.0},
    {"merge_tolerance": 0.0, "snap_to_spacegroup": True},
    {"merge_tolerance": 2.0},
)


def _extra_variants(defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """Extremes of a decoder's own numeric settings: 1 and 64 for integers, 0 and 10× for floats."""
    variants = []
    for key, value in defaults.items():
        if key in {"distance", "merge_tolerance", "snap_to_spacegroup"} or isinstance(value, bool):
            continue
        if isinstance(value, int):
            variants += [{key: 1}, {key: 64}]
        elif isinstance(value, float):
            variants += [{key: 0.0}, {key: value * 10 if value else 0.05}]
    return variants


def decoder_variants(names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """Every registered decoder (or ``names``) under every setting of :data:`COMMON_VARIANTS`
    and the extremes of its own numeric settings: ``(label, decoder)`` pairs. Settings a
    decoder refuses (ValueError) are left out."""
    from crystens_core.plugins import get_decoder, list_components

    variants = []
    for name in names if names is not None else list_components("decoder"):
        defaults = get_decoder(name).get_config()
        for settings in [*COMMON_VARIANTS, *_extra_variants(defaults)]:
            try:
                decoder = get_decoder(name, **settings)
            except ValueError:
                continue
            label = name + "".join(f" {key}={value}" for key, value in settings.items())
            variants.append((label, decoder))
    return variants


# -- checks -------------------------------------------------------------------------------
def cif_round_trip_problem(structure) -> str | None:
    """Why ``structure`` does not survive CIF (CifWriter, then ``Structure.from_str``): a
    different site count or lattice; None when it does."""
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            back = Structure.from_str(str(CifWriter(structure)), fmt="cif")
        except Exception as exc:
            return f"CIF does not read back: {type(exc).__name__}: {exc}"
    if len(back) != len(structure):
        return f"CIF reads back with {len(back)} sites instead of {len(structure)}"
    old, new = np.r_[structure.lattice.abc, structure.lattice.angles], np.r_[back.lattice.abc, back.lattice.angles]
    if not np.allclose(old, new, rtol=1e-5, atol=1e-4):
        return f"CIF reads back with lattice {np.round(new, 4).tolist()} instead of {np.round(old, 4).tolist()}"
    return None


#: How many of the slowest inputs a report keeps.
SLOWEST = 20


@dataclass
class FuzzReport:
    """Tallies of a fuzz run.

    Attributes:
        count: inputs decoded.
        ok: results reported ok.
        exceptions: ``(index, label, message)`` of exceptions that escaped ``decode``.
        bad_ok: ``(index, label, problem)`` of ok results that are not sane or do not read back.
        bad_failures: ``(index, label, reason)`` of failures without a clear reason
            (empty, or "unexpected ...").
        nonfinite_summaries: results whose ``summary()`` is not strict JSON.
        reasons: failures by reason (numbers stripped).
        kinds: inputs by kind.
        seconds: decode time per input (s), in input order.
        slowest: ``(seconds, index, label, kind)`` of the slowest inputs, slowest first.
    """

    count: int = 0
    ok: int = 0
    exceptions: list = field(default_factory=list)
    bad_ok: list = field(default_factory=list)
    bad_failures: list = field(default_factory=list)
    nonfinite_summaries: int = 0
    reasons: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    seconds: list = field(default_factory=list)
    slowest: list = field(default_factory=list)

    def merge(self, other: "FuzzReport") -> None:
        self.count += other.count
        self.ok += other.ok
        self.exceptions += other.exceptions
        self.bad_ok += other.bad_ok
        self.bad_failures += other.bad_failures
        self.nonfinite_summaries += other.nonfinite_summaries
        self.reasons.update(other.reasons)
        self.kinds.update(other.kinds)
        self.seconds += other.seconds
        self.slowest = sorted(self.slowest + other.slowest, reverse=True)[:SLOWEST]

    def percentiles_ms(self) -> dict[str, float]:
        """p50, p99 and max decode time per input, ms."""
        times = np.asarray(self.seconds) * 1e3
        if not times.size:
            return {"p50": math.nan, "p99": math.nan, "max": math.nan}
        return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "max": float(times.max())}


def _reason_key(reason: str) -> str:
    """A failure reason without its numbers, to count reasons by kind."""
    import re

    return re.sub(r"-?\d[\d.eE+\-]*|\bnan\b|\binf\b", "#", reason)[:90]


def fuzz(indices: Sequence[int] | range, seed: int, real: np.ndarray, variants: Sequence[tuple[str, Any]], *, progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Decode input ``i`` of run ``seed`` with variant ``i mod len(variants)`` for every ``i``
    in ``indices`` and check every result (see :class:`FuzzReport`)."""
    from crystens_core.results import DecodeResult

    report = FuzzReport()
    for index in indices:
        kind, tensor = adversarial_tensor(index, seed, real)
        label, decoder = variants[index % len(variants)]
        report.count += 1
        report.kinds[kind] += 1
        start = time.perf_counter()
        try:
            result = decoder.decode(tensor)
        except BaseException as exc:  # noqa: BLE001 — counting escapes is the point
            if isinstance(exc, KeyboardInterrupt):
                raise
            report.seconds.append(time.perf_counter() - start)
            report.exceptions.append((index, label, f"{type(exc).__name__}: {exc}"[:300]))
            if progress is not None:
                progress(1)
            continue
        elapsed = time.perf_counter() - start
        report.seconds.append(elapsed)
        if len(report.slowest) < SLOWEST or elapsed > report.slowest[-1][0]:
            report.slowest = sorted([*report.slowest, (elapsed, index, label, kind)], reverse=True)[:SLOWEST]
        if progress is not None:
            progress(1)
        if not isinstance(result, DecodeResult):
            report.exceptions.append((index, label, f"decode returned {type(result).__name__}"))
            continue
        try:
            json.dumps(result.summary(), allow_nan=False)
        except ValueError:
            report.nonfinite_summaries += 1
        except TypeError as exc:  # not JSON at all
            report.exceptions.append((index, label, f"summary() is not JSON: {exc}"[:300]))
        if result.ok:
            report.ok += 1
            problem = cif_round_trip_problem(result.structure)
            if problem:
                report.bad_ok.append((index, label, problem))
        else:
            if not isinstance(result.reason, str) or not result.reason or result.reason.startswith("unexpected"):
                report.bad_failures.append((index, label, str(result.reason)[:300]))
            report.reasons[_reason_key(str(result.reason))] += 1
    return report


__all__ = ["KINDS", "COMMON_VARIANTS", "FuzzReport", "adversarial_tensor", "cif_round_trip_problem", "decoder_variants", "fuzz", "real_tensors"]
