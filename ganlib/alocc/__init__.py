"""ALOCC: Adversarially Learned One-Class Classifier (Sabokrou et al., CVPR 2018).

Two networks are trained against each other on the target (normal) class only
(Sabokrou et al., 2018):

- **R**, the reconstructor, an encoder-decoder that sees a noisy copy
  :math:`\\tilde X = X + \\eta`, :math:`\\eta \\sim \\mathcal N(0, \\sigma^2 I)`,
  and learns to return a clean target-class image (paper, section 3.1);
- **D**, the discriminator, which learns to tell real target images (label 1)
  from R's outputs (label 0).

The joint objective (paper, eq. 4) is

.. math:: \\min_R \\max_D \\; \\mathbb E_X[\\log D(X)] + \\mathbb E_{\\tilde X}[\\log(1 - D(R(\\tilde X)))]
          + \\lambda \\, \\mathbb E \\lVert X - R(\\tilde X) \\rVert^2 .

After training, R pushes target-class images towards the class and *distorts*
novel ones, so D, which has learned what target images look like, separates
them better on R's output than on the raw input: the paper's preferred
one-class classifier is :math:`D(R(X)) > \\tau` (eq. 6), with :math:`D(X) > \\tau`
(eq. 5) as the simpler variant.

Choices where the paper and the official code disagree (each one is a
hyper-parameter, so the other choice stays reachable):

==========================  =====================  ======================  =========
item                        paper                  official code           default
==========================  =====================  ======================  =========
λ (``lambda_reconstruction``)  0.4                 0.2                     0.4 (paper)
reconstruction loss         ‖X − R(X̃)‖², clean X    cross-entropy, noisy X̃  paper
channel widths              64 … 512               16 … 128                code (16)
noise σ (``noise_std``)     not given              0.155                   0.155 (code)
optimiser, learning rate    not given              RMSprop, 0.002          code
R updates per D update      not given              2                       2 (code)
==========================  =====================  ======================  =========

Why: the paper's loss is the method as published, and the squared error per
image (a sum over pixels, as the norm is written) weighs reconstruction
enough that R stays a reconstructor; the code's narrower networks train in
minutes on a CPU, and the paper's widths (``base_filters=64``) remain one
argument away.  The noise is drawn afresh for every batch (the official code
draws it once, before training) because eq. 4 takes an expectation over η.

Stopping (paper, section 3.3): training should stop "when R reconstructs
well".  That is ALOCC's label-free criterion: after every epoch ``fit``
measures R's reconstruction error on the *normal* validation images, and the
``"normal-only"`` selection rule keeps the epoch where it is lowest.  With
labelled anomalies in the validation split, ``selection="auto"`` prefers the
validation AUROC instead; ``selection="normal-only"`` keeps the paper's rule.
The test set is never looked at.

Scores (higher = more anomalous), all reachable through
:meth:`ALOCC.score_variants`:

- ``"d_of_reconstruction"``: :math:`-\\operatorname{logit} D(R(X))`, the paper's
  preferred score and the default of :meth:`ALOCC.decision_function`;
- ``"d_of_input"``: :math:`-\\operatorname{logit} D(X)`;
- ``"reconstruction_error"``: the mean squared error of R's reconstruction.

D's *logit* is used rather than :math:`1 - D`: the ranking is the same, but
a saturated sigmoid (the official repository's issues report outputs around
1e-9 to 1e-20) would round many samples to the same float and tie them.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..autoencoder import reconstruction_error
from ..detector import Detector

SCORES = ("d_of_reconstruction", "d_of_input", "reconstruction_error")
RECONSTRUCTION_LOSSES = ("l2", "cross_entropy")


def add_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """The noisy copy :math:`\\tilde X = X + \\eta` R is trained on (eq. 3), in [0, 1].

    Drawn in NumPy from the detector's seeded generator, so both frameworks see
    the same noise for the same seed.  Clipping keeps R's input in the range of
    its sigmoid output, as the official code's ``skimage.util.random_noise`` does.

    Shown in chapters/02_alocc.ipynb.
    """
    if std == 0:
        return x
    return np.clip(x + rng.normal(0.0, std, size=x.shape).astype(np.float32), 0.0, 1.0)


def encoder_sizes(height: int, width: int, n: int = 3) -> list[tuple[int, int]]:
    """Spatial sizes after each of ``n`` stride-2 "same" convolutions: 28 -> 14 -> 7 -> 4."""
    sizes = [(height, width)]
    for _ in range(n):
        sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))
    return sizes


def scores_from_outputs(x: np.ndarray,
                        outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The three anomaly scores of section 3.2, from R(X) and D's logits on X and R(X).

    Shown in chapters/02_alocc.ipynb.
    """
    return {
        "d_of_reconstruction":
            -outputs["d_logit_reconstruction"].astype(np.float64).reshape(-1),
        "d_of_input": -outputs["d_logit_input"].astype(np.float64).reshape(-1),
        "reconstruction_error": reconstruction_error(x, outputs["reconstruction"]),
    }


class ALOCC(Detector):
    """ALOCC one-class classifier for images, in Keras (default, as in the seed article) or PyTorch.

    Hyper-parameters (see the module docstring for paper-vs-code choices):

    ``base_filters`` (16)
        Width of D's first layer; R's encoder has 2x, 4x and 8x this width.
        16 is the official code, 64 the paper's Figures 3-4.
    ``lambda_reconstruction`` (0.4)
        λ of eq. 4 (paper 0.4, code 0.2).
    ``reconstruction_loss`` ("l2")
        ``"l2"``: per-image squared error to the clean X (paper);
        ``"cross_entropy"``: mean pixel cross-entropy to the noisy X̃ (code).
    ``noise_std`` (0.155)
        σ of the Gaussian noise η added to R's input (code; the paper gives none).
    ``learning_rate`` (0.002), ``batch_size`` (128), ``epochs`` (40)
        RMSprop for both networks, as the official code.
    ``r_steps`` (2)
        R updates per D update (code; "different from paper" says its comment).
    ``score`` ("d_of_reconstruction")
        Which of :data:`SCORES` ``decision_function`` returns.

    The networks take the images as they are, in [0, 1] (R ends in a
    sigmoid), so :meth:`to_model_space` is the identity.
    """

    backends = {
        "torch": "ganlib.alocc.torch_model:ALOCCTorch",
        "keras": "ganlib.alocc.keras_model:ALOCCKeras",
    }
    default_framework = "keras"
    defaults = {
        "base_filters": 16,
        "lambda_reconstruction": 0.4,
        "reconstruction_loss": "l2",
        "noise_std": 0.155,
        "learning_rate": 0.002,
        "batch_size": 128,
        "epochs": 40,
        "r_steps": 2,
        "score": "d_of_reconstruction",
    }
    choices = {"reconstruction_loss": RECONSTRUCTION_LOSSES}
    score_names = SCORES
    # section 3.3: stop "when R reconstructs well", measured on normal validation images
    label_free_criterion = ("val_reconstruction_error", False)
    input_kind = "image"

    def check_hyperparameters(self, hp: dict) -> None:
        """Ranges that the base's type checks leave open (``None`` passes them)."""
        if hp["r_steps"] is None or hp["r_steps"] < 1:
            raise ValueError("r_steps must be a positive integer, "
                             f"got {hp['r_steps']!r}")
        if hp["noise_std"] is None or hp["noise_std"] < 0:
            raise ValueError(f"noise_std must be >= 0, got {hp['noise_std']!r}")

    def scores_from_outputs(self, x, outputs) -> dict[str, np.ndarray]:
        """The three scores of section 3.2 (:func:`scores_from_outputs`)."""
        return scores_from_outputs(x, outputs)

    def to_model_space(self, X) -> np.ndarray:
        """The networks take the images themselves, in [0, 1] (R ends in a sigmoid)."""
        return np.asarray(X, dtype=np.float32)

    def reconstruct(self, X) -> np.ndarray:
        """R(X) in inference mode: the shape of ``X``, in [0, 1]."""
        return self.model_outputs(X)["reconstruction"]

    def validation_values(self, x_val, y_val) -> dict[str, float]:
        """Section 3.3's stopping rule: R's reconstruction error on normal images.

        ``val_reconstruction_error`` (the label-free criterion) uses the normal
        rows (``y_val == 0``) only.  When ``y_val`` holds both classes, the
        validation AUROC of every score is recorded too (``val_auroc_<score>``,
        for the chapter's curves), and ``val_auroc`` is that of ``score``.

        Shown in chapters/02_alocc.ipynb.
        """
        scores = self.score_variants(x_val)
        values = {}
        if np.any(y_val == 0):
            normal_errors = scores["reconstruction_error"][y_val == 0]
            values["val_reconstruction_error"] = float(np.mean(normal_errors))
        if len(np.unique(y_val)) == 2:
            for name, variant in scores.items():
                values[f"val_auroc_{name}"] = metrics.auroc(y_val, variant)
            values["val_auroc"] = values[f"val_auroc_{self.hyperparameters['score']}"]
        return values
