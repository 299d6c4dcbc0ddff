"""Speed of the metrics that run on structures: seconds per 1000 generated structures.

Real structures stand in for a generator's output: by default the 1000 rows of
the MP-20 test sample (``<data-dir>/mp_20/pilot_test.csv.gz``; ``mpts52-sample``
when the shared data are absent) are the "generated" set, optionally passed
through the CrysTens encoder and the ``auto`` decoder first (``--decode``), and
the 1000 MP-20 training structures shipped as ``mp20-sample`` are the reference.

For every metric, in one process:

1. the reference alone is processed first (``compute`` on one reference
   structure) and timed: that is the one-off cost a per-process cache saves on
   later calls;
2. ``compute`` on the generated set is timed: the seconds per 1000 generated
   structures reported;
3. for ``uniqueness`` and ``novelty``, a plain all-pairs loop over pymatgen's
   ``StructureMatcher.fit`` (same tolerances, with pymatgen's own reduction
   cache) runs on the first ``--baseline-n`` generated structures (against the
   whole reference for novelty), then the metric on the same subset with its
   caches cleared: times, speed-up and whether every decision agrees.

Usage::

    python benchmarks/bench_metrics.py                       # every metric that runs on structures
    python benchmarks/bench_metrics.py ks validity uniqueness novelty --baseline-n 200
    python benchmarks/bench_metrics.py coverage --n-generated 200 --n-reference 200 \\
        --option coverage:symmetry_reduce=true --json out/coverage.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STRUCTURE_INPUTS = {"structures", "reference"}


def show(text: str = "") -> None:
    print(text, flush=True)


def load_average() -> str:
    try:
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def parse_options(items: list[str]) -> dict[str, dict]:
    """``METRIC:KEY=VALUE`` (VALUE as JSON when it parses, else a string) → {metric: {key: value}}."""
    options: dict[str, dict] = {}
    for item in items:
        try:
            metric, rest = item.split(":", 1)
            key, value = rest.split("=", 1)
        except ValueError:
            raise SystemExit(f"--option {item!r}: expected METRIC:KEY=VALUE") from None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options.setdefault(metric, {})[key] = parsed
    return options


def structure_metrics() -> tuple[list[str], dict[str, str]]:
    """Registered metrics whose inputs are structures only, and why the others were left out."""
    from crystens_core import get_metric, list_components

    usable, skipped = [], {}
    for name in list_components("metric"):
        try:
            requires = set(get_metric(name).requires)
        except Exception as exc:
            skipped[name] = f"cannot be created: {exc}"
            continue
        if "structures" in requires and requires <= STRUCTURE_INPUTS:
            usable.append(name)
        else:
            skipped[name] = f"needs {sorted(requires - STRUCTURE_INPUTS) or sorted(requires)}"
    return usable, skipped


def make_metric(name: str, options: dict):
    """The metric with its progress bars off when it has that option."""
    from crystens_core import get_metric

    try:
        return get_metric(name, **{"progress": False, **options})
    except TypeError:
        return get_metric(name, **options)


def load_structures(source: str, n: int) -> list:
    from crystens_core.data import load_dataset
    from crystens_core.data.dataset import parse_cif, read_csv_rows

    path = Path(source)
    if path.suffix in (".gz", ".csv") and path.exists():  # parse only the rows needed
        _, rows = read_csv_rows(path)
        return [parse_cif(row["cif"]) for row in rows[:n]]
    return load_dataset(source).structures[:n]


def decode_round_trip(structures: list) -> list:
    """Structures → CrysTens tensors → ``auto`` decoder (None where decoding fails)."""
    from crystens_core import get_decoder, get_encoder

    tensors = get_encoder("crystens").encode_batch(structures)
    return [result.structure for result in get_decoder("auto").decode_batch(tensors)]


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def matcher_baseline(name: str, metric, generated: list, reference: list, n: int) -> dict:
    """All-pairs StructureMatcher vs the grouped metric on the first ``n`` generated structures."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from crystens_novelty import matching

    subset = [s for s in generated[:n]]
    matcher = StructureMatcher(ltol=metric.ltol, stol=metric.stol, angle_tol=metric.angle_tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        if name == "uniqueness":
            plain = [np.nan if s is None else float(not any(matcher.fit(s, subset[j]) for j in range(i) if subset[j] is not None)) for i, s in enumerate(subset)]
        else:
            plain = [np.nan if s is None else float(not any(matcher.fit(s, r) for r in reference)) for s in subset]
        plain_s = time.perf_counter() - start
    matching.clear_cache()
    grouped_s, (_, details) = timed(metric.compute_details, structures=subset, reference=reference) if name == "novelty" else timed(metric.compute_details, structures=subset)
    flags = details["generated"]["is_novel" if name == "novelty" else "is_unique"]
    agree = int(np.sum((np.asarray(plain) == flags) | (np.isnan(plain) & np.isnan(flags))))
    return {"n": len(subset), "n_reference": len(reference) if name == "novelty" else None, "all_pairs_s": plain_s, "grouped_s": grouped_s, "speedup": plain_s / grouped_s, "agree": agree}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="*", help="metric names (default: every registered metric that runs on structures)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--generated", help="dataset name or CSV with a cif column (default: <data-dir>/mp_20/pilot_test.csv.gz)")
    parser.add_argument("--reference", default="mp20-sample")
    parser.add_argument("--n-generated", type=int, default=1000)
    parser.add_argument("--n-reference", type=int, default=1000)
    parser.add_argument("--decode", action="store_true", help="pass the generated structures through encoder + auto decoder first")
    parser.add_argument("--baseline-n", type=int, default=200, help="generated structures for the all-pairs StructureMatcher baseline (0: skip)")
    parser.add_argument("--option", action="append", default=[], help="METRIC:KEY=VALUE metric option (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = parser.parse_args()

    options = parse_options(args.option)
    if args.metrics:
        names, skipped = args.metrics, {}
    else:
        names, skipped = structure_metrics()
    default_generated = args.data_dir / "mp_20" / "pilot_test.csv.gz"
    generated_source = args.generated or (str(default_generated) if default_generated.exists() else "mpts52-sample")

    show(f"crystens metric benchmark — {time.strftime('%Y-%m-%d %H:%M')} — Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs — {load_average()}")
    show(f"command: {' '.join(sys.argv)}")
    load_s, generated = timed(load_structures, generated_source, args.n_generated)
    reference = load_structures(args.reference, args.n_reference)
    if args.decode:
        decode_s, generated = timed(decode_round_trip, generated)
        show(f"decoded through encoder + auto decoder in {decode_s:.1f} s: {sum(s is None for s in generated)} of {len(generated)} failed")
    show(f"generated: {generated_source} ({len(generated)} structures, {sum(len(s) for s in generated if s is not None)} sites); reference: {args.reference} ({len(reference)})")
    for name, why in skipped.items():
        show(f"skipped {name}: {why}")

    results: dict[str, dict] = {}
    rows = []
    for name in names:
        metric = make_metric(name, options.get(name, {}))
        needs_reference = "reference" in metric.requires
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference_s = timed(metric.compute, structures=reference[:1], reference=reference)[0] if needs_reference else 0.0
            seconds, figures = timed(metric.compute, structures=generated, reference=reference) if needs_reference else timed(metric.compute, structures=generated)
        per_1000 = seconds / len(generated) * 1000
        results[name] = {"config": metric.get_config(), "reference_s": reference_s, "generated_s": seconds, "s_per_1000": per_1000, "figures": figures}
        headline = ", ".join(f"{k}={v:.4g}" for k, v in list(figures.items())[:4])
        rows.append([name, f"{reference_s:.1f}", f"{seconds:.1f}", f"{per_1000:.1f}", headline])
        show(f"  {name}: {per_1000:.1f} s per 1000 generated ({headline})")
        if name in ("uniqueness", "novelty") and args.baseline_n > 0:
            baseline = matcher_baseline(name, metric, generated, reference, args.baseline_n)
            results[name]["baseline"] = baseline
            show(f"    all-pairs StructureMatcher on {baseline['n']} generated: {baseline['all_pairs_s']:.1f} s; grouped {baseline['grouped_s']:.1f} s; speed-up {baseline['speedup']:.1f}×; {baseline['agree']}/{baseline['n']} decisions agree")

    show()
    show(table(["metric", "reference s (once)", "generated s", "s / 1000 generated", "figures"], rows))
    show(load_average())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": sys.argv, "generated": generated_source, "n_generated": len(generated), "reference": args.reference, "n_reference": len(reference), "decode": args.decode, "results": results}
        args.json.write_text(json.dumps(payload, indent=1, default=float) + "\n")
        show(f"wrote {args.json}")


if __name__ == "__main__":
    main()
