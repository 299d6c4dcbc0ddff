"""What the GAN and the WGAN-GP share: a convolutional generator against a convolutional opponent."""

from __future__ import annotations

from typing import ClassVar

import torch

from crystens_core.generator_base import SettingBound
from crystens_torch.generator import TorchGenerator
from crystens_torch.networks import ConvDiscriminator, ConvGenerator


class AdversarialGenerator(TorchGenerator):
    """Builds ``generator`` and the opponent (``discriminator`` or ``critic``), one Adam each,
    and samples by feeding Gaussian latents to the generator.

    Settings used: ``latent_dim``, ``width``, ``lr``, ``betas`` and ``lr_<opponent>``
    (None: the opponent uses ``lr`` too).
    """

    #: Name of the second network and the normalisation in it.
    opponent: ClassVar[str] = "discriminator"
    opponent_norm: ClassVar[str] = "batch"
    #: Widths above 512 channels make the 8 × width layers several GB.
    SETTING_BOUNDS = {
        **TorchGenerator.SETTING_BOUNDS,
        "latent_dim": SettingBound(1, 4096),
        "width": SettingBound(1, 512),
        "instance_noise": SettingBound(0.0, 10.0),
    }

    def build(self, channels, size):
        s = self.settings
        return {
            "generator": ConvGenerator(s["latent_dim"], channels, size, s["width"]),
            self.opponent: ConvDiscriminator(channels, size, s["width"], norm=self.opponent_norm),
        }

    def make_optimizers(self, modules):
        s = self.settings
        opponent_lr = s[f"lr_{self.opponent}"]
        rates = {"generator": s["lr"], self.opponent: opponent_lr if opponent_lr is not None else s["lr"]}
        return {name: torch.optim.Adam(module.parameters(), lr=rates[name], betas=tuple(s["betas"])) for name, module in modules.items()}

    def generate(self, count, rng):
        latent = torch.randn(count, self.settings["latent_dim"], generator=rng, device=rng.device)
        device = next(self.modules_["generator"].parameters()).device
        return self.modules_["generator"](latent.to(device))
