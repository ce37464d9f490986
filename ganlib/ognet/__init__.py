"""OGNet, "Old is Gold" (Zaheer, Lee, Astrid and Lee, CVPR 2020).

OGNet keeps ALOCC's pair, a denoising generator G and a discriminator D, and
changes what D is for.  Training has two phases (paper, section 3):

**Phase one**, the baseline: G (a fully convolutional autoencoder, no
bottleneck vector) and D play the ALOCC game on the normal class, with noise
on G's input.  As in the author's code, D's labels are *real = 0* and
*fake = 1*, so D's output reads as "how bad is this image", and

.. math:: L_D = \\tfrac12\\,[\\mathrm{BCE}(D(G(\\tilde X)), 1) + \\mathrm{BCE}(D(X), 0)], \\qquad
          L_G = (1-\\lambda)\\,\\mathrm{MSE}(G(\\tilde X), X) + \\lambda\\,\\mathrm{BCE}(D(G(\\tilde X)), 0),

with λ = 0.5.  A copy of G taken early, after ``old_epoch`` epochs, is kept
frozen as **G_old**.

**Phase two**: G is frozen and only D is trained, for a few dozen iterations
at a low learning rate, to tell *good-quality* images (real images X and
G's reconstructions G(X): label 0) from *bad-quality* ones (label 1): the
blurry reconstructions of the old generator G_old(X), and *pseudo-anomalies*
G(X̂) made from the average of two G_old reconstructions,
:math:`\\hat X = (G_{old}(X_i) + G_{old}(X_j))/2` (paper, eqs. 5-7):

.. math:: L_{D}^{(2)} = \\alpha\\,\\mathrm{BCE}(D(X), 0) + (1-\\alpha)\\,\\mathrm{BCE}(D(G(X)), 0)
          + \\beta\\,\\mathrm{BCE}(D(G_{old}(X)), 1) + (1-\\beta)\\,\\mathrm{BCE}(D(G(\\hat X)), 1).

α = 0.1 is the author's training code.  β is where the official code
disagrees with itself: the training code sets the weight of G_old(X) to
0.001 (so nearly all the "bad" weight goes to the pseudo-anomalies), while
its option help text describes the weights the other way round.  We could not
check the paper's value.  The default here is the help text's reading,
β = 0.999, because the validation split prefers it by a wide margin (the
chapter shows the comparison); ``beta=0.001`` runs the training code.

**Score**: D(G(X)), the "badness" of the reconstruction, higher = more
anomalous (as a logit, which ranks like the probability without saturating).

Where this implementation departs from the author's code:

- *Input size.* The code resizes MNIST to 45x45 in [-1, 1].  ``image_size``
  does the same inside ganlib (bilinear); ``image_size=None`` keeps the input
  size, which a CPU trains several times faster.
- *Widths.* ``base_filters=64`` is the code (64 ... 512 channels); narrower is
  allowed for CPU and named in the chapter.
- *The training step order.* The code steps D's optimiser and then
  back-propagates G's loss through D's stale output, which PyTorch >= 1.5
  rejects; we recompute D(G(X̃)) after D's step (see the chapter).
- *Checkpoints.* The code evaluates AUROC on the test set after every
  iteration; ``fit`` probes phase two on the validation split instead.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..autoencoder import reconstruction_error
from ..detector import Detector, check_choice

SCORES = ("d_of_reconstruction", "d_of_input", "reconstruction_error")


def to_model_range(x: np.ndarray, image_size: int | None) -> np.ndarray:
    """Images in [0, 1], (n, h, w, c) -> the generator's range [-1, 1], resized to ``image_size`` if given.

    The author's data loader resizes MNIST to 45x45 and normalises with mean
    and standard deviation 0.5; resizing here is bilinear (``scipy.ndimage.zoom``,
    order 1), the same for both frameworks.
    """
    if image_size is not None and x.shape[1:3] != (image_size, image_size):
        from scipy import ndimage

        factors = (1, image_size / x.shape[1], image_size / x.shape[2], 1)
        x = np.clip(ndimage.zoom(x, factors, order=1, grid_mode=True, mode="nearest"), 0.0, 1.0)
    return (2.0 * x - 1.0).astype(np.float32)


def model_shape(input_shape: tuple, image_size: int | None) -> tuple[int, int, int]:
    """(height, width, channels) the networks are built for: the input's, resized to ``image_size`` if given."""
    height, width, channels = input_shape
    return (image_size, image_size, channels) if image_size is not None else (height, width, channels)


def add_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """X̃ = X + N(0, std²), clamped to the generator's range [-1, 1] (the author's ``gaussian`` helper)."""
    return np.clip(x + rng.normal(0.0, std, size=x.shape).astype(np.float32), -1.0, 1.0)


def scores_from_outputs(x_model: np.ndarray, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """D's logit on G(X) (the paper's score), on X itself, and G's reconstruction error, all higher = more anomalous."""
    return {
        "d_of_reconstruction": outputs["d_logit_reconstruction"].astype(np.float64).reshape(-1),
        "d_of_input": outputs["d_logit_input"].astype(np.float64).reshape(-1),
        "reconstruction_error": reconstruction_error(x_model, outputs["reconstruction"]),
    }


class OGNet(Detector):
    """OGNet for images, in PyTorch (default, as in the seed article and the official code) or Keras.

    ``fit(x, epochs, validation_data)`` runs phase one for ``epochs`` epochs,
    keeps G_old after epoch ``old_epoch``, then runs phase two.  History keys:
    the phase-one losses, ``val_auroc`` (phase one's D(G(X)) on the validation
    split, per epoch), and, with ``probe_phase_two=True``, ``val_auroc_after_phase_two``:
    phase two applied to a copy of that epoch's networks, the paper's stability
    experiment.  ``phase_one_weights_`` keeps the networks as phase one left them.

    Hyper-parameters (author's code unless said):
    ``base_filters`` (64), ``image_size`` (45; None keeps the input size),
    ``noise_std`` (0.81, i.e. the code's sigma_noise 0.9 squared, on [-1, 1] images),
    ``adversarial_weight`` λ (0.5), ``g_learning_rate`` (1e-3), ``d_learning_rate`` (1e-4),
    ``batch_size`` (64), ``epochs`` (phase one, 10), ``old_epoch`` (1: G after the
    first epoch), ``phase_two_iterations`` (75), ``phase_two_learning_rate`` (5e-5),
    ``alpha`` (0.1, weight of real images among the good ones),
    ``beta`` (0.999, weight of G_old(X) among the bad ones; the training code's 0.001 is the other reading),
    ``score`` ("d_of_reconstruction").
    """

    backends = {
        "torch": "ganlib.ognet.torch_model:OGNetTorch",
        "keras": "ganlib.ognet.keras_model:OGNetKeras",
    }
    default_framework = "torch"
    defaults = {
        "base_filters": 64,
        "image_size": 45,
        "noise_std": 0.81,
        "adversarial_weight": 0.5,
        "g_learning_rate": 1e-3,
        "d_learning_rate": 1e-4,
        "batch_size": 64,
        "epochs": 10,
        "old_epoch": 1,
        "phase_two_iterations": 75,
        "phase_two_learning_rate": 5e-5,
        "alpha": 0.1,
        "beta": 0.999,
        "score": "d_of_reconstruction",
    }
    input_kind = "image"

    def __init__(self, framework=None, seed=0, verbose=True, **hyperparameters):
        super().__init__(framework, seed, verbose, **hyperparameters)
        hp = self.hyperparameters
        check_choice(hp["score"], SCORES, "score")
        for name in ("alpha", "beta", "adversarial_weight"):
            if not 0.0 <= hp[name] <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {hp[name]!r}")
        if hp["image_size"] is not None and (not isinstance(hp["image_size"], int) or hp["image_size"] < 20):
            raise ValueError(f"image_size must be None or an integer >= 20, got {hp['image_size']!r}")
        for name in ("old_epoch", "phase_two_iterations"):
            if not isinstance(hp[name], int) or hp[name] < 1:
                raise ValueError(f"{name} must be a positive integer, got {hp[name]!r}")
        self.probe_phase_two = False
        self.phase_one_weights_ = None

    # ------------------------------------------------------------------ the model's input

    def model_input(self, x) -> np.ndarray:
        """``x`` in [0, 1] as the networks see it: resized to ``image_size`` and scaled to [-1, 1]."""
        return to_model_range(np.asarray(x, dtype=np.float32), self.hyperparameters["image_size"])

    # ------------------------------------------------------------------ training

    def fit(self, x, epochs=None, validation_data=None, batch_size=None, probe_phase_two: bool = False):
        """Phase one for ``epochs`` epochs, then phase two; returns ``self``.

        No epoch is selected: OGNet's claim is that phase two makes any
        phase-one checkpoint past the first epochs a good judge, and the
        validation curves (``val_auroc``, ``val_auroc_after_phase_two``) are
        there to check it.
        """
        epochs = self.hyperparameters["epochs"] if epochs is None else epochs
        if isinstance(epochs, (int, np.integer)) and epochs < self.hyperparameters["old_epoch"]:
            raise ValueError(f"epochs ({epochs}) must be at least old_epoch ({self.hyperparameters['old_epoch']}): "
                             "G_old is taken from phase one")
        self.probe_phase_two = bool(probe_phase_two)
        self._phase_rng = np.random.default_rng(self.seed + 1)
        super().fit(x, epochs=epochs, validation_data=validation_data, batch_size=batch_size, restore_best=False)
        self.phase_one_weights_ = self.backend.get_weights()
        self.history_["phase_two_loss"] = self.phase_two(x)
        if validation_data is not None and len(np.unique(validation_data[1])) == 2:
            self.history_["final_val_auroc"] = metrics.auroc(validation_data[1], self.decision_function(validation_data[0]))
        return self

    def _end_of_epoch(self, epoch, x, x_val, y_val):
        if epoch == self.hyperparameters["old_epoch"]:
            self.backend.snapshot_old_generator()
        if self.probe_phase_two and x_val is not None and len(np.unique(y_val)) == 2:
            saved = self.backend.get_weights()
            self.phase_two(x, rng=np.random.default_rng(self.seed + 2))
            self._record(val_auroc_after_phase_two=metrics.auroc(y_val, self.decision_function(x_val)))
            self.backend.set_weights(saved)

    def phase_two(self, x, rng: np.random.Generator | None = None, alpha: float | None = None,
                  beta: float | None = None) -> list[float]:
        """Train D alone to rank good- above bad-quality reconstructions (section 3.2); returns its losses.

        ``alpha`` and ``beta``, when given, replace the loss weights for this
        call only, so that one phase-one state can be compared under several.
        """
        x = np.asarray(x, dtype=np.float32)
        rng = rng if rng is not None else self._phase_rng
        hp = self.hyperparameters
        batch_size = min(hp["batch_size"], len(x))
        weights = {"alpha": hp["alpha"] if alpha is None else alpha, "beta": hp["beta"] if beta is None else beta}
        for name, value in weights.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        self.backend.hp.update(weights)
        self.backend.start_phase_two()
        losses = []
        order = rng.permutation(len(x))
        for iteration in range(hp["phase_two_iterations"]):
            start = (iteration * batch_size) % max(len(x) - batch_size + 1, 1)
            batch = x[order[start:start + batch_size]]
            partners = batch[rng.permutation(len(batch))]
            loss = self.backend.phase_two_step(batch, partners)
            if not np.isfinite(loss):
                raise FloatingPointError(f"OGNet: phase-two loss became {loss} at iteration {iteration + 1}")
            losses.append(loss)
        self.backend.hp.update(alpha=hp["alpha"], beta=hp["beta"])
        return losses

    # ------------------------------------------------------------------ scoring

    def score_from_outputs(self, x, outputs):
        return scores_from_outputs(self.model_input(x), outputs)[self.hyperparameters["score"]]

    def scores(self, x) -> dict[str, np.ndarray]:
        """All three scores of ``x``, each higher = more anomalous."""
        x = np.asarray(x, dtype=np.float32)
        return scores_from_outputs(self.model_input(x), self.model_outputs(x))

    def reconstruct(self, x) -> np.ndarray:
        """G(x) back in [0, 1], at the model's image size."""
        return (self.model_outputs(x)["reconstruction"] + 1.0) / 2.0

    def phase_two_images(self, x, seed: int = 0) -> dict[str, np.ndarray]:
        """What phase two shows D, in [0, 1]: good G(X), bad G_old(X), and pseudo-anomalies built from
        ``x`` and a seeded shuffle of it (paper, Fig. 2 and eq. 7)."""
        x = np.asarray(x, dtype=np.float32)
        partners = x[np.random.default_rng(seed).permutation(len(x))]
        images = self.backend.phase_two_images(x, partners)
        return {name: (value + 1.0) / 2.0 for name, value in images.items()}
