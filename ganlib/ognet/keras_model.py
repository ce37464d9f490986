"""Keras 3 twin of OGNet's networks and its two training phases
(Zaheer et al., 2020, section 3)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..backend_keras import KerasBackend, batch_norm
from ..losses import bce_with_logits
from . import TwoPhaseWeights, add_noise, model_shape, to_model_space

bn = batch_norm  # PyTorch's BatchNorm constants, so both twins normalise alike


def build_generator(
    channels: int, height: int, width: int, base: int
) -> keras.Sequential:
    """G (section 3.1): four 5x5 convolutions without padding (45 -> 29 pixels, no
    bottleneck vector), mirrored by four transposed convolutions back to the input size,
    tanh output.  The author's code puts ReLU before BatchNorm in the last two encoder
    layers; so do we.

    Shown in chapters/03_ognet.ipynb.
    """
    relu = keras.layers.ReLU
    conv, deconv = keras.layers.Conv2D, keras.layers.Conv2DTranspose
    return keras.Sequential(
        [
            keras.Input((height, width, channels)),
            conv(base, 5),
            bn(),
            relu(),
            conv(2 * base, 5),
            bn(),
            relu(),
            conv(4 * base, 5),
            relu(),
            bn(),
            conv(8 * base, 5),
            relu(),
            bn(),
            deconv(4 * base, 5),
            bn(),
            relu(),
            deconv(2 * base, 5),
            bn(),
            relu(),
            deconv(base, 5),
            bn(),
            relu(),
            deconv(channels, 5, activation="tanh"),
        ],
        name="generator",
    )


def build_discriminator(
    channels: int, height: int, width: int, base: int
) -> keras.Sequential:
    """D (section 3.1): four 5x5 stride-2 convolutions (BatchNorm on the first three,
    ReLU), then a dense logit.

    PyTorch's ``padding=2`` pads two pixels on every side; Keras' ``"same"``
    would pad asymmetrically on even sizes, so the padding is explicit.

    Shown in chapters/03_ognet.ipynb.
    """
    layers = [keras.Input((height, width, channels))]
    for i, filters in enumerate((base, 2 * base, 4 * base, 8 * base)):
        layers += [
            keras.layers.ZeroPadding2D(2),
            keras.layers.Conv2D(filters, 5, strides=2),
        ]
        layers += [bn(), keras.layers.ReLU()] if i < 3 else [keras.layers.ReLU()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(1)]  # "badness" logit
    return keras.Sequential(layers, name="discriminator")


def bce(logit, target: float):
    """BCE of sigmoid(logit) against a constant label (ganlib.losses, as in PyTorch)."""
    return bce_with_logits(logit, target, keras.ops)


class OGNetKeras(TwoPhaseWeights, KerasBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = model_shape(self.input_shape, self.hp["image_size"])
        base = self.hp["base_filters"]
        self.generator = build_generator(channels, height, width, base)
        self.discriminator = build_discriminator(channels, height, width, base)
        self.networks = {
            "generator": self.generator,
            "discriminator": self.discriminator,
        }
        self.generator_old = build_generator(channels, height, width, base)
        # epsilon as in torch.optim.Adam (Keras defaults to 1e-7)
        self.optimizer_g = keras.optimizers.Adam(
            self.hp["g_learning_rate"], epsilon=1e-8
        )
        self.optimizer_d = keras.optimizers.Adam(
            self.hp["d_learning_rate"], epsilon=1e-8
        )
        self.optimizer_g.build(self.generator.trainable_variables)
        self.optimizer_d.build(self.discriminator.trainable_variables)
        self.optimizer_phase_two = None
        self.noise_rng = np.random.default_rng(seed)
        self._phase_one = tf.function(self._graph_phase_one)
        # traced once: every call of phase two (the probe, a sweep over beta) reuses it
        self._phase_two = tf.function(self._graph_phase_two)

    def to_model_tensor(self, batch: np.ndarray):
        """Images in [0, 1] -> :func:`~ganlib.ognet.to_model_space`, as a tensor."""
        return self.to_tensor(to_model_space(batch, self.hp["image_size"]))

    def _graph_phase_one(self, x, x_noisy):
        """Phase one (eqs. 1-3): D's step, then G's against the updated D (traced).

        Shown in chapters/03_ognet.ipynb.
        """
        lam = self.hp["adversarial_weight"]
        with tf.GradientTape() as g_tape:
            reconstruction = self.generator(x_noisy, training=True)
            # D's update is kept off G's tape: it is D's business, and G's loss must see
            # the updated D
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    loss_d = 0.5 * (
                        bce(self.discriminator(reconstruction, training=True), 1.0)
                        + bce(self.discriminator(x, training=True), 0.0)
                    )
                d_variables = self.discriminator.trainable_variables
                self.optimizer_d.apply_gradients(
                    zip(d_tape.gradient(loss_d, d_variables), d_variables)
                )
            loss_reconstruction = keras.ops.mean(keras.ops.square(reconstruction - x))
            loss_adversarial = bce(
                self.discriminator(reconstruction, training=True), 0.0
            )
            loss_g = (1 - lam) * loss_reconstruction + lam * loss_adversarial
        g_variables = self.generator.trainable_variables
        self.optimizer_g.apply_gradients(
            zip(g_tape.gradient(loss_g, g_variables), g_variables)
        )
        return loss_d, loss_reconstruction, loss_adversarial

    def train_step(self, batch):
        """Phase one: D's step, then G's step against the updated D."""
        x_numpy = to_model_space(batch, self.hp["image_size"])
        x_noisy = add_noise(x_numpy, self.hp["noise_std"], self.noise_rng)
        loss_d, loss_reconstruction, loss_adversarial = self._phase_one(
            self.to_tensor(x_numpy), self.to_tensor(x_noisy)
        )
        return {
            "loss_d": float(loss_d),
            "loss_g_reconstruction": float(loss_reconstruction),
            "loss_g_adversarial": float(loss_adversarial),
        }

    def snapshot_old_generator(self) -> None:
        """Freeze a copy of the current G as G_old."""
        self.generator_old.set_weights(self.generator.get_weights())

    def start_phase_two(self) -> None:
        """A fresh Adam for D alone, at phase two's low learning rate.

        The first call builds it; later calls zero its state (step count and
        moments) instead, which is the same fresh Adam, because the traced
        step holds on to the optimiser's variables and a new one would retrace.
        """
        rate = self.hp["phase_two_learning_rate"]
        if self.optimizer_phase_two is None:
            self.optimizer_phase_two = keras.optimizers.Adam(rate, epsilon=1e-8)
            self.optimizer_phase_two.build(self.discriminator.trainable_variables)
            return
        for variable in self.optimizer_phase_two.variables:
            variable.assign(keras.ops.zeros_like(variable))
        self.optimizer_phase_two.learning_rate = rate

    def _graph_phase_two(self, x, x_partner, weights):
        """One D update of phase two (eq. 7), traced by ``tf.function``; ``weights``
        holds α, 1 - α, β, 1 - β as a tensor, so that a new α or β needs no retracing.

        Shown in chapters/03_ognet.ipynb.
        """
        # G and G_old are frozen: outside the tape, in inference mode
        good = self.generator(x, training=False)
        old = self.generator_old(x, training=False)
        mixed = (old + self.generator_old(x_partner, training=False)) / 2
        pseudo = self.generator(mixed, training=False)
        alpha, one_minus_alpha, beta, one_minus_beta = tf.unstack(weights)
        d = self.discriminator
        with tf.GradientTape() as tape:
            loss = (
                alpha * bce(d(x, training=True), 0.0)
                + one_minus_alpha * bce(d(good, training=True), 0.0)
                + beta * bce(d(old, training=True), 1.0)
                + one_minus_beta * bce(d(pseudo, training=True), 1.0)
            )
        variables = self.discriminator.trainable_variables
        self.optimizer_phase_two.apply_gradients(
            zip(tape.gradient(loss, variables), variables)
        )
        return loss

    def phase_two_step(self, batch, partners) -> float:
        """One D update on good (X, G(X)) against bad (G_old(X), pseudo-anomalies
        G((G_old(X_i) + G_old(X_j)) / 2))."""
        alpha, beta = self.hp["alpha"], self.hp["beta"]
        weights = tf.constant([alpha, 1 - alpha, beta, 1 - beta], tf.float32)
        return float(
            self._phase_two(
                self.to_model_tensor(batch), self.to_model_tensor(partners), weights
            )
        )

    def phase_two_images(self, batch, partners) -> dict[str, np.ndarray]:
        """Phase two's images in inference mode: G(X), G_old(X), pseudo-anomalies."""
        x, x_partner = self.to_model_tensor(batch), self.to_model_tensor(partners)
        old = self.generator_old(x, training=False)
        mixed = (old + self.generator_old(x_partner, training=False)) / 2
        pseudo = self.generator(mixed, training=False)
        return {
            "good": self.to_numpy(self.generator(x, training=False)),
            "old": self.to_numpy(old),
            "pseudo": self.to_numpy(pseudo),
        }

    def outputs(self, batch):
        x = self.to_model_tensor(batch)
        reconstruction = self.generator(x, training=False)
        return {
            "reconstruction": self.to_numpy(reconstruction),
            "d_logit_input": self.to_numpy(self.discriminator(x, training=False)),
            "d_logit_reconstruction": self.to_numpy(
                self.discriminator(reconstruction, training=False)
            ),
        }
