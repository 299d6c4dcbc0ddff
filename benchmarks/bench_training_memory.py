"""Peak memory of ``CrystalPipeline.fit`` with the training tensors in memory versus memory-mapped.

Each mode runs in a fresh subprocess that loads the dataset (its pymatgen structures are
the same in both modes), then runs ``CrystalPipeline(gan small).fit(dataset, steps=STEPS,
checkpoint_dir=...)``:

- ``memory``: ``fit(..., in_memory=True)``, the old path: the whole dataset encoded into
  one float32 array (N × 4 × 64 × 64 × 4 bytes) before training;
- ``mapped``: the default: encoded in chunks to ``<checkpoint_dir>/data/<fingerprint>.npy``
  and trained from ``np.load(mmap_mode="r")``; then a second ``fit`` to STEPS + 1 that
  resumes and reuses the cache (its time shows that nothing is encoded again).

Reported per mode: the resident memory after loading the data, the peak anonymous
memory (RssAnon, sampled every 20 ms from /proc/self/status: what the process itself
allocated) and the peak resident set (``getrusage`` ru_maxrss, which also counts pages
of the memory-mapped file that were read: page cache the kernel can drop).

Usage::

    CRYSTENS_DATA_DIR=... python benchmarks/bench_training_memory.py [--data mpts-52:test] [--steps 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

STEPS = 2


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakSampler(threading.Thread):
    """Highest RssAnon (KiB) seen while running, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _status_kib("RssAnon"))
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, _status_kib("RssAnon"))


def child(mode: str, data: str, steps: int) -> dict:
    """One measurement in this process (called in a subprocess)."""
    from crystens_core import get_generator
    from crystens_core.data.dataset import load_dataset
    from crystens_core.pipeline import CrystalPipeline

    dataset = load_dataset(data)
    loaded_mib = _status_kib("VmRSS") / 1024
    sampler = PeakSampler()
    sampler.start()
    result = {"mode": mode, "structures": len(dataset), "rss_after_load_mib": round(loaded_mib)}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as run:
        started = time.perf_counter()
        pipeline = CrystalPipeline(get_generator("gan", preset="small", device="cpu"))
        pipeline.fit(dataset, steps=steps, checkpoint_dir=run, progress=False, in_memory=mode == "memory")
        result["fit_seconds"] = round(time.perf_counter() - started, 1)
        result["peak_rss_anon_mib"] = round(sampler.stop() / 1024)
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if mode == "mapped":
            started = time.perf_counter()
            CrystalPipeline(get_generator("gan", preset="small", device="cpu")).fit(dataset, steps=steps + 1, checkpoint_dir=run, progress=False)
            result["resume_fit_seconds"] = round(time.perf_counter() - started, 1)
            cache = [name for name in os.listdir(os.path.join(run, "data")) if name.endswith(".npy")]
            result["cache_files"] = len(cache)
            result["cache_mib"] = round(os.path.getsize(os.path.join(run, "data", cache[0])) / 2**20)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mpts-52:test")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--child", choices=["memory", "mapped"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.data, options.steps)))
        return
    results = []
    for mode in ("memory", "mapped"):
        output = subprocess.run([sys.executable, __file__, "--child", mode, "--data", options.data, "--steps", str(options.steps)], check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
