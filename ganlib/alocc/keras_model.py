"""Keras 3 twin of ALOCC's networks and training step
(Sabokrou et al., 2018, section 3 and Figs. 3-4)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .. import backend_keras
from ..backend_keras import KerasBackend, dcgan_initializer
from ..losses import bce_with_logits
from . import add_noise, encoder_sizes, reconstruction_loss

LEAK = 0.2  # LeakyReLU slope of the official code's ``lrelu``


def conv(filters: int, stride: int = 1, **kwargs) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters,
        5,
        strides=stride,
        padding="same",
        kernel_initializer=dcgan_initializer(),
        **kwargs,
    )


def batch_norm() -> keras.layers.BatchNormalization:
    """PyTorch's BatchNorm constants, and DCGAN's N(1, 0.02) scale as ``dcgan_init``."""
    return backend_keras.batch_norm(
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02)
    )


def upsample_to(
    size: tuple[int, int], current: tuple[int, int]
) -> list[keras.layers.Layer]:
    """Nearest-neighbour x2 upsampling cropped to ``size`` (4 -> 8 -> 7)."""
    layers = [keras.layers.UpSampling2D(2)]
    crop = (2 * current[0] - size[0], 2 * current[1] - size[1])
    if any(crop):
        layers.append(keras.layers.Cropping2D(((0, crop[0]), (0, crop[1]))))
    return layers


def build_reconstructor(
    channels: int, height: int, width: int, base: int
) -> keras.Sequential:
    """R (paper, Fig. 3): three 5x5 stride-2 conv + BN + LeakyReLU layers, then three
    conv + BN + ReLU + upsampling layers back to the input size, then a 5x5 conv with a
    sigmoid (images in [0, 1]).

    Shown in chapters/02_alocc.ipynb.
    """
    sizes = encoder_sizes(height, width)
    layers = [keras.Input((height, width, channels))]
    for filters in (2 * base, 4 * base, 8 * base):
        layers += [conv(filters, 2), batch_norm(), keras.layers.LeakyReLU(LEAK)]
    for filters, size, current in (
        (4 * base, sizes[2], sizes[3]),
        (2 * base, sizes[1], sizes[2]),
        (base, sizes[0], sizes[1]),
    ):
        layers += [
            conv(filters, 1),
            batch_norm(),
            keras.layers.ReLU(),
            *upsample_to(size, current),
        ]
    layers.append(conv(channels, 1, activation="sigmoid"))
    return keras.Sequential(layers, name="reconstructor")


def build_discriminator(
    channels: int, height: int, width: int, base: int
) -> keras.Sequential:
    """D (paper, Fig. 4): four 5x5 stride-2 convolutions (BN on all but the first,
    LeakyReLU), then a dense logit.

    Shown in chapters/02_alocc.ipynb.
    """
    layers = [
        keras.Input((height, width, channels)),
        conv(base, 2),
        keras.layers.LeakyReLU(LEAK),
    ]
    for filters in (2 * base, 4 * base, 8 * base):
        layers += [conv(filters, 2), batch_norm(), keras.layers.LeakyReLU(LEAK)]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer=dcgan_initializer()),
    ]  # a logit
    return keras.Sequential(layers, name="discriminator")


def rmsprop(learning_rate: float) -> keras.optimizers.RMSprop:
    # Keras adds epsilon inside the square root, PyTorch outside: 1e-16 here matches
    # PyTorch's 1e-8.
    return keras.optimizers.RMSprop(learning_rate, rho=0.9, epsilon=1e-16)


class ALOCCKeras(KerasBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        base = self.hp["base_filters"]
        self.reconstructor = build_reconstructor(channels, height, width, base)
        self.discriminator = build_discriminator(channels, height, width, base)
        self.networks = {
            "reconstructor": self.reconstructor,
            "discriminator": self.discriminator,
        }
        self.optimizer_r = rmsprop(self.hp["learning_rate"])
        self.optimizer_d = rmsprop(self.hp["learning_rate"])
        self.optimizer_r.build(self.reconstructor.trainable_variables)
        self.optimizer_d.build(self.discriminator.trainable_variables)
        self.noise_rng = np.random.default_rng(seed)
        self._d_step = tf.function(self._graph_d_step)
        self._r_step = tf.function(self._graph_r_step)

    def reconstruction_loss(self, x, x_noisy, x_hat):
        """R's reconstruction term of eq. 4 (:func:`ganlib.alocc.reconstruction_loss`,
        written once for both twins, here with ``keras.ops``)."""
        return reconstruction_loss(
            x,
            x_noisy,
            x_hat,
            self.hp["reconstruction_loss"],
            self.hp["reconstruction_reduction"],
            keras.ops,
        )

    def _graph_d_step(self, x, x_noisy):
        """D's step of eq. 4, traced by ``tf.function``.

        Shown in chapters/02_alocc.ipynb.
        """
        # D: real target images -> 1, R's reconstructions of their noisy copies -> 0
        fake = self.reconstructor(x_noisy, training=True)
        with tf.GradientTape() as tape:
            real_logit = self.discriminator(x, training=True)
            fake_logit = self.discriminator(fake, training=True)
            loss = bce_with_logits(real_logit, 1.0, keras.ops) + bce_with_logits(
                fake_logit, 0.0, keras.ops
            )
        variables = self.discriminator.trainable_variables
        self.optimizer_d.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _graph_r_step(self, x, x_noisy):
        """One of R's steps of eq. 4, traced by ``tf.function``.

        Shown in chapters/02_alocc.ipynb.
        """
        # R: fool D (its output on R(X̃) -> 1) and reconstruct, weighted by lambda
        with tf.GradientTape() as tape:
            x_hat = self.reconstructor(x_noisy, training=True)
            fake_logit = self.discriminator(x_hat, training=True)
            loss_adv = bce_with_logits(fake_logit, 1.0, keras.ops)
            loss_rec = self.reconstruction_loss(x, x_noisy, x_hat)
            loss = loss_adv + self.hp["lambda_reconstruction"] * loss_rec
        variables = self.reconstructor.trainable_variables
        self.optimizer_r.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss_adv, loss_rec

    def train_step(self, batch):
        """One D update, then ``r_steps`` R updates (eq. 4; the official code's order).

        Shown in chapters/02_alocc.ipynb.
        """
        x = self.to_tensor(batch)
        x_noisy = self.to_tensor(add_noise(batch, self.hp["noise_std"], self.noise_rng))
        loss_d = self._d_step(x, x_noisy)
        for _ in range(self.hp["r_steps"]):
            loss_adv, loss_rec = self._r_step(x, x_noisy)
        return {
            "loss_d": float(loss_d),
            "loss_r_adversarial": float(loss_adv),
            "loss_r_reconstruction": float(loss_rec),
        }

    def outputs(self, batch):
        x = self.to_tensor(batch)
        x_hat = self.reconstructor(x, training=False)
        return {
            "reconstruction": self.to_numpy(x_hat),
            "d_logit_input": self.to_numpy(self.discriminator(x, training=False)),
            "d_logit_reconstruction": self.to_numpy(
                self.discriminator(x_hat, training=False)
            ),
        }
