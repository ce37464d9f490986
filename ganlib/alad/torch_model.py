"""PyTorch twin of ALAD: encoder, generator and the three discriminators, for tabular
data and images.

The layers follow the official TF1 code (``alad/kdd_utilities.py``,
``alad/arrhythmia_utilities.py`` and ``alad/cifar10_utilities.py``) and are
registered in the same order as in the Keras twin, so that
:func:`ganlib.porting.copy_torch_to_keras` can copy the weights.  Spectral
normalisation is PyTorch's own :func:`torch.nn.utils.parametrizations.spectral_norm`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..backend_torch import (
    ChannelsLastFlatten,
    Conv2dSame,
    Dropout,
    TorchBackend,
    adam,
    frozen,
    glorot_init,
)
from ..ema import TorchAverages, TorchEMA
from . import TABULAR_WIDTHS, losses_from_logits, to_model_space

LEAK = 0.2  # the official leakyReLu's slope
KDD = TABULAR_WIDTHS["kdd"]  # the tabular networks' default widths


def normalized(layer: nn.Module, enabled: bool) -> nn.Module:
    """Mark ``layer`` for spectral normalisation; :func:`build_networks` applies it
    after initialisation."""
    layer.wants_spectral_norm = enabled
    return layer


# ------------------------------------------------- tabular networks (KDD99, Arrhythmia)


def _hidden_layers(
    n_in: int, widths: tuple, activation, dropout: float = 0.0, sn: bool = False
) -> list[nn.Module]:
    """Dense ``widths`` in order, each (spectrally normalised when ``sn``) + activation.

    Dropout after each activation when ``dropout``.  The modules come flat, into the
    caller's ``nn.Sequential``, so that the KDD99 networks keep the module indices,
    hence the weight names, of models saved before the widths became a choice.
    """
    layers = []
    for width in widths:
        layers += [normalized(nn.Linear(n_in, width), sn), activation()]
        layers += [Dropout(dropout)] if dropout else []
        n_in = width
    return layers


def tabular_encoder(
    features: int, latent_dim: int, sn: bool = False, hidden: tuple = KDD["encoder"]
) -> nn.Sequential:
    """x -> z: Dense ``hidden`` (KDD99: 64), LeakyReLU, Dense latent.

    Shown in chapters/06_alad.ipynb.
    """
    layers = _hidden_layers(features, hidden, lambda: nn.LeakyReLU(LEAK), sn=sn)
    return nn.Sequential(*layers, nn.Linear(hidden[-1], latent_dim))


def tabular_generator(
    features: int, latent_dim: int, hidden: tuple = KDD["generator"]
) -> nn.Sequential:
    """z -> x: Dense ``hidden`` ReLU (KDD99: 64, 128), Dense features (linear).

    Shown in chapters/06_alad.ipynb.
    """
    return nn.Sequential(
        *_hidden_layers(latent_dim, hidden, nn.ReLU), nn.Linear(hidden[-1], features)
    )


class TabularDiscriminatorXZ(nn.Module):
    """D_xz(x, z): x-branch Dense + BatchNorm, z-branch Dense (dropout 0.5), joint
    Dense (dropout 0.5) -> 1; KDD99 128 each, Arrhythmia joint 256.

    Shown in chapters/06_alad.ipynb.
    """

    def __init__(
        self,
        features: int,
        latent_dim: int,
        sn: bool = False,
        x_units: int = KDD["xz_x"],
        z_units: int = KDD["xz_z"],
        joint_units: int = KDD["xz_joint"],
    ):
        super().__init__()
        self.x_branch = nn.Sequential(
            normalized(nn.Linear(features, x_units), sn),
            nn.BatchNorm1d(x_units),
            nn.LeakyReLU(LEAK),
        )
        self.z_branch = nn.Sequential(
            normalized(nn.Linear(latent_dim, z_units), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.5),
        )
        joint = nn.Linear(x_units + z_units, joint_units)
        self.joint = nn.Sequential(
            normalized(joint, sn), nn.LeakyReLU(LEAK), Dropout(0.5)
        )
        self.logit = nn.Linear(joint_units, 1)

    def forward(self, x, z):
        features = self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], dim=1))
        return self.logit(features), features


class PairDiscriminator(nn.Module):
    """D(a, b) for two inputs of the same shape, stacked along features (or channels):
    hidden layers -> 1.

    D_xx and D_zz both have this form; ``hidden`` holds their hidden layers and
    its output, flattened, is the feature-matching layer of the "features" score.
    Shown in chapters/06_alad.ipynb.
    """

    def __init__(self, hidden: nn.Sequential, hidden_size: int):
        super().__init__()
        self.hidden = hidden
        self.logit = nn.Linear(hidden_size, 1)

    def forward(self, a, b):
        features = self.hidden(torch.cat([a, b], dim=1))
        return self.logit(features), features


def tabular_discriminator_xx(
    features: int, sn: bool = False, hidden: tuple = KDD["xx"]
) -> PairDiscriminator:
    """D_xx(x, x'): Dense ``hidden`` (KDD99: 128), LeakyReLU, dropout 0.2 -> 1.

    Shown in chapters/06_alad.ipynb.
    """
    layers = _hidden_layers(2 * features, hidden, lambda: nn.LeakyReLU(LEAK), 0.2, sn)
    return PairDiscriminator(nn.Sequential(*layers), hidden[-1])


def tabular_discriminator_zz(
    latent_dim: int, sn: bool = False, hidden: tuple = KDD["zz"]
) -> PairDiscriminator:
    """D_zz(z, z'): Dense ``hidden`` (KDD99: 32), LeakyReLU, dropout 0.2 -> 1."""
    layers = _hidden_layers(2 * latent_dim, hidden, lambda: nn.LeakyReLU(LEAK), 0.2, sn)
    return PairDiscriminator(nn.Sequential(*layers), hidden[-1])


# ------------------------------------------------- image networks (32x32, MNIST padded)


def _conv_block(
    c_in: int, c_out: int, sn: bool, batchnorm: bool, kernel: int = 4
) -> list[nn.Module]:
    """A stride-2 'same' convolution (spectrally normalised when ``sn``), optional
    BatchNorm, LeakyReLU."""
    layers = [normalized(Conv2dSame(c_in, c_out, kernel, stride=2), sn)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    return layers + [nn.LeakyReLU(LEAK)]


def image_encoder(
    channels: int, latent_dim: int, sn: bool = True, base: int = 128
) -> nn.Sequential:
    """x (N, C, 32, 32) -> z: conv base -> 2 base -> 4 base (k4 s2, BatchNorm), then
    conv k4 'valid' to 1x1xlatent."""
    return nn.Sequential(
        *_conv_block(channels, base, sn, True),
        *_conv_block(base, 2 * base, sn, True),
        *_conv_block(2 * base, 4 * base, sn, True),
        nn.Conv2d(4 * base, latent_dim, 4),
        nn.Flatten(),
    )


def image_generator(channels: int, latent_dim: int, base: int = 128) -> nn.Sequential:
    """z -> x in [-1, 1]: deconv 4 base (1x1 -> 4x4), 2 base, base (k4 s2, BatchNorm,
    ReLU), deconv C, tanh."""

    def block(c_in, c_out, padding):
        return [
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=padding),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        ]

    return nn.Sequential(
        nn.Unflatten(1, (latent_dim, 1, 1)),
        *block(latent_dim, 4 * base, 0),
        *block(4 * base, 2 * base, 1),
        *block(2 * base, base, 1),
        nn.ConvTranspose2d(base, channels, 4, stride=2, padding=1),
        nn.Tanh(),
    )


class ImageDiscriminatorXZ(nn.Module):
    """D_xz(x, z): x-branch conv base -> 2 base -> 4 base (k4 s2), z-branch 512 -> 512
    (dropout 0.2), joint 1024 -> 1.

    The official code writes the z-branch and the joint layer as 1x1
    convolutions on 1x1 maps, which are dense layers.
    """

    def __init__(
        self, channels: int, latent_dim: int, sn: bool = True, base: int = 128
    ):
        super().__init__()
        self.x_branch = nn.Sequential(
            *_conv_block(channels, base, sn, False),
            *_conv_block(base, 2 * base, sn, True),
            *_conv_block(2 * base, 4 * base, sn, True),
            ChannelsLastFlatten(),
        )
        self.z_branch = nn.Sequential(
            normalized(nn.Linear(latent_dim, 512), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.2),
            normalized(nn.Linear(512, 512), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.2),
        )
        self.joint = nn.Sequential(
            normalized(nn.Linear(4 * base * 4 * 4 + 512, 1024), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.2),
        )
        self.logit = nn.Linear(1024, 1)

    def forward(self, x, z):
        features = self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], dim=1))
        return self.logit(features), features


def image_discriminator_xx(channels: int, sn: bool = True) -> PairDiscriminator:
    """D_xx(x, x'): images stacked on channels, conv 64, 128 (k5 s2, dropout 0.2) -> 1.

    Shown in chapters/06_alad.ipynb.
    """

    def block(c_in, c_out):
        return [
            normalized(Conv2dSame(c_in, c_out, 5, stride=2), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.2),
        ]

    return PairDiscriminator(
        nn.Sequential(*block(2 * channels, 64), *block(64, 128), ChannelsLastFlatten()),
        128 * 8 * 8,
    )


def image_discriminator_zz(latent_dim: int, sn: bool = True) -> PairDiscriminator:
    """D_zz(z, z'): Dense 64 -> 32 (LeakyReLU, dropout 0.2) -> 1."""
    return PairDiscriminator(
        nn.Sequential(
            normalized(nn.Linear(2 * latent_dim, 64), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.2),
            normalized(nn.Linear(64, 32), sn),
            nn.LeakyReLU(LEAK),
            Dropout(0.2),
        ),
        32,
    )


def normal_init(module: nn.Module) -> None:
    """The official image networks' N(0, 0.01) kernels and zero biases; BatchNorm
    keeps gamma 1, beta 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.01)
        nn.init.zeros_(module.bias)


NETWORKS = (
    "encoder",
    "generator",
    "discriminator_xz",
    "discriminator_xx",
    "discriminator_zz",
)
DISCRIMINATORS = NETWORKS[2:]


def build_networks(input_shape, hp) -> dict[str, nn.Module]:
    """The five networks for a tabular ``(features,)`` or image ``(32, 32, C)`` input.

    Images come padded; the tabular widths are ``TABULAR_WIDTHS[hp["tabular_widths"]]``.
    """
    latent, sn = hp["latent_dim"], hp["spectral_norm"]
    if len(input_shape) == 1:
        features, units = input_shape[0], TABULAR_WIDTHS[hp["tabular_widths"]]
        xz = units["xz_x"], units["xz_z"], units["xz_joint"]
        nets = {
            "encoder": tabular_encoder(features, latent, sn, units["encoder"]),
            "generator": tabular_generator(features, latent, units["generator"]),
            "discriminator_xz": TabularDiscriminatorXZ(features, latent, sn, *xz),
            "discriminator_xx": tabular_discriminator_xx(features, sn, units["xx"]),
            "discriminator_zz": tabular_discriminator_zz(latent, sn, units["zz"]),
        }
        init = glorot_init  # the official tabular networks use xavier_initializer
    else:
        channels, base = input_shape[-1], hp["base_filters"]
        nets = {
            "encoder": image_encoder(channels, latent, sn, base),
            "generator": image_generator(channels, latent, base),
            "discriminator_xz": ImageDiscriminatorXZ(channels, latent, sn, base),
            "discriminator_xx": image_discriminator_xx(channels, sn),
            "discriminator_zz": image_discriminator_zz(latent, sn),
        }
        init = normal_init
    for net in nets.values():
        net.apply(init)
        # after initialisation: the parametrisation keeps the initial weight as its
        # `original`
        for module in net.modules():
            if getattr(module, "wants_spectral_norm", False):
                spectral_norm(module)
    return nets


class ALADTorch(TorchAverages, TorchBackend):
    """ALAD's networks, optimisers, moving averages and training step in PyTorch."""

    def __init__(self, input_shape, hyperparameters, seed):
        super().__init__(input_shape, hyperparameters, seed)
        model_shape = to_model_space(
            np.zeros((1, *self.input_shape), np.float32)
        ).shape[1:]
        self.networks = {
            k: v.to(self.device)
            for k, v in build_networks(model_shape, self.hp).items()
        }
        self.encoder, self.generator, self.d_xz, self.d_xx, self.d_zz = (
            self.networks[k] for k in NETWORKS
        )
        # one Adam for the three discriminators, one for G and E: each group always
        # steps together, and Adam updates each weight on its own, so this is one
        # Adam per network, called three times less a step
        settings = {"lr": self.hp["learning_rate"], "betas": (self.hp["beta_1"], 0.999)}
        self.optimizers = {
            "discriminators": adam(
                [
                    p
                    for name in DISCRIMINATORS
                    for p in self.networks[name].parameters()
                ],
                **settings,
            ),
            "generator_encoder": adam(
                [*self.generator.parameters(), *self.encoder.parameters()], **settings
            ),
        }
        self.ema = TorchEMA(self.networks, self.hp["ema_decay"], self.hp["ema_warmup"])

    def adversarial_losses(self, x, z):
        """One pass through all five networks, and each side's losses (paper, eqs. 3-5).

        The pairs are (x, E(x)) and (G(z), z) for D_xz, (x, x) and (x, G(E(x)))
        for D_xx, (z, z) and (z, E(G(z))) for D_zz; the losses are composed
        from their logits by :func:`ganlib.alad.losses_from_logits`, shared
        with the Keras twin.

        Shown in chapters/06_alad.ipynb.
        """
        z_enc, x_gen = self.encoder(x), self.generator(z)
        x_rec, z_rec = self.generator(z_enc), self.encoder(x_gen)
        logits = {
            "xz_real": self.d_xz(x, z_enc)[0],
            "xz_fake": self.d_xz(x_gen, z)[0],
            "xx_real": self.d_xx(x, x)[0],
            "xx_fake": self.d_xx(x, x_rec)[0],
            "zz_real": self.d_zz(z, z)[0],
            "zz_fake": self.d_zz(z, z_rec)[0],
        }
        return losses_from_logits(logits, torch, self.hp["use_dzz"])

    def _step(self, loss, optimizer: str):
        self.optimizers[optimizer].zero_grad()
        loss.backward()
        self.optimizers[optimizer].step()

    def latent_noise(self, n: int) -> torch.Tensor:
        """z ~ N(0, I) for ``n`` samples.

        A test feeds both twins the same z through it.
        """
        return torch.randn(n, self.hp["latent_dim"], device=self.device)

    def train_step(self, batch):
        """One step of the three discriminators, then one of G and E.

        Shown in chapters/06_alad.ipynb.
        """
        self.train_mode(True)
        x = self.to_tensor(to_model_space(batch))
        n = len(x)
        pairs = ("xz", "xx", "zz") if self.hp["use_dzz"] else ("xz", "xx")

        # the discriminators, with one optimiser; E and G are only read here
        with frozen(self.encoder, self.generator):
            losses = self.adversarial_losses(x, self.latent_noise(n))
        self._step(sum(losses[f"loss_d_{pair}"] for pair in pairs), "discriminators")

        # G and E: loss_g = loss_g_xz + loss_cycle, loss_e = loss_e_xz + loss_cycle.
        # loss_g_xz does not depend on E, nor loss_e_xz on G, so one backward pass of
        # their sum gives both networks' gradients; the discriminators are only read
        z = self.latent_noise(n)
        with frozen(self.d_xz, self.d_xx, self.d_zz):
            losses.update(
                {
                    k: v
                    for k, v in self.adversarial_losses(x, z).items()
                    if k in ("loss_g_xz", "loss_e_xz", "loss_cycle")
                }
            )
            self._step(
                losses["loss_g_xz"] + losses["loss_e_xz"] + losses["loss_cycle"],
                "generator_encoder",
            )
        self.ema.update()
        return {
            "loss_d_xz": losses["loss_d_xz"].item(),
            "loss_d_xx": losses["loss_d_xx"].item(),
            "loss_d_zz": losses["loss_d_zz"].item(),
            "loss_g": (losses["loss_g_xz"] + losses["loss_cycle"]).item(),
            "loss_e": (losses["loss_e_xz"] + losses["loss_cycle"]).item(),
        }

    scoring_networks = ("encoder", "generator", "discriminator_xx")

    def _forward(self, encoder, generator, d_xx, batch):
        x = self.to_tensor(to_model_space(batch))
        z = encoder(x)
        x_rec = generator(z)
        logit_real, features_real = d_xx(x, x)
        logit_fake, features_fake = d_xx(x, x_rec)
        return {
            "reconstruction": self.to_numpy(x_rec),
            "latent": self.to_numpy(z),
            "logit_real": self.to_numpy(logit_real),
            "logit_fake": self.to_numpy(logit_fake),
            "features_real": self.to_numpy(features_real),
            "features_fake": self.to_numpy(features_fake),
        }
