"""2-D convolutional networks over the (C, S, S) tensor, shared by the torch GAN and WGAN-GP.

The paper's Keras networks treat the tensor as a (64, 64, 4, 1) volume and mix 3-D
convolutions with dense skips (Appendix B of the paper); these are DCGAN-style 2-D
convolutions over the C channels (see docs/generators.md for the difference).
Sides that are not a multiple of 16 are handled by generating the next multiple
and cropping (generator) or zero-padding (discriminator).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from crystens_core.generator_base import annealed  # noqa: F401  (re-exported: the GAN and WGAN-GP import it from here)

STAGES = 4  # four ×2 up/down-samplings: 4 × 4 ↔ 64 × 64


def padded_side(size: int) -> int:
    return 2**STAGES * math.ceil(size / 2**STAGES)


class ConvGenerator(nn.Module):
    """Latent vector → (C, S, S) in [0, 1]: dense to 4 × 4, four transposed convolutions,
    batch norm and ReLU, sigmoid output.

    Args:
        latent_dim: size of the latent vector.
        channels: C.
        size: S.
        width: channels of the last hidden layer (the first has 8 × width).
    """

    def __init__(self, latent_dim: int, channels: int, size: int, width: int):
        super().__init__()
        self.size = size
        base = padded_side(size) // 2**STAGES
        self.project = nn.Sequential(nn.Linear(latent_dim, 8 * width * base * base), nn.BatchNorm1d(8 * width * base * base), nn.ReLU())
        self.start = (8 * width, base, base)
        blocks = []
        for inner, outer in ((8 * width, 4 * width), (4 * width, 2 * width), (2 * width, width)):
            blocks += [nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer), nn.ReLU()]
        blocks += [nn.ConvTranspose2d(width, channels, 4, 2, 1)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        hidden = self.project(latent).view(-1, *self.start)
        return torch.sigmoid(self.blocks(hidden)[..., : self.size, : self.size])


class ConvDiscriminator(nn.Module):
    """(C, S, S) → one logit (GAN) or critic value (WGAN-GP): four strided convolutions
    with LeakyReLU(0.2) and batch norm (``norm="batch"``) or layer norm (``norm="layer"``,
    for the WGAN-GP critic, where batch norm would break the gradient penalty)."""

    def __init__(self, channels: int, size: int, width: int, norm: str = "batch"):
        super().__init__()
        self.size = size
        self.padded = padded_side(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for inner, outer in ((width, 2 * width), (2 * width, 4 * width), (4 * width, 8 * width)):
            layers += [nn.Conv2d(inner, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer) if norm == "batch" else nn.GroupNorm(1, outer), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        base = self.padded // 2**STAGES
        self.head = nn.Linear(8 * width * base * base, 1)

    def forward(self, tensors: torch.Tensor) -> torch.Tensor:
        pad = self.padded - self.size
        if pad:
            tensors = F.pad(tensors, (0, pad, 0, pad))
        return self.head(self.features(tensors).flatten(1)).squeeze(1)


def instance_noise(tensors: torch.Tensor, sigma: float, rng: torch.Generator) -> torch.Tensor:
    """``tensors`` plus Gaussian noise of standard deviation ``sigma`` drawn from ``rng``
    (Sønderby et al. 2017; Arjovsky & Bottou 2017): it blurs features that tell real
    from generated tensors trivially, such as the exact zeros of the padding, which a
    sigmoid output never reaches. ``sigma == 0`` returns ``tensors`` and draws nothing."""
    if sigma <= 0:
        return tensors
    return tensors + sigma * torch.randn(tensors.shape, generator=rng).to(device=tensors.device, dtype=tensors.dtype)
