"""Keras 3 on the TensorFlow backend, imported once with the settings crystens needs.

``KERAS_BACKEND`` defaults to ``tensorflow`` (set before Keras is imported) and
TensorFlow's C++ start-up messages are quietened (``TF_CPP_MIN_LOG_LEVEL`` 2) unless
the user chose otherwise; triton, when installed, is loaded before TensorFlow (see
below). Importing this module imports TensorFlow. Code that needs TensorFlow next to
torch should import it through this module, not ``import tensorflow`` first.
"""

from __future__ import annotations

import importlib.util
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow >= 2.20 wheels load their library with RTLD_GLOBAL; a later `import triton`
# (torch does it lazily, when the first optimiser is created) then crashes the process
# on clashing LLVM symbols (tensorflow/tensorflow#124205). Loading triton first avoids
# it, so that torch and Keras generators can share a process (0.2 s, imports no torch).
if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
    try:
        import triton  # noqa: F401
    except Exception:  # a broken triton must not stop the Keras generators
        pass

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"the Keras generators need Keras' TensorFlow backend, but Keras was loaded with {keras.backend.backend()!r} "
        "(KERAS_BACKEND); set KERAS_BACKEND=tensorflow before anything imports keras"
    )

__all__ = ["keras", "tf"]
