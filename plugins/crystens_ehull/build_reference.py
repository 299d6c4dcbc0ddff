"""Build the data the ``ehull`` metric ships: the hull and the fitted chemical potentials.

    python -m crystens_ehull.build_reference hull --data-dir ../shared/data
    python -m crystens_ehull.build_reference fit --model chgnet --data-dir ../shared/data --cache out/chgnet.csv
    python -m crystens_ehull.build_reference fit --model m3gnet --model-path ../shared/weights/matgl/M3GNet-MP-2021.2.8-PES ...

``hull`` writes ``data/mp_formation_energies.csv.gz``: every Materials Project
structure of the MP-20 files and the MPTS-52 test split (deduplicated by
``material_id``) with its reduced formula and DFT formation energy (eV/atom).

``fit`` computes the model's total energy of the MP-20 structures that are not in
MPTS-52 (so that ``benchmarks/check_ehull.py`` on MPTS-52 stays held out), fits one
chemical potential per element on a deterministic 80 % of them
(:func:`crystens_ehull.references.fit_chemical_potentials`) and reports the
formation-energy MAE on the other 20 %. It writes ``data/references-<model>.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from crystens_ehull.hull import HULL_FILE, shipped_data_path

MP20_FILES = ("mp_20/pilot_train.csv.gz", "mp_20/pilot_val.csv.gz", "mp_20/pilot_test.csv.gz", "mp_20/biternary_val.csv.gz", "mp_20/biternary_test.csv.gz")
MPTS52_FILE = "mpts_52/test.csv.gz"
NOTICE = (
    "# Materials Project formation energies (eV/atom, DFT) as distributed in the MP-20 and MPTS-52 benchmark files.",
    "# Data: Materials Project, CC-BY 4.0 - Jain et al., APL Materials 1, 011002 (2013); distributed by CDVAE (MIT) and DiffCSP (MIT).",
    "# Built by: python -m crystens_ehull.build_reference hull",
)


def load_rows(data_dir: Path, files: tuple[str, ...], *, progress: bool = True) -> list[dict]:
    """Rows of the given files, first occurrence of each material_id: id, structure, energies, source."""
    from crystens_core.data import load_dataset

    rows: dict[str, dict] = {}
    for name in files:
        data = load_dataset(data_dir / name, progress=progress)
        formation = np.asarray(data.properties["formation_energy_per_atom"], dtype=float)
        column = "e_above_hull" if "e_above_hull" in data.properties else "energy_above_hull"
        e_hull = np.asarray(data.properties[column], dtype=float)
        for material_id, structure, ef, eh in zip(data.ids, data.structures, formation, e_hull):
            if material_id not in rows and np.isfinite(ef):
                rows[material_id] = {"material_id": material_id, "structure": structure, "formation_energy_per_atom": float(ef), "e_above_hull": float(eh), "source": name}
        if data.skipped.total:
            print(f"{name}: {data.skipped}", file=sys.stderr)
    return list(rows.values())


def write_hull(rows: list[dict], path: Path) -> None:
    """The gzipped hull CSV (material_id, reduced formula, formation energy per atom)."""
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("\n".join(NOTICE) + "\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["material_id", "formula", "formation_energy_per_atom"])
        for row in sorted(rows, key=lambda r: r["material_id"]):
            writer.writerow([row["material_id"], row["structure"].composition.reduced_formula, f"{row['formation_energy_per_atom']:.5f}"])


def is_held_out(material_id: str, fraction: float) -> bool:
    """Deterministic split: a material is held out when its id hashes below ``fraction``."""
    digest = hashlib.sha256(material_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def model_energies(model, rows: list[dict], cache: Path | None, *, progress: bool = True, chunk: int = 256) -> np.ndarray:
    """Model total energies (eV/atom) of ``rows``, read from and added to a CSV cache."""
    from crystens_core.progress import progress_bar

    known: dict[str, float] = {}
    if cache is not None and cache.is_file():
        with cache.open(encoding="utf-8") as handle:
            known = {r["material_id"]: float(r["energy_per_atom"]) for r in csv.DictReader(handle)}
    todo = [i for i, row in enumerate(rows) if row["material_id"] not in known]
    todo.sort(key=lambda i: len(rows[i]["structure"]))  # batches of structures of similar size
    bar = progress_bar(total=len(todo), desc=f"{model.key} energies", unit="structure", enable=progress)
    for start in range(0, len(todo), chunk):  # the cache grows chunk by chunk: an interrupted run loses little
        part = todo[start : start + chunk]
        energies, reasons = model.total_energies([rows[i]["structure"] for i in part], bar=bar)
        added = {rows[i]["material_id"]: (float(e) if r is None else float("nan")) for i, e, r in zip(part, energies, reasons)}
        known.update(added)
        if cache is not None:
            new_file = not cache.is_file()
            cache.parent.mkdir(parents=True, exist_ok=True)
            with cache.open("a", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                if new_file:
                    writer.writerow(["material_id", "energy_per_atom"])
                writer.writerows(added.items())
    bar.close()
    return np.array([known[row["material_id"]] for row in rows])


def fit(args: argparse.Namespace) -> dict:
    from crystens_ehull.models import CHGNetModel, MatglPotentialModel, load_matgl
    from crystens_ehull.references import ChemicalPotentials, fit_chemical_potentials

    if args.model == "chgnet":
        model = CHGNetModel(device=args.device, batch_size=args.batch_size)
    else:
        from crystens_ehull.models import _check_matgl_folder

        folder = _check_matgl_folder(args.model_path)
        model = MatglPotentialModel(folder, device=args.device, batch_size=args.batch_size, model=load_matgl(str(folder.resolve())))
    excluded = {row["material_id"] for row in load_rows(args.data_dir, (MPTS52_FILE,), progress=False)} if not args.include_mpts52 else set()
    rows = [r for r in load_rows(args.data_dir, MP20_FILES) if r["material_id"] not in excluded]
    if args.limit and args.limit < len(rows):
        rows = [rows[i] for i in sorted(np.random.default_rng(0).choice(len(rows), args.limit, replace=False))]
    energies = model_energies(model, rows, args.cache)
    ok = np.isfinite(energies)
    held = np.array([is_held_out(r["material_id"], args.holdout) for r in rows])
    train = ok & ~held
    compositions = [r["structure"].composition for r in rows]
    dft = np.array([r["formation_energy_per_atom"] for r in rows])
    potentials = fit_chemical_potentials([compositions[i] for i in np.flatnonzero(train)], energies[train], dft[train], loss=args.loss)
    fitted = ChemicalPotentials(model.key, potentials)

    def errors(mask: np.ndarray) -> np.ndarray:
        out = []
        for i in np.flatnonzero(mask):
            try:
                out.append(fitted.formation_energy(compositions[i], energies[i]) - dft[i])
            except KeyError:
                pass
        return np.abs(np.array(out))

    test_errors, train_errors = errors(ok & held), errors(train)
    counts: dict[str, int] = {}
    for i in np.flatnonzero(train):
        for el in compositions[i].get_el_amt_dict():
            counts[el] = counts.get(el, 0) + 1
    fitted.metadata = {
        "description": "Elemental chemical potentials mu (eV/atom) so that E_model/N - sum_el x_el mu_el matches the DFT formation energy per atom",
        "data": f"MP-20 CSVs ({', '.join(MP20_FILES)}), deduplicated" + ("" if args.include_mpts52 else ", without the MPTS-52 test materials"),
        "loss": args.loss,
        "structures_fitted": int(train.sum()),
        "structures_held_out": int(len(test_errors)),
        "structures_failed": int((~ok).sum()),
        "mae_fit_eV_per_atom": round(float(train_errors.mean()), 4),
        "mae_held_out_eV_per_atom": round(float(test_errors.mean()), 4),
        "median_abs_error_held_out_eV_per_atom": round(float(np.median(test_errors)), 4),
        "structures_per_element": dict(sorted(counts.items())),
        "command": "python -m crystens_ehull.build_reference " + " ".join(sys.argv[1:]),
    }
    out = args.out or shipped_data_path(f"references-{model.key}.json")
    fitted.to_json(out)
    summary = {k: v for k, v in fitted.metadata.items() if k != "structures_per_element"}
    print(json.dumps({"written": str(out), **summary}, indent=1))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crystens_ehull.build_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data", help="folder with mp_20/ and mpts_52/ (default ../shared/data)")
    commands = parser.add_subparsers(dest="command", required=True)
    hull = commands.add_parser("hull", help="write data/mp_formation_energies.csv.gz")
    hull.add_argument("--out", type=Path, default=None)
    fitter = commands.add_parser("fit", help="fit chemical potentials for an energy model")
    fitter.add_argument("--model", choices=("chgnet", "m3gnet"), default="chgnet")
    fitter.add_argument("--model-path", help="matgl model folder (m3gnet)")
    fitter.add_argument("--device", default="cpu")
    fitter.add_argument("--batch-size", type=int, default=16)
    fitter.add_argument("--holdout", type=float, default=0.2, help="fraction held out for the MAE")
    fitter.add_argument("--limit", type=int, default=0, help="use a random subset of this many structures (0: all)")
    fitter.add_argument("--loss", default="huber", help="scipy least_squares loss (linear, huber, soft_l1)")
    fitter.add_argument("--include-mpts52", action="store_true", help="do not leave out the MPTS-52 test materials")
    fitter.add_argument("--cache", type=Path, default=None, help="CSV of model energies, read and extended")
    fitter.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "hull":
        rows = load_rows(args.data_dir, MP20_FILES + (MPTS52_FILE,))
        out = args.out or shipped_data_path(HULL_FILE)
        write_hull(rows, out)
        print(f"{out}: {len(rows)} materials, {len({el for r in rows for el in r['structure'].composition.get_el_amt_dict()})} elements")
    else:
        fit(args)


if __name__ == "__main__":
    main()
