"""Registers the auto decoder."""

from crystens_core import hookimpl


@hookimpl
def crystens_register_decoders(register):
    from crystens_auto_decoder.decoder import AutoDecoder

    register("auto", AutoDecoder, description="Tolerance clustering, robust site finding, overlap merging (recommended)")
