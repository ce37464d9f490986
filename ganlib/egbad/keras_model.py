"""Keras 3 twin of EGBAD: encoder, generator and pair discriminator, for tabular data
and for images.

Layer for layer as :mod:`ganlib.egbad.torch_model` (same order, PyTorch's
BatchNorm and Adam settings); the training step is an explicit
``tf.GradientTape`` step compiled with ``tf.function``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..backend_keras import KerasBackend, batch_norm, dcgan_initializer
from ..ema import KerasAverages, KerasEMA, keras_adam
from . import bigan_losses, to_model_space

LEAK = 0.1


def _dense(units, init, **kwargs):
    return keras.layers.Dense(units, kernel_initializer=init(), **kwargs)


# ------------------------------------------------------------- tabular networks (KDD99)


def _glorot():
    return keras.initializers.GlorotUniform()


def tabular_encoder(features: int, latent_dim: int) -> keras.Sequential:
    """The PyTorch ``tabular_encoder``. Shown in chapters/05_egbad.ipynb."""
    return keras.Sequential(
        [
            keras.Input((features,)),
            _dense(64, _glorot),
            keras.layers.LeakyReLU(LEAK),
            _dense(latent_dim, _glorot),
        ],
        name="encoder",
    )


def tabular_generator(features: int, latent_dim: int) -> keras.Sequential:
    """The PyTorch ``tabular_generator``. Shown in chapters/05_egbad.ipynb."""
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            _dense(64, _glorot, activation="relu"),
            _dense(128, _glorot, activation="relu"),
            _dense(features, _glorot),
        ],
        name="generator",
    )


def tabular_discriminator(
    features: int, latent_dim: int, hidden_dim: int = 128, dropout: float = 0.2
) -> keras.Model:
    """D(x, z) -> (logit, joint features), as the PyTorch ``TabularDiscriminator``.

    Shown in chapters/05_egbad.ipynb.
    """
    x_in, z_in = (
        keras.Input((features,), name="x"),
        keras.Input((latent_dim,), name="z"),
    )
    x = keras.layers.Dropout(dropout)(
        keras.layers.LeakyReLU(LEAK)(_dense(128, _glorot, name="x_dense")(x_in))
    )
    z = keras.layers.Dropout(dropout)(
        keras.layers.LeakyReLU(LEAK)(_dense(128, _glorot, name="z_dense")(z_in))
    )
    joint = _dense(hidden_dim, _glorot, name="joint_dense")(
        keras.layers.Concatenate()([x, z])
    )
    features_out = keras.layers.Dropout(dropout)(keras.layers.LeakyReLU(LEAK)(joint))
    logit = _dense(1, _glorot, name="logit")(features_out)
    return keras.Model([x_in, z_in], [logit, features_out], name="discriminator")


# --------------------------------------------------------------- image networks (MNIST)


def image_encoder(
    channels: int, height: int, width: int, latent_dim: int
) -> keras.Sequential:
    conv = lambda filters, strides: keras.layers.Conv2D(  # noqa: E731
        filters,
        3,
        strides=strides,
        padding="same",
        kernel_initializer=dcgan_initializer(),
    )
    return keras.Sequential(
        [
            keras.Input((height, width, channels)),
            conv(32, 1),
            keras.layers.LeakyReLU(LEAK),
            conv(64, 2),
            batch_norm(),
            keras.layers.LeakyReLU(LEAK),
            conv(128, 2),
            batch_norm(),
            keras.layers.LeakyReLU(LEAK),
            keras.layers.Flatten(),
            _dense(latent_dim, dcgan_initializer),
        ],
        name="encoder",
    )


def image_generator(
    channels: int, height: int, width: int, latent_dim: int
) -> keras.Sequential:
    h4, w4 = height // 4, width // 4
    deconv = lambda filters: keras.layers.Conv2DTranspose(  # noqa: E731
        filters,
        4,
        strides=2,
        padding="same",
        kernel_initializer=dcgan_initializer(),
    )
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            _dense(1024, dcgan_initializer),
            batch_norm(),
            keras.layers.ReLU(),
            _dense(h4 * w4 * 128, dcgan_initializer),
            batch_norm(),
            keras.layers.ReLU(),
            keras.layers.Reshape((h4, w4, 128)),
            deconv(64),
            batch_norm(),
            keras.layers.ReLU(),
            deconv(channels),
            keras.layers.Activation("tanh"),
        ],
        name="generator",
    )


def image_discriminator(
    channels: int,
    height: int,
    width: int,
    latent_dim: int,
    hidden_dim: int = 1024,
    dropout: float = 0.5,
) -> keras.Model:
    """D(x, z) -> (logit, joint features); the same layers as the PyTorch
    ``ImageDiscriminator``."""
    x_in, z_in = (
        keras.Input((height, width, channels), name="x"),
        keras.Input((latent_dim,), name="z"),
    )
    conv = lambda name: keras.layers.Conv2D(  # noqa: E731
        64,
        4,
        strides=2,
        padding="same",
        kernel_initializer=dcgan_initializer(),
        name=name,
    )
    x = keras.layers.Dropout(dropout)(
        keras.layers.LeakyReLU(LEAK)(conv("x_conv1")(x_in))
    )
    x = batch_norm(name="x_bn")(conv("x_conv2")(x))
    x = keras.layers.Flatten()(
        keras.layers.Dropout(dropout)(keras.layers.LeakyReLU(LEAK)(x))
    )
    z = _dense(512, dcgan_initializer, name="z_dense")(z_in)
    z = keras.layers.Dropout(dropout)(keras.layers.LeakyReLU(LEAK)(z))
    joint = _dense(hidden_dim, dcgan_initializer, name="joint_dense")(
        keras.layers.Concatenate()([x, z])
    )
    features_out = keras.layers.Dropout(dropout)(keras.layers.LeakyReLU(LEAK)(joint))
    logit = _dense(1, dcgan_initializer, name="logit")(features_out)
    return keras.Model([x_in, z_in], [logit, features_out], name="discriminator")


def build_networks(input_shape, hp) -> dict[str, keras.Model]:
    """The three networks for ``input_shape``, tabular ``(features,)`` or image
    ``(H, W, C)``."""
    latent = hp["latent_dim"]
    if len(input_shape) == 1:
        features = input_shape[0]
        return {
            "encoder": tabular_encoder(features, latent),
            "generator": tabular_generator(features, latent),
            "discriminator": tabular_discriminator(features, latent, hp["hidden_dim"]),
        }
    height, width, channels = input_shape
    return {
        "encoder": image_encoder(channels, height, width, latent),
        "generator": image_generator(channels, height, width, latent),
        "discriminator": image_discriminator(
            channels, height, width, latent, hp["hidden_dim"]
        ),
    }


class EGBADKeras(KerasAverages, KerasBackend):
    """EGBAD's networks, optimisers (with weight averages) and training step in
    Keras."""

    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        self.networks = build_networks(self.input_shape, self.hp)
        self.encoder, self.generator, self.discriminator = (
            self.networks[k] for k in ("encoder", "generator", "discriminator")
        )
        self.optimizers = {
            k: keras_adam(
                self.hp["learning_rate"], self.hp["beta_1"], self.hp["ema_decay"]
            )
            for k in self.networks
        }
        self.ema = KerasEMA(
            {k: (self.networks[k], self.optimizers[k]) for k in self.networks},
            self.hp["ema_warmup"],
        )
        self.noise = keras.random.SeedGenerator(seed)
        self._step = tf.function(self._graph_step, reduce_retracing=True)

    def latent_noise(self, n):
        """z ~ N(0, I) for ``n`` samples, drawn within the compiled step.

        A test feeds both twins the same z through it.
        """
        return keras.random.normal((n, self.hp["latent_dim"]), seed=self.noise)

    def _graph_step(self, x):
        """The PyTorch twin's ``train_step``, under ``tf.GradientTape``.

        Shown in chapters/05_egbad.ipynb.
        """
        n = tf.shape(x)[0]
        enc, gen, dis = self.encoder, self.generator, self.discriminator

        # D: (x, E(x)) is real, (G(z), z) is fake
        z = self.latent_noise(n)
        z_enc = tf.stop_gradient(enc(x, training=True))
        x_gen = tf.stop_gradient(gen(z, training=True))
        with tf.GradientTape() as tape:
            logit_real, _ = dis([x, z_enc], training=True)
            logit_fake, _ = dis([x_gen, z], training=True)
            loss_d = bigan_losses(logit_real, logit_fake, keras.ops)["loss_d"]
        self.optimizers["discriminator"].apply_gradients(
            zip(tape.gradient(loss_d, dis.trainable_variables), dis.trainable_variables)
        )

        # G and E together, labels inverted
        z = self.latent_noise(n)
        with tf.GradientTape(persistent=True) as tape:
            logit_real, _ = dis([x, enc(x, training=True)], training=True)
            logit_fake, _ = dis([gen(z, training=True), z], training=True)
            losses = bigan_losses(logit_real, logit_fake, keras.ops)
            loss_g, loss_e = losses["loss_g"], losses["loss_e"]
        self.optimizers["generator"].apply_gradients(
            zip(tape.gradient(loss_g, gen.trainable_variables), gen.trainable_variables)
        )
        self.optimizers["encoder"].apply_gradients(
            zip(tape.gradient(loss_e, enc.trainable_variables), enc.trainable_variables)
        )
        del tape
        return loss_d, loss_g, loss_e

    def train_step(self, batch):
        self.ema.before_step()  # the decay of this step's average update
        loss_d, loss_g, loss_e = self._step(self.to_tensor(to_model_space(batch)))
        return {
            "loss_d": float(loss_d),
            "loss_g": float(loss_g),
            "loss_e": float(loss_e),
        }

    scoring_networks = ("encoder", "generator", "discriminator")

    def _forward(self, batch, training=False):
        x = self.to_tensor(to_model_space(batch))
        z = self.encoder(x, training=training)
        x_rec = self.generator(z, training=training)
        logit_input, features_input = self.discriminator([x, z], training=training)
        logit_rec, features_rec = self.discriminator([x_rec, z], training=training)
        return {
            "reconstruction": self.to_numpy(x_rec),
            "latent": self.to_numpy(z),
            "logit_input": self.to_numpy(logit_input),
            "logit_reconstruction": self.to_numpy(logit_rec),
            "features_input": self.to_numpy(features_input),
            "features_reconstruction": self.to_numpy(features_rec),
        }
