"""Accuracy and speed of the CGCNN plugin on real MP-20 structures.

1. Formation energy (eV/atom): MAE and Pearson r of ``crystens_cgcnn.predict``
   against the Materials Project values in the CSV (target MAE ≤ 0.08; the original
   CGCNN code gave 0.069, r 0.993); band gap MAE (eV; original 0.56), on all rows and
   on the rows with a gap > 0 (the band-gap model was trained on non-metals only).
2. Agreement with the original CGCNN code (the transcription in
   ``tests/plugins/test_cgcnn.py`` run on the ``.pth.tar`` pickles), all seven
   properties, when ``--original`` exists.
3. Time per 1000 structures: graph building alone, formation energy alone, all
   seven properties; with one torch thread (the default) and with torch's own
   thread count.

Usage::

    python benchmarks/check_cgcnn.py [--data-dir ../shared/data] [--split pilot_test] [--no-speed] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _load_original_reference():
    """The transcription of the original CGCNN (model.py + data.py) kept in the test file."""
    spec = importlib.util.spec_from_file_location("cgcnn_reference", REPO / "tests" / "plugins" / "test_cgcnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(function, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--split", default="pilot_test", help="mp_20 file stem: pilot_train, pilot_val or pilot_test (1000 rows each)")
    parser.add_argument("--original", type=Path, default=REPO.parent / "shared" / "weights" / "cgcnn", help="folder of the original *.pth.tar files")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--no-speed", action="store_true", help="accuracy only")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args(argv)

    import torch

    import crystens_cgcnn
    from crystens_cgcnn.graph import build_graph
    from crystens_cgcnn.model import atom_features
    from crystens_core.data import load_dataset

    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load {os.getloadavg()}")
    data = load_dataset(options.data_dir / "mp_20" / f"{options.split}.csv.gz")
    data = data.subset(range(min(options.limit, len(data))))
    structures, n = data.structures, len(data)
    print(f"{n} structures from mp_20/{options.split}")
    results: dict = {"split": options.split, "n": n}

    # 1. accuracy
    predicted = crystens_cgcnn.predict(structures)
    results["n_failed"] = predicted.n_failed
    formation, gap = data.properties["formation_energy_per_atom"], data.properties["band_gap"]
    ok = np.isfinite(predicted["formation_energy"])
    results["formation_energy_mae"] = float(np.mean(np.abs(predicted["formation_energy"][ok] - formation[ok])))
    results["formation_energy_r"] = float(np.corrcoef(predicted["formation_energy"][ok], formation[ok])[0, 1])
    results["band_gap_mae"] = float(np.mean(np.abs(predicted["band_gap"][ok] - gap[ok])))
    gapped = ok & (gap > 0)
    results["band_gap_mae_nonmetals"] = float(np.mean(np.abs(predicted["band_gap"][gapped] - gap[gapped])))
    results["n_nonmetals"] = int(gapped.sum())
    results["means"] = {name: float(np.nanmean(values)) for name, values in predicted.items()}
    print(f"formation energy: MAE {results['formation_energy_mae']:.4f} eV/atom, r {results['formation_energy_r']:.4f} "
          f"({'PASS' if results['formation_energy_mae'] <= 0.08 else 'FAIL'} target ≤ 0.08); failed {predicted.n_failed}")
    print(f"band gap: MAE {results['band_gap_mae']:.3f} eV (all), {results['band_gap_mae_nonmetals']:.3f} eV ({gapped.sum()} with gap > 0)")

    # 2. agreement with the original code
    if (options.original / "formation-energy-per-atom.pth.tar").is_file():
        reference = _load_original_reference()
        inputs = reference._original_inputs(structures, options.original / "atom_init.json")
        differences = {}
        for name, spec in crystens_cgcnn.PROPERTIES.items():
            original = reference._original_predictions(options.original / f"{spec.source}.pth.tar", inputs)
            differences[name] = float(np.max(np.abs(original - predicted[name])))
        results["max_abs_difference_to_original"] = differences
        print("max |crystens − original| per property:", {k: f"{v:.1e}" for k, v in differences.items()})
    else:
        print(f"{options.original}: no original checkpoints, agreement not checked")

    # 3. speed
    if options.no_speed:
        if options.json:
            options.json.write_text(json.dumps(results, indent=1) + "\n")
        return 0 if results["formation_energy_mae"] <= 0.08 else 1
    known = ~np.isnan(atom_features()).any(axis=1)
    per_1000 = 1000.0 / n
    timings = {"graphs": _timed(lambda: [build_graph(s, known) for s in structures]) * per_1000}
    for label, threads in (("1 thread", 1), (f"torch default ({torch.get_num_threads()} threads)", None)):
        timings[f"formation_energy, {label}"] = _timed(lambda: crystens_cgcnn.predict(structures, ["formation_energy"], num_threads=threads)) * per_1000
        timings[f"all 7 properties, {label}"] = _timed(lambda: crystens_cgcnn.predict(structures, num_threads=threads)) * per_1000
    results["seconds_per_1000"] = timings
    for label, seconds in timings.items():
        print(f"{label:>45}: {seconds:6.2f} s per 1000 structures")
    results["load_after"] = os.getloadavg()
    print(f"load average at the end {results['load_after']}")
    if options.json:
        options.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if results["formation_energy_mae"] <= 0.08 else 1


if __name__ == "__main__":
    sys.exit(main())
