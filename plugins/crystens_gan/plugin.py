"""Registers the vanilla GAN (torch is imported only when the generator is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_generators(register):
    factory = lazy_factory("crystens_gan.model:VanillaGAN", requires=("torch", "accelerate", "safetensors"), extra="torch", what="generator 'gan'")
    register("gan", factory, description="Vanilla GAN, BCE loss, sigmoid discriminator (torch, 2-D convolutions)")
