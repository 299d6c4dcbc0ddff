"""The paper's central experiment at this machine's compute: every generator, the same budget.

    python benchmarks/compare_generators.py --minutes 5 --samples 1000 \
        [--data mp20-sample] [--generators gan wgan-gp ddpm imagen] [-o runs/compare] \
        [--set imagen.timesteps=20] [--reuse]

Each generator is trained with its ``small`` preset on the same data for the same
wall-clock budget (``crystens run --time-limit``), then samples ``--samples``
tensors, which the ``auto`` decoder turns into structures, evaluated with the
self-consistency metric (the paper's Tables 1–2) and the K-S metric against the
training set. The runs are then put side by side with ``crystens compare``, and
the loss curves (from each run's ``train/run.json``) are drawn to
``<output>/loss_curves.png``. Sampling is not part of the budget; its time is
printed separately. ``--set NAME.KEY=VALUE`` changes one generator's setting (e.g.
fewer sampling steps); ``--reuse`` keeps runs whose report already exists.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

GENERATORS = ("gan", "wgan-gp", "ddpm", "imagen")
METRICS = ("self-consistency", "ks")


def crystens(*arguments: str) -> None:
    command = [sys.executable, "-m", "crystens_core.cli", *arguments]
    print("$ crystens " + " ".join(arguments), flush=True)
    subprocess.run(command, check=True)


def plot_loss_curves(runs: dict[str, Path], path: Path, window: int = 25) -> None:
    """One panel per generator: every loss of the history, smoothed over ``window`` steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.2), squeeze=False)
    for axis, (name, folder) in zip(axes[0], runs.items()):
        history = json.loads((folder / "train" / "run.json").read_text())["history"]
        keys = sorted({key for record in history for key in record if key != "step"})
        for key in keys:
            points = np.array([(r["step"], r[key]) for r in history if key in r])
            if len(points) >= window:
                smooth = np.convolve(points[:, 1], np.ones(window) / window, mode="valid")
                axis.plot(points[window - 1 :, 0], smooth, label=key)
            elif len(points):
                axis.plot(points[:, 0], points[:, 1], label=key)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="Training budget per generator (wall clock).")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--data", default="mp20-sample")
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS))
    parser.add_argument("-o", "--output", default="runs/compare")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME.KEY=VALUE")
    parser.add_argument("--reuse", action="store_true", help="Keep runs whose metrics.json exists.")
    args = parser.parse_args()
    options: dict[str, list[str]] = {}
    for item in args.settings:
        name, _, setting = item.partition(".")
        options.setdefault(name, []).append(setting)

    output = Path(args.output)
    runs: dict[str, Path] = {}
    timings: dict[str, dict[str, float]] = {}
    for name in args.generators:
        folder = output / name
        runs[name] = folder
        if args.reuse and (folder / "metrics.json").is_file():
            print(f"{name}: reusing {folder}", flush=True)
            continue
        started = time.perf_counter()
        crystens(
            "run", "--generator", name, "--data", args.data, "--preset", "small", "--steps", "100000000",
            "--time-limit", str(60 * args.minutes), "--samples", str(args.samples),
            *[part for metric in METRICS for part in ("--metric", metric)], "-o", str(folder),
            *[part for setting in options.get(name, []) for part in ("--option", setting)],
        )
        record = json.loads((folder / "train" / "run.json").read_text())
        total = time.perf_counter() - started
        timings[name] = {"steps": record["steps"], "train_s": record["seconds_this_run"], "total_s": total, "load_average": os.getloadavg()[0], "options": options.get(name, [])}
        print(f"{name}: {record['steps']} steps in {record['seconds_this_run']:.0f} s; train + sample + evaluate {total:.0f} s", flush=True)
    crystens("compare", *map(str, runs.values()), "-o", str(output / "comparison"))
    plot_loss_curves(runs, output / "loss_curves.png")
    timings_file = output / "timings.json"
    previous = json.loads(timings_file.read_text())["runs"] if args.reuse and timings_file.is_file() else {}
    timings = {**previous, **timings}
    timings_file.write_text(json.dumps({"minutes": args.minutes, "samples": args.samples, "data": args.data, "runs": timings}, indent=1) + "\n")
    print(json.dumps(timings, indent=1))


if __name__ == "__main__":
    main()
