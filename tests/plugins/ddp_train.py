"""Run by test_distributed.py under `torchrun --nproc_per_node 2`: two training steps with DDP."""

import json
import sys

from crystens_core import get_generator
from crystens_core.testing import sample_tensors

model = get_generator(sys.argv[2], width=4, batch_size=4, device="cpu")
model.fit(sample_tensors(), steps=2, checkpoint_dir=sys.argv[1], progress=False)
accelerator = model.accelerator_
weights = next(model.modules_["generator"].parameters()).detach().flatten()[:5].tolist()
print("RESULT " + json.dumps({"rank": accelerator.process_index, "world": accelerator.num_processes, "backend": str(accelerator.state.backend), "step": model.step_, "weights": weights}))
