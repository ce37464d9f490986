"""GANomaly (Akcay, Atapour-Abarghouei and Breckon, ACCV 2018): an encoder-decoder-encoder GAN.

A generator made of an encoder :math:`G_E` and a decoder :math:`G_D` reconstructs
an image, :math:`\\hat x = G_D(G_E(x))`; a second encoder :math:`E` maps the
reconstruction back to the latent space; a discriminator :math:`D` judges real
against reconstructed images (paper, section 3.1).  Trained on normal images
only, the two codes :math:`z = G_E(x)` and :math:`\\hat z = E(\\hat x)` agree
for normal images, and an anomaly, reconstructed as something normal, gets a
code :math:`\\hat z` far from its own :math:`z`.  The anomaly score is

.. math:: A(x) = \\frac{1}{d}\\,\\lVert G_E(x) - E(G_D(G_E(x))) \\rVert_2^2

(paper, eq. 6, with the mean squared distance of the official code's
``test()``).  The generator minimises (paper, section 3.2, eq. 4)

.. math:: L_G = w_{adv}\\, \\lVert f(x) - f(\\hat x) \\rVert_2^2
               + w_{con}\\, \\lVert x - \\hat x \\rVert_1
               + w_{enc}\\, \\lVert z - \\hat z \\rVert_2^2 ,

where :math:`f` is the discriminator's last feature map (feature matching,
not its output probability), and :math:`D` minimises the binary cross-entropy
of real against reconstructed images.

The framework-neutral parts are here: hyper-parameters, the 28->32 padding and
input scaling, the score, min-max scaling.  The networks and the training step
are in :mod:`ganlib.ganomaly.torch_model` and :mod:`ganlib.ganomaly.keras_model`.
"""

from __future__ import annotations

import numpy as np

from ..detector import Detector, check_array, check_choice
from ..images import crop, network_size, pad_to_network_size  # noqa: F401  (network_size: used by the twins)

#: MNIST mean and standard deviation, the official code's MNIST normalisation (``lib/data.py``).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
INPUT_SCALINGS = ("tanh", "official_mnist")
REENCODERS = ("E", "G_E")


def prepare(x: np.ndarray, input_scaling: str = "tanh") -> np.ndarray:
    """Images (n, h, w, c) in [0, 1] -> network input (n, s, s, c), zero-padded and scaled.

    MNIST's 28x28 digits are padded with background (0) to 32x32, centred.
    The official code *resizes* 28 -> 32 instead; padding keeps every pixel
    as it is.  ``"tanh"`` scales to [-1, 1], the range of the decoder's tanh
    output; ``"official_mnist"`` uses the official code's mean/std
    normalisation, whose range [-0.42, 2.82] the tanh output cannot reach.
    """
    padded = pad_to_network_size(x)
    if input_scaling == "tanh":
        return padded * 2.0 - 1.0
    if input_scaling == "official_mnist":
        return (padded - MNIST_MEAN) / MNIST_STD
    raise ValueError(f"input_scaling must be one of {INPUT_SCALINGS}, got {input_scaling!r}")


def unprepare(x_net: np.ndarray, height: int, width: int, input_scaling: str = "tanh") -> np.ndarray:
    """Inverse of :func:`prepare`: network-space images back to (n, height, width, c) in [0, 1]."""
    cropped = crop(x_net, height, width)
    if input_scaling == "tanh":
        images = (cropped + 1.0) / 2.0
    else:
        images = cropped * MNIST_STD + MNIST_MEAN
    return np.clip(images, 0.0, 1.0)


def latent_distance(z: np.ndarray, z_hat: np.ndarray) -> np.ndarray:
    """The anomaly score: per-sample mean squared distance between the two latent codes.

    This is the official code's ``torch.mean(torch.pow(latent_i - latent_o, 2), dim=1)``.
    The paper (eq. 6) writes an L1 norm; the code, whose figures the paper
    reports, uses this mean squared (L2) distance.
    """
    return np.mean(np.square(z - z_hat).reshape(len(z), -1), axis=1)


def minmax_scale(scores: np.ndarray) -> np.ndarray:
    """The paper's score scaling, :math:`(s - \\min s) / (\\max s - \\min s)` over a whole test set.

    It is a strictly increasing map of the scores, so it leaves the ranking,
    and with it the AUROC, unchanged; it only depends on the test set as a
    whole (one new sample can change every scaled score).  That is why
    :meth:`GANomaly.decision_function` returns the unscaled score.
    """
    scores = np.asarray(scores, np.float64)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / (span if span > 0 else 1.0)


class GANomaly(Detector):
    """GANomaly anomaly detector for images, in Keras (default, as the seed article) or PyTorch.

    Networks (official ``lib/networks.py``, DCGAN-style, no biases): ``G_E`` and
    ``E`` are 4x4 stride-2 convolutions from ``base_filters`` channels,
    doubling to 4x4 maps (BatchNorm from the second, LeakyReLU 0.2), then a 4x4
    convolution to ``latent_dim``; ``G_D`` mirrors it with transposed
    convolutions, BatchNorm, ReLU and a tanh output; ``D`` is an encoder with
    one output and a sigmoid, and its last 4x4 feature map feeds the
    feature-matching loss.  DCGAN initialisation N(0, 0.02).

    Hyper-parameters (defaults = paper and official code, ``options.py``):

    - ``latent_dim=100``, ``base_filters=64`` (``nz``, ``ngf = ndf``); the
      chapter uses a narrower network on CPU;
    - ``w_adv=1``, ``w_con=50``, ``w_enc=1``: the weights of eq. 4;
    - ``learning_rate=2e-4``, ``beta_1=0.5``, ``beta_2=0.999``: Adam for G and
      D (the paper's text gives 2e-3; the code's 2e-4 is used);
    - ``batch_size=64``, ``epochs=15``;
    - ``d_reinit_threshold=1e-5``: D is re-initialised when its loss falls
      below it, as in the official code (0 switches it off);
    - ``reencode_with="E"``: encode :math:`\\hat x` with the separate encoder
      ``E`` (paper) or with ``"G_E"``, the generator's own encoder (the seed
      article's choice, which then has no ``E`` network);
    - ``input_scaling="tanh"``: inputs scaled to [-1, 1]; ``"official_mnist"``
      is the official code's mean/std normalisation.

    Deviations from the official code, all named in the chapter: inputs are
    zero-padded 28->32 instead of resized; the epoch is selected on a
    validation split, never on the test set; :meth:`decision_function`
    scores with BatchNorm in inference mode (the official ``test()`` keeps
    train mode, which :meth:`decision_function_train_mode` reproduces); D's
    cross-entropy is computed from logits (the same function, numerically
    safer than ``Sigmoid`` + ``BCELoss``); G and D are updated from one
    forward pass, where the official code runs D twice more for G's loss
    (same parameters, so the same gradients; only D's BatchNorm running
    statistics, never used, differ).
    """

    backends = {
        "torch": "ganlib.ganomaly.torch_model:GANomalyTorch",
        "keras": "ganlib.ganomaly.keras_model:GANomalyKeras",
    }
    default_framework = "keras"
    defaults = {
        "latent_dim": 100, "base_filters": 64,
        "w_adv": 1.0, "w_con": 50.0, "w_enc": 1.0,
        "learning_rate": 2e-4, "beta_1": 0.5, "beta_2": 0.999,
        "batch_size": 64, "epochs": 15,
        "d_reinit_threshold": 1e-5, "reencode_with": "E", "input_scaling": "tanh",
    }
    input_kind = "image"

    def __init__(self, framework: str | None = None, seed: int = 0, verbose: bool = True, **hyperparameters):
        super().__init__(framework=framework, seed=seed, verbose=verbose, **hyperparameters)
        hp = self.hyperparameters
        check_choice(hp["reencode_with"], REENCODERS, "reencode_with")
        check_choice(hp["input_scaling"], INPUT_SCALINGS, "input_scaling")
        for name in ("latent_dim", "base_filters", "batch_size", "epochs"):
            value = hp[name]
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def score_from_outputs(self, x, outputs):
        return latent_distance(outputs["latent"], outputs["latent_reconstructed"])

    def reconstruct(self, x) -> np.ndarray:
        """Reconstructions :math:`\\hat x = G_D(G_E(x))` in inference mode, in the input's shape and range."""
        height, width = self._fitted_shape()[:2]
        return unprepare(self.model_outputs(x)["reconstruction"], height, width,
                         self.hyperparameters["input_scaling"])

    def decision_function_train_mode(self, x, batch_size: int = 64) -> np.ndarray:
        """Scores as the official ``test()`` computes them: BatchNorm in *training* mode.

        Each batch of ``batch_size`` samples (in the given order) is
        normalised with its own statistics, so a sample's score depends on the
        other samples of its batch: an ordered test set (normal images first,
        as in the official loader) leaks label information into the scores.
        The model is left unchanged (running statistics are restored).
        """
        x_checked = self._check_scoring_input(x)
        weights = self.backend.get_weights()
        try:
            parts = [self.backend.outputs(x_checked[start:start + batch_size], training=True)
                     for start in range(0, len(x_checked), batch_size)]
        finally:
            self.backend.set_weights(weights)
        outputs = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        return np.asarray(self.score_from_outputs(x_checked, outputs), dtype=np.float64)

    def _check_scoring_input(self, x):
        return check_array(x, self.input_kind, "x", input_shape=self._fitted_shape())
