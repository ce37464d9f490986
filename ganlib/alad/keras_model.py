"""Keras 3 twin of ALAD: encoder, generator and the three discriminators, for tabular
data and images.

Layer for layer as :mod:`ganlib.alad.torch_model` (same order, PyTorch's
BatchNorm and Adam settings); spectral normalisation is Keras' own
:class:`keras.layers.SpectralNormalization`.  The training step is an explicit
``tf.GradientTape`` step compiled with ``tf.function``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..backend_keras import KerasBackend, batch_norm
from ..ema import KerasAverages, KerasEMA, keras_adam
from . import TABULAR_WIDTHS, losses_from_logits, to_model_space

LEAK = 0.2
KDD = TABULAR_WIDTHS["kdd"]  # the tabular networks' default widths
NETWORKS = (
    "encoder",
    "generator",
    "discriminator_xz",
    "discriminator_xx",
    "discriminator_zz",
)


def normalized(layer: keras.layers.Layer, enabled: bool) -> keras.layers.Layer:
    """``layer`` wrapped in spectral normalisation when ``enabled``
    (one power iteration per training call)."""
    return (
        keras.layers.SpectralNormalization(layer, power_iterations=1)
        if enabled
        else layer
    )


class Initializers:
    """The official kernels: Glorot-uniform for the tabular networks, N(0, 0.01) for
    the image networks."""

    def __init__(self, image: bool):
        self.image = image

    def __call__(self):
        return (
            keras.initializers.RandomNormal(0.0, 0.01)
            if self.image
            else keras.initializers.GlorotUniform()
        )


def _leaky(x):
    return keras.layers.LeakyReLU(LEAK)(x)


# ------------------------------------------------- tabular networks (KDD99, Arrhythmia)


def _leaky_layers(widths: tuple, init, dropout: float = 0.0, sn: bool = False) -> list:
    """Dense ``widths`` in order (spectrally normalised when ``sn``), each + LeakyReLU.

    Dropout after each activation when ``dropout``: the PyTorch ``_hidden_layers``.
    """
    layers = []
    for width in widths:
        layers += [
            normalized(keras.layers.Dense(width, kernel_initializer=init()), sn),
            keras.layers.LeakyReLU(LEAK),
        ]
        layers += [keras.layers.Dropout(dropout)] if dropout else []
    return layers


def tabular_encoder(
    features: int, latent_dim: int, sn: bool = False, hidden: tuple = KDD["encoder"]
) -> keras.Sequential:
    """The PyTorch ``tabular_encoder``: Dense ``hidden``, LeakyReLU, Dense latent."""
    init = Initializers(image=False)
    layers = _leaky_layers(hidden, init, sn=sn)
    return keras.Sequential(
        [
            keras.Input((features,)),
            *layers,
            keras.layers.Dense(latent_dim, kernel_initializer=init()),
        ],
        name="encoder",
    )


def tabular_generator(
    features: int, latent_dim: int, hidden: tuple = KDD["generator"]
) -> keras.Sequential:
    """The PyTorch ``tabular_generator``: Dense ``hidden`` ReLU, Dense features."""
    init = Initializers(image=False)
    layers = [
        keras.layers.Dense(width, activation="relu", kernel_initializer=init())
        for width in hidden
    ]
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            *layers,
            keras.layers.Dense(features, kernel_initializer=init()),
        ],
        name="generator",
    )


def discriminator_xz(
    x_branch: keras.Sequential,
    z_branch: keras.Sequential,
    joint_units: int,
    dropout: float,
    sn: bool,
    init,
) -> keras.Model:
    """D_xz(x, z) -> (logit, joint features): the two branches, concatenated, a joint
    hidden layer, a logit.

    The branches are sub-models so that the layers come in the PyTorch twin's
    order (a functional model would list them by depth, interleaving the branches).
    Shown in chapters/06_alad.ipynb.
    """
    x_in, z_in = (
        keras.Input(x_branch.input_shape[1:], name="x"),
        keras.Input(z_branch.input_shape[1:], name="z"),
    )
    joint = keras.layers.Concatenate()([x_branch(x_in), z_branch(z_in)])
    joint = normalized(keras.layers.Dense(joint_units, kernel_initializer=init()), sn)(
        joint
    )
    features_out = keras.layers.Dropout(dropout)(_leaky(joint))
    logit = keras.layers.Dense(1, kernel_initializer=init())(features_out)
    return keras.Model([x_in, z_in], [logit, features_out], name="discriminator_xz")


def tabular_discriminator_xz(
    features: int,
    latent_dim: int,
    sn: bool = False,
    x_units: int = KDD["xz_x"],
    z_units: int = KDD["xz_z"],
    joint_units: int = KDD["xz_joint"],
) -> keras.Model:
    """D_xz(x, z): the same layers as the PyTorch ``TabularDiscriminatorXZ``.

    Shown in chapters/06_alad.ipynb.
    """
    init = Initializers(image=False)
    x_dense = normalized(keras.layers.Dense(x_units, kernel_initializer=init()), sn)
    x_branch = keras.Sequential(
        [keras.Input((features,)), x_dense, batch_norm(), keras.layers.LeakyReLU(LEAK)],
        name="x_branch",
    )
    z_layers = _leaky_layers((z_units,), init, 0.5, sn)
    z_branch = keras.Sequential(
        [keras.Input((latent_dim,)), *z_layers], name="z_branch"
    )
    return discriminator_xz(x_branch, z_branch, joint_units, 0.5, sn, init)


def pair_discriminator(
    shape: tuple, hidden_layers: list, init, name: str
) -> keras.Model:
    """D(a, b) -> (logit, features): two inputs stacked, then ``hidden_layers``.

    Shown in chapters/06_alad.ipynb.
    """
    a_in, b_in = keras.Input(shape, name="a"), keras.Input(shape, name="b")
    features_out = keras.layers.Concatenate(axis=-1)([a_in, b_in])
    for layer in hidden_layers:
        features_out = layer(features_out)
    logit = keras.layers.Dense(1, kernel_initializer=init())(features_out)
    return keras.Model([a_in, b_in], [logit, features_out], name=name)


def tabular_discriminator_xx(
    features: int, sn: bool = False, hidden: tuple = KDD["xx"]
) -> keras.Model:
    """D_xx(x, x'): the PyTorch ``tabular_discriminator_xx``.

    Shown in chapters/06_alad.ipynb.
    """
    init = Initializers(image=False)
    return pair_discriminator(
        (features,), _leaky_layers(hidden, init, 0.2, sn), init, "discriminator_xx"
    )


def tabular_discriminator_zz(
    latent_dim: int, sn: bool = False, hidden: tuple = KDD["zz"]
) -> keras.Model:
    """D_zz(z, z'): the PyTorch ``tabular_discriminator_zz``."""
    init = Initializers(image=False)
    return pair_discriminator(
        (latent_dim,), _leaky_layers(hidden, init, 0.2, sn), init, "discriminator_zz"
    )


# ------------------------------------------------- image networks (32x32, MNIST padded)


def _conv_block(filters: int, sn: bool, batchnorm: bool, kernel: int = 4) -> list:
    """A stride-2 'same' conv (spectral norm if ``sn``), optional BatchNorm, LeakyReLU.

    Shown in chapters/06_alad.ipynb.
    """
    init = Initializers(image=True)
    layers = [
        normalized(
            keras.layers.Conv2D(
                filters, kernel, strides=2, padding="same", kernel_initializer=init()
            ),
            sn,
        )
    ]
    if batchnorm:
        layers.append(batch_norm())
    return layers + [keras.layers.LeakyReLU(LEAK)]


def image_encoder(
    channels: int, latent_dim: int, sn: bool = True, base: int = 128
) -> keras.Sequential:
    init = Initializers(image=True)
    return keras.Sequential(
        [
            keras.Input((32, 32, channels)),
            *_conv_block(base, sn, True),
            *_conv_block(2 * base, sn, True),
            *_conv_block(4 * base, sn, True),
            keras.layers.Conv2D(
                latent_dim, 4, padding="valid", kernel_initializer=init()
            ),
            keras.layers.Flatten(),
        ],
        name="encoder",
    )


def image_generator(
    channels: int, latent_dim: int, base: int = 128
) -> keras.Sequential:
    init = Initializers(image=True)

    def block(filters, padding):
        return [
            keras.layers.Conv2DTranspose(
                filters, 4, strides=2, padding=padding, kernel_initializer=init()
            ),
            batch_norm(),
            keras.layers.ReLU(),
        ]

    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Reshape((1, 1, latent_dim)),
            *block(4 * base, "valid"),
            *block(2 * base, "same"),
            *block(base, "same"),
            keras.layers.Conv2DTranspose(
                channels, 4, strides=2, padding="same", kernel_initializer=init()
            ),
            keras.layers.Activation("tanh"),
        ],
        name="generator",
    )


def image_discriminator_xz(
    channels: int, latent_dim: int, sn: bool = True, base: int = 128
) -> keras.Model:
    """D_xz(x, z): the same layers as the PyTorch ``ImageDiscriminatorXZ``."""
    init = Initializers(image=True)
    x_branch = keras.Sequential(
        [
            keras.Input((32, 32, channels)),
            *_conv_block(base, sn, False),
            *_conv_block(2 * base, sn, True),
            *_conv_block(4 * base, sn, True),
            keras.layers.Flatten(),
        ],
        name="x_branch",
    )
    z_layers = []
    for _ in range(2):
        z_layers += [
            normalized(keras.layers.Dense(512, kernel_initializer=init()), sn),
            keras.layers.LeakyReLU(LEAK),
            keras.layers.Dropout(0.2),
        ]
    z_branch = keras.Sequential(
        [keras.Input((latent_dim,)), *z_layers], name="z_branch"
    )
    return discriminator_xz(x_branch, z_branch, 1024, 0.2, sn, init)


def image_discriminator_xx(channels: int, sn: bool = True) -> keras.Model:
    """D_xx(x, x'): images stacked on channels, conv 64, 128 (k5 s2, dropout 0.2) -> 1.

    Shown in chapters/06_alad.ipynb.
    """
    hidden = []
    for filters in (64, 128):
        hidden += [
            *_conv_block(filters, sn, False, kernel=5),
            keras.layers.Dropout(0.2),
        ]
    return pair_discriminator(
        (32, 32, channels),
        hidden + [keras.layers.Flatten()],
        Initializers(image=True),
        "discriminator_xx",
    )


def image_discriminator_zz(latent_dim: int, sn: bool = True) -> keras.Model:
    init = Initializers(image=True)
    hidden = []
    for units in (64, 32):
        hidden += [
            normalized(keras.layers.Dense(units, kernel_initializer=init()), sn),
            keras.layers.LeakyReLU(LEAK),
            keras.layers.Dropout(0.2),
        ]
    return pair_discriminator((latent_dim,), hidden, init, "discriminator_zz")


def build_networks(input_shape, hp) -> dict[str, keras.Model]:
    """The five networks for a tabular ``(features,)`` or image ``(32, 32, C)`` input.

    Images come padded; the tabular widths are ``TABULAR_WIDTHS[hp["tabular_widths"]]``.
    """
    latent, sn = hp["latent_dim"], hp["spectral_norm"]
    if len(input_shape) == 1:
        features, units = input_shape[0], TABULAR_WIDTHS[hp["tabular_widths"]]
        xz = units["xz_x"], units["xz_z"], units["xz_joint"]
        return {
            "encoder": tabular_encoder(features, latent, sn, units["encoder"]),
            "generator": tabular_generator(features, latent, units["generator"]),
            "discriminator_xz": tabular_discriminator_xz(features, latent, sn, *xz),
            "discriminator_xx": tabular_discriminator_xx(features, sn, units["xx"]),
            "discriminator_zz": tabular_discriminator_zz(latent, sn, units["zz"]),
        }
    channels, base = input_shape[-1], hp["base_filters"]
    return {
        "encoder": image_encoder(channels, latent, sn, base),
        "generator": image_generator(channels, latent, base),
        "discriminator_xz": image_discriminator_xz(channels, latent, sn, base),
        "discriminator_xx": image_discriminator_xx(channels, sn),
        "discriminator_zz": image_discriminator_zz(latent, sn),
    }


class ALADKeras(KerasAverages, KerasBackend):
    """ALAD's networks, optimisers (with weight averages) and training step in Keras."""

    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        model_shape = to_model_space(
            np.zeros((1, *self.input_shape), np.float32)
        ).shape[1:]
        self.networks = build_networks(model_shape, self.hp)
        self.encoder, self.generator, self.d_xz, self.d_xx, self.d_zz = (
            self.networks[k] for k in NETWORKS
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

    def adversarial_losses(self, x, z):
        """The PyTorch twin's forward pass and the same ``losses_from_logits``."""
        enc, gen = self.encoder, self.generator
        z_enc, x_gen = enc(x, training=True), gen(z, training=True)
        x_rec, z_rec = gen(z_enc, training=True), enc(x_gen, training=True)
        logits = {
            "xz_real": self.d_xz([x, z_enc], training=True)[0],
            "xz_fake": self.d_xz([x_gen, z], training=True)[0],
            "xx_real": self.d_xx([x, x], training=True)[0],
            "xx_fake": self.d_xx([x, x_rec], training=True)[0],
            "zz_real": self.d_zz([z, z], training=True)[0],
            "zz_fake": self.d_zz([z, z_rec], training=True)[0],
        }
        return losses_from_logits(logits, keras.ops, self.hp["use_dzz"])

    def _apply(self, tape, loss, name):
        variables = self.networks[name].trainable_variables
        self.optimizers[name].apply_gradients(
            zip(tape.gradient(loss, variables), variables)
        )

    def latent_noise(self, n):
        """z ~ N(0, I) for ``n`` samples, drawn within the compiled step.

        A test feeds both twins the same z through it.
        """
        return keras.random.normal((n, self.hp["latent_dim"]), seed=self.noise)

    def _graph_step(self, x):
        """The PyTorch twin's ``train_step`` under ``tf.GradientTape``.

        Shown in chapters/06_alad.ipynb.
        """
        n = tf.shape(x)[0]
        pairs = ("xz", "xx", "zz") if self.hp["use_dzz"] else ("xz", "xx")

        # the discriminators, each with its own optimiser (E and G are only read)
        with tf.GradientTape(persistent=True) as tape:
            losses = self.adversarial_losses(x, self.latent_noise(n))
        for pair in pairs:
            self._apply(tape, losses[f"loss_d_{pair}"], f"discriminator_{pair}")
        del tape

        # G and E, with the labels swapped; the cycle terms are in both losses
        with tf.GradientTape(persistent=True) as tape:
            gen_losses = self.adversarial_losses(x, self.latent_noise(n))
            loss_g = gen_losses["loss_g_xz"] + gen_losses["loss_cycle"]
            loss_e = gen_losses["loss_e_xz"] + gen_losses["loss_cycle"]
        self._apply(tape, loss_g, "generator")
        self._apply(tape, loss_e, "encoder")
        del tape
        return {
            "loss_d_xz": losses["loss_d_xz"],
            "loss_d_xx": losses["loss_d_xx"],
            "loss_d_zz": losses["loss_d_zz"],
            "loss_g": loss_g,
            "loss_e": loss_e,
        }

    def train_step(self, batch):
        self.ema.before_step()  # the decay of this step's average update
        return {
            k: float(v)
            for k, v in self._step(self.to_tensor(to_model_space(batch))).items()
        }

    scoring_networks = ("encoder", "generator", "discriminator_xx")

    def _forward(self, batch, training=False):
        x = self.to_tensor(to_model_space(batch))
        z = self.encoder(x, training=training)
        x_rec = self.generator(z, training=training)
        logit_real, features_real = self.d_xx([x, x], training=training)
        logit_fake, features_fake = self.d_xx([x, x_rec], training=training)
        return {
            "reconstruction": self.to_numpy(x_rec),
            "latent": self.to_numpy(z),
            "logit_real": self.to_numpy(logit_real),
            "logit_fake": self.to_numpy(logit_fake),
            "features_real": self.to_numpy(features_real),
            "features_fake": self.to_numpy(features_fake),
        }
