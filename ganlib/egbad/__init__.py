"""EGBAD / EfficientGAN: "Efficient GAN-Based Anomaly Detection" (Zenati et al., 2018, arXiv:1802.06222).

A BiGAN {Donahue et al., 2017; Dumoulin et al., 2017}: besides the generator
G: z -> x, an encoder E: x -> z is trained, and the discriminator judges
*pairs*: (x, E(x)) for real data, (G(z), z) for generated data.  At the
optimum E inverts G, so a test sample is mapped to its code and rebuilt in one
pass, with no per-sample latent search as in AnoGAN.  The anomaly score
(paper, section 3, eq. for A(x)) is

.. math::

    A(x) = \\alpha\\, L_G(x) + (1 - \\alpha)\\, L_D(x), \\qquad
    L_G(x) = \\lVert x - G(E(x)) \\rVert_1, \\qquad \\alpha = 0.9,

with one of two discriminator terms:

- cross-entropy (``discriminator_score="cross-e"``): :math:`L_D(x) = \\mathrm{BCE}(\\sigma(D(x, E(x))), 1)`,
  how unconvincing the pair (x, E(x)) is to D.  The official code evaluates D on
  the *reconstructed* pair (G(E(x)), E(x)) instead; ``cross_e_pair="reconstruction"``
  selects that form, ``"input"`` (default) the paper's;
- feature matching (``"fm"``): :math:`L_D(x) = \\lVert f_D(x, E(x)) - f_D(G(E(x)), E(x)) \\rVert_1`,
  with f_D the discriminator's last hidden layer.

The networks are in :mod:`ganlib.egbad.torch_model` and
:mod:`ganlib.egbad.keras_model`; the score and the preprocessing, written once,
are below.
"""

from __future__ import annotations

import numpy as np

from ..detector import TabularOrImageDetector, check_array, check_choice
from .. import metrics

DISCRIMINATOR_SCORES = ("cross-e", "fm")
CROSS_E_PAIRS = ("input", "reconstruction")

# The official code's per-dataset settings (bigan/kdd_utilities.py, bigan/mnist_utilities.py)
TABULAR = {"latent_dim": 32, "batch_size": 50, "hidden_dim": 128}
IMAGE = {"latent_dim": 200, "batch_size": 100, "hidden_dim": 1024}


def to_model_space(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] to the generator's tanh range [-1, 1] (the official ``centered=True``); tabular as is."""
    x = np.asarray(x, dtype=np.float32)
    return 2.0 * x - 1.0 if x.ndim == 4 else x


def from_model_space(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_model_space` (images back to [0, 1])."""
    x = np.asarray(x, dtype=np.float32)
    return (x + 1.0) / 2.0 if x.ndim == 4 else x


def softplus(v: np.ndarray) -> np.ndarray:
    """log(1 + e^v), computed stably."""
    v = np.asarray(v, dtype=np.float64)
    return np.logaddexp(0.0, v)


def anomaly_score(x, outputs: dict, alpha: float = 0.9, discriminator_score: str = "cross-e",
                  cross_e_pair: str = "input") -> np.ndarray:
    """A(x) = α·‖x − G(E(x))‖₁ + (1 − α)·L_D(x), per sample (paper, section 3).

    ``x`` is the input in model space and ``outputs`` the networks' outputs
    (``reconstruction`` in model space, ``logit_input`` = D(x, E(x)),
    ``logit_reconstruction`` = D(G(E(x)), E(x)), ``features_input`` and
    ``features_reconstruction``, D's last hidden layer on the two pairs).
    BCE(σ(l), 1) = −log σ(l) = softplus(−l).
    """
    n = len(x)
    residual = np.abs(np.asarray(x, np.float64) - outputs["reconstruction"]).reshape(n, -1).sum(axis=1)
    if discriminator_score == "cross-e":
        logit = outputs["logit_input" if cross_e_pair == "input" else "logit_reconstruction"].reshape(n)
        dis = softplus(-logit)
    elif discriminator_score == "fm":
        dis = np.abs(outputs["features_input"].astype(np.float64)
                     - outputs["features_reconstruction"]).reshape(n, -1).sum(axis=1)
    else:
        raise ValueError(f"discriminator_score must be one of {DISCRIMINATOR_SCORES}, got {discriminator_score!r}")
    return alpha * residual + (1.0 - alpha) * dis


class EGBAD(TabularOrImageDetector):
    """EGBAD (Zenati et al., 2018): BiGAN-based anomaly detector for tabular data and images.

    Inputs are tabular ``(n, features)`` (e.g. KDD99, any width) or images
    ``(n, height, width, channels)`` in [0, 1] with height and width divisible by 4
    (MNIST 28x28x1); the network family follows the input's rank.

    Defaults follow the official code (houssamzenati/Efficient-GAN-Anomaly-Detection):

    - tabular: E 64 (LeakyReLU 0.1) -> 32; G 64 -> 128 -> features (ReLU);
      D: x-branch Dense 128 and z-branch Dense 128 (LeakyReLU 0.1, dropout 0.2),
      joint Dense 128 (the feature-matching layer) -> 1; batch 50, latent 32,
      Glorot-uniform weights;
    - images: conv E (32 k3, 64 k3 s2 BN, 128 k3 s2 BN, LeakyReLU 0.1) -> 200;
      G Dense 1024 BN -> Dense 7x7x128 BN -> deconv 64 k4 s2 BN -> deconv 1 k4 s2 tanh;
      D: x-branch conv 64 k4 s2, conv 64 k4 s2 BN; z-branch Dense 512; joint
      Dense 1024 (feature-matching layer) -> 1; LeakyReLU 0.1, dropout 0.5;
      batch 100, latent 200, N(0, 0.02) weights; images scaled to [-1, 1];
    - Adam lr 1e-5, β1 0.5, one optimiser per network; per batch one D step
      (D(x, E(x)) -> 1, D(G(z), z) -> 0, z ~ N(0, I)) then one simultaneous G and E
      step with the labels inverted;
    - scoring uses the exponential moving average of the weights (``ema_decay``
      0.999, as the official MNIST script; its KDD script uses 0.9999) with
      BatchNorm and dropout in inference mode; α = 0.9 (the code's ``w = 0.1``
      weights the discriminator term).

    Choices and deviations (each reachable by a hyper-parameter):

    - ``discriminator_score="cross-e"`` by default, the variant whose KDD99 figure
      the paper reports (0.9200 / 0.9582 / 0.9372); the official command line
      defaults to ``"fm"``;
    - ``cross_e_pair="input"``: the paper's D(x, E(x)); the official code's
      D(G(E(x)), E(x)) is ``"reconstruction"``;
    - the D step and the G/E step use the same mini-batch (the official code draws
      the G/E batch from a second shuffle of the training set);
    - BatchNorm momentum 0.9 / epsilon 1e-5 (PyTorch's) instead of TF1's 0.99 / 1e-3;
    - the image encoder has a LeakyReLU after its first convolution, as in one
      version of the official code (a later commit drops it).
    """

    backends = {
        "torch": "ganlib.egbad.torch_model:EGBADTorch",
        "keras": "ganlib.egbad.keras_model:EGBADKeras",
    }
    default_framework = "keras"
    family_defaults = {"tabular": TABULAR, "image": IMAGE}
    defaults = {
        "latent_dim": None,          # 32 tabular, 200 images
        "hidden_dim": None,          # D's feature-matching layer: 128 tabular, 1024 images
        "batch_size": None,          # 50 tabular, 100 images
        "learning_rate": 1e-5,
        "beta_1": 0.5,
        "ema_decay": 0.999,
        "alpha": 0.9,
        "discriminator_score": "cross-e",
        "cross_e_pair": "input",
        "epochs": 20,
    }

    def __init__(self, framework=None, seed=0, verbose=True, **hyperparameters):
        super().__init__(framework=framework, seed=seed, verbose=verbose, **hyperparameters)
        hp = self.hyperparameters
        check_choice(hp["discriminator_score"], DISCRIMINATOR_SCORES, "discriminator_score")
        check_choice(hp["cross_e_pair"], CROSS_E_PAIRS, "cross_e_pair")
        if isinstance(hp["alpha"], bool) or not isinstance(hp["alpha"], (int, float)) or not 0.0 <= hp["alpha"] <= 1.0:
            raise ValueError(f"alpha must be a number in [0, 1], got {hp['alpha']!r}")
        from ..ema import check_decay

        check_decay(hp["ema_decay"])

    def check_image_shape(self, shape):
        if shape[1] % 4 or shape[2] % 4:
            raise ValueError(f"EGBAD's image networks need height and width divisible by 4, got {shape[1]}x{shape[2]}")

    def _validation_metric(self, x_val, y_val):
        """Validation AUROC (which selects the epoch), AUPRC and F1 with the top share of scores equal to
        the validation anomaly share flagged; the mean score when ``y_val`` holds normal samples only."""
        scores = self.decision_function(x_val)
        if len(np.unique(y_val)) == 2:
            share = float(np.mean(y_val))
            self._record(val_auprc=metrics.auprc(y_val, scores),
                         val_f1=metrics.precision_recall_f1(y_val, scores, share)["f1"])
            return "val_auroc", metrics.auroc(y_val, scores), True
        return "val_mean_score", float(np.mean(scores)), False

    # ------------------------------------------------------------------ scoring

    def score_from_outputs(self, x, outputs, discriminator_score=None, cross_e_pair=None, alpha=None):
        hp = self.hyperparameters
        return anomaly_score(to_model_space(x), outputs,
                             alpha=hp["alpha"] if alpha is None else alpha,
                             discriminator_score=discriminator_score or hp["discriminator_score"],
                             cross_e_pair=cross_e_pair or hp["cross_e_pair"])

    def score_variants(self, x) -> dict[str, np.ndarray]:
        """The three scores from one pass of the networks: the paper's and the code's cross-entropy, and fm."""
        x = check_array(x, self.input_kind, "x", input_shape=self._fitted_shape())
        outputs = self.model_outputs(x)
        return {
            "cross-e, D(x, E(x)) (paper)": self.score_from_outputs(x, outputs, "cross-e", "input"),
            "cross-e, D(G(E(x)), E(x)) (code)": self.score_from_outputs(x, outputs, "cross-e", "reconstruction"),
            "feature matching": self.score_from_outputs(x, outputs, "fm"),
            "reconstruction only (alpha = 1)": self.score_from_outputs(x, outputs, alpha=1.0),
        }

    def reconstruct(self, x) -> np.ndarray:
        """G(E(x)) in inference mode with the averaged weights, in the input's range."""
        return from_model_space(self.model_outputs(x)["reconstruction"])

    def encode(self, x) -> np.ndarray:
        """E(x), the latent codes, with the averaged weights."""
        return self.model_outputs(x)["latent"]
