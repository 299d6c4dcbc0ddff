"""Registers the WGAN-GP (torch is imported only when the generator is created)."""

from crystens_core import hookimpl


def _create(**config):
    from crystens_core.plugins import require

    require("torch", "accelerate", "safetensors", extra="torch", what="generator wgan-gp")
    from crystens_wgan_gp.model import WGANGP

    return WGANGP(**config)


@hookimpl
def crystens_register_generators(register):
    register("wgan-gp", _create, description="Wasserstein GAN with gradient penalty, linear critic (torch, 2-D convolutions)")
