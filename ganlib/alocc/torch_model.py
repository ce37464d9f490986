"""PyTorch twin of ALOCC's networks and training step
(Sabokrou et al., 2018, section 3 and Figs. 3-4)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..backend_torch import (
    ChannelsLastFlatten,
    Conv2dSame,
    TorchBackend,
    dcgan_init,
    frozen,
)
from ..losses import bce_with_logits
from . import add_noise, encoder_sizes, reconstruction_loss

LEAK = 0.2  # LeakyReLU slope of the official code's ``lrelu``


class UpsampleTo(nn.Module):
    """Nearest-neighbour x2 upsampling, cropped to ``size`` (4 -> 8 -> 7), mirroring
    the encoder's sizes."""

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")[
            :, :, : self.size[0], : self.size[1]
        ]


def build_reconstructor(
    channels: int, height: int, width: int, base: int
) -> nn.Sequential:
    """R (paper, Fig. 3): three 5x5 stride-2 conv + BN + LeakyReLU layers, then three
    conv + BN + ReLU + upsampling layers back to the input size, then a 5x5 conv with a
    sigmoid (images in [0, 1]).

    Shown in chapters/02_alocc.ipynb.
    """
    sizes = encoder_sizes(height, width)
    return nn.Sequential(
        Conv2dSame(channels, 2 * base, 5, stride=2),
        nn.BatchNorm2d(2 * base),
        nn.LeakyReLU(LEAK),
        Conv2dSame(2 * base, 4 * base, 5, stride=2),
        nn.BatchNorm2d(4 * base),
        nn.LeakyReLU(LEAK),
        Conv2dSame(4 * base, 8 * base, 5, stride=2),
        nn.BatchNorm2d(8 * base),
        nn.LeakyReLU(LEAK),
        Conv2dSame(8 * base, 4 * base, 5),
        nn.BatchNorm2d(4 * base),
        nn.ReLU(),
        UpsampleTo(sizes[2]),
        Conv2dSame(4 * base, 2 * base, 5),
        nn.BatchNorm2d(2 * base),
        nn.ReLU(),
        UpsampleTo(sizes[1]),
        Conv2dSame(2 * base, base, 5),
        nn.BatchNorm2d(base),
        nn.ReLU(),
        UpsampleTo(sizes[0]),
        Conv2dSame(base, channels, 5),
        nn.Sigmoid(),
    )


def build_discriminator(
    channels: int, height: int, width: int, base: int
) -> nn.Sequential:
    """D (paper, Fig. 4): four 5x5 stride-2 convolutions (BN on all but the first,
    LeakyReLU), then a dense logit.

    Shown in chapters/02_alocc.ipynb.
    """
    last = encoder_sizes(height, width, 4)[-1]
    return nn.Sequential(
        Conv2dSame(channels, base, 5, stride=2),
        nn.LeakyReLU(LEAK),
        Conv2dSame(base, 2 * base, 5, stride=2),
        nn.BatchNorm2d(2 * base),
        nn.LeakyReLU(LEAK),
        Conv2dSame(2 * base, 4 * base, 5, stride=2),
        nn.BatchNorm2d(4 * base),
        nn.LeakyReLU(LEAK),
        Conv2dSame(4 * base, 8 * base, 5, stride=2),
        nn.BatchNorm2d(8 * base),
        nn.LeakyReLU(LEAK),
        ChannelsLastFlatten(),
        nn.Linear(
            8 * base * last[0] * last[1], 1
        ),  # a logit: the sigmoid is inside the loss
    )


class ALOCCTorch(TorchBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        base = self.hp["base_filters"]
        self.reconstructor = build_reconstructor(channels, height, width, base).to(
            self.device
        )
        self.discriminator = build_discriminator(channels, height, width, base).to(
            self.device
        )
        for network in (self.reconstructor, self.discriminator):
            network.apply(dcgan_init)
        self.networks = {
            "reconstructor": self.reconstructor,
            "discriminator": self.discriminator,
        }
        # RMSprop as the official code; alpha is TensorFlow's decay of 0.9 (PyTorch's
        # default is 0.99)
        rate, RMSprop = self.hp["learning_rate"], torch.optim.RMSprop
        self.optimizer_r = RMSprop(self.reconstructor.parameters(), lr=rate, alpha=0.9)
        self.optimizer_d = RMSprop(self.discriminator.parameters(), lr=rate, alpha=0.9)
        self.noise_rng = np.random.default_rng(seed)

    def reconstruction_loss(self, x, x_noisy, x_hat):
        """R's reconstruction term of eq. 4: the paper's squared error to the clean X
        (``"l2"``), the official code's or a plain cross-entropy to the noisy X̃,
        summed or averaged over pixels; :func:`ganlib.alocc.reconstruction_loss`
        holds the algebra, written once for both twins.

        Shown in chapters/02_alocc.ipynb.
        """
        return reconstruction_loss(
            x,
            x_noisy,
            x_hat,
            self.hp["reconstruction_loss"],
            self.hp["reconstruction_reduction"],
            torch,
        )

    def train_step(self, batch):
        """One D update, then ``r_steps`` R updates (eq. 4; the official code's order).

        Shown in chapters/02_alocc.ipynb.
        """
        self.train_mode(True)
        x = self.to_tensor(batch)
        x_noisy = self.to_tensor(add_noise(batch, self.hp["noise_std"], self.noise_rng))

        # D: real target images -> 1, R's reconstructions of their noisy copies -> 0
        with torch.no_grad():
            fake = self.reconstructor(x_noisy)
        real_logit, fake_logit = self.discriminator(x), self.discriminator(fake)
        loss_d = bce_with_logits(real_logit, 1.0, torch) + bce_with_logits(
            fake_logit, 0.0, torch
        )
        self.optimizer_d.zero_grad()
        loss_d.backward()
        self.optimizer_d.step()

        # R, r_steps times: fool D (its output on R(X̃) -> 1) and reconstruct, weighted
        # by lambda.  D is only read: no gradients for its weights
        for _ in range(self.hp["r_steps"]):
            with frozen(self.discriminator):
                x_hat = self.reconstructor(x_noisy)
                fake_logit = self.discriminator(x_hat)
                loss_adv = bce_with_logits(fake_logit, 1.0, torch)
                loss_rec = self.reconstruction_loss(x, x_noisy, x_hat)
                loss_r = loss_adv + self.hp["lambda_reconstruction"] * loss_rec
                self.optimizer_r.zero_grad()
                loss_r.backward()
            self.optimizer_r.step()
        return {
            "loss_d": loss_d.item(),
            "loss_r_adversarial": loss_adv.item(),
            "loss_r_reconstruction": loss_rec.item(),
        }

    def outputs(self, batch):
        x = self.to_tensor(batch)
        x_hat = self.reconstructor(x)
        return {
            "reconstruction": self.to_numpy(x_hat),
            "d_logit_input": self.to_numpy(self.discriminator(x)),
            "d_logit_reconstruction": self.to_numpy(self.discriminator(x_hat)),
        }
