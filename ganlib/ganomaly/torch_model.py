"""PyTorch twin of GANomaly: the four networks and the training step.

Official code: ``lib/networks.py`` (the networks) and ``lib/model.py`` (the step).
"""

from __future__ import annotations

import torch
from torch import nn

from ..backend_torch import TorchBackend, adam, dcgan_init
from . import network_size, to_model_space, training_losses


def build_encoder(
    channels: int, size: int, base_filters: int, out_channels: int | None
) -> nn.Sequential:
    """DCGAN encoder: image (N, C, s, s) -> code (N, out_channels) or, if None, 4x4 map.

    4x4 stride-2 convolutions without bias, LeakyReLU 0.2, BatchNorm from the
    second convolution on, doubling the channels down to a 4x4 map; then a
    4x4 "valid" convolution to ``out_channels`` (no activation).  ``G_E``,
    ``E`` and the body of ``D`` (paper, section 3.1).

    Shown in chapters/04_ganomaly.ipynb.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(channels, base_filters, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
    ]
    filters, side = base_filters, size // 2
    while side > 4:
        layers += [
            nn.Conv2d(filters, filters * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(filters * 2),
            nn.LeakyReLU(0.2),
        ]
        filters, side = filters * 2, side // 2
    if out_channels is not None:
        layers += [nn.Conv2d(filters, out_channels, 4, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


def build_decoder(
    channels: int, size: int, base_filters: int, latent_dim: int
) -> nn.Sequential:
    """DCGAN decoder ``G_D``: code (N, latent_dim) -> image (N, C, s, s), tanh.

    Shown in chapters/04_ganomaly.ipynb.
    """
    filters = base_filters * size // 8  # 256 for s = 32 and 64 base filters
    layers: list[nn.Module] = [
        nn.Unflatten(1, (latent_dim, 1, 1)),
        nn.ConvTranspose2d(latent_dim, filters, 4, 1, 0, bias=False),
        nn.BatchNorm2d(filters),
        nn.ReLU(),
    ]
    side = 4
    while side < size // 2:
        layers += [
            nn.ConvTranspose2d(filters, filters // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(filters // 2),
            nn.ReLU(),
        ]
        filters, side = filters // 2, side * 2
    layers += [nn.ConvTranspose2d(filters, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """D: the encoder's feature pyramid, then a 4x4 convolution to one logit.

    ``forward`` returns ``(features, logit)``: the last 4x4 feature map, for
    the feature-matching loss, and the logit of "real" (the official NetD
    applies a sigmoid; the loss here takes logits, the same function).

    Shown in chapters/04_ganomaly.ipynb.
    """

    def __init__(self, channels: int, size: int, base_filters: int):
        super().__init__()
        self.features = build_encoder(channels, size, base_filters, None)
        filters = base_filters * size // 8
        self.classifier = nn.Conv2d(filters, 1, 4, 1, 0, bias=False)

    def forward(self, x):
        features = self.features(x)
        return features, self.classifier(features).flatten()


class GANomalyTorch(TorchBackend):
    """The four networks, their two Adam optimisers and the training step."""

    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        height, width, channels = self.input_shape
        size, latent = network_size(height, width), self.hp["latent_dim"]
        filters = self.hp["base_filters"]
        device = self.device
        self.generator_encoder = build_encoder(channels, size, filters, latent)
        self.generator_encoder.to(device)
        self.decoder = build_decoder(channels, size, filters, latent).to(device)
        self.networks = {
            "generator_encoder": self.generator_encoder,
            "decoder": self.decoder,
        }
        if self.hp["reencode_with"] == "E":
            self.encoder = build_encoder(channels, size, filters, latent).to(device)
            self.networks["encoder"] = self.encoder
        else:  # the seed article's variant: x_hat is encoded by G_E itself
            self.encoder = self.generator_encoder
        self.discriminator = Discriminator(channels, size, filters).to(device)
        self.networks["discriminator"] = self.discriminator
        for network in self.networks.values():
            network.apply(dcgan_init)
        settings = {
            "lr": self.hp["learning_rate"],
            "betas": (self.hp["beta_1"], self.hp["beta_2"]),
        }
        self.g_params = [
            p
            for name, net in self.networks.items()
            if name != "discriminator"
            for p in net.parameters()
        ]
        self.optimizer_g = adam(self.g_params, **settings)
        self.optimizer_d = adam(self.discriminator.parameters(), **settings)

    def forward(self, x):
        """The generator, encoder-decoder-encoder: returns ``(x_hat, z, z_hat)``.

        Shown in chapters/04_ganomaly.ipynb.
        """
        z = self.generator_encoder(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder(x_hat)

    def losses(self, x):
        """G's and D's losses from one forward pass (``training_losses``, written once).

        Shown in chapters/04_ganomaly.ipynb.
        """
        x_hat, z, z_hat = self.forward(x)
        d_real, d_fake = self.discriminator(x), self.discriminator(x_hat)
        return training_losses(x, x_hat, z, z_hat, d_real, d_fake, self.hp, torch)

    def train_step(self, batch):
        """One step of G and one of D from one forward pass; D restarts when it has won.

        Shown in chapters/04_ganomaly.ipynb.
        """
        self.train_mode(True)
        x = self.to_tensor(to_model_space(batch, self.hp["input_scaling"]))
        losses = self.losses(x)
        # G's loss must not train D (the official code zeroes D's gradients before D's
        # step), and D's loss must not train G (x_hat.detach() there): each optimiser
        # gets the gradient of its own loss.
        d_params = list(self.discriminator.parameters())
        g_grads = torch.autograd.grad(
            losses["g_loss"], self.g_params, retain_graph=True
        )
        d_grads = torch.autograd.grad(losses["d_loss"], d_params)
        for params, grads, optimizer in (
            (self.g_params, g_grads, self.optimizer_g),
            (d_params, d_grads, self.optimizer_d),
        ):
            for param, grad in zip(params, grads):
                param.grad = grad
            optimizer.step()
        result = {name: value.item() for name, value in losses.items()}
        result["d_reinit"] = float(result["d_loss"] < self.hp["d_reinit_threshold"])
        if result["d_reinit"]:  # D has won outright: restart it, as the official code
            self.discriminator.apply(dcgan_init)
        return result

    @torch.no_grad()
    def outputs(self, batch, training: bool = False):
        """``z``, ``z_hat``, ``x_hat`` (model space); ``training``: batch statistics."""
        self.train_mode(training)
        x = self.to_tensor(to_model_space(batch, self.hp["input_scaling"]))
        x_hat, z, z_hat = self.forward(x)
        return {
            "latent": self.to_numpy(z),
            "latent_reconstructed": self.to_numpy(z_hat),
            "reconstruction": self.to_numpy(x_hat),
        }
