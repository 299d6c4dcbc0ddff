"""Run by test_distributed_time_limit.py under `torchrun --nproc_per_node 2`: train with a time limit
while process 1 runs slower than process 0 (a sleep after each of its steps, set here only).

Arguments: checkpoint folder, seconds process 1 sleeps after each step, the time limit (seconds).
"""

import json
import os
import sys
import time

from crystens_core import get_generator
from crystens_core.testing import sample_tensors

checkpoint_dir, lag, time_limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
model = get_generator("gan", width=4, batch_size=4, device="cpu", checkpoint_every=10_000)
one_step = model.train_step


def slower_on_process_1(batch, rng):
    losses = one_step(batch, rng)
    if int(os.environ["RANK"]) == 1:
        time.sleep(lag)  # process 1's clock runs ahead of process 0's by about `lag` at each step's end
    return losses


model.train_step = slower_on_process_1
model.fit(sample_tensors(), steps=10_000, checkpoint_dir=checkpoint_dir, progress=False, time_limit=time_limit)
print("RESULT " + json.dumps({"rank": model.accelerator_.process_index, "step": model.step_}), flush=True)
