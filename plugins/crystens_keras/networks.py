"""The paper's Keras networks (Appendix B): 3-D convolutions over the tensor as a volume.

The project's tensors are channels first, (C, S, S); the networks see them as the
paper did, a (S, S, C, 1) volume whose C channels are a depth axis that the 3-D
convolutions slide along (:func:`to_volume`, :func:`from_volume`). For the paper's
64 × 64 × 4 the layer stacks are exactly those of the authors' published code (filters scaled by
``width``); other sizes and channel counts are handled by padding the
discriminator's input to at least 64 × 64 and by growing the generator's map to
the next size it reaches and cropping (see :func:`generator_geometry`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crystens_keras import layers as fast
from crystens_keras.backend import keras

layers = keras.layers

#: Transposed (3, 3, 3) convolutions per generator stage; each grows side and depth by 2
#: (16² → 22² → 28² → 32² for the paper's tensor), a dense skip of the latent after each stage.
GENERATOR_STAGES = (3, 3, 2)
#: The discriminator's convolutional branch is written for inputs of at least this side.
MIN_SIDE = 64
#: What the two valid (3, 3, 1) and four (7, 7, 1) convolution groups take off the side.
CONV_BRANCH_SHRINK = 32
LEAKY_SLOPE = 0.2


def to_volume(tensors: np.ndarray) -> np.ndarray:
    """(N, C, S, S) channels-first tensors → (N, S, S, C, 1) volumes (a contiguous copy)."""
    return np.ascontiguousarray(np.transpose(tensors, (0, 2, 3, 1))[..., None])


def from_volume(volumes: np.ndarray) -> np.ndarray:
    """(N, S, S, C, 1) volumes → (N, C, S, S) channels-first tensors."""
    return np.ascontiguousarray(np.transpose(volumes[..., 0], (0, 3, 1, 2)))


def generator_geometry(channels: int, size: int) -> dict[str, int]:
    """Sides and kernels of the generator for tensors (channels, size, size).

    The generator starts from a ``start × start × channels`` map, grows it by 2 per
    transposed (3, 3, 3) convolution and doubles it in the last one, so it ends at
    ``2 · (start + 16)`` ≥ ``size`` (cropped to ``size``) with depth ``2 · (channels + 16)``,
    which a (1, 1, k) convolution of stride k brings down to ``channels``. For the
    paper's (4, 64, 64): start 16, stages 22, 28, 32, output 64, k = 10.
    """
    growth = 2 * sum(GENERATOR_STAGES)
    start = max(1, math.ceil(size / 2) - growth)
    depth = 2 * (channels + growth)
    kernel = depth // channels
    stages, side = [], start
    for count in GENERATOR_STAGES:
        side += 2 * count
        stages.append(side)
    return {"start": start, "stages": stages, "side": 2 * side, "depth": depth, "kernel": kernel, "out_depth": depth // kernel}


def _normalization(kind: str, name: str, momentum: float) -> layers.Layer:
    if kind == "batch":
        return fast.BatchNormalization(momentum=momentum, name=name)
    if kind == "layer":
        # Layer norm of a convolutional map (Ba et al. 2016): statistics over each sample's
        # whole map, scale and offset per filter, i.e. group norm with one group (the torch
        # critic's GroupNorm(1, C)). Keras' LayerNormalization() would normalise each
        # position over its few filters alone, which maps two filters to ±1 and blinds the critic.
        return layers.GroupNormalization(groups=1, epsilon=1e-3, name=name)
    raise ValueError(f"normalisation must be 'batch' or 'layer', got {kind!r}")


class _Block:
    """Layer → (skip) → normalisation → activation, with optional spectral normalisation."""

    def __init__(self, norm: str, activation: str, spectral_norm: bool, momentum: float, prefix: str):
        self.norm, self.activation, self.spectral_norm, self.momentum, self.prefix = norm, activation, spectral_norm, momentum, prefix
        self.count = 0

    def __call__(self, layer: layers.Layer, x: Any, skip: Any = None) -> Any:
        self.count += 1
        name = f"{self.prefix}{self.count}"
        if self.spectral_norm:
            layer = layers.SpectralNormalization(layer, name=f"{name}_sn")
        x = layer(x)
        if skip is not None:
            x = layers.Add(name=f"{name}_skip")([x, skip])
        if self.norm:
            x = _normalization(self.norm, f"{name}_norm", self.momentum)(x)
        if self.activation == "relu":
            return layers.ReLU(name=f"{name}_relu")(x)
        return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_lrelu")(x)


def build_generator(
    latent_dim: int,
    channels: int,
    size: int,
    filters: list[int],
    final_filters: int,
    *,
    norm: str,
    activation: str,
    spectral_norm: bool = False,
    dense_skips: bool = False,
    momentum: float = 0.99,
    name: str = "generator",
) -> keras.Model:
    """Latent (latent_dim,) → scaled volume (size, size, channels, 1) in [0, 1].

    Dense(start² · channels) reshaped to start × start × channels × 1; one transposed
    (3, 3, 3) convolution per entry of ``filters`` (valid padding, side and depth + 2
    each), grouped in :data:`GENERATOR_STAGES`; a transposed (2, 2, 2) convolution of
    stride 2 with ``final_filters``; a (1, 1, k) convolution of stride (1, 1, k) to
    one filter with a sigmoid. Each layer is followed by ``norm`` and ``activation``.

    Args:
        dense_skips: the vanilla GAN's skips: a chain of dense layers of the latent,
            (stage side)² units each, reshaped and added after each stage and after
            the stride-2 layer (484, 784, 1024, 4096 units for the paper's tensor).
        spectral_norm: wrap every dense and convolutional layer in spectral normalisation.
    """
    if len(filters) != sum(GENERATOR_STAGES):
        raise ValueError(f"{name}: needs {sum(GENERATOR_STAGES)} filter counts, got {filters}")
    geometry = generator_geometry(channels, size)
    start, block = geometry["start"], _Block(norm, activation, spectral_norm, momentum, f"{name}_")
    latent = keras.Input((latent_dim,), name="latent")
    x = block(layers.Dense(start * start * channels, name=f"{name}_dense"), latent)
    x = layers.Reshape((start, start, channels, 1), name=f"{name}_start")(x)
    chain = latent
    depth, index = channels, 0
    for stage, count in enumerate(GENERATOR_STAGES):
        for position in range(count):
            depth += 2
            skip = None
            if dense_skips and position == count - 1:
                side = geometry["stages"][stage]
                chain = block(layers.Dense(side * side, name=f"{name}_chain{stage + 1}"), chain)
                skip = layers.Reshape((side, side, 1, 1), name=f"{name}_chain{stage + 1}_map")(chain)
            x = block(fast.Conv3DTranspose(filters[index], (3, 3, 3), padding="valid", name=f"{name}_deconv{index + 1}"), x, skip)
            index += 1
    skip = None
    if dense_skips:
        side = geometry["side"]
        chain = block(layers.Dense(side * side, name=f"{name}_chain{len(GENERATOR_STAGES) + 1}"), chain)
        skip = layers.Reshape((side, side, 1, 1), name=f"{name}_chain{len(GENERATOR_STAGES) + 1}_map")(chain)
    x = block(fast.Conv3DTranspose(final_filters, (2, 2, 2), strides=2, padding="valid", name=f"{name}_upsample"), x, skip)
    k = geometry["kernel"]
    out = fast.Conv3D(1, (1, 1, k), strides=(1, 1, k), padding="valid", name=f"{name}_out")
    if spectral_norm:
        out = layers.SpectralNormalization(out, name=f"{name}_out_sn")
    x = out(x)
    crop = (geometry["side"] - size, geometry["side"] - size, geometry["out_depth"] - channels)
    if any(crop):
        x = layers.Cropping3D(((0, crop[0]), (0, crop[1]), (0, crop[2])), name=f"{name}_crop")(x)
    volume = layers.Activation("sigmoid", name="volume")(x)
    return keras.Model(latent, volume, name=name)


def _conv_branch_input(channels: int, size: int, name: str) -> tuple[Any, Any, int]:
    if channels < 3:
        raise ValueError(f"{name}: the (5, 5, 2) and (2, 2, 2) convolutions need at least 3 channels, got {channels}")
    volume = keras.Input((size, size, channels, 1), name="volume")
    side = max(size, MIN_SIDE)
    x = volume
    if side > size:
        x = layers.ZeroPadding3D(((0, side - size), (0, side - size), (0, 0)), name=f"{name}_pad")(x)
    return volume, x, side


def _final_side(side: int) -> int:
    """Side after the conv branch, the (5, 5, 2) convolution of stride (5, 5, 1) and the stride-2 one."""
    return ((side - CONV_BRANCH_SHRINK - 5) // 5 + 1) // 2


def build_discriminator(channels: int, size: int, width: int, *, dense_layers: int = 4, dropout: float = 0.25, momentum: float = 0.99, name: str = "discriminator") -> keras.Model:
    """The vanilla GAN's discriminator: scaled volume → probability that it is real.

    A dense branch (flattened input → ``dense_layers`` × Dense((side − 32)²)) and a
    convolutional branch (Conv3D w (1,1,1), 3 × w (3,3,1), 2w (3,3,1), 4 × 2w (7,7,1),
    valid) meet at 32 × 32 × C, where the dense output is added; then Conv3D 4w
    (5,5,2) stride (5,5,1) and 8w (2,2,2) stride 2 down to 3 × 3 × 1, plus a Dense(9)
    of the dense branch; flatten, dropout, Dense(1) (``logit``), sigmoid
    (``probability``). Batch norm and LeakyReLU(0.2) after every hidden layer. The
    paper's widths are ``width = 32``.
    """
    volume, x, side = _conv_branch_input(channels, size, name)
    block = _Block("batch", "leaky_relu", False, momentum, f"{name}_")
    inner = side - CONV_BRANCH_SHRINK
    h = layers.Flatten(name=f"{name}_flatten_input")(x)
    for index in range(dense_layers):
        h = block(layers.Dense(inner * inner, name=f"{name}_dense{index + 1}"), h)
    kernels = [(1, 1, 1)] + [(3, 3, 1)] * 4 + [(7, 7, 1)] * 4
    widths = [width] * 4 + [2 * width] * 5
    for index, (kernel, filters) in enumerate(zip(kernels, widths)):
        skip = layers.Reshape((inner, inner, 1, 1), name=f"{name}_dense_map")(h) if index == len(kernels) - 1 else None
        x = block(fast.Conv3D(filters, kernel, padding="valid", name=f"{name}_conv{index + 1}"), x, skip)
    x = block(fast.Conv3D(4 * width, (5, 5, 2), strides=(5, 5, 1), padding="valid", name=f"{name}_conv{len(kernels) + 1}"), x)
    final = _final_side(side)
    skip = layers.Reshape((final, final, 1, 1), name=f"{name}_dense_final_map")(layers.Dense(final * final, name=f"{name}_dense_final")(h))
    x = block(fast.Conv3D(8 * width, (2, 2, 2), strides=2, padding="valid", name=f"{name}_conv{len(kernels) + 2}"), x, skip)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    logit = layers.Dense(1, name="logit")(x)
    probability = layers.Activation("sigmoid", name="probability")(logit)
    return keras.Model(volume, probability, name=name)


def build_critic(channels: int, size: int, width: int, *, spectral_norm: bool = True, dropout: float = 0.25, name: str = "critic") -> keras.Model:
    """The WGAN-GP critic: scaled volume → one unbounded score (linear output).

    Conv3D w (1,1,1) × 2, w (3,3,1) × 4, 2w (7,7,1) × 3, 4w (7,7,1), 4w (5,5,2) stride
    (5,5,1), 8w (2,2,2) stride 2 (valid padding), each spectral-normalised (optional)
    with layer norm (over each sample's whole map) and LeakyReLU(0.2) — no batch norm, which would
    couple the samples of a batch and break the per-sample gradient penalty; flatten,
    dropout, linear Dense(1). The paper's widths are ``width = 16``.
    """
    volume, x, _ = _conv_branch_input(channels, size, name)
    block = _Block("layer", "leaky_relu", spectral_norm, 0.99, f"{name}_")
    kernels = [(1, 1, 1)] * 2 + [(3, 3, 1)] * 4 + [(7, 7, 1)] * 4
    widths = [width] * 6 + [2 * width] * 3 + [4 * width]
    for index, (kernel, filters) in enumerate(zip(kernels, widths)):
        x = block(fast.Conv3D(filters, kernel, padding="valid", name=f"{name}_conv{index + 1}"), x)
    x = block(fast.Conv3D(4 * width, (5, 5, 2), strides=(5, 5, 1), padding="valid", name=f"{name}_conv{len(kernels) + 1}"), x)
    x = block(fast.Conv3D(8 * width, (2, 2, 2), strides=2, padding="valid", name=f"{name}_conv{len(kernels) + 2}"), x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    head = layers.Dense(1, name="score")
    if spectral_norm:
        head = layers.SpectralNormalization(head, name="score_sn")
    return keras.Model(volume, head(x), name=name)


def gan_filters(width: int) -> tuple[list[int], int]:
    """The vanilla GAN generator's transposed-convolution filters for ``width`` (32: the paper's
    256, 128, 128, 128, 64, 64, 64, 64 and 32 in the stride-2 layer)."""
    return [8 * width] + [4 * width] * 3 + [2 * width] * 4, width


def wgan_filters(width: int) -> tuple[list[int], int]:
    """The WGAN-GP generator's filters for ``width`` (16: the paper's 128, 128, 64, 64, 32, 32,
    32, 32 and 32 in the stride-2 layer)."""
    return [8 * width] * 2 + [4 * width] * 2 + [2 * width] * 4, 2 * width
