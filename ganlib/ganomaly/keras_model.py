"""Keras 3 twin of GANomaly: the same four networks, layer for layer, and a ``tf.GradientTape`` training step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..backend_keras import KerasBackend, dcgan_initializer
from . import network_size, prepare

# PyTorch's BatchNorm defaults, so that both twins normalise identically
BATCHNORM = {"momentum": 0.9, "epsilon": 1e-5}


def _batchnorm():
    """BatchNorm with DCGAN's N(1, 0.02) scale initialisation, as ``dcgan_init`` on the PyTorch side."""
    return keras.layers.BatchNormalization(**BATCHNORM, gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def _conv(filters, strides, padding):
    return keras.layers.Conv2D(filters, 4, strides=strides, padding=padding, use_bias=False,
                               kernel_initializer=dcgan_initializer())


def _deconv(filters, strides, padding):
    return keras.layers.Conv2DTranspose(filters, 4, strides=strides, padding=padding, use_bias=False,
                                        kernel_initializer=dcgan_initializer())


def build_encoder(channels: int, size: int, base_filters: int, out_channels: int | None, name: str) -> keras.Sequential:
    """DCGAN encoder: image (N, s, s, C) -> code (N, out_channels); ``out_channels=None`` stops at the 4x4 map."""
    layers = [keras.Input((size, size, channels)), _conv(base_filters, 2, "same"), keras.layers.LeakyReLU(0.2)]
    filters, side = base_filters, size // 2
    while side > 4:
        layers += [_conv(filters * 2, 2, "same"), _batchnorm(), keras.layers.LeakyReLU(0.2)]
        filters, side = filters * 2, side // 2
    if out_channels is not None:
        layers += [_conv(out_channels, 1, "valid"), keras.layers.Flatten()]
    return keras.Sequential(layers, name=name)


def build_decoder(channels: int, size: int, base_filters: int, latent_dim: int) -> keras.Sequential:
    """DCGAN decoder: code (N, latent_dim) -> image (N, s, s, C) in [-1, 1] (tanh)."""
    filters = base_filters * size // 8
    layers = [keras.Input((latent_dim,)), keras.layers.Reshape((1, 1, latent_dim)),
              _deconv(filters, 1, "valid"), _batchnorm(), keras.layers.ReLU()]
    side = 4
    while side < size // 2:
        layers += [_deconv(filters // 2, 2, "same"), _batchnorm(), keras.layers.ReLU()]
        filters, side = filters // 2, side * 2
    layers += [_deconv(channels, 2, "same"), keras.layers.Activation("tanh")]
    return keras.Sequential(layers, name="decoder")


def build_discriminator(channels: int, size: int, base_filters: int) -> keras.Model:
    """D: image -> ``[features, logit]``, the last 4x4 feature map and the logit of "real"."""
    image = keras.Input((size, size, channels))
    features = build_encoder(channels, size, base_filters, None, "discriminator_features")(image)
    logit = keras.layers.Flatten()(_conv(1, 1, "valid")(features))
    return keras.Model(image, [features, keras.ops.reshape(logit, (-1,))], name="discriminator")


def _all_layers(model):
    """Every layer of ``model``, nested models unrolled."""
    for layer in model.layers:
        yield from _all_layers(layer) if hasattr(layer, "layers") else (layer,)


class GANomalyKeras(KerasBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        size, latent, filters = network_size(height, width), self.hp["latent_dim"], self.hp["base_filters"]
        self.generator_encoder = build_encoder(channels, size, filters, latent, "generator_encoder")
        self.decoder = build_decoder(channels, size, filters, latent)
        self.networks = {"generator_encoder": self.generator_encoder, "decoder": self.decoder}
        if self.hp["reencode_with"] == "E":
            self.encoder = build_encoder(channels, size, filters, latent, "encoder")
            self.networks["encoder"] = self.encoder
        else:  # the seed article's variant: x_hat is encoded by G_E itself
            self.encoder = self.generator_encoder
        self.discriminator = build_discriminator(channels, size, filters)
        self.networks["discriminator"] = self.discriminator
        self.g_variables = [v for name, net in self.networks.items() if name != "discriminator"
                            for v in net.trainable_variables]
        # epsilon as in torch.optim.Adam (Keras defaults to 1e-7)
        adam = dict(learning_rate=self.hp["learning_rate"], beta_1=self.hp["beta_1"], beta_2=self.hp["beta_2"], epsilon=1e-8)
        self.optimizer_g, self.optimizer_d = keras.optimizers.Adam(**adam), keras.optimizers.Adam(**adam)
        self.optimizer_g.build(self.g_variables)
        self.optimizer_d.build(self.discriminator.trainable_variables)
        self._step = tf.function(self._graph_step)

    def forward(self, x, training):
        """The generator, encoder-decoder-encoder: returns ``(x_hat, z, z_hat)``."""
        z = self.generator_encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        return x_hat, z, self.encoder(x_hat, training=training)

    def losses(self, x, training=True):
        """Generator loss (eq. 4: feature matching + 50 L1 + latent L2) and discriminator BCE, from one forward pass."""
        ops = keras.ops
        x_hat, z, z_hat = self.forward(x, training)
        features_real, logit_real = self.discriminator(x, training=training)
        features_fake, logit_fake = self.discriminator(x_hat, training=training)
        adv = ops.mean(ops.square(features_real - features_fake))
        con = ops.mean(ops.abs(x - x_hat))
        enc = ops.mean(ops.square(z - z_hat))
        g_loss = self.hp["w_adv"] * adv + self.hp["w_con"] * con + self.hp["w_enc"] * enc
        bce = lambda labels, logits: ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True))  # noqa: E731
        d_loss = 0.5 * (bce(ops.ones_like(logit_real), logit_real) + bce(ops.zeros_like(logit_fake), logit_fake))
        return {"g_loss": g_loss, "d_loss": d_loss, "adv": adv, "con": con, "enc": enc}

    def _graph_step(self, x):
        # one tape, two gradients: G's loss trains G only, D's loss trains D only
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
        losses = {k: float(v) for k, v in self._step(self.to_tensor(prepare(batch, self.hp["input_scaling"]))).items()}
        losses["d_reinit"] = float(losses["d_loss"] < self.hp["d_reinit_threshold"])
        if losses["d_reinit"]:  # D has won outright: start it afresh, as the official code does
            self.reinitialize_discriminator()
        return losses

    def reinitialize_discriminator(self):
        """Fresh DCGAN weights for D (convolution kernels N(0, 0.02), BatchNorm scale N(1, 0.02), shift 0)."""
        for layer in _all_layers(self.discriminator):
            if isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(dcgan_initializer()(layer.kernel.shape))
            elif isinstance(layer, keras.layers.BatchNormalization):
                layer.gamma.assign(keras.initializers.RandomNormal(1.0, 0.02)(layer.gamma.shape))
                layer.beta.assign(np.zeros(layer.beta.shape, np.float32))

    def outputs(self, batch, training: bool = False):
        """``z``, ``z_hat`` and ``x_hat`` (network space); ``training=True`` normalises with batch statistics."""
        x_hat, z, z_hat = self.forward(self.to_tensor(prepare(batch, self.hp["input_scaling"])), training)
        return {"latent": self.to_numpy(z), "latent_reconstructed": self.to_numpy(z_hat),
                "reconstruction": self.to_numpy(x_hat)}
