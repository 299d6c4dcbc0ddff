"""Run by test_distributed.py under `torchrun --nproc_per_node 2`: two training steps with DDP.

Arguments: checkpoint folder, generator name, its settings as JSON, the module to report.
"""

import json
import sys

from crystens_core import get_generator
from crystens_core.testing import sample_tensors

checkpoint_dir, name, settings, module = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
model = get_generator(name, **settings, device="cpu")
model.fit(sample_tensors(), steps=2, checkpoint_dir=checkpoint_dir, progress=False)
accelerator = model.accelerator_
weights = [float(w) for p in model.modules_[module].parameters() for w in p.detach().flatten()[:2]][:40]
print("RESULT " + json.dumps({"rank": accelerator.process_index, "world": accelerator.num_processes, "backend": str(accelerator.state.backend), "step": model.step_, "weights": weights}))
