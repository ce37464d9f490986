"""Keras 3 twin of the convolutional autoencoder baseline.  Shown in
chapters/01_setting.ipynb."""

from __future__ import annotations

import keras
import tensorflow as tf

from ..backend_keras import KerasBackend, batch_norm


def build_encoder(
    channels: int, height: int, width: int, latent_dim: int
) -> keras.Sequential:
    """Image (N, H, W, C) -> code (N, latent_dim)."""
    return keras.Sequential(
        [
            keras.Input((height, width, channels)),
            keras.layers.Conv2D(32, 4, strides=2, padding="same"),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Conv2D(64, 4, strides=2, padding="same"),
            batch_norm(),
            keras.layers.LeakyReLU(0.2),
            keras.layers.Flatten(),
            keras.layers.Dense(latent_dim),
        ],
        name="encoder",
    )


def build_decoder(
    channels: int, height: int, width: int, latent_dim: int
) -> keras.Sequential:
    """Code (N, latent_dim) -> image (N, H, W, C) in [0, 1]."""
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(64 * (height // 4) * (width // 4), activation="relu"),
            keras.layers.Reshape((height // 4, width // 4, 64)),
            keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same"),
            batch_norm(),
            keras.layers.ReLU(),
            keras.layers.Conv2DTranspose(
                channels, 4, strides=2, padding="same", activation="sigmoid"
            ),
        ],
        name="decoder",
    )


class AutoencoderKeras(KerasBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        latent = self.hp["latent_dim"]
        self.autoencoder = keras.Sequential(
            [
                build_encoder(channels, height, width, latent),
                build_decoder(channels, height, width, latent),
            ],
            name="autoencoder",
        )
        self.networks = {"autoencoder": self.autoencoder}
        # epsilon as in torch.optim.Adam (Keras defaults to 1e-7)
        self.optimizer = keras.optimizers.Adam(self.hp["learning_rate"], epsilon=1e-8)
        self.optimizer.build(self.autoencoder.trainable_variables)
        self._step = tf.function(self._graph_step)

    def _graph_step(self, x):
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(
                keras.ops.square(self.autoencoder(x, training=True) - x)
            )
        variables = self.autoencoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def train_step(self, batch):
        return {"loss": float(self._step(self.to_tensor(batch)))}

    def outputs(self, batch):
        return {
            "reconstruction": self.to_numpy(
                self.autoencoder(self.to_tensor(batch), training=False)
            )
        }
