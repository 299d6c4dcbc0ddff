"""The vanilla GAN of the paper in torch: BCE loss, sigmoid discriminator, batch norm."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from crystens_core.generator_base import SettingBound
from crystens_torch.adversarial import AdversarialGenerator
from crystens_torch.networks import annealed, instance_noise


class VanillaGAN(AdversarialGenerator):
    """Generator and discriminator trained against each other with binary cross-entropy.

    Presets: ``paper`` — latent 128, Adam lr 1e-5 (β = 0.9, 0.999, Keras' defaults)
    for both networks, batch 64, width 64, none of the stabilisers below; ``small`` —
    width 16, batch 32, Adam (β = 0.5, 0.999, the DCGAN setting) with lr 1e-3 for the
    generator and 2e-4 for the discriminator, instance noise 0.2, label smoothing 0.1,
    joint generator pass, 400 steps: about a minute on a 2-core CPU, after which the
    K-S statistics of the decoded samples are clearly lower than the untrained
    network's (ks_mean ≈ 0.64–0.66 against 0.84 on mp20-sample).

    Settings beyond the paper's (all off in ``paper``):
        instance_noise: σ of Gaussian noise added to every tensor the discriminator
            sees, real and generated, in both the discriminator and the generator
            step, annealed linearly from σ to 0 over the preset's ``steps`` (a fit
            that runs longer trains on without noise). Real tensors hold exact zeros
            in the padding that a sigmoid output never reaches; the noise keeps that
            from being a perfect tell early on. 0 = off.
        label_smoothing: one-sided label smoothing; the discriminator's target for
            real tensors is ``1 − label_smoothing`` (fakes keep 0). 0 = off.
        lr_discriminator: the discriminator's learning rate; None = ``lr`` (then
            ``lr`` is the generator's only). A faster generator than discriminator
            (two-time-scale rule, here reversed because the discriminator wins easily)
            keeps the discriminator loss off 0 on the small preset.
        joint_generator_pass: in the generator step, pass the real batch and the
            fakes through the discriminator together (as the discriminator step does)
            and use the fakes' logits. With batch norm in the discriminator, a pass
            over fakes alone normalises them with fake-only statistics, so the
            generator is scored by a different function than the one just trained;
            on the small preset both losses then drop to ~0 and nothing is learned.
            False = the fakes alone (the paper preset's behaviour).
    """

    name = "gan"
    plugin = "crystens_gan"
    opponent = "discriminator"
    opponent_norm = "batch"
    PRESETS = {
        "small": {"latent_dim": 128, "width": 16, "batch_size": 32, "lr": 1e-3, "betas": [0.5, 0.999], "steps": 400, "instance_noise": 0.2, "label_smoothing": 0.1, "lr_discriminator": 2e-4, "joint_generator_pass": True},
        "paper": {"latent_dim": 128, "width": 64, "batch_size": 64, "lr": 1e-5, "betas": [0.9, 0.999], "steps": 100 * 45231 // 64, "instance_noise": 0.0, "label_smoothing": 0.0, "lr_discriminator": None, "joint_generator_pass": False},
    }
    SETTING_BOUNDS = {**AdversarialGenerator.SETTING_BOUNDS, "label_smoothing": SettingBound(0.0, 1.0), "lr_discriminator": SettingBound(0.0, 10.0)}

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
