"""Registers the CrysTens encoder."""

from crystens_core import hookimpl


@hookimpl
def crystens_register_encoders(register):
    from crystens_tensor.encoder import CrysTensEncoder

    register("crystens", CrysTensEncoder, description="The CrysTens tensor of Alverson et al. (2024), §3.1")
