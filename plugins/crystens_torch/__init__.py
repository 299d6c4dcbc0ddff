"""Shared machinery of the torch generators: training loop, checkpoints, persistence.

Not a plugin itself (it registers nothing); the ``gan``, ``wgan-gp``, ``imagen`` and
``ddpm`` plugins build on :class:`crystens_torch.generator.TorchGenerator`.
Importing this package imports torch.
"""
