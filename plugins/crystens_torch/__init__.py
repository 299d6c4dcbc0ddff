"""The torch backend of the generators: hooks of the one loop in GeneratorBase, safetensors I/O.

Not a plugin itself (it registers nothing); the ``gan``, ``wgan-gp``, ``imagen`` and
``ddpm`` plugins build on :class:`crystens_torch.generator.TorchGenerator`.
Importing this package imports torch.
"""
