"""WGAN-GP in torch: linear critic with layer norm, Wasserstein loss, gradient penalty."""

from __future__ import annotations

import torch

from crystens_core.generator_base import SettingBound
from crystens_torch.adversarial import AdversarialGenerator
from crystens_torch.networks import annealed, instance_noise


class WGANGP(AdversarialGenerator):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017).

    Each step trains the critic ``critic_steps`` times (on the same real batch with
    fresh latents, as the Keras WGAN-GP the authors adapted) and the generator once.
    Presets: ``paper`` — λ = 10, 5 critic steps, Adam(1e-4, β = (0, 0.9)), batch 64,
    width 64; ``small`` — λ = 10 and the same β with width 16, batch 32, Adam lr 1e-3,
    2 critic steps, 400 steps: about 1.5 minutes on a 2-core CPU, after which the K-S
    statistics of the decoded samples are clearly lower than the untrained network's
    (ks_mean ≈ 0.34–0.38 against 0.84 on mp20-sample). The small preset trades critic
    steps for generator steps: on a CPU the generator's progress is the bottleneck
    (with lr 1e-4 the critic gap stays near −60 after 300 steps), and with 2 critic
    steps the critic still keeps up (gap shrinking to about −1, penalty ≈ 0.01),
    while 5 critic steps at lr 1e-3 reach only 300 generator steps in 2.6 minutes
    and a worse ks_mean (0.47).

    Settings beyond the paper's (all off in ``paper``, and in ``small``):
        instance_noise: σ of Gaussian noise added to the real and generated tensors
            the critic sees (and to the fakes of the generator step), annealed
            linearly from σ to 0 over the preset's ``steps``. 0 = off.
        lr_critic: the critic's learning rate; None = ``lr``.
    """

    name = "wgan-gp"
    plugin = "crystens_wgan_gp"
    opponent = "critic"
    opponent_norm = "layer"
    PRESETS = {
        "small": {"latent_dim": 128, "width": 16, "batch_size": 32, "lr": 1e-3, "betas": [0.0, 0.9], "critic_steps": 2, "gp_weight": 10.0, "steps": 400, "instance_noise": 0.0, "lr_critic": None},
        "paper": {"latent_dim": 128, "width": 64, "batch_size": 64, "lr": 1e-4, "betas": [0.0, 0.9], "critic_steps": 5, "gp_weight": 10.0, "steps": 100 * 45231 // 64, "instance_noise": 0.0, "lr_critic": None},
    }
    SETTING_BOUNDS = {**AdversarialGenerator.SETTING_BOUNDS, "critic_steps": SettingBound(1, 100), "gp_weight": SettingBound(0.0, 1e6), "lr_critic": SettingBound(0.0, 10.0)}

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """E[(‖∇ critic(x̂)‖ − 1)²] on random interpolates x̂ of real and fake."""
        weight = torch.rand(real.shape[0], 1, 1, 1, generator=rng).to(real.device)
        mixed = (weight * real + (1 - weight) * fake).requires_grad_(True)
        (gradient,) = torch.autograd.grad(self.modules_["critic"](mixed).sum(), mixed, create_graph=True)
        return ((gradient.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def train_step(self, batch, rng):
        generator, critic = self.modules_["generator"], self.modules_["critic"]
        optimizer_g, optimizer_c = self.optimizers_["generator"], self.optimizers_["critic"]
        n, s = batch.shape[0], self.settings
        sigma = annealed(s["instance_noise"], self.step_, s["steps"])
        for _ in range(s["critic_steps"]):
            with torch.no_grad():
                fake = generator(torch.randn(n, s["latent_dim"], generator=rng).to(batch.device))
            real = instance_noise(batch, sigma, rng)
            fake = instance_noise(fake, sigma, rng)
            penalty = self.gradient_penalty(real, fake, rng)
            scores = critic(torch.cat([fake, real]))  # one pass over fakes, then reals
            loss_c = scores[:n].mean() - scores[n:].mean() + s["gp_weight"] * penalty
            optimizer_c.zero_grad(set_to_none=True)
            self.accelerator_.backward(loss_c)
            optimizer_c.step()
        loss_g = -critic(instance_noise(generator(torch.randn(n, s["latent_dim"], generator=rng).to(batch.device)), sigma, rng)).mean()
        optimizer_g.zero_grad(set_to_none=True)
        self.accelerator_.backward(loss_g)
        optimizer_g.step()
        return {"loss_critic": loss_c.detach(), "loss_g": loss_g.detach(), "gradient_penalty": penalty.detach()}
