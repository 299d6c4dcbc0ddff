"""Build the composition-fingerprint scaler shipped with the coverage metric.

CDVAE standardises the magpie composition fingerprint with fixed per-feature
means and standard deviations of MP-20 compositions before taking distances (its
cut-off of 10 is in those units). This script recomputes them from real MP-20
rows: the three random 1000-row samples of the train, validation and test splits
in the shared data folder (3000 compositions; the biternary files are left out
because they hold only 2- and 3-element compounds). NaN features (missing
elemental data) are ignored in the statistics; standard deviations are
population values (ddof 0)::

    python -m crystens_coverage.build_scaler ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FILES = ("mp_20/pilot_train.csv.gz", "mp_20/pilot_val.csv.gz", "mp_20/pilot_test.csv.gz")
OUTPUT = Path(__file__).resolve().parent / "data" / "magpie_scaler_mp20.json"


def build(data_dir: Path) -> dict:
    """Means and standard deviations of the magpie fingerprint over the MP-20 samples in ``data_dir``."""
    from pymatgen.core import Composition

    from crystens_core.data.dataset import read_csv_rows
    from crystens_coverage.fingerprints import composition_fingerprint, composition_labels

    fingerprints = []
    for name in FILES:
        _, rows = read_csv_rows(data_dir / name)
        fingerprints += [composition_fingerprint(Composition(row["pretty_formula"])) for row in rows]
    values = np.array(fingerprints)
    stds = np.nanstd(values, axis=0)
    return {
        "description": "per-feature mean and standard deviation (ddof 0, NaN ignored) of the matminer magpie ElementProperty fingerprint (impute_nan=False)",
        "source": "MP-20 (CDVAE splits), 1000 random rows each of train, val and test: " + ", ".join(FILES),
        "n_compositions": int(len(values)),
        "labels": composition_labels(),
        "means": [float(v) for v in np.nanmean(values, axis=0)],
        "stds": [float(v) if v > 0 else 1.0 for v in stds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="the shared data folder (with mp_20/)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    scaler = build(args.data_dir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(scaler, indent=1) + "\n")
    print(f"wrote {args.output} ({scaler['n_compositions']} compositions)")


if __name__ == "__main__":
    main()
