"""Check the ``ehull`` metric against Materials Project on MPTS-52 test materials.

For a random sample of the MPTS-52 test split (materials left out of the
chemical-potential fits) every energy model predicts the formation energy; the
energy above the shipped hull is compared with the CSV's DFT ``energy_above_hull``:
mean absolute error, agreement on "stable" (≤ 0.1 eV/atom), formation-energy MAE,
and seconds per 1000 structures (model and hull separately). The row ``dft`` uses
the CSV's own formation energies: the error of the hull alone.

    python benchmarks/check_ehull.py --data-dir ../shared/data -n 2000 --out docs/ehull-check.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load_sample(data_dir: Path, n: int, seed: int) -> tuple[list, np.ndarray, np.ndarray, list[str]]:
    """``n`` random MPTS-52 test structures, their DFT formation energies and energies above hull (eV/atom)."""
    from crystens_core.data.dataset import parse_row, read_source

    _, _, rows = read_source(data_dir / "mpts_52" / "test.csv.gz")
    picks = np.random.default_rng(seed).permutation(len(rows))[:n]
    structures, formation, e_hull, ids = [], [], [], []
    for i in picks:
        structure, problem = parse_row(rows[i]["cif"])
        if problem is None:
            structures.append(structure)
            formation.append(float(rows[i]["formation_energy_per_atom"]))
            e_hull.append(float(rows[i]["energy_above_hull"]))
            ids.append(rows[i]["material_id"])
    return structures, np.array(formation), np.array(e_hull), ids


def figures(predicted_hull: np.ndarray, predicted_formation: np.ndarray, true_hull: np.ndarray, true_formation: np.ndarray, threshold: float = 0.1) -> dict:
    ok = np.isfinite(predicted_hull)
    error = predicted_hull[ok] - true_hull[ok]
    stable_pred, stable_true = predicted_hull[ok] <= threshold, true_hull[ok] <= threshold
    return {
        "n_scored": int(ok.sum()),
        "n_failed": int((~ok).sum()),
        "e_hull_mae": float(np.abs(error).mean()),
        "e_hull_median_abs_error": float(np.median(np.abs(error))),
        "e_hull_mean_error": float(error.mean()),
        "formation_mae": float(np.abs(predicted_formation[ok] - true_formation[ok]).mean()),
        "stable_agreement": float((stable_pred == stable_true).mean()),
        "stable_recall": float((stable_pred & stable_true).sum() / max(stable_true.sum(), 1)),
        "stable_precision": float((stable_pred & stable_true).sum() / max(stable_pred.sum(), 1)),
        "true_stable_share": float(stable_true.mean()),
    }


def check_relaxation(structures: list, true_hull: np.ndarray) -> dict:
    """CHGNet e_hull of rattled structures before and after ``relax=True``, and seconds per structure."""
    from crystens_ehull.metric import EHullMetric

    np.random.seed(0)  # pymatgen's perturb draws from numpy's global generator
    rattled = []
    for structure in structures:
        copy = structure.copy()
        copy.perturb(0.2, min_distance=0.1)  # random displacements of 0.1-0.2 Å
        rattled.append(copy)
    plain = EHullMetric(progress=False).compute_details(structures=rattled)[1]["generated"]["e_above_hull"]
    metric = EHullMetric(relax=True, progress=False)
    t0 = time.perf_counter()
    relaxed = metric.compute_details(structures=rattled)[1]["generated"]["e_above_hull"]
    seconds = time.perf_counter() - t0
    ok = np.isfinite(relaxed) & np.isfinite(plain)
    return {
        "n": len(structures),
        "n_failed": int((~ok).sum()),
        "rattled_e_hull_mae": float(np.abs(plain[ok] - true_hull[ok]).mean()),
        "relaxed_e_hull_mae": float(np.abs(relaxed[ok] - true_hull[ok]).mean()),
        "s_per_structure": seconds / len(structures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--weights-dir", type=Path, default=REPO.parent / "shared" / "weights" / "matgl")
    parser.add_argument("-n", type=int, default=2000, help="MPTS-52 test structures (random, seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="dft,chgnet,m3gnet,cgcnn", help="comma-separated: dft, chgnet, m3gnet, megnet-eform, cgcnn")
    parser.add_argument("--relax-n", type=int, default=0, help="also relax this many structures, rattled by 0.1-0.2 Å, with CHGNet (relax=True)")
    parser.add_argument("--out", type=Path, default=None, help="JSON with every figure")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from crystens_ehull.hull import ConvexHull
    from crystens_ehull.metric import EHullMetric

    started = time.perf_counter()
    structures, true_formation, true_hull, _ = load_sample(args.data_dir, args.n, args.seed)
    print(f"{len(structures)} MPTS-52 test structures, {np.mean([len(s) for s in structures]):.1f} atoms on average, parsed in {time.perf_counter() - started:.0f} s", flush=True)
    hull = ConvexHull.shipped()
    results: dict[str, dict] = {}
    settings = {
        "chgnet": {"model": "chgnet"},
        "m3gnet": {"model": "m3gnet", "model_path": str(args.weights_dir / "M3GNet-MP-2021.2.8-PES")},
        "megnet-eform": {"model": "m3gnet", "model_path": str(args.weights_dir / "MEGNet-MP-2018.6.1-Eform")},
        "cgcnn": {"model": "cgcnn"},
    }
    for name in args.models.split(","):
        hull._diagrams.clear()  # time the hull from cold for every model
        if name == "dft":
            t0 = time.perf_counter()
            e_hull, _ = hull.e_above_hull_many([s.composition for s in structures], true_formation)
            results[name] = {**figures(e_hull, true_formation, true_hull, true_formation), "s_per_1000_hull": 1000 * (time.perf_counter() - t0) / len(structures)}
        else:
            try:
                metric = EHullMetric(progress=False, **settings[name])
                t0 = time.perf_counter()
                formation, reasons = metric.energy_model().formation_energies(structures)
                t1 = time.perf_counter()
                e_hull, _ = hull.e_above_hull_many([s.composition for s in structures], formation)
                t2 = time.perf_counter()
            except Exception as exc:  # a model that is not available here: say so and go on
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"{name}: {results[name]['error']}", flush=True)
                continue
            results[name] = {
                **figures(e_hull, formation, true_hull, true_formation),
                "s_per_1000_model": 1000 * (t1 - t0) / len(structures),
                "s_per_1000_hull": 1000 * (t2 - t1) / len(structures),
                "failure_reasons": sorted({r.split(':')[0] for r in reasons if r}),
            }
        print(name, json.dumps(results[name]), flush=True)
    if args.relax_n:
        results["chgnet-relax"] = check_relaxation(structures[: args.relax_n], true_hull[: args.relax_n])
        print("chgnet-relax", json.dumps(results["chgnet-relax"]), flush=True)
    record = {"n": len(structures), "seed": args.seed, "mean_atoms": float(np.mean([len(s) for s in structures])), "cpu_count": os.cpu_count(), "results": results}
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    print("\n| model | scored | e_hull MAE | median abs error | stable agreement | recall | precision | E_f MAE | s / 1000 (model + hull) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        if name == "chgnet-relax":
            continue
        if "error" in r:
            print(f"| {name} | {r['error']} |||||||")
            continue
        seconds = f"{r.get('s_per_1000_model', 0):.0f} + {r['s_per_1000_hull']:.0f}"
        print(f"| {name} | {r['n_scored']} | {r['e_hull_mae']:.3f} | {r['e_hull_median_abs_error']:.3f} | {r['stable_agreement']:.3f} | {r['stable_recall']:.3f} | {r['stable_precision']:.3f} | {r['formation_mae']:.3f} | {seconds} |")


if __name__ == "__main__":
    main()
