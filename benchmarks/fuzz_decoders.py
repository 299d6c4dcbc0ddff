"""Fuzz every registered decoder with adversarial tensors (issue 9 §5).

Input ``i`` (random noise, NaN/inf, huge values, wrong shapes and dtypes, perturbed
real tensors of the shipped samples; see :mod:`crystens_core.fuzzing`) goes through
decoder variant ``i mod V``: every decoder under every common setting
(``snap_to_spacegroup``, ``distance``, ``merge_tolerance``) and the extremes of its
own settings. Reports exceptions that escaped ``decode``, ok results that do not
read back as CIF, failures without a clear reason, bytes written to stderr (fd 2,
e.g. by spglib) and p50/p99/max decode time per input.

    python benchmarks/fuzz_decoders.py --count 100000 --seed 0 --workers 1 --json fuzz.json
    python benchmarks/fuzz_decoders.py --real-data ../shared/data --decoders auto

Exit status 1 when any exception, bad ok result or unclear failure was found (with
``--real-data``: when an ok result does not read back as CIF).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

from crystens_core.fuzzing import FuzzReport, decoder_variants, fuzz, real_tensors

CHUNK = 500  # inputs per task when --workers > 1


def _warmed_variants(names: list[str] | None, real) -> list:
    """The decoder variants, each run once on a real tensor so imports (scikit-learn,
    spglib) are not counted as the first input's decode time."""
    variants = decoder_variants(names)
    for _, decoder in variants:
        decoder.decode(real[0])
    return variants


def _run_chunk(args: tuple[int, int, int, list[str] | None]) -> FuzzReport:
    start, stop, seed, names = args
    return fuzz(range(start, stop), seed, real_tensors(), _warmed_variants(names, real_tensors()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="adversarial inputs (default 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--start", type=int, default=0, help="first input index (to replay a finding)")
    parser.add_argument("--decoders", nargs="*", help="decoder names (default: every registered decoder)")
    parser.add_argument("--json", help="write the figures and findings to this file")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--real-data", metavar="DIR", help="instead: decode every real structure of every CSV under DIR (the bounds must fail none)")
    args = parser.parse_args(argv)
    if args.real_data:
        return real_data_check(args.real_data, args.decoders, args.json)

    from tqdm.auto import tqdm

    console = os.fdopen(os.dup(2), "w", buffering=1)  # the bar keeps the real stderr
    real = real_tensors()
    variants = _warmed_variants(args.decoders, real)
    print(f"{len(real)} real tensors, {len(variants)} decoder variants: " + "; ".join(label for label, _ in variants), file=console)
    bar = tqdm(total=args.count, unit="tensor", file=console, disable=args.no_progress, dynamic_ncols=True, smoothing=0.05)
    captured = tempfile.TemporaryFile()
    os.dup2(captured.fileno(), 2)  # anything a C extension prints lands here and is counted
    began = time.perf_counter()
    report = FuzzReport()
    indices = range(args.start, args.start + args.count)
    try:
        if args.workers <= 1:
            report = fuzz(indices, args.seed, real, variants, progress=bar.update)
        else:
            chunks = [(s, min(s + CHUNK, indices.stop), args.seed, args.decoders) for s in range(indices.start, indices.stop, CHUNK)]
            with ProcessPoolExecutor(args.workers) as pool:
                for part in pool.map(_run_chunk, chunks):
                    report.merge(part)
                    bar.update(part.count)
    finally:
        sys.stderr.flush()
        os.dup2(console.fileno(), 2)
        bar.close()
    wall = time.perf_counter() - began
    stderr_bytes = captured.seek(0, 2)
    captured.seek(0)
    stderr_head = captured.read(2000).decode("utf-8", "replace")

    times = report.percentiles_ms()
    figures = {
        "count": report.count,
        "seed": args.seed,
        "start": args.start,
        "workers": args.workers,
        "variants": [label for label, _ in variants],
        "ok": report.ok,
        "failed": report.count - report.ok - len(report.exceptions),
        "exceptions": len(report.exceptions),
        "ok_not_reading_back": len(report.bad_ok),
        "unclear_failures": len(report.bad_failures),
        "nonfinite_summaries": report.nonfinite_summaries,
        "stderr_bytes": stderr_bytes,
        "time_ms": times,
        "wall_s": wall,
        "kinds": dict(report.kinds),
        "top_reasons": dict(report.reasons.most_common(40)),
        "slowest_ms": [(round(seconds * 1e3, 1), index, label, kind) for seconds, index, label, kind in report.slowest],
        "findings": {"exceptions": report.exceptions[:50], "ok_not_reading_back": report.bad_ok[:50], "unclear_failures": report.bad_failures[:50], "stderr_head": stderr_head},
    }
    print(json.dumps({key: value for key, value in figures.items() if key not in {"findings", "top_reasons", "variants", "slowest_ms"}}, indent=1))
    print("slowest (ms, index, variant, kind):", figures["slowest_ms"][:5])
    for name, items in figures["findings"].items():
        if items:
            print(f"{name}: {items if isinstance(items, str) else items[:10]}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1, default=str)
    found = report.exceptions or report.bad_ok or report.bad_failures
    return 1 if found else 0


def real_data_check(folder: str, names: list[str] | None, json_path: str | None) -> int:
    """Encode every structure of every ``*.csv[.gz]`` under ``folder`` and decode it with each
    decoder (every 10th also with ``snap_to_spacegroup``); count failures and CIF problems."""
    import glob
    import warnings

    import numpy as np

    from crystens_core.data import load_dataset
    from crystens_core.fuzzing import cif_round_trip_problem
    from crystens_core.plugins import get_decoder, get_encoder, list_components

    warnings.simplefilter("ignore")
    encoder = get_encoder("crystens")
    figures, found = {}, 0
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.csv*"), recursive=True)):
        data = load_dataset(path, max_sites=encoder.max_sites)
        tensors = encoder.encode_batch(data.structures, data.spacegroups)
        for name in names or list_components("decoder"):
            for snap, step in ((False, 1), (True, 10)):
                decoder = get_decoder(name, snap_to_spacegroup=snap)
                reasons, seconds, cif_problems = {}, [], 0
                for index in range(0, len(tensors), step):
                    start = time.perf_counter()
                    result = decoder.decode(tensors[index])
                    seconds.append(time.perf_counter() - start)
                    if not result.ok:
                        reasons[result.reason] = reasons.get(result.reason, 0) + 1
                    elif index % 10 == 0 and cif_round_trip_problem(result.structure):
                        cif_problems += 1
                times = np.asarray(seconds) * 1e3
                key = f"{os.path.relpath(path, folder)} {name}{' snap' if snap else ''}"
                figures[key] = {"decoded": len(seconds), "failed": sum(reasons.values()), "cif_problems": cif_problems, "p50_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99)), "max_ms": float(times.max()), "reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])[:5])}
                found += cif_problems
                print(key, json.dumps(figures[key]), flush=True)
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(figures, handle, indent=1)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
