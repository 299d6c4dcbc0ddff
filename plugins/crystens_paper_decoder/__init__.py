"""The paper's post-processing (built-in plugin, decoder name ``paper``)."""

from crystens_paper_decoder.decoder import PaperDecoder

__all__ = ["PaperDecoder"]
