"""Training and sampling throughput of the torch generators against bare torch loops.

    python benchmarks/bench_generators.py [--steps 30] [--width 16] [--batch-size 32] \
        [--generators gan wgan-gp ddpm imagen] [--diffusion-steps 6] [--diffusion-samples 16]

For each generator the same networks, optimisers, batch size and data are trained
(1) through crystens (`generator.fit`: Accelerate, scaler, step-seeded batches,
loss history, progress bar) and (2) by a bare torch loop written here, in the same
process, alternating runs; the ratio is the framework's overhead (aim ≤ 5 %).
The GANs run their plain algorithms at the given width and batch; ddpm and imagen
run their `small` presets for fewer steps (a step takes seconds on a CPU), their
bare loops being diffusers' noise-prediction recipe and imagen-pytorch's own loss
on the two U-Nets in turn. Sampling is timed as tensors per second (generator
forward + unscale) and as structures per second including the `auto` decoder.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.nn import functional as F

from crystens_core import get_decoder, get_encoder, get_generator
from crystens_core.data import load_dataset


def bare_gan_step(generator, discriminator, optimizer_g, optimizer_d, batch, latent_dim):
    n = batch.shape[0]
    fake = generator(torch.randn(n, latent_dim))
    logits = discriminator(torch.cat([batch, fake.detach()]))
    loss_d = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(n), torch.zeros(n)]))
    optimizer_d.zero_grad(set_to_none=True)
    loss_d.backward()
    optimizer_d.step()
    loss_g = F.binary_cross_entropy_with_logits(discriminator(fake), torch.ones(n))
    optimizer_g.zero_grad(set_to_none=True)
    loss_g.backward()
    optimizer_g.step()


def bare_wgan_step(generator, critic, optimizer_g, optimizer_c, batch, latent_dim, critic_steps=5, gp_weight=10.0):
    n = batch.shape[0]
    for _ in range(critic_steps):
        with torch.no_grad():
            fake = generator(torch.randn(n, latent_dim))
        weight = torch.rand(n, 1, 1, 1)
        mixed = (weight * batch + (1 - weight) * fake).requires_grad_(True)
        (gradient,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        penalty = ((gradient.flatten(1).norm(dim=1) - 1) ** 2).mean()
        scores = critic(torch.cat([fake, batch]))
        loss_c = scores[:n].mean() - scores[n:].mean() + gp_weight * penalty
        optimizer_c.zero_grad(set_to_none=True)
        loss_c.backward()
        optimizer_c.step()
    loss_g = -critic(generator(torch.randn(n, latent_dim))).mean()
    optimizer_g.zero_grad(set_to_none=True)
    loss_g.backward()
    optimizer_g.step()


def bare_ddpm_step(model, modules, optimizers, batch, step):
    """diffusers' training recipe: noise at a random timestep, predict it, MSE (the DDPM generator's)."""
    from diffusers import DDPMScheduler

    unet, optimizer = modules["unet"], optimizers[0]
    scheduler = DDPMScheduler(num_train_timesteps=model.settings["timesteps"])
    clean = model._padded(batch)
    noise = torch.randn(clean.shape)
    timesteps = torch.randint(scheduler.config.num_train_timesteps, (clean.shape[0],))
    loss = F.mse_loss(unet(scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bare_imagen_step(model, modules, optimizers, batch, step):
    """imagen-pytorch's own loss on one U-Net, the two taking turns (as the imagen generator)."""
    number = 1 + step % 2
    loss = model.imagen_(model._padded(batch), unet=modules[f"unet{number}"], unet_number=number)
    optimizers[number - 1].zero_grad(set_to_none=True)
    loss.backward()
    optimizers[number - 1].step()


BARE_STEPS = {"gan": bare_gan_step, "wgan-gp": bare_wgan_step, "ddpm": bare_ddpm_step, "imagen": bare_imagen_step}
DIFFUSION_SETTINGS = {"ddpm": {}, "imagen": {}}
#: Settings that turn off the small presets' stabilisers (instance noise, smoothing, ...).
PLAIN = {
    "gan": {"lr": 2e-4, "instance_noise": 0.0, "label_smoothing": 0.0, "lr_discriminator": None, "joint_generator_pass": False},
    "wgan-gp": {"critic_steps": 5, "instance_noise": 0.0, "lr_critic": None},
}


def time_framework(name, settings, tensors, steps):
    model = get_generator(name, **settings)
    model.fit(tensors, steps=2, progress=False)  # build and warm up
    started = time.perf_counter()
    model.fit(tensors, steps=2 + steps, progress=True)
    return time.perf_counter() - started, model


def time_bare(name, model, tensors, scaler, steps, batch_size):
    """The same (freshly copied) networks trained by a plain loop; data scaled per batch like the framework."""
    import copy

    modules = {k: copy.deepcopy(m) for k, m in model.modules_.items()}
    lr = model.settings["lr"]
    if name == "ddpm":
        optimizers = [torch.optim.AdamW(modules["unet"].parameters(), lr=lr)]
    elif name != "imagen":
        optimizers = [torch.optim.Adam(m.parameters(), lr=lr, betas=tuple(model.settings["betas"])) for m in modules.values()]
    rng = np.random.default_rng(0)
    step = BARE_STEPS[name]
    networks = list(modules.values())
    if name == "imagen":  # imagen-pytorch drives the U-Nets it holds: train the framework's own (copied back after)
        modules, saved = model.modules_, {k: copy.deepcopy(m.state_dict()) for k, m in model.modules_.items()}
        optimizers = [torch.optim.Adam(m.parameters(), lr=lr, betas=(0.9, 0.99)) for m in modules.values()]
    started = time.perf_counter()
    for index in range(steps):
        batch = torch.from_numpy(scaler.scale(tensors[rng.integers(len(tensors), size=batch_size)]))
        if name in DIFFUSION_SETTINGS:
            step(model, modules, optimizers, batch, index)
        else:
            step(networks[0], networks[1], optimizers[0], optimizers[1], batch, model.settings["latent_dim"])
    seconds = time.perf_counter() - started
    if name == "imagen":
        for key, module in modules.items():
            module.load_state_dict(saved[key])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--generators", nargs="+", default=["gan", "wgan-gp", "ddpm", "imagen"])
    parser.add_argument("--diffusion-steps", type=int, default=6, help="Training steps per timing for ddpm/imagen (small presets).")
    parser.add_argument("--diffusion-samples", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_dataset("mp20-sample")
    tensors = get_encoder("crystens").encode_batch(data.structures, data.spacegroups)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; data mp20-sample ({len(tensors)} tensors 4×64×64); "
          f"width {args.width}, batch {args.batch_size}, {args.steps} steps per timing, best of {args.repeats}")
    rows = []
    decoder = get_decoder("auto")
    for name in args.generators:
        diffusion = name in DIFFUSION_SETTINGS
        if diffusion:  # the small presets (their own batch sizes), fewer steps: a step takes seconds
            settings = {"device": "cpu", **DIFFUSION_SETTINGS[name]}
            steps, samples = args.diffusion_steps, args.diffusion_samples
        else:  # the plain algorithms, so that the bare loops below do exactly the same work
            settings = {"width": args.width, "batch_size": args.batch_size, "device": "cpu", **PLAIN[name]}
            steps, samples = args.steps, args.samples
        framework, bare = [], []
        for _ in range(args.repeats):
            seconds, model = time_framework(name, settings, tensors, steps)
            framework.append(seconds)
            bare.append(time_bare(name, model, tensors, model.scaler_, steps, model.settings["batch_size"]))
        f_rate = steps * model.settings["batch_size"] / min(framework)
        b_rate = steps * model.settings["batch_size"] / min(bare)
        started = time.perf_counter()
        generated = model.sample(samples, seed=0)
        sample_rate = samples / (time.perf_counter() - started)
        started = time.perf_counter()
        decoder.decode_batch(generated)
        decode_rate = samples / (time.perf_counter() - started)
        if diffusion:
            rows.append((name, f_rate, b_rate, f_rate / b_rate, sample_rate, float("nan"), 1 / (1 / sample_rate + 1 / decode_rate)))
            continue
        with torch.no_grad():
            network = model.modules_["generator"].eval()
            started = time.perf_counter()
            for start in range(0, args.samples, 64):
                network(torch.randn(min(64, args.samples - start), model.settings["latent_dim"]))
            bare_sample_rate = args.samples / (time.perf_counter() - started)
        rows.append((name, f_rate, b_rate, f_rate / b_rate, sample_rate, bare_sample_rate, 1 / (1 / sample_rate + 1 / decode_rate)))
    print()
    print(f"{'generator':10s} {'train samples/s':>16s} {'bare samples/s':>15s} {'overhead':>9s} {'sample tensors/s':>17s} {'bare fwd/s':>11s} {'structures/s (+decode)':>23s}")
    for name, f_rate, b_rate, ratio, s_rate, bs_rate, st_rate in rows:
        print(f"{name:10s} {f_rate:16.1f} {b_rate:15.1f} {100 * (1 / ratio - 1):8.1f}% {s_rate:17.1f} {bs_rate:11.1f} {st_rate:23.1f}")
    print("overhead = bare rate / framework rate − 1 (positive: crystens is slower)")


if __name__ == "__main__":
    main()
