"""Registers ``gan-keras`` and ``wgan-gp-keras`` (TensorFlow is imported only when one is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory

REQUIRES = ("tensorflow", "keras", "h5py")


@hookimpl
def crystens_register_generators(register):
    register(
        "gan-keras",
        lazy_factory("crystens_keras.gan:KerasGAN", requires=REQUIRES, extra="tf", what="generator 'gan-keras'"),
        description="The paper's vanilla GAN: 3-D convolutions and dense skips, BCE, sigmoid discriminator (TensorFlow/Keras)",
    )
    register(
        "wgan-gp-keras",
        lazy_factory("crystens_keras.wgan_gp:KerasWGANGP", requires=REQUIRES, extra="tf", what="generator 'wgan-gp-keras'"),
        description="The paper's WGAN-GP: 3-D convolutions, layer-normalised linear critic, λ = 10 (TensorFlow/Keras)",
    )
