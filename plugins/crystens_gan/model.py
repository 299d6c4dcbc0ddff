"""The vanilla GAN of the paper in torch: BCE loss, sigmoid discriminator, batch norm."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from crystens_torch.generator import TorchGenerator
from crystens_torch.networks import ConvDiscriminator, ConvGenerator, annealed, instance_noise


class VanillaGAN(TorchGenerator):
    """Generator and discriminator trained against each other with binary cross-entropy.

    Presets: ``paper`` — latent 128, Adam lr 1e-5 (β = 0.9, 0.999, Keras' defaults)
    for both networks, batch 64, width 64; ``small`` — width 16, batch 32, Adam 2e-4
    (β = 0.5, 0.999, the DCGAN setting), 400 steps: a few minutes on a 2-core CPU.
    """

    name = "gan"
    plugin = "crystens_gan"
    PRESETS = {
        "small": {"latent_dim": 128, "width": 16, "batch_size": 32, "lr": 2e-4, "betas": [0.5, 0.999], "steps": 400, "instance_noise": 0.0, "label_smoothing": 0.0, "lr_discriminator": None, "joint_generator_pass": False},
        "paper": {"latent_dim": 128, "width": 64, "batch_size": 64, "lr": 1e-5, "betas": [0.9, 0.999], "steps": 100 * 45231 // 64, "instance_noise": 0.0, "label_smoothing": 0.0, "lr_discriminator": None, "joint_generator_pass": False},
    }

    def build(self, channels, size):
        s = self.settings
        return {"generator": ConvGenerator(s["latent_dim"], channels, size, s["width"]), "discriminator": ConvDiscriminator(channels, size, s["width"], norm="batch")}

    def make_optimizers(self, modules):
        s = self.settings
        lr = {"generator": s["lr"], "discriminator": s["lr_discriminator"] if s["lr_discriminator"] is not None else s["lr"]}
        return {name: torch.optim.Adam(module.parameters(), lr=lr[name], betas=tuple(s["betas"])) for name, module in modules.items()}

    def generate(self, count, rng):
        latent = torch.randn(count, self.settings["latent_dim"], generator=rng, device=rng.device)
        device = next(self.modules_["generator"].parameters()).device
        return self.modules_["generator"](latent.to(device))

    def train_step(self, batch, rng):
        generator, discriminator = self.modules_["generator"], self.modules_["discriminator"]
        optimizer_g, optimizer_d = self.optimizers_["generator"], self.optimizers_["discriminator"]
        n, s = batch.shape[0], self.settings
        sigma = annealed(s["instance_noise"], self.step_, s["steps"])
        latent = torch.randn(n, self.settings["latent_dim"], generator=rng).to(batch.device)
        fake = generator(latent)
        # Discriminator: real → 1, fake → 0 (one forward pass over both halves).
        logits = discriminator(instance_noise(torch.cat([batch, fake.detach()]), sigma, rng))
        real_target = 1.0 - s["label_smoothing"]  # one-sided: fakes keep target 0
        targets = torch.cat([torch.full((n,), real_target, device=batch.device), torch.zeros(n, device=batch.device)])
        loss_d = F.binary_cross_entropy_with_logits(logits, targets)
        optimizer_d.zero_grad(set_to_none=True)
        self.accelerator_.backward(loss_d)
        optimizer_d.step()
        # Generator: make the discriminator call fakes real.
        if s["joint_generator_pass"]:  # batch norm sees the same real/fake mix as in the discriminator step
            fake_logits = discriminator(instance_noise(torch.cat([batch, fake]), sigma, rng))[n:]
        else:
            fake_logits = discriminator(instance_noise(fake, sigma, rng))
        loss_g = F.binary_cross_entropy_with_logits(fake_logits, torch.ones(n, device=batch.device))
        optimizer_g.zero_grad(set_to_none=True)
        self.accelerator_.backward(loss_g)
        optimizer_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
