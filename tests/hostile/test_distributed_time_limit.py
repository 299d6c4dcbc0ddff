"""`--time-limit` in a multi-process run: every process stops at the same step (issue 9 §7).

Each process measures the time on its own clock; when process 1 runs behind, the old loop
let it checkpoint and stop while process 0 began the next step and waited for it for ever.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")
psutil = pytest.importorskip("psutil", reason="psutil comes with accelerate")

#: Longest the two processes may take (start-up included) before the run counts as hung (seconds).
HANG_AFTER = 300


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_different_clocks_stop_at_the_same_step(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun (from torch) is not on PATH")
    script = Path(__file__).with_name("ddp_time_limit.py")
    command = [torchrun, "--nproc_per_node", "2", "--master_port", str(_free_port()), str(script), str(tmp_path / "ckpt"), "0.5", "2.0"]
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        process = subprocess.Popen(command, stdout=stdout_file, stderr=stderr_file, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            process.wait(timeout=HANG_AFTER)
        except subprocess.TimeoutExpired:
            # torchrun starts each worker in a session of its own: end the whole tree
            for child in [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]:
                child.kill()
            process.wait()
            pytest.fail(f"the two processes hung (still running after {HANG_AFTER} s): {err.read_text()[-2000:]}")
    stdout, stderr = out.read_text(), err.read_text()
    assert process.returncode == 0, stderr[-3000:]
    results = [json.loads(line[len("RESULT ") :]) for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert sorted(r["rank"] for r in results) == [0, 1], stdout + stderr[-2000:]
    steps = {r["step"] for r in results}
    assert len(steps) == 1, f"the processes stopped at steps {results}"
    stopped = steps.pop()
    assert 1 < stopped < 10_000  # the time limit, not the step count, ended training
    assert json.loads((tmp_path / "ckpt" / "latest").read_text())["step"] == stopped  # checkpointed once, at that step
