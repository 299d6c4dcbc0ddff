"""Multi-process training through Accelerate (torch DDP, gloo on CPU), as on several GPUs."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")


CASES = {
    "gan": ({"width": 4, "batch_size": 4}, "generator"),
    # imagen: each step trains one U-Net and leaves the other's (and the text) parameters unused
    "imagen": ({"dim": 8, "dim_mults": [1, 2], "timesteps": 2, "batch_size": 2}, "unet1"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_two_cpu_processes_train_in_lockstep(tmp_path, name):
    if name == "imagen" and importlib.util.find_spec("imagen_pytorch") is None:
        pytest.skip("the imagen generator needs `pip install crystens[imagen]`")
    settings, module = CASES[name]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun (from torch) is not on PATH")
    script = Path(__file__).with_name("ddp_train.py")
    command = [torchrun, "--nproc_per_node", "2", "--master_port", "29517", str(script), str(tmp_path / "ckpt"), name, json.dumps(settings), module]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line[len("RESULT ") :]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world"] == 2 and r["backend"] == "gloo" and r["step"] == 2 for r in results)
    assert results[0]["weights"] == results[1]["weights"]  # gradients were averaged across the processes
    assert len(results[0]["weights"]) > 0
    assert json.loads((tmp_path / "ckpt" / "latest").read_text())["step"] == 2  # written once, by rank 0
