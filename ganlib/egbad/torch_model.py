"""PyTorch twin of EGBAD: encoder, generator and pair discriminator, for tabular data
and for images.

The layers follow the official TF1 code (bigan/kdd_utilities.py and
bigan/mnist_utilities.py), registered in the same order as in the Keras twin
so that :func:`ganlib.porting.copy_torch_to_keras` can copy the weights.
"""

from __future__ import annotations

import torch
from torch import nn

from ..backend_torch import (
    ChannelsLastFlatten,
    ChannelsLastUnflatten,
    Dropout,
    TorchBackend,
    adam,
    dcgan_init,
    frozen,
    glorot_init,
)
from ..ema import TorchAverages, TorchEMA
from . import bigan_losses, to_model_space

LEAK = 0.1  # the official leakyReLu's slope

# PyTorch's BatchNorm defaults (momentum 0.1 = Keras 0.9, eps 1e-5) in both twins


# ------------------------------------------------------------- tabular networks (KDD99)


def tabular_encoder(features: int, latent_dim: int) -> nn.Sequential:
    """x (N, features) -> z (N, latent_dim): Dense 64, LeakyReLU 0.1, Dense latent.

    Shown in chapters/05_egbad.ipynb.
    """
    return nn.Sequential(
        nn.Linear(features, 64), nn.LeakyReLU(LEAK), nn.Linear(64, latent_dim)
    )


def tabular_generator(features: int, latent_dim: int) -> nn.Sequential:
    """z -> x: Dense 64 ReLU, Dense 128 ReLU, Dense features (linear).

    Shown in chapters/05_egbad.ipynb.
    """
    return nn.Sequential(
        nn.Linear(latent_dim, 64),
        nn.ReLU(),
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, features),
    )


class TabularDiscriminator(nn.Module):
    """D(x, z): x-branch Dense 128 and z-branch Dense 128 (LeakyReLU, dropout 0.2),
    joint Dense hidden -> 1.

    Returns the logit and the joint hidden layer (the feature-matching features).
    Shown in chapters/05_egbad.ipynb.
    """

    def __init__(
        self,
        features: int,
        latent_dim: int,
        hidden_dim: int = 128,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.x_branch = nn.Sequential(
            nn.Linear(features, 128), nn.LeakyReLU(LEAK), Dropout(dropout)
        )
        self.z_branch = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.LeakyReLU(LEAK), Dropout(dropout)
        )
        self.joint = nn.Sequential(
            nn.Linear(256, hidden_dim), nn.LeakyReLU(LEAK), Dropout(dropout)
        )
        self.logit = nn.Linear(hidden_dim, 1)

    def forward(self, x, z):
        features = self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], dim=1))
        return self.logit(features), features


# --------------------------------------------------------------- image networks (MNIST)


def same_pad_stride2_k3() -> nn.ZeroPad2d:
    """TF's 'SAME' padding of a 3x3 stride-2 convolution on an even size: one
    row/column, bottom/right only."""
    return nn.ZeroPad2d((0, 1, 0, 1))


def image_encoder(
    channels: int, height: int, width: int, latent_dim: int
) -> nn.Sequential:
    """x (N, C, H, W) -> z: conv 32 k3, conv 64 k3 s2 BN, conv 128 k3 s2 BN
    (LeakyReLU 0.1), Dense latent."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.LeakyReLU(LEAK),
        same_pad_stride2_k3(),
        nn.Conv2d(32, 64, 3, stride=2),
        nn.BatchNorm2d(64),
        nn.LeakyReLU(LEAK),
        same_pad_stride2_k3(),
        nn.Conv2d(64, 128, 3, stride=2),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(LEAK),
        ChannelsLastFlatten(),
        nn.Linear(128 * (height // 4) * (width // 4), latent_dim),
    )


def image_generator(
    channels: int, height: int, width: int, latent_dim: int
) -> nn.Sequential:
    """z -> x in [-1, 1]: Dense 1024 BN ReLU, Dense (H/4)(W/4)128 BN ReLU, deconv 64
    k4 s2 BN ReLU, deconv C k4 s2 tanh."""
    h4, w4 = height // 4, width // 4
    return nn.Sequential(
        nn.Linear(latent_dim, 1024),
        nn.BatchNorm1d(1024),
        nn.ReLU(),
        nn.Linear(1024, h4 * w4 * 128),
        nn.BatchNorm1d(h4 * w4 * 128),
        nn.ReLU(),
        ChannelsLastUnflatten(h4, w4, 128),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, channels, 4, stride=2, padding=1),
        nn.Tanh(),
    )


class ImageDiscriminator(nn.Module):
    """D(x, z): x-branch conv 64 k4 s2, conv 64 k4 s2 BN; z-branch Dense 512; joint
    Dense hidden -> 1.

    LeakyReLU 0.1 and dropout 0.5 after every hidden layer, as in the official code.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        latent_dim: int,
        hidden_dim: int = 1024,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.x_branch = nn.Sequential(
            nn.Conv2d(channels, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(LEAK),
            Dropout(dropout),
            nn.Conv2d(64, 64, 4, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(LEAK),
            Dropout(dropout),
            ChannelsLastFlatten(),
        )
        self.z_branch = nn.Sequential(
            nn.Linear(latent_dim, 512), nn.LeakyReLU(LEAK), Dropout(dropout)
        )
        self.joint = nn.Sequential(
            nn.Linear(64 * (height // 4) * (width // 4) + 512, hidden_dim),
            nn.LeakyReLU(LEAK),
            Dropout(dropout),
        )
        self.logit = nn.Linear(hidden_dim, 1)

    def forward(self, x, z):
        features = self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], dim=1))
        return self.logit(features), features


def normal_init(module: nn.Module) -> None:
    """The official image networks' N(0, 0.02) kernels and zero biases; BatchNorm
    keeps gamma 1, beta 0."""
    dcgan_init(module)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)


def build_networks(input_shape, hp) -> dict[str, nn.Module]:
    """The three networks for ``input_shape``, tabular ``(features,)`` or image
    ``(H, W, C)``."""
    latent = hp["latent_dim"]
    if len(input_shape) == 1:
        features = input_shape[0]
        nets = {
            "encoder": tabular_encoder(features, latent),
            "generator": tabular_generator(features, latent),
            "discriminator": TabularDiscriminator(features, latent, hp["hidden_dim"]),
        }
        init = glorot_init  # the official KDD networks use xavier_initializer
    else:
        height, width, channels = input_shape
        nets = {
            "encoder": image_encoder(channels, height, width, latent),
            "generator": image_generator(channels, height, width, latent),
            "discriminator": ImageDiscriminator(
                channels, height, width, latent, hp["hidden_dim"]
            ),
        }
        init = normal_init
    for net in nets.values():
        net.apply(init)
    return nets


class EGBADTorch(TorchAverages, TorchBackend):
    """EGBAD's networks, optimisers, moving averages and training step in PyTorch."""

    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        self.networks = {
            k: v.to(self.device)
            for k, v in build_networks(self.input_shape, self.hp).items()
        }
        self.encoder, self.generator, self.discriminator = (
            self.networks[k] for k in ("encoder", "generator", "discriminator")
        )
        # one Adam for D, one for G and E, which always step together: Adam updates
        # each weight on its own, so this is one Adam per network, called once less
        settings = {"lr": self.hp["learning_rate"], "betas": (self.hp["beta_1"], 0.999)}
        self.optimizers = {
            "discriminator": adam(self.discriminator.parameters(), **settings),
            "generator_encoder": adam(
                [*self.generator.parameters(), *self.encoder.parameters()], **settings
            ),
        }
        self.ema = TorchEMA(self.networks, self.hp["ema_decay"], self.hp["ema_warmup"])

    def latent_noise(self, n: int) -> torch.Tensor:
        """z ~ N(0, I) for ``n`` samples.

        A test feeds both twins the same z through it.
        """
        return torch.randn(n, self.hp["latent_dim"], device=self.device)

    def train_step(self, batch):
        """One D step, then one G and E step with the labels inverted.

        Shown in chapters/05_egbad.ipynb.
        """
        self.train_mode(True)
        x = self.to_tensor(to_model_space(batch))
        n = x.shape[0]

        # D: (x, E(x)) is real, (G(z), z) is fake
        z = self.latent_noise(n)
        with torch.no_grad():
            z_enc, x_gen = self.encoder(x), self.generator(z)
        logit_real, _ = self.discriminator(x, z_enc)
        logit_fake, _ = self.discriminator(x_gen, z)
        loss_d = bigan_losses(logit_real, logit_fake, torch)["loss_d"]
        self.optimizers["discriminator"].zero_grad()
        loss_d.backward()
        self.optimizers["discriminator"].step()

        # G and E together, labels inverted: G wants (G(z), z) called real, E wants (x,
        # E(x)) called fake.  D is only read: no gradients for its weights
        z = self.latent_noise(n)
        with frozen(self.discriminator):
            logit_real, _ = self.discriminator(x, self.encoder(x))
            logit_fake, _ = self.discriminator(self.generator(z), z)
            losses = bigan_losses(logit_real, logit_fake, torch)
            loss_g, loss_e = losses["loss_g"], losses["loss_e"]
            self.optimizers["generator_encoder"].zero_grad()
            (loss_g + loss_e).backward()
        self.optimizers["generator_encoder"].step()
        self.ema.update()
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "loss_e": loss_e.item(),
        }

    scoring_networks = ("encoder", "generator", "discriminator")

    def _forward(self, encoder, generator, discriminator, batch):
        x = self.to_tensor(to_model_space(batch))
        z = encoder(x)
        x_rec = generator(z)
        logit_input, features_input = discriminator(x, z)
        logit_rec, features_rec = discriminator(x_rec, z)
        return {
            "reconstruction": self.to_numpy(x_rec),
            "latent": self.to_numpy(z),
            "logit_input": self.to_numpy(logit_input),
            "logit_reconstruction": self.to_numpy(logit_rec),
            "features_input": self.to_numpy(features_input),
            "features_reconstruction": self.to_numpy(features_rec),
        }
