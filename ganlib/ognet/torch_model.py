"""PyTorch twin of OGNet's networks and its two training phases
(Zaheer et al., 2020, section 3)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..backend_torch import ChannelsLastFlatten, TorchBackend, glorot_init
from ..losses import bce_with_logits
from . import TwoPhaseWeights, add_noise, model_shape, to_model_space


def build_generator(channels: int, base: int) -> nn.Sequential:
    """G (section 3.1): four 5x5 convolutions without padding (45 -> 29 pixels, no
    bottleneck vector), mirrored by four transposed convolutions back to the input size,
    tanh output.  The author's code puts ReLU before BatchNorm in the last two encoder
    layers; so do we.

    Shown in chapters/03_ognet.ipynb.
    """
    return nn.Sequential(
        nn.Conv2d(channels, base, 5),
        nn.BatchNorm2d(base),
        nn.ReLU(),
        nn.Conv2d(base, 2 * base, 5),
        nn.BatchNorm2d(2 * base),
        nn.ReLU(),
        nn.Conv2d(2 * base, 4 * base, 5),
        nn.ReLU(),
        nn.BatchNorm2d(4 * base),
        nn.Conv2d(4 * base, 8 * base, 5),
        nn.ReLU(),
        nn.BatchNorm2d(8 * base),
        nn.ConvTranspose2d(8 * base, 4 * base, 5),
        nn.BatchNorm2d(4 * base),
        nn.ReLU(),
        nn.ConvTranspose2d(4 * base, 2 * base, 5),
        nn.BatchNorm2d(2 * base),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * base, base, 5),
        nn.BatchNorm2d(base),
        nn.ReLU(),
        nn.ConvTranspose2d(base, channels, 5),
        nn.Tanh(),
    )


def discriminator_size(size: int) -> int:
    """Spatial size after D's four 5x5, stride-2, padding-2 convolutions:
    45 -> 23 -> 12 -> 6 -> 3."""
    for _ in range(4):
        size = (size - 1) // 2 + 1
    return size


def build_discriminator(
    channels: int, height: int, width: int, base: int
) -> nn.Sequential:
    """D (section 3.1): four 5x5 stride-2 convolutions (BatchNorm on the first three,
    ReLU), then a dense logit.

    Shown in chapters/03_ognet.ipynb.
    """
    return nn.Sequential(
        nn.Conv2d(channels, base, 5, stride=2, padding=2),
        nn.BatchNorm2d(base),
        nn.ReLU(),
        nn.Conv2d(base, 2 * base, 5, stride=2, padding=2),
        nn.BatchNorm2d(2 * base),
        nn.ReLU(),
        nn.Conv2d(2 * base, 4 * base, 5, stride=2, padding=2),
        nn.BatchNorm2d(4 * base),
        nn.ReLU(),
        nn.Conv2d(4 * base, 8 * base, 5, stride=2, padding=2),
        nn.ReLU(),
        ChannelsLastFlatten(),
        nn.Linear(
            8 * base * discriminator_size(height) * discriminator_size(width), 1
        ),  # "badness" logit
    )


def bce(logit: torch.Tensor, target: float) -> torch.Tensor:
    """BCE of sigmoid(logit) against a constant label (ganlib.losses, as in Keras)."""
    return bce_with_logits(logit, target, torch)


class OGNetTorch(TwoPhaseWeights, TorchBackend):
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = model_shape(self.input_shape, self.hp["image_size"])
        base = self.hp["base_filters"]
        self.generator = build_generator(channels, base).to(self.device)
        self.discriminator = build_discriminator(channels, height, width, base).to(
            self.device
        )
        for network in (self.generator, self.discriminator):
            # Keras' default, so both twins start from the same distribution
            network.apply(glorot_init)
        self.networks = {
            "generator": self.generator,
            "discriminator": self.discriminator,
        }
        self.generator_old = copy.deepcopy(self.generator).eval()
        g_rate, d_rate = self.hp["g_learning_rate"], self.hp["d_learning_rate"]
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=g_rate)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=d_rate)
        self.optimizer_phase_two = None
        self.noise_rng = np.random.default_rng(seed)

    def to_model_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """Images in [0, 1] -> :func:`~ganlib.ognet.to_model_space`, as a tensor."""
        return self.to_tensor(to_model_space(batch, self.hp["image_size"]))

    def train_step(self, batch):
        """Phase one (eqs. 1-3), in the order that keeps D's output fresh for G's loss
        (the seed article's fix).

        Shown in chapters/03_ognet.ipynb.
        """
        self.train_mode(True)
        x_numpy = to_model_space(batch, self.hp["image_size"])
        x = self.to_tensor(x_numpy)
        x_noisy = self.to_tensor(
            add_noise(x_numpy, self.hp["noise_std"], self.noise_rng)
        )
        reconstruction = self.generator(x_noisy)

        # D: real -> 0 ("good"), reconstruction -> 1 ("bad"); detached: G's graph is
        # left alone
        loss_d = 0.5 * (
            bce(self.discriminator(reconstruction.detach()), 1.0)
            + bce(self.discriminator(x), 0.0)
        )
        self.optimizer_d.zero_grad()
        loss_d.backward()
        self.optimizer_d.step()

        # G: D's output recomputed with the updated D, then reconstruction + fool D
        lam = self.hp["adversarial_weight"]
        loss_reconstruction = F.mse_loss(reconstruction, x)
        loss_adversarial = bce(self.discriminator(reconstruction), 0.0)
        loss_g = (1 - lam) * loss_reconstruction + lam * loss_adversarial
        self.optimizer_g.zero_grad()
        loss_g.backward()
        self.optimizer_g.step()
        return {
            "loss_d": loss_d.item(),
            "loss_g_reconstruction": loss_reconstruction.item(),
            "loss_g_adversarial": loss_adversarial.item(),
        }

    def snapshot_old_generator(self) -> None:
        """Freeze a copy of the current G as G_old."""
        self.generator_old.load_state_dict(self.generator.state_dict())
        self.generator_old.eval()

    def start_phase_two(self) -> None:
        """A fresh Adam for D alone, at phase two's low learning rate."""
        rate = self.hp["phase_two_learning_rate"]
        parameters = self.discriminator.parameters()
        self.optimizer_phase_two = torch.optim.Adam(parameters, lr=rate)

    def phase_two_step(self, batch, partners) -> float:
        """One D update (eq. 7) on good (X, G(X)) against bad (G_old(X),
        pseudo-anomalies G((G_old(X_i) + G_old(X_j)) / 2)).

        Shown in chapters/03_ognet.ipynb.
        """
        self.generator.eval()
        self.discriminator.train()
        x, x_partner = self.to_model_tensor(batch), self.to_model_tensor(partners)
        with torch.no_grad():  # G and G_old are frozen
            good = self.generator(x)
            old = self.generator_old(x)
            pseudo = self.generator((old + self.generator_old(x_partner)) / 2)
        alpha, beta = self.hp["alpha"], self.hp["beta"]
        loss = (
            alpha * bce(self.discriminator(x), 0.0)
            + (1 - alpha) * bce(self.discriminator(good), 0.0)
            + beta * bce(self.discriminator(old), 1.0)
            + (1 - beta) * bce(self.discriminator(pseudo), 1.0)
        )
        self.optimizer_phase_two.zero_grad()
        loss.backward()
        self.optimizer_phase_two.step()
        return loss.item()

    @torch.no_grad()
    def phase_two_images(self, batch, partners) -> dict[str, np.ndarray]:
        """Phase two's images in inference mode: G(X), G_old(X), pseudo-anomalies."""
        self.train_mode(False)
        x, x_partner = self.to_model_tensor(batch), self.to_model_tensor(partners)
        old = self.generator_old(x)
        pseudo = self.generator((old + self.generator_old(x_partner)) / 2)
        return {
            "good": self.to_numpy(self.generator(x)),
            "old": self.to_numpy(old),
            "pseudo": self.to_numpy(pseudo),
        }

    def outputs(self, batch):
        x = self.to_model_tensor(batch)
        reconstruction = self.generator(x)
        return {
            "reconstruction": self.to_numpy(reconstruction),
            "d_logit_input": self.to_numpy(self.discriminator(x)),
            "d_logit_reconstruction": self.to_numpy(self.discriminator(reconstruction)),
        }
