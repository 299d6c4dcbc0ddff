"""A single-stage denoising diffusion model on the (C, S, S) tensor with diffusers.

Training predicts the noise added at a random timestep (DDPM, Ho et al. 2020) in
scaled space [−1, 1]; sampling runs the DDPM scheduler over every timestep or,
with ``sampler="ddim"``, a DDIM scheduler built from the same configuration in
``inference_steps`` steps.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from crystens_core.generator_base import SettingBound
from crystens_torch.generator import TorchGenerator

#: Down-sampling stages need a side divisible by this; other sides are padded and cropped.
MULTIPLE = 8


class DDPMGenerator(TorchGenerator):
    """diffusers ``UNet2DModel`` + ``DDPMScheduler``.

    Presets: ``small`` — U-Net channels (16, 32, 32), one ResNet block per level, no
    attention, batch 8, Adam 2e-4, 300 steps, DDIM sampling in 25 steps (not yet
    tuned: how much it learns in CPU minutes is unmeasured); ``paper``
    — channels (128, 256, 256, 512) with attention at the two deepest levels, two
    blocks per level, batch 16, Adam 1e-4, 1000 timesteps, full DDPM sampling.
    """

    name = "ddpm"
    plugin = "crystens_ddpm"
    feature_range = (-1.0, 1.0)
    PRESETS = {
        "small": {"block_out_channels": [16, 32, 32], "layers_per_block": 1, "attention": False, "norm_num_groups": 8, "batch_size": 8, "lr": 2e-4, "timesteps": 1000, "steps": 300, "sampler": "ddim", "inference_steps": 25},
        "paper": {"block_out_channels": [128, 256, 256, 512], "layers_per_block": 2, "attention": True, "norm_num_groups": 32, "batch_size": 16, "lr": 1e-4, "timesteps": 1000, "steps": 250_000, "sampler": "ddpm", "inference_steps": 1000},
    }
    SETTING_BOUNDS = {
        **TorchGenerator.SETTING_BOUNDS,
        "block_out_channels": SettingBound(1, 2048, items=(1, 6)),
        "layers_per_block": SettingBound(1, 8),
        "norm_num_groups": SettingBound(1, 128),
        "timesteps": SettingBound(1, 100_000),
        "inference_steps": SettingBound(1, 100_000),
        "sampler": SettingBound(choices=("ddpm", "ddim")),
    }

    def build(self, channels, size):
        from diffusers import UNet2DModel

        s = self.settings
        levels = len(s["block_out_channels"])
        down = ["DownBlock2D"] * levels
        up = ["UpBlock2D"] * levels
        if s["attention"]:
            down[-2:] = ["AttnDownBlock2D"] * 2
            up[:2] = ["AttnUpBlock2D"] * 2
        padded = MULTIPLE * -(-size // MULTIPLE)
        unet = UNet2DModel(
            sample_size=padded,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(s["block_out_channels"]),
            layers_per_block=s["layers_per_block"],
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            norm_num_groups=s["norm_num_groups"],
        )
        return {"unet": unet}

    def make_optimizers(self, modules):
        return {"unet": torch.optim.AdamW(modules["unet"].parameters(), lr=self.settings["lr"])}

    def _scheduler(self, training: bool):
        from diffusers import DDIMScheduler, DDPMScheduler

        ddpm = DDPMScheduler(num_train_timesteps=self.settings["timesteps"])
        if training or self.settings["sampler"] == "ddpm":
            return ddpm
        if self.settings["sampler"] == "ddim":
            return DDIMScheduler.from_config(ddpm.config)
        raise ValueError(f"ddpm: sampler must be 'ddpm' or 'ddim', got {self.settings['sampler']!r}")

    def _padded(self, tensors: torch.Tensor) -> torch.Tensor:
        pad = MULTIPLE * -(-tensors.shape[-1] // MULTIPLE) - tensors.shape[-1]
        return F.pad(tensors, (0, pad, 0, pad)) if pad else tensors

    def train_step(self, batch, rng):
        unet, optimizer = self.modules_["unet"], self.optimizers_["unet"]
        scheduler = getattr(self, "_train_scheduler", None) or self._scheduler(training=True)
        self._train_scheduler = scheduler
        clean = self._padded(batch)
        noise = torch.randn(clean.shape, generator=rng).to(clean.device)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (clean.shape[0],), generator=rng).to(clean.device)
        prediction = unet(scheduler.add_noise(clean, noise, timesteps), timesteps).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        self.accelerator_.backward(loss)
        optimizer.step()
        return {"loss": loss.detach()}

    def generate(self, count, rng):
        unet = self.modules_["unet"]
        device = next(unet.parameters()).device
        size = self.shape[-1]
        scheduler = self._scheduler(training=False)
        scheduler.set_timesteps(self.settings["inference_steps"] if self.settings["sampler"] == "ddim" else self.settings["timesteps"])
        sample = torch.randn((count, self.shape[0]) + (MULTIPLE * -(-size // MULTIPLE),) * 2, generator=rng, device=rng.device).to(device)
        for timestep in scheduler.timesteps:
            noise = unet(sample, timestep).sample
            sample = scheduler.step(noise, timestep, sample, generator=rng).prev_sample
        return sample[..., :size, :size]
