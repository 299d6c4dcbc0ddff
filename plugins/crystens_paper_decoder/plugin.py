"""Registers the paper decoder."""

from crystens_core import hookimpl


@hookimpl
def crystens_register_decoders(register):
    from crystens_paper_decoder.decoder import PaperDecoder

    register("paper", PaperDecoder, description="Alverson et al.'s post-processing: fixed-K k-means on Z (3) and coordinates (6)")
