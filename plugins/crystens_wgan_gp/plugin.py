"""Registers the WGAN-GP (torch is imported only when the generator is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_generators(register):
    factory = lazy_factory("crystens_wgan_gp.model:WGANGP", requires=("torch", "accelerate", "safetensors"), extra="torch", what="generator 'wgan-gp'")
    register("wgan-gp", factory, description="Wasserstein GAN with gradient penalty, linear critic (torch, 2-D convolutions)")
