"""Registers the vanilla GAN (torch is imported only when the generator is created)."""

from crystens_core import hookimpl


def _create(**config):
    from crystens_core.plugins import require

    require("torch", "accelerate", "safetensors", extra="torch", what="generator gan")
    from crystens_gan.model import VanillaGAN

    return VanillaGAN(**config)


@hookimpl
def crystens_register_generators(register):
    register("gan", _create, description="Vanilla GAN, BCE loss, sigmoid discriminator (torch, 2-D convolutions)")
