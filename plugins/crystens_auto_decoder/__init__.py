"""The recommended decoder (built-in plugin, decoder name ``auto``)."""

from crystens_auto_decoder.decoder import AutoDecoder

__all__ = ["AutoDecoder"]
