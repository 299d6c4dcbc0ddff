"""The paper's vanilla GAN in Keras: 3-D (transposed) convolutions with dense skips, BCE loss."""

from __future__ import annotations

from crystens_core.generator_base import SettingBound
from crystens_keras.adversarial import KerasAdversarialGenerator
from crystens_keras.backend import keras, tf
from crystens_keras.networks import build_discriminator, build_generator, gan_filters


class KerasGAN(KerasAdversarialGenerator):
    """Generator and sigmoid discriminator trained against each other with binary cross-entropy.

    Networks (paper Appendix B and the authors' code, :mod:`crystens_keras.networks`): a generator of dense layers
    reshaped to 16 × 16 × 4 and eight 3-D transposed convolutions with dense skips
    of the latent, ReLU and batch norm, ending in a sigmoid (64, 64, 4, 1) volume; a
    discriminator of 3-D convolutions and a dense branch with LeakyReLU(0.2) and
    batch norm, ending in a sigmoid.

    Presets: ``paper`` — latent 128, width 32 (the paper's filters), 4 dense layers in
    the discriminator, Adam 1e-5 (β = 0.9, 0.999, Keras' defaults) for both networks,
    batch 64, batch-norm momentum 0.99 (Keras' default), none of the stabilisers
    below; ``small`` — the same layer stacks with width 4 (filters ÷ 8), 1 dense
    layer, batch 32 and the torch ``gan`` small preset's stabilisers (Adam β = 0.5,
    0.999, lr 1e-3 for the generator and 2e-4 for the discriminator, instance noise
    0.2, label smoothing 0.1, joint generator pass), batch-norm momentum 0.9 (torch's
    default), 400 steps.

    Settings beyond the paper's (all off in ``paper``), as in the torch ``gan``:
        instance_noise: σ of Gaussian noise added to every volume the discriminator
            sees, annealed linearly to 0 over the preset's ``steps``. 0 = off.
        label_smoothing: the discriminator's target for real tensors is ``1 − label_smoothing``.
        lr_discriminator: the discriminator's learning rate; None = ``lr``.
        joint_generator_pass: in the generator step, pass the real batch and the fakes
            through the batch-normalised discriminator together (as in its own step)
            and use the fakes' logits; False = the fakes alone (the paper's Keras way).
    """

    name = "gan-keras"
    plugin = "crystens_keras"
    opponent = "discriminator"
    PRESETS = {
        "small": {
            "latent_dim": 128, "width": 2, "dense_layers": 1, "dropout": 0.25, "batch_norm_momentum": 0.9, "batch_size": 16,
            "lr": 1e-3, "betas": [0.5, 0.999], "steps": 400, "instance_noise": 0.2, "label_smoothing": 0.1, "lr_discriminator": 2e-4, "joint_generator_pass": True,
        },
        "paper": {
            "latent_dim": 128, "width": 32, "dense_layers": 4, "dropout": 0.25, "batch_norm_momentum": 0.99, "batch_size": 64,
            "lr": 1e-5, "betas": [0.9, 0.999], "steps": 100 * 45231 // 64, "instance_noise": 0.0, "label_smoothing": 0.0, "lr_discriminator": None, "joint_generator_pass": False,
        },
    }
    SETTING_BOUNDS = {
        **KerasAdversarialGenerator.SETTING_BOUNDS,
        "dense_layers": SettingBound(0, 16),
        "batch_norm_momentum": SettingBound(0.0, 1.0),
        "label_smoothing": SettingBound(0.0, 1.0),
        "lr_discriminator": SettingBound(0.0, 10.0),
    }

    def build(self, channels, size):
        s = self.settings
        filters, final = gan_filters(int(s["width"]))
        momentum = float(s["batch_norm_momentum"])
        generator = build_generator(int(s["latent_dim"]), channels, size, filters, final, norm="batch", activation="relu", dense_skips=True, momentum=momentum)
        discriminator = build_discriminator(channels, size, int(s["width"]), dense_layers=int(s["dense_layers"]), dropout=float(s["dropout"]), momentum=momentum)
        # The same layers up to the pre-sigmoid logit, for a numerically stable BCE.
        self._logits = keras.Model(discriminator.input, discriminator.get_layer("logit").output, name="discriminator_logits")
        return {"generator": generator, "discriminator": discriminator}

    def train_step(self, batch, key, sigma):
        generator, discriminator = self.networks_["generator"], self.networks_["discriminator"]
        optimizer_g, optimizer_d = self.optimizers_["generator"], self.optimizers_["discriminator"]
        s, logits_of = self.settings, self._logits
        n = tf.shape(batch)[0]
        keys = tf.random.experimental.stateless_split(key, 3)
        real_target = 1.0 - float(s["label_smoothing"])  # one-sided: fakes keep target 0
        with tf.GradientTape() as tape_g:
            fake = generator(self.latents(n, keys[0]), training=True)
            with tape_g.stop_recording():
                # Discriminator: real → 1, fake → 0, in one pass over both halves.
                with tf.GradientTape() as tape_d:
                    logits = logits_of(self.noisy(tf.concat([batch, tf.stop_gradient(fake)], 0), sigma, keys[1]), training=True)[:, 0]
                    targets = tf.concat([tf.fill([n], real_target), tf.zeros([n])], 0)
                    loss_d = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))
                variables = discriminator.trainable_variables
                optimizer_d.apply(tape_d.gradient(loss_d, variables), variables)
            # Generator: make the (updated) discriminator call the fakes real.
            if s["joint_generator_pass"]:
                fake_logits = logits_of(self.noisy(tf.concat([batch, fake], 0), sigma, keys[2]), training=True)[n:, 0]
            else:
                fake_logits = logits_of(self.noisy(fake, sigma, keys[2]), training=True)[:, 0]
            loss_g = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones([n]), logits=fake_logits))
        variables = generator.trainable_variables
        optimizer_g.apply(tape_g.gradient(loss_g, variables), variables)
        return {"loss_d": loss_d, "loss_g": loss_g}
