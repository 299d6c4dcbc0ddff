"""Registers the Imagen generator (torch and imagen-pytorch are imported only when it is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_generators(register):
    factory = lazy_factory("crystens_imagen.model:ImagenGenerator", requires=("torch", "accelerate", "safetensors", "imagen_pytorch"), extra="imagen", what="generator 'imagen'")
    register("imagen", factory, description="imagen-pytorch cascade of two U-Nets (S/2 then S), unconditional, as in the paper")
