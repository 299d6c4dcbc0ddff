"""Import imagen-pytorch without reaching the network.

imagen-pytorch evaluates ``get_encoded_dim('google/t5-v1_1-base')`` while its
modules are imported (a default argument of ``Unet``), which calls
``T5Config.from_pretrained`` and fails offline. An unconditional Imagen never uses
T5: only the embedding width (768 for t5-v1_1-base) is read. We load
``imagen_pytorch.t5`` on its own first and record that width in its config cache,
so the package import finds it there and never asks the hub.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType, SimpleNamespace

#: d_model of google/t5-v1_1-base, the text encoder imagen-pytorch defaults to.
T5_BASE_EMBED_DIM = 768


def import_imagen() -> ModuleType:
    """``imagen_pytorch``, imported with the T5 configuration lookup kept offline."""
    if "imagen_pytorch" in sys.modules:
        return sys.modules["imagen_pytorch"]
    spec = importlib.util.find_spec("imagen_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("imagen-pytorch is not installed")
    if "imagen_pytorch.t5" not in sys.modules:
        location = next(iter(spec.submodule_search_locations))
        t5_spec = importlib.util.spec_from_file_location("imagen_pytorch.t5", f"{location}/t5.py")
        t5 = importlib.util.module_from_spec(t5_spec)
        sys.modules["imagen_pytorch.t5"] = t5
        try:
            t5_spec.loader.exec_module(t5)
        except BaseException:
            del sys.modules["imagen_pytorch.t5"]
            raise
    t5 = sys.modules["imagen_pytorch.t5"]
    t5.T5_CONFIGS.setdefault(t5.DEFAULT_T5_NAME, {"config": SimpleNamespace(d_model=T5_BASE_EMBED_DIM)})
    package = importlib.import_module("imagen_pytorch")
    package.t5 = t5  # as a normal import of the submodule would have bound it
    return package
