"""The paper's WGAN-GP in Keras: 3-D convolutions, layer-normalised linear critic, gradient penalty."""

from __future__ import annotations

from crystens_core.generator_base import SettingBound
from crystens_keras.adversarial import KerasAdversarialGenerator
from crystens_keras.backend import tf
from crystens_keras.networks import build_critic, build_generator, wgan_filters


class KerasWGANGP(KerasAdversarialGenerator):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017) on the paper's networks.

    Each step trains the critic ``critic_steps`` times on the same real batch with
    fresh latents and the generator once. Networks (paper Appendix B, layers as in the authors' code): the generator is a
    Dense(1024) reshaped to 16 × 16 × 4, eight 3-D transposed convolutions and a
    stride-2 one, layer norm and LeakyReLU(0.2), sigmoid output; the critic is ten
    3-D convolutions and two strided ones with layer norm and LeakyReLU(0.2) — no
    batch norm — and a linear Dense(1). Every layer of both is spectral-normalised
    when ``spectral_norm`` is on (the authors' code; Keras' power-iteration layer).

    Presets: ``paper`` — latent 128, width 16 (the paper's filters), λ = 10, 5 critic
    steps, Adam(1e-4, β = (0, 0.9)), batch 64, spectral norm; ``small`` — width 4
    (filters ÷ 4), batch 32, Adam lr 1e-3 with the same β, 2 critic steps (as the
    torch ``wgan-gp`` small preset), λ = 10, spectral norm, 400 steps.

    Settings beyond the paper's (off in both presets):
        instance_noise: σ of Gaussian noise added to the real and generated volumes
            the critic sees, annealed linearly to 0 over the preset's ``steps``.
        lr_critic: the critic's learning rate; None = ``lr``.
    """

    name = "wgan-gp-keras"
    plugin = "crystens_keras"
    opponent = "critic"
    PRESETS = {
        "small": {
            "latent_dim": 128, "width": 2, "spectral_norm": False, "dropout": 0.25, "batch_size": 16, "lr": 1e-3, "betas": [0.0, 0.9],
            "critic_steps": 2, "gp_weight": 10.0, "steps": 400, "instance_noise": 0.0, "lr_critic": None,
        },
        "paper": {
            "latent_dim": 128, "width": 16, "spectral_norm": True, "dropout": 0.25, "batch_size": 64, "lr": 1e-4, "betas": [0.0, 0.9],
            "critic_steps": 5, "gp_weight": 10.0, "steps": 100 * 45231 // 64, "instance_noise": 0.0, "lr_critic": None,
        },
    }
    SETTING_BOUNDS = {**KerasAdversarialGenerator.SETTING_BOUNDS, "critic_steps": SettingBound(1, 100), "gp_weight": SettingBound(0.0, 1e6), "lr_critic": SettingBound(0.0, 10.0)}

    def build(self, channels, size):
        s = self.settings
        filters, final = wgan_filters(int(s["width"]))
        spectral = bool(s["spectral_norm"])
        generator = build_generator(int(s["latent_dim"]), channels, size, filters, final, norm="layer", activation="leaky_relu", spectral_norm=spectral)
        critic = build_critic(channels, size, int(s["width"]), spectral_norm=spectral, dropout=float(s["dropout"]))
        return {"generator": generator, "critic": critic}

    def gradient_penalty(self, real, fake, key):
        """E[(‖∇ critic(x̂)‖ − 1)²] on random interpolates x̂ of real and fake volumes."""
        weight = tf.random.stateless_uniform(tf.stack([tf.shape(real)[0], 1, 1, 1, 1]), seed=key)
        mixed = weight * real + (1.0 - weight) * fake
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            scores = self.networks_["critic"](mixed, training=True)
        gradient = tape.gradient(scores, mixed)
        norms = tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(gradient, [tf.shape(gradient)[0], -1])), axis=1))
        return tf.reduce_mean(tf.square(norms - 1.0))

    def train_step(self, batch, key, sigma):
        generator, critic = self.networks_["generator"], self.networks_["critic"]
        optimizer_g, optimizer_c = self.optimizers_["generator"], self.optimizers_["critic"]
        s = self.settings
        n = tf.shape(batch)[0]
        steps = int(s["critic_steps"])
        keys = tf.random.experimental.stateless_split(key, 4 * steps + 2)
        loss_c, penalty = tf.constant(0.0), tf.constant(0.0)
        for index in tf.range(steps):  # a graph loop: traced once, whatever critic_steps is
            fake = self.noisy(generator(self.latents(n, keys[4 * index]), training=True), sigma, keys[4 * index + 1])
            real = self.noisy(batch, sigma, keys[4 * index + 2])
            with tf.GradientTape() as tape:
                penalty = self.gradient_penalty(real, fake, keys[4 * index + 3])
                scores = critic(tf.concat([fake, real], 0), training=True)[:, 0]  # one pass over fakes, then reals
                loss_c = tf.reduce_mean(scores[:n]) - tf.reduce_mean(scores[n:]) + float(s["gp_weight"]) * penalty
            variables = critic.trainable_variables
            optimizer_c.apply(tape.gradient(loss_c, variables), variables)
        with tf.GradientTape() as tape:
            fake = self.noisy(generator(self.latents(n, keys[-2]), training=True), sigma, keys[-1])
            loss_g = -tf.reduce_mean(critic(fake, training=True))
        variables = generator.trainable_variables
        optimizer_g.apply(tape.gradient(loss_g, variables), variables)
        return {"loss_critic": loss_c, "loss_g": loss_g, "gradient_penalty": penalty}
