"""What the Keras GAN and WGAN-GP share: a latent-to-volume generator against an opponent."""

from __future__ import annotations

from typing import ClassVar

from crystens_core.generator_base import SettingBound, annealed
from crystens_keras.backend import keras, tf
from crystens_keras.generator import KerasGenerator


class KerasAdversarialGenerator(KerasGenerator):
    """One Adam per network (``lr``, ``betas``; the opponent's rate is ``lr_<opponent>``
    when set), Gaussian latents of ``latent_dim``, optional annealed instance noise."""

    #: Name of the second network ("discriminator" or "critic").
    opponent: ClassVar[str] = "discriminator"
    #: 3-D convolutions over (S, S, C) volumes: width 256 is already several GB of activations.
    SETTING_BOUNDS = {
        **KerasGenerator.SETTING_BOUNDS,
        "latent_dim": SettingBound(1, 4096),
        "width": SettingBound(1, 256),
        "dropout": SettingBound(0.0, 0.95),
        "instance_noise": SettingBound(0.0, 10.0),
    }

    def make_optimizers(self, networks):
        s = self.settings
        opponent_lr = s.get(f"lr_{self.opponent}")
        rates = {"generator": s["lr"], self.opponent: opponent_lr if opponent_lr is not None else s["lr"]}
        beta_1, beta_2 = (float(b) for b in s["betas"])
        return {name: keras.optimizers.Adam(learning_rate=rates[name], beta_1=beta_1, beta_2=beta_2, name=f"adam_{name}") for name in networks}

    def noise_level(self) -> float:
        return annealed(self.settings.get("instance_noise", 0.0), self.step_, self.settings["steps"])

    def latents(self, count, key):
        """Standard normal latents (count, latent_dim) drawn statelessly from ``key``."""
        return tf.random.stateless_normal(tf.stack([count, self.settings["latent_dim"]]), seed=key)

    def noisy(self, volumes, sigma, key):
        """``volumes`` plus instance noise of σ ``sigma`` (nothing drawn when the setting is 0)."""
        if self.settings.get("instance_noise", 0.0) <= 0:
            return volumes
        return volumes + sigma * tf.random.stateless_normal(tf.shape(volumes), seed=key)

    def generate(self, count, key):
        return self.networks_["generator"](self.latents(count, key), training=False)
