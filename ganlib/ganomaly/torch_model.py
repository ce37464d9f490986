"""PyTorch twin of GANomaly: the four networks and the training step (official ``lib/networks.py``, ``lib/model.py``)."""

from __future__ import annotations

import torch
from torch import nn

from ..backend_torch import TorchBackend, dcgan_init
from . import network_size, prepare


def build_encoder(channels: int, size: int, base_filters: int, out_channels: int | None) -> nn.Sequential:
    """DCGAN encoder: image (N, C, s, s) -> code (N, out_channels); ``out_channels=None`` stops at the 4x4 map.

    4x4 stride-2 convolutions without bias, LeakyReLU 0.2, BatchNorm from the
    second convolution on, doubling the channels down to a 4x4 map; then a
    4x4 "valid" convolution to ``out_channels`` (no activation).
    """
    layers: list[nn.Module] = [nn.Conv2d(channels, base_filters, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    filters, side = base_filters, size // 2
    while side > 4:
        layers += [nn.Conv2d(filters, filters * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(filters * 2), nn.LeakyReLU(0.2)]
        filters, side = filters * 2, side // 2
    if out_channels is not None:
        layers += [nn.Conv2d(filters, out_channels, 4, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


def build_decoder(channels: int, size: int, base_filters: int, latent_dim: int) -> nn.Sequential:
    """DCGAN decoder: code (N, latent_dim) -> image (N, C, s, s) in [-1, 1] (tanh)."""
    filters = base_filters * size // 8  # 256 for s = 32 and 64 base filters
    layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1)),
                               nn.ConvTranspose2d(latent_dim, filters, 4, 1, 0, bias=False),
                               nn.BatchNorm2d(filters), nn.ReLU()]
    side = 4
    while side < size // 2:
        layers += [nn.ConvTranspose2d(filters, filters // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(filters // 2), nn.ReLU()]
        filters, side = filters // 2, side * 2
    layers += [nn.ConvTranspose2d(filters, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """D: the encoder's feature pyramid, then a 4x4 convolution to one logit.

    ``forward`` returns ``(features, logit)``: the last 4x4 feature map, for
    the feature-matching loss, and the logit of "real" (the official NetD
    applies a sigmoid; the loss here takes logits, the same function).
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
    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        # DCGAN's N(0, 0.02) weights make many gradients denormal (< 1e-38), which CPUs compute up to
        # 4x slower; TensorFlow flushes them to zero, and so do we (a process-wide PyTorch setting).
        torch.set_flush_denormal(True)
        height, width, channels = self.input_shape
        size, latent, filters = network_size(height, width), self.hp["latent_dim"], self.hp["base_filters"]
        self.generator_encoder = build_encoder(channels, size, filters, latent).to(self.device)
        self.decoder = build_decoder(channels, size, filters, latent).to(self.device)
        self.networks = {"generator_encoder": self.generator_encoder, "decoder": self.decoder}
        if self.hp["reencode_with"] == "E":
            self.encoder = build_encoder(channels, size, filters, latent).to(self.device)
            self.networks["encoder"] = self.encoder
        else:  # the seed article's variant: x_hat is encoded by G_E itself
            self.encoder = self.generator_encoder
        self.discriminator = Discriminator(channels, size, filters).to(self.device)
        self.networks["discriminator"] = self.discriminator
        for network in self.networks.values():
            network.apply(dcgan_init)
        betas = (self.hp["beta_1"], self.hp["beta_2"])
        self.g_params = [p for name, net in self.networks.items() if name != "discriminator" for p in net.parameters()]
        self.optimizer_g = torch.optim.Adam(self.g_params, lr=self.hp["learning_rate"], betas=betas)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hp["learning_rate"], betas=betas)

    def forward(self, x):
        """The generator, encoder-decoder-encoder: returns ``(x_hat, z, z_hat)``."""
        z = self.generator_encoder(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder(x_hat)

    def losses(self, x):
        """Generator loss (eq. 4: feature matching + 50 L1 + latent L2) and discriminator BCE, from one forward pass."""
        x_hat, z, z_hat = self.forward(x)
        features_real, logit_real = self.discriminator(x)
        features_fake, logit_fake = self.discriminator(x_hat)
        adv = torch.mean((features_real - features_fake) ** 2)
        con = torch.mean(torch.abs(x - x_hat))
        enc = torch.mean((z - z_hat) ** 2)
        g_loss = self.hp["w_adv"] * adv + self.hp["w_con"] * con + self.hp["w_enc"] * enc
        bce = nn.functional.binary_cross_entropy_with_logits
        d_loss = 0.5 * (bce(logit_real, torch.ones_like(logit_real)) + bce(logit_fake, torch.zeros_like(logit_fake)))
        return {"g_loss": g_loss, "d_loss": d_loss, "adv": adv, "con": con, "enc": enc}

    def train_step(self, batch):
        self.train_mode(True)
        x = self.to_tensor(prepare(batch, self.hp["input_scaling"]))
        losses = self.losses(x)
        # G's loss must not train D (the official code zeroes D's gradients before D's step), and D's
        # loss must not train G (x_hat.detach() there): each optimiser gets the gradient of its own loss.
        d_params = list(self.discriminator.parameters())
        g_grads = torch.autograd.grad(losses["g_loss"], self.g_params, retain_graph=True)
        d_grads = torch.autograd.grad(losses["d_loss"], d_params)
        for params, grads, optimizer in ((self.g_params, g_grads, self.optimizer_g), (d_params, d_grads, self.optimizer_d)):
            for param, grad in zip(params, grads):
                param.grad = grad
            optimizer.step()
        result = {name: value.item() for name, value in losses.items()}
        result["d_reinit"] = float(result["d_loss"] < self.hp["d_reinit_threshold"])
        if result["d_reinit"]:  # D has won outright: start it afresh, as the official code does
            self.discriminator.apply(dcgan_init)
        return result

    @torch.no_grad()
    def outputs(self, batch, training: bool = False):
        """``z``, ``z_hat`` and ``x_hat`` (network space); ``training=True`` normalises with batch statistics."""
        self.train_mode(training)
        x_hat, z, z_hat = self.forward(self.to_tensor(prepare(batch, self.hp["input_scaling"])))
        return {"latent": self.to_numpy(z), "latent_reconstructed": self.to_numpy(z_hat),
                "reconstruction": self.to_numpy(x_hat)}

