"""PyTorch twin of the convolutional autoencoder baseline.  Shown in
chapters/01_setting.ipynb."""

from __future__ import annotations

from torch import nn

from ..backend_torch import (
    adam,
    ChannelsLastFlatten,
    ChannelsLastUnflatten,
    TorchBackend,
    glorot_init,
)


def build_encoder(
    channels: int, height: int, width: int, latent_dim: int
) -> nn.Sequential:
    """Image (N, C, H, W) -> code (N, latent_dim)."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=1),
        nn.BatchNorm2d(64),
        nn.LeakyReLU(0.2),
        ChannelsLastFlatten(),
        nn.Linear(64 * (height // 4) * (width // 4), latent_dim),
    )


def build_decoder(
    channels: int, height: int, width: int, latent_dim: int
) -> nn.Sequential:
    """Code (N, latent_dim) -> image (N, C, H, W) in [0, 1]."""
    return nn.Sequential(
        nn.Linear(latent_dim, 64 * (height // 4) * (width // 4)),
        nn.ReLU(),
        ChannelsLastUnflatten(height // 4, width // 4, 64),
        nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.ConvTranspose2d(32, channels, kernel_size=4, stride=2, padding=1),
        nn.Sigmoid(),
    )


class AutoencoderTorch(TorchBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        latent = self.hp["latent_dim"]
        self.autoencoder = nn.Sequential(
            build_encoder(channels, height, width, latent),
            build_decoder(channels, height, width, latent),
        ).to(self.device)
        self.autoencoder.apply(
            glorot_init
        )  # Keras' default, so both twins start from the same distribution
        self.networks = {"autoencoder": self.autoencoder}
        self.optimizer = adam(
            self.autoencoder.parameters(), lr=self.hp["learning_rate"]
        )

    def train_step(self, batch):
        self.train_mode(True)
        x = self.to_tensor(batch)
        loss = nn.functional.mse_loss(self.autoencoder(x), x)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def outputs(self, batch):
        return {
            "reconstruction": self.to_numpy(self.autoencoder(self.to_tensor(batch)))
        }
