"""The paper's diffusion model: an unconditional imagen-pytorch cascade of two U-Nets.

U-Net 1 generates an (S/2 × S/2) version of the scaled tensor; U-Net 2, conditioned
on that low-resolution tensor (noise-augmented, as in Imagen), generates the full
(S × S) one. Each U-Net has its own optimiser and learns separately from the
real tensors (U-Net 2 from their downsampled copies), as imagen-pytorch requires;
here the two take turns step by step, so a run stopped by a time limit has
trained both. Sampling runs the cascade; imagen-pytorch samples in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from crystens_core.generator_base import SettingBound
from crystens_torch.generator import TorchGenerator

from crystens_imagen.offline import T5_BASE_EMBED_DIM, import_imagen

#: Both U-Nets halve the side twice (dim_mults of length 3) and U-Net 1 works at S/2.
MULTIPLE = 8


class ImagenGenerator(TorchGenerator):
    """imagen-pytorch ``Imagen`` with two ``Unet`` stages (S/2 → S), unconditional.

    Presets: ``paper`` — both U-Nets 256 base channels, dim_mults (1, 2, 4),
    attention at the two deepest levels, 1000 timesteps, batch 4, Adam 1e-4,
    250 000 steps per U-Net (500 000 in all, alternating). ``small`` — 16 base
    channels, no attention, a 7 × 7 first convolution instead of Imagen's
    cross-embedding, 50 sampling timesteps, batch 8, Adam 5e-4.

    imagen-pytorch trains in continuous time, so ``timesteps`` only sets how many
    denoising steps sampling takes: it can be changed on a trained model
    (``from_pretrained(folder, timesteps=250)``).

    Settings besides the common ones: ``dim``, ``dim_mults``, ``resnet_blocks``,
    ``attention`` (self-attention at the two deepest levels and the middle),
    ``cross_embed`` (Imagen's multi-scale first convolution, kernels 3/7/15),
    ``timesteps`` (diffusion steps, training and sampling), ``lr``,
    ``dynamic_thresholding`` (Imagen's percentile clipping of predicted x0),
    ``lowres_sample_noise_level`` (noise on the U-Net 2 conditioning at sampling).
    """

    name = "imagen"
    plugin = "crystens_imagen"
    feature_range = (0.0, 1.0)
    #: Each step trains one U-Net, and unconditional U-Nets keep unused text parameters.
    find_unused_parameters = True
    PRESETS = {
        "small": {"dim": 16, "dim_mults": [1, 2, 4], "resnet_blocks": 1, "attention": False, "cross_embed": False, "timesteps": 50, "batch_size": 8, "lr": 5e-4, "steps": 400, "dynamic_thresholding": True, "lowres_sample_noise_level": 0.2},
        "paper": {"dim": 256, "dim_mults": [1, 2, 4], "resnet_blocks": 2, "attention": True, "cross_embed": True, "timesteps": 1000, "batch_size": 4, "lr": 1e-4, "steps": 500_000, "dynamic_thresholding": True, "lowres_sample_noise_level": 0.2},
    }
    SETTING_BOUNDS = {
        **TorchGenerator.SETTING_BOUNDS,
        "dim": SettingBound(1, 1024),
        "dim_mults": SettingBound(1, 16, items=(1, 6)),
        "resnet_blocks": SettingBound(1, 8),
        "timesteps": SettingBound(1, 100_000),
        "lowres_sample_noise_level": SettingBound(0.0, 1.0),
    }

    def _unet(self, channels: int, lowres: bool):
        imagen_pytorch = import_imagen()
        s = self.settings
        levels = len(s["dim_mults"])
        attention = tuple([False] * (levels - 2) + [True, True]) if s["attention"] else False
        return imagen_pytorch.Unet(
            dim=s["dim"],
            dim_mults=tuple(s["dim_mults"]),
            channels=channels,
            num_resnet_blocks=s["resnet_blocks"],
            layer_attns=attention,
            attend_at_middle=bool(s["attention"]),
            layer_cross_attns=False,
            use_global_context_attn=bool(s["attention"]),
            cond_on_text=False,
            text_embed_dim=T5_BASE_EMBED_DIM,
            lowres_cond=lowres,
            init_cross_embed=bool(s["cross_embed"]),
            memory_efficient=False,
        )

    def build(self, channels, size):
        imagen_pytorch = import_imagen()
        padded = MULTIPLE * -(-size // MULTIPLE)
        self.imagen_ = imagen_pytorch.Imagen(
            unets=(self._unet(channels, False), self._unet(channels, True)),
            image_sizes=(padded // 2, padded),
            channels=channels,
            timesteps=self.settings["timesteps"],
            condition_on_text=False,
            text_embed_dim=T5_BASE_EMBED_DIM,
            cond_drop_prob=0.0,
            dynamic_thresholding=bool(self.settings["dynamic_thresholding"]),
            lowres_sample_noise_level=self.settings["lowres_sample_noise_level"],
        )
        # Imagen may rebuild the U-Nets it is given (cast_model_parameters): train its own.
        return {"unet1": self.imagen_.unets[0], "unet2": self.imagen_.unets[1]}

    def make_optimizers(self, modules):
        return {name: torch.optim.Adam(module.parameters(), lr=self.settings["lr"], betas=(0.9, 0.99)) for name, module in modules.items()}

    def _padded(self, tensors: torch.Tensor) -> torch.Tensor:
        pad = MULTIPLE * -(-tensors.shape[-1] // MULTIPLE) - tensors.shape[-1]
        return F.pad(tensors, (0, pad, 0, pad)) if pad else tensors

    def train_step(self, batch, rng):
        number = 1 + self.step_ % 2  # U-Net 1 on even steps, U-Net 2 on odd ones
        name = f"unet{number}"
        unet, optimizer = self.modules_[name], self.optimizers_[name]
        self.imagen_.to(batch.device)
        with _seeded_from(rng, batch.device):  # imagen-pytorch draws from the global generator
            loss = self.imagen_(self._padded(batch), unet=unet, unet_number=number)
        optimizer.zero_grad(set_to_none=True)
        self.accelerator_.backward(loss)
        optimizer.step()
        return {f"loss_unet{number}": loss.detach()}

    def generate(self, count, rng):
        device = next(self.modules_["unet1"].parameters()).device
        self.imagen_.to(device)
        with _seeded_from(rng, device):
            images = self.imagen_.sample(batch_size=count, use_tqdm=False, device=device)
        size = self.shape[-1]
        return images[..., :size, :size]


class _seeded_from:
    """Seed torch's global generator from ``rng`` inside, restoring it on exit."""

    def __init__(self, rng: torch.Generator, device: Any):
        self.seed = int(torch.randint(2**62, (1,), generator=rng, device=rng.device))
        self.devices = [torch.device(device)] if torch.device(device).type == "cuda" else []

    def __enter__(self):
        self.fork = torch.random.fork_rng(devices=self.devices)
        self.fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self.fork.__exit__(*exc)
