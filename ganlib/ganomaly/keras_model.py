"""Keras 3 twin of GANomaly: the same four networks, layer for layer.

The training step is a ``tf.GradientTape`` step compiled by ``tf.function``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..backend_keras import KerasBackend, batch_norm, dcgan_initializer
from . import network_size, to_model_space, training_losses


def _batchnorm():
    """BatchNorm with PyTorch's constants and DCGAN's N(1, 0.02) scales, as in PyTorch.

    Shown in chapters/04_ganomaly.ipynb.
    """
    return batch_norm(gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def _conv(filters, strides, padding):
    return keras.layers.Conv2D(
        filters,
        4,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=dcgan_initializer(),
    )


def _deconv(filters, strides, padding):
    return keras.layers.Conv2DTranspose(
        filters,
        4,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=dcgan_initializer(),
    )


def build_encoder(
    channels: int, size: int, base_filters: int, out_channels: int | None, name: str
) -> keras.Sequential:
    """DCGAN encoder: image (N, s, s, C) -> code (N, out_channels) or, if None, 4x4 map.

    Shown in chapters/04_ganomaly.ipynb.
    """
    layers = [
        keras.Input((size, size, channels)),
        _conv(base_filters, 2, "same"),
        keras.layers.LeakyReLU(0.2),
    ]
    filters, side = base_filters, size // 2
    while side > 4:
        layers += [
            _conv(filters * 2, 2, "same"),
            _batchnorm(),
            keras.layers.LeakyReLU(0.2),
        ]
        filters, side = filters * 2, side // 2
    if out_channels is not None:
        layers += [_conv(out_channels, 1, "valid"), keras.layers.Flatten()]
    return keras.Sequential(layers, name=name)


def build_decoder(
    channels: int, size: int, base_filters: int, latent_dim: int
) -> keras.Sequential:
    """DCGAN decoder ``G_D``: code (N, latent_dim) -> image (N, s, s, C), tanh.

    Shown in chapters/04_ganomaly.ipynb.
    """
    filters = base_filters * size // 8
    layers = [
        keras.Input((latent_dim,)),
        keras.layers.Reshape((1, 1, latent_dim)),
        _deconv(filters, 1, "valid"),
        _batchnorm(),
        keras.layers.ReLU(),
    ]
    side = 4
    while side < size // 2:
        layers += [_deconv(filters // 2, 2, "same"), _batchnorm(), keras.layers.ReLU()]
        filters, side = filters // 2, side * 2
    layers += [_deconv(channels, 2, "same"), keras.layers.Activation("tanh")]
    return keras.Sequential(layers, name="decoder")


def build_discriminator(channels: int, size: int, base_filters: int) -> keras.Model:
    """D: image -> ``[features, logit]``, the last 4x4 feature map and the "real" logit.

    Shown in chapters/04_ganomaly.ipynb.
    """
    image = keras.Input((size, size, channels))
    body = build_encoder(channels, size, base_filters, None, "discriminator_features")
    features = body(image)
    logit = keras.layers.Flatten()(_conv(1, 1, "valid")(features))
    return keras.Model(
        image, [features, keras.ops.reshape(logit, (-1,))], name="discriminator"
    )


def _all_layers(model):
    """Every layer of ``model``, nested models unrolled."""
    for layer in model.layers:
        yield from _all_layers(layer) if hasattr(layer, "layers") else (layer,)


class GANomalyKeras(KerasBackend):
    """The four networks, their two Adam optimisers and the training step."""

    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        size, latent = network_size(height, width), self.hp["latent_dim"]
        filters = self.hp["base_filters"]
        self.generator_encoder = build_encoder(
            channels, size, filters, latent, "generator_encoder"
        )
        self.decoder = build_decoder(channels, size, filters, latent)
        self.networks = {
            "generator_encoder": self.generator_encoder,
            "decoder": self.decoder,
        }
        if self.hp["reencode_with"] == "E":
            self.encoder = build_encoder(channels, size, filters, latent, "encoder")
            self.networks["encoder"] = self.encoder
        else:  # the seed article's variant: x_hat is encoded by G_E itself
            self.encoder = self.generator_encoder
        self.discriminator = build_discriminator(channels, size, filters)
        self.networks["discriminator"] = self.discriminator
        self.g_variables = [
            v
            for name, net in self.networks.items()
            if name != "discriminator"
            for v in net.trainable_variables
        ]
        # epsilon as in torch.optim.Adam (Keras defaults to 1e-7)
        adam = {
            "learning_rate": self.hp["learning_rate"],
            "beta_1": self.hp["beta_1"],
            "beta_2": self.hp["beta_2"],
            "epsilon": 1e-8,
        }
        self.optimizer_g = keras.optimizers.Adam(**adam)
        self.optimizer_d = keras.optimizers.Adam(**adam)
        self.optimizer_g.build(self.g_variables)
        self.optimizer_d.build(self.discriminator.trainable_variables)
        self._step = tf.function(self._graph_step)

    def forward(self, x, training):
        """The generator, encoder-decoder-encoder: returns ``(x_hat, z, z_hat)``."""
        z = self.generator_encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        return x_hat, z, self.encoder(x_hat, training=training)

    def losses(self, x, training=True):
        """G's and D's losses from one forward pass (``training_losses``, written once).

        Shown in chapters/04_ganomaly.ipynb.
        """
        x_hat, z, z_hat = self.forward(x, training)
        d_real = self.discriminator(x, training=training)
        d_fake = self.discriminator(x_hat, training=training)
        return training_losses(x, x_hat, z, z_hat, d_real, d_fake, self.hp, keras.ops)

    def _graph_step(self, x):
        """The compiled part of :meth:`train_step`: one tape, a gradient for each loss.

        Shown in chapters/04_ganomaly.ipynb.
        """
        # persistent tape: G's loss trains G only, D's loss trains D only
        with tf.GradientTape(persistent=True) as tape:
            losses = self.losses(x, training=True)
        d_variables = self.discriminator.trainable_variables
        g_grads = tape.gradient(losses["g_loss"], self.g_variables)
        d_grads = tape.gradient(losses["d_loss"], d_variables)
        del tape
        self.optimizer_g.apply_gradients(zip(g_grads, self.g_variables))
        self.optimizer_d.apply_gradients(zip(d_grads, d_variables))
        return losses

    def train_step(self, batch):
        """One step of G and one of D (compiled); D restarts when it has won.

        Shown in chapters/04_ganomaly.ipynb.
        """
        x = self.to_tensor(to_model_space(batch, self.hp["input_scaling"]))
        losses = {k: float(v) for k, v in self._step(x).items()}
        losses["d_reinit"] = float(losses["d_loss"] < self.hp["d_reinit_threshold"])
        if losses["d_reinit"]:  # D has won outright: restart it, as the official code
            self.reinitialize_discriminator()
        return losses

    def reinitialize_discriminator(self):
        """Fresh DCGAN weights for D: kernels N(0, 0.02), BatchNorm N(1, 0.02) and 0."""
        for layer in _all_layers(self.discriminator):
            if isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(dcgan_initializer()(layer.kernel.shape))
            elif isinstance(layer, keras.layers.BatchNormalization):
                scales = keras.initializers.RandomNormal(1.0, 0.02)(layer.gamma.shape)
                layer.gamma.assign(scales)
                layer.beta.assign(np.zeros(layer.beta.shape, np.float32))

    def outputs(self, batch, training: bool = False):
        """``z``, ``z_hat``, ``x_hat`` (model space); ``training``: batch statistics."""
        x = self.to_tensor(to_model_space(batch, self.hp["input_scaling"]))
        x_hat, z, z_hat = self.forward(x, training)
        return {
            "latent": self.to_numpy(z),
            "latent_reconstructed": self.to_numpy(z_hat),
            "reconstruction": self.to_numpy(x_hat),
        }
