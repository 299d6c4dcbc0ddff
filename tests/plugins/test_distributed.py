"""Multi-process training through Accelerate (torch DDP, gloo on CPU), as on several GPUs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")


@pytest.mark.slow
def test_two_cpu_processes_train_in_lockstep(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun (from torch) is not on PATH")
    script = Path(__file__).with_name("ddp_train.py")
    command = [torchrun, "--nproc_per_node", "2", "--master_port", "29517", str(script), str(tmp_path / "ckpt"), "gan"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line[len("RESULT ") :]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world"] == 2 and r["backend"] == "gloo" and r["step"] == 2 for r in results)
    assert results[0]["weights"] == results[1]["weights"]  # gradients were averaged across the processes
    assert json.loads((tmp_path / "ckpt" / "latest").read_text())["step"] == 2  # written once, by rank 0
