"""The CrysTens encoder (built-in plugin ``crystens_tensor``, encoder name ``crystens``)."""

from crystens_tensor.encoder import CrysTensEncoder

__all__ = ["CrysTensEncoder"]
