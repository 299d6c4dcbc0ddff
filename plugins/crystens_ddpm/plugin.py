"""Registers the DDPM generator (torch and diffusers are imported only when it is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_generators(register):
    factory = lazy_factory("crystens_ddpm.model:DDPMGenerator", requires=("torch", "accelerate", "safetensors", "diffusers"), extra="diffusion", what="generator 'ddpm'")
    register("ddpm", factory, description="diffusers UNet2DModel + DDPMScheduler, single stage; DDIM sampling in fewer steps")
