"""GANomaly (Akcay, Atapour-Abarghouei and Breckon, ACCV 2018): encode, decode, encode.

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
input scaling (:func:`to_model_space`), the two scores, min-max scaling, and the
label-free criterion of epoch selection.  The networks and the training step
are in :mod:`ganlib.ganomaly.torch_model` and :mod:`ganlib.ganomaly.keras_model`.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..detector import Detector, check_array
from ..images import crop, network_size, pad_to_network_size
from ..losses import bce_with_logits

__all__ = [
    "GANomaly",
    "contextual_error",
    "from_model_space",
    "latent_distance",
    "minmax_scale",
    "network_size",
    "to_model_space",
    "training_losses",
]

#: MNIST mean and standard deviation, the official code's MNIST normalisation
#: (``lib/data.py``).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
INPUT_SCALINGS = ("tanh", "official_mnist")
REENCODERS = ("E", "G_E")
POSITIVE_INTEGERS = ("latent_dim", "base_filters", "batch_size", "epochs")


def to_model_space(x: np.ndarray, input_scaling: str = "tanh") -> np.ndarray:
    """Images (n, h, w, c) in [0, 1] -> network input (n, s, s, c), padded and scaled.

    MNIST's 28x28 digits are padded with background (0) to 32x32, centred.
    The official code *resizes* 28 -> 32 instead; padding keeps every pixel
    as it is.  ``"tanh"`` scales to [-1, 1], the range of the decoder's tanh
    output; ``"official_mnist"`` uses the official code's mean/std
    normalisation, whose range [-0.42, 2.82] the tanh output cannot reach.

    Shown in chapters/04_ganomaly.ipynb.
    """
    padded = pad_to_network_size(x)
    if input_scaling == "tanh":
        return padded * 2.0 - 1.0
    if input_scaling == "official_mnist":
        return (padded - MNIST_MEAN) / MNIST_STD
    raise ValueError(
        f"input_scaling must be one of {INPUT_SCALINGS}, got {input_scaling!r}"
    )


def from_model_space(
    x_net: np.ndarray, height: int, width: int, input_scaling: str = "tanh"
) -> np.ndarray:
    """Inverse of :func:`to_model_space`: back to (n, height, width, c) in [0, 1]."""
    cropped = crop(x_net, height, width)
    if input_scaling == "tanh":
        images = (cropped + 1.0) / 2.0
    else:
        images = cropped * MNIST_STD + MNIST_MEAN
    return np.clip(images, 0.0, 1.0)


def training_losses(x, x_hat, z, z_hat, d_real, d_fake, hp: dict, ops=np) -> dict:
    """G's loss (paper, eq. 4) and D's cross-entropy, written once for both twins.

    ``ops`` is ``torch`` or ``keras.ops`` (or ``numpy``); ``d_real`` and
    ``d_fake`` are D's ``(features, logit)`` for :math:`x` and :math:`\\hat x`.
    The adversarial loss is feature matching on D's last feature map, the
    contextual loss an L1 and the encoder loss an L2 distance (section 3.2).

    Shown in chapters/04_ganomaly.ipynb.
    """
    (features_real, logit_real), (features_fake, logit_fake) = d_real, d_fake
    adv = ops.mean(ops.square(features_real - features_fake))
    con = ops.mean(ops.abs(x - x_hat))
    enc = ops.mean(ops.square(z - z_hat))
    g_loss = hp["w_adv"] * adv + hp["w_con"] * con + hp["w_enc"] * enc
    d_loss = 0.5 * (
        bce_with_logits(logit_real, 1.0, ops) + bce_with_logits(logit_fake, 0.0, ops)
    )
    return {"g_loss": g_loss, "d_loss": d_loss, "adv": adv, "con": con, "enc": enc}


def latent_distance(z: np.ndarray, z_hat: np.ndarray) -> np.ndarray:
    """The paper's score: per-sample mean squared distance between the two latent codes.

    This is the official code's
    ``torch.mean(torch.pow(latent_i - latent_o, 2), dim=1)``.
    The paper (eq. 6) writes an L1 norm; the code, whose figures the paper
    reports, uses this mean squared (L2) distance.

    Shown in chapters/04_ganomaly.ipynb.
    """
    return np.mean(np.square(z - z_hat).reshape(len(z), -1), axis=1)


def contextual_error(x_net: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Per-sample contextual error :math:`\\lVert x - G(x) \\rVert_1 / (s^2 c)`.

    The contextual loss :math:`L_{con}` of the generator (paper, section 3.2)
    for one sample at a time, on the padded, scaled images the networks see:
    its mean over a training batch is the ``con`` loss of ``history_``, so the
    two are on the same scale.  It is the ``"reconstruction"`` score, the
    pixel-space alternative to the paper's latent score.

    Shown in chapters/04_ganomaly.ipynb.
    """
    return np.mean(np.abs(x_net - x_hat).reshape(len(x_net), -1), axis=1)


def minmax_scale(scores: np.ndarray) -> np.ndarray:
    """The paper's scaling :math:`(s - \\min s) / (\\max s - \\min s)` over a test set.

    It is a strictly increasing map of the scores, so it leaves the ranking,
    and with it the AUROC, unchanged; it only depends on the test set as a
    whole (one new sample can change every scaled score).  That is why
    :meth:`GANomaly.decision_function` returns the unscaled score.

    Shown in chapters/04_ganomaly.ipynb.
    """
    scores = np.asarray(scores, np.float64)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / (span if span > 0 else 1.0)


class GANomaly(Detector):
    """GANomaly detector for images, in Keras (default, as the seed article) or PyTorch.

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
      is the official code's mean/std normalisation;
    - ``score="latent"``: what :meth:`decision_function` returns, one of
      ``score_names``: ``"latent"``, the paper's latent distance
      :math:`\\lVert G_E(x) - E(G(x)) \\rVert_2^2` (:func:`latent_distance`),
      or ``"reconstruction"``, the contextual L1 error
      :math:`\\lVert x - G(x) \\rVert_1` (:func:`contextual_error`).
      :meth:`score_variants` gives both from one pass.

    Without labelled anomalies (selection ``"normal-only"``) the epoch is the
    one with the lowest ``val_reconstruction_error`` (see
    :meth:`validation_values`).

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
        "latent_dim": 100,
        "base_filters": 64,
        "w_adv": 1.0,
        "w_con": 50.0,
        "w_enc": 1.0,
        "learning_rate": 2e-4,
        "beta_1": 0.5,
        "beta_2": 0.999,
        "batch_size": 64,
        "epochs": 15,
        "d_reinit_threshold": 1e-5,
        "reencode_with": "E",
        "input_scaling": "tanh",
        "score": "latent",
    }
    choices = {"reencode_with": REENCODERS, "input_scaling": INPUT_SCALINGS}
    score_names = ("latent", "reconstruction")
    label_free_criterion = ("val_reconstruction_error", False)
    input_kind = "image"

    def check_hyperparameters(self, hp: dict) -> None:
        """Sizes and counts > 0, loss weights and threshold >= 0, betas in [0, 1)."""
        for name in POSITIVE_INTEGERS:
            if hp[name] < 1:
                raise ValueError(f"{name} must be a positive integer, got {hp[name]!r}")
        for name in ("w_adv", "w_con", "w_enc", "d_reinit_threshold"):
            if hp[name] < 0:
                raise ValueError(f"{name} must be >= 0, got {hp[name]!r}")
        if hp["learning_rate"] <= 0:
            raise ValueError(f"learning_rate must be > 0, got {hp['learning_rate']!r}")
        for name in ("beta_1", "beta_2"):
            if not 0 <= hp[name] < 1:
                raise ValueError(f"{name} must be in [0, 1), got {hp[name]!r}")

    def to_model_space(self, X) -> np.ndarray:
        """Images in [0, 1] -> the networks' input (:func:`to_model_space`)."""
        scaling = self.hyperparameters["input_scaling"]
        return to_model_space(np.asarray(X, np.float32), scaling)

    def scores_from_outputs(self, x, outputs) -> dict[str, np.ndarray]:
        """Both scores from one pass: the latent distance and the contextual error.

        Shown in chapters/04_ganomaly.ipynb.
        """
        latent = latent_distance(outputs["latent"], outputs["latent_reconstructed"])
        error = contextual_error(self.to_model_space(x), outputs["reconstruction"])
        return {"latent": latent, "reconstruction": error}

    def validation_values(self, x_val, y_val) -> dict[str, float]:
        """After each epoch: the label-free criterion; with labels, both AUROCs.

        ``val_reconstruction_error``, the mean contextual error
        (:func:`contextual_error`) of the *normal* validation images, is the
        label-free criterion, lower is better.  The base class's default, the
        mean validation *score*, would be the latent distance here, which the
        encoder loss :math:`w_{enc} \\lVert z - \\hat z \\rVert_2^2` (paper,
        eq. 4) minimises directly: nothing bounds the codes' scale, and codes
        that shrink or collapse to one point (``G_E`` and ``E`` agreeing on
        everything) drive it to zero while detecting nothing.  A collapsed code
        cannot rebuild the image, so the held-out reconstruction error rewards
        only a generator that really rebuilds unseen normal images; it is the
        validation counterpart of the training loss ``con``.  It knows nothing
        of the anomalies, though: a generator that also learns to rebuild them
        still lowers it, so it tends to pick later epochs than the labelled rule.

        Also recorded: ``val_mean_score`` (mean score of the normal images) and,
        when ``y_val`` holds both classes, ``val_auroc`` (of the ``score`` in
        force) and ``val_auroc_latent``, ``val_auroc_reconstruction``.
        """
        variants = self.score_variants(x_val)
        score, normal = variants[self.hyperparameters["score"]], y_val == 0
        values = {}
        if np.any(normal):
            error = variants["reconstruction"][normal]
            values["val_reconstruction_error"] = float(np.mean(error))
            values["val_mean_score"] = float(np.mean(score[normal]))
        if len(np.unique(y_val)) == 2:
            values["val_auroc"] = metrics.auroc(y_val, score)
            for name in self.score_names:
                values[f"val_auroc_{name}"] = metrics.auroc(y_val, variants[name])
        return values

    def reconstruct(self, X) -> np.ndarray:
        """Reconstructions :math:`\\hat x = G_D(G_E(x))` in inference mode.

        In the input's shape (the padding cropped off) and range [0, 1].
        """
        height, width = self._fitted_shape()[:2]
        return from_model_space(
            self.model_outputs(X)["reconstruction"],
            height,
            width,
            self.hyperparameters["input_scaling"],
        )

    def decision_function_train_mode(self, X, batch_size: int = 64) -> np.ndarray:
        """Scores as the official ``test()`` computes them: BatchNorm in training mode.

        Each batch of ``batch_size`` samples (in the given order) is
        normalised with its own statistics, so a sample's score depends on the
        other samples of its batch: an ordered test set (normal images first,
        as in the official loader) leaks label information into the scores.
        The model is left unchanged (running statistics are restored).

        Shown in chapters/04_ganomaly.ipynb.
        """
        x = check_array(X, self.input_kind, "X", input_shape=self._fitted_shape())
        weights = self.backend.get_weights()
        try:
            with self.compute_scope():
                parts = [
                    self.backend.outputs(x[i : i + batch_size], training=True)
                    for i in range(0, len(x), batch_size)
                ]
        finally:
            self.backend.set_weights(weights)
        outputs = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        return np.asarray(self.score_from_outputs(x, outputs), dtype=np.float64)
