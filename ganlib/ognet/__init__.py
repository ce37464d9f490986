"""OGNet, "Old is Gold" (Zaheer, Lee, Astrid and Lee, CVPR 2020).

OGNet keeps ALOCC's pair, a denoising generator G and a discriminator D, and
changes what D is for.  Training has two phases (paper, section 3):

**Phase one**, the baseline: G (a fully convolutional autoencoder, no
bottleneck vector) and D play the ALOCC game on the normal class, with noise
on G's input.  As in the author's code, D's labels are *real = 0* and
*fake = 1*, so D's output reads as "how bad is this image", and

.. math:: L_D = \\tfrac12\\,[\\mathrm{BCE}(D(G(\\tilde X)), 1)
          + \\mathrm{BCE}(D(X), 0)], \\qquad
          L_G = (1-\\lambda)\\,\\mathrm{MSE}(G(\\tilde X), X)
          + \\lambda\\,\\mathrm{BCE}(D(G(\\tilde X)), 0),

with λ = 0.5.  A copy of G taken early, after ``old_epoch`` epochs, is kept
frozen as **G_old**.

**Phase two**: G is frozen and only D is trained, for a few dozen iterations
at a low learning rate, to tell *good-quality* images (real images X and
G's reconstructions G(X): label 0) from *bad-quality* ones (label 1): the
blurry reconstructions of the old generator G_old(X), and *pseudo-anomalies*
G(X̂) made from the average of two G_old reconstructions,
:math:`\\hat X = (G_{old}(X_i) + G_{old}(X_j))/2` (paper, eqs. 5-7):

.. math:: L_{D}^{(2)} = \\alpha\\,\\mathrm{BCE}(D(X), 0)
          + (1-\\alpha)\\,\\mathrm{BCE}(D(G(X)), 0)
          + \\beta\\,\\mathrm{BCE}(D(G_{old}(X)), 1)
          + (1-\\beta)\\,\\mathrm{BCE}(D(G(\\hat X)), 1).

α = 0.1 is the author's training code.  β is where the official code
disagrees with itself: the training code sets the weight of G_old(X) to
0.001 (so nearly all the "bad" weight goes to the pseudo-anomalies), while
its option help text describes the weights the other way round.  We could not
check the paper's value.  The default here is the help text's reading,
β = 0.999, because the validation split prefers it by a wide margin (the
chapter shows the comparison); ``beta=0.001`` runs the training code.

**Score**: D(G(X)), the "badness" of the reconstruction, higher = more
anomalous (as a logit, which ranks like the probability without saturating).

As in the author's code, phase one lasts ``epochs=3`` epochs (its mock-up
starts phase two at ``high_epoch=3``: phase two, section 3.2, needs a G that
reconstructs well and an older G_old that blurs, which a few epochs give), and
the partners X_j of a phase-two batch X_i (eqs. 5-7) are a second batch drawn
independently from the whole training array, not a shuffle of X_i, which would
confine the pairs to one batch (and pair more images with themselves).

Where this implementation departs from the author's code:

- *Defaults sized for a CPU.* The code resizes MNIST to 45x45 and uses 64
  ... 512 channels: ``OGNet(**OFFICIAL)``, i.e. ``base_filters=64,
  image_size=45``, runs that (``image_size`` resizes bilinearly inside ganlib,
  :func:`to_model_space`, once per array).  The defaults are
  ``base_filters=16, image_size=None`` (the input's own size): the official
  sizes take over 25 minutes for 3 epochs of 3,000 MNIST images on two CPU
  cores, the defaults about a minute on one, and the detector they give
  detects (the class docstring has the figures).
- *The training step order.* The code steps D's optimiser and then
  back-propagates G's loss through D's stale output, which PyTorch >= 1.5
  rejects; we recompute D(G(X̃)) after D's step (see the chapter).
- *Checkpoints.* The code evaluates AUROC on the test set after every
  iteration; ``fit`` probes phase two on the validation split instead, and
  selects no epoch: phase one runs its fixed number of epochs.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..autoencoder import reconstruction_error
from ..detector import Detector, check_array

SCORES = ("d_of_reconstruction", "d_of_input", "reconstruction_error")
#: The author's network sizes, one argument away: ``OGNet(**OFFICIAL)`` (the
#: other defaults are the code's, but β: the help text's 0.999, see above).
OFFICIAL = {"base_filters": 64, "image_size": 45}
PHASE_ONE = "phase_one:"  # key prefix of the phase-one checkpoint in the twins' weights


def resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Images (n, h, w, c) in [0, 1] resized bilinearly to ``height`` x ``width``.

    ``scipy.ndimage.zoom``, order 1, the same for both frameworks; each image
    is resized on its own, so resizing an array once gives the same images as
    resizing every batch of it.
    """
    if x.shape[1:3] == (height, width):
        return x
    from scipy import ndimage

    factors = (1, height / x.shape[1], width / x.shape[2], 1)
    resized = ndimage.zoom(x, factors, order=1, grid_mode=True, mode="nearest")
    return np.clip(resized, 0.0, 1.0).astype(np.float32, copy=False)


def to_model_space(x: np.ndarray, image_size: int | None) -> np.ndarray:
    """Images (n, h, w, c) in [0, 1] -> the generator's [-1, 1], at ``image_size``.

    The author's data loader resizes MNIST to 45x45 and normalises with mean
    and standard deviation 0.5; resizing here is bilinear (:func:`resize`).
    ``image_size=None`` keeps the input size.
    """
    if image_size is not None:
        x = resize(x, image_size, image_size)
    return (2.0 * x - 1.0).astype(np.float32)


def from_model_space(x_model: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`to_model_space`: back to [0, 1] at ``height`` x ``width``."""
    return resize(np.clip((x_model + 1.0) / 2.0, 0.0, 1.0), height, width)


def model_shape(input_shape: tuple, image_size: int | None) -> tuple[int, int, int]:
    """(height, width, channels) of the networks: the input's, or ``image_size``."""
    height, width, channels = input_shape
    if image_size is None:
        return (height, width, channels)
    return (image_size, image_size, channels)


def add_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """X̃ = X + N(0, std²), clamped to [-1, 1] (the author's ``gaussian`` helper)."""
    noise = rng.normal(0.0, std, size=x.shape).astype(np.float32)
    return np.clip(x + noise, -1.0, 1.0)


def logits(values: np.ndarray) -> np.ndarray:
    """D's logits as one float64 score per sample."""
    return values.astype(np.float64).reshape(-1)


def scores_from_outputs(
    x_model: np.ndarray, outputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """D's logit on G(X) (the paper's score, section 3.3), on X itself, and G's
    reconstruction error, all higher = more anomalous."""
    return {
        "d_of_reconstruction": logits(outputs["d_logit_reconstruction"]),
        "d_of_input": logits(outputs["d_logit_input"]),
        "reconstruction_error": reconstruction_error(
            x_model, outputs["reconstruction"]
        ),
    }


class TwoPhaseWeights:
    """What OGNet's twins keep besides ``networks``, in ``get_weights``/``set_weights``.

    Mixed into both backends (before ``TorchBackend``/``KerasBackend``), so
    that the state of section 3 travels wherever the weights go (``save`` and
    ``load``, the phase-two probe, selection), and is built as the networks are
    (``finish_build``): the frozen **G_old**
    (``generator_old.*``, outside ``networks`` so that it is neither trained nor
    counted nor switched to training mode), and **phase one's end**, the
    networks as phase two found them (``phase_one:*``, empty until
    :meth:`end_phase_one`).  ``set_weights`` leaves G_old and the checkpoint as
    they are when the weights hold none (e.g. a file saved before they were kept).
    """

    generator_old = None

    def _with_old_generator(self, method, *args):
        # reuse the framework's own key format for G_old: name it a network for one call
        networks = self.networks
        self.networks = {**networks, "generator_old": self.generator_old}
        try:
            return method(*args)
        finally:
            self.networks = networks

    def finish_build(self, precision: str) -> None:
        """G_old gets what each network gets (PyTorch: channels-last weights; Keras
        under bfloat16: float32 output layers), so that it computes as G does."""
        self._with_old_generator(super().finish_build, precision)

    def get_weights(self) -> dict[str, np.ndarray]:
        weights = self._with_old_generator(super().get_weights)
        checkpoint = getattr(self, "phase_one_weights", {})
        return {**weights, **{PHASE_ONE + k: v for k, v in checkpoint.items()}}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        checkpoint = {
            k[len(PHASE_ONE) :]: v
            for k, v in weights.items()
            if k.startswith(PHASE_ONE)
        }
        weights = {k: v for k, v in weights.items() if not k.startswith(PHASE_ONE)}
        if any(k.startswith("generator_old.") for k in weights):
            self._with_old_generator(super().set_weights, weights)
        else:
            super().set_weights(weights)
        if checkpoint:
            self.phase_one_weights = checkpoint

    def end_phase_one(self) -> None:
        """Keep the networks (G_old included) as phase one leaves them."""
        self.phase_one_weights = {}
        self.phase_one_weights = self.get_weights()


class OGNet(Detector):
    """OGNet for images, in PyTorch (default, as in the seed article and the official
    code) or Keras.

    ``fit(X, epochs=..., validation_data=...)`` runs phase one for ``epochs``
    epochs, keeps G_old after epoch ``old_epoch``, then runs phase two.
    History keys: the phase-one losses, ``val_auroc`` (phase one's D(G(X)) on
    the validation split, per epoch), and, with ``probe_phase_two=True``,
    ``val_auroc_after_phase_two``: phase two applied to a copy of that epoch's
    networks, the paper's stability experiment.  ``phase_one_weights_`` keeps
    the networks as phase one left them (saved with the detector).

    Selection: the paper trains phase one for a fixed number of epochs and
    gives phase two no stopping rule, so OGNet has no label-free criterion
    (``label_free_criterion = None``) and tracks no rule on the validation
    split: ``"auto"``, ``"normal-only"`` and ``"last"`` all keep the last epoch
    (phase two included), and ``"labelled"`` is refused.  The validation
    curves are there to check the paper's claim that phase two makes any
    phase-one checkpoint past the first epochs a good judge.

    Hyper-parameters (author's code unless said): ``base_filters`` (16 for a CPU;
    official: 64), ``image_size`` (None, the input's size, for a CPU; official: 45),
    i.e. ``OGNet(**OFFICIAL)`` for the code's networks, ``noise_std`` (0.81, i.e. the
    code's sigma_noise 0.9 squared, on [-1, 1] images), ``adversarial_weight`` λ (0.5),
    ``g_learning_rate`` (1e-3), ``d_learning_rate`` (1e-4), ``batch_size`` (64),
    ``epochs`` (phase one, 3: the code's ``high_epoch``), ``old_epoch`` (1: G after the
    first epoch), ``phase_two_iterations`` (75), ``phase_two_learning_rate`` (5e-5),
    ``alpha`` (0.1, weight of real images among the good ones), ``beta`` (0.999, weight
    of G_old(X) among the bad ones; the training code's 0.001 is the other reading),
    ``score`` ("d_of_reconstruction").

    The defaults are sized for a CPU: ``fit`` with them on 3,000 MNIST images
    of digit 8 (one-class protocol, seed 0, one thread, the other core busy)
    took 63 s in PyTorch and 67 s in Keras, and D(G(X)) scored a test AUROC of
    0.929 and 0.893 (``tools/audit.py defaults-new-data``,
    ``results/audit/audit/defaults-new-data.jsonl``, which also holds digits 2
    and 5); the official sizes (``OFFICIAL``: 64 filters, 45 px) convolve
    about 16 times the channels over 2.6 times the pixels.
    """

    backends = {
        "torch": "ganlib.ognet.torch_model:OGNetTorch",
        "keras": "ganlib.ognet.keras_model:OGNetKeras",
    }
    default_framework = "torch"
    defaults = {
        "base_filters": 16,  # official: 64 (OFFICIAL), too slow for a CPU
        "image_size": None,  # official: 45 (OFFICIAL); None keeps the input's size
        "noise_std": 0.81,
        "adversarial_weight": 0.5,
        "g_learning_rate": 1e-3,
        "d_learning_rate": 1e-4,
        "batch_size": 64,
        "epochs": 3,  # the code's high_epoch: phase two starts after epoch 3
        "old_epoch": 1,
        "phase_two_iterations": 75,
        "phase_two_learning_rate": 5e-5,
        "alpha": 0.1,
        "beta": 0.999,
        "score": "d_of_reconstruction",
    }
    score_names = SCORES
    label_free_criterion = None  # a fixed phase-one length (see the class docstring)
    input_kind = "image"

    probe_phase_two = False  # set by fit

    def check_hyperparameters(self, hp: dict) -> None:
        """Ranges that the base's type checks leave open (``None`` passes them)."""
        for name in ("alpha", "beta", "adversarial_weight"):
            if hp[name] is None or not 0.0 <= hp[name] <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {hp[name]!r}")
        if hp["image_size"] is not None and hp["image_size"] < 20:
            raise ValueError(
                f"image_size must be None or an integer >= 20, got {hp['image_size']!r}"
            )
        for name in ("old_epoch", "phase_two_iterations"):
            if hp[name] is None or hp[name] < 1:
                raise ValueError(f"{name} must be a positive integer, got {hp[name]!r}")

    # ------------------------------------------------------------- the model's input

    def to_model_space(self, X) -> np.ndarray:
        """``X`` in [0, 1] as the networks see it: at ``image_size``, in [-1, 1]."""
        x = np.asarray(X, dtype=np.float32)
        return to_model_space(x, self.hyperparameters["image_size"])

    def _resized(self, x: np.ndarray) -> np.ndarray:
        """``x`` at the networks' size, still in [0, 1] (the twins only rescale it)."""
        height, width, _ = model_shape(x.shape[1:], self.hyperparameters["image_size"])
        return resize(x, height, width)

    @property
    def phase_one_weights_(self) -> dict[str, np.ndarray] | None:
        """The networks (G, D, G_old) as phase one left them; ``None`` before fit."""
        if self._backend is None:
            return None
        return getattr(self.backend, "phase_one_weights", None) or None

    # ------------------------------------------------------------------ training

    def fit(
        self,
        X,
        y=None,
        *,
        epochs=None,
        validation_data=None,
        batch_size=None,
        probe_phase_two: bool = False,
    ):
        """Phase one for ``epochs`` epochs, then phase two; returns ``self``.

        Phase two runs at the end of phase one's last epoch (in
        :meth:`on_epoch_end`), so the base's last-epoch weights,
        ``decision_scores_`` and ``threshold_`` are those of the finished
        detector.  No epoch is selected (see the class docstring).

        The training and validation images are resized to ``image_size`` once
        here, not batch by batch (the same images: :func:`resize` treats each
        image on its own); while the base trains on them, ``input_shape_`` is
        the networks' size, and it is the input's again afterwards.
        """
        self._check_ignored_y(y)
        if self.selection == "labelled":
            raise ValueError(
                "OGNet selects no epoch: phase one has a fixed length and "
                "phase two follows it (paper, section 3); use selection="
                "'auto', 'normal-only' or 'last'"
            )
        hp = self.hyperparameters
        epochs = hp["epochs"] if epochs is None else epochs
        if isinstance(epochs, (int, np.integer)) and epochs < hp["old_epoch"]:
            raise ValueError(
                f"epochs ({epochs}) must be at least old_epoch "
                f"({hp['old_epoch']}): G_old is taken from phase one"
            )
        self.probe_phase_two = bool(probe_phase_two)
        self._phase_one_epochs = epochs
        self._phase_rng = np.random.default_rng(self.seed + 1)
        x = check_array(X, self.input_kind, "X")
        resized_validation = validation_data
        if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            x_val = check_array(
                validation_data[0], self.input_kind, "x_val", input_shape=x.shape[1:]
            )
            resized_validation = (self._resized(x_val), validation_data[1])
        try:
            super().fit(
                self._resized(x),
                epochs=epochs,
                batch_size=batch_size,
                validation_data=resized_validation,
            )
        finally:
            if self._backend is not None:
                self.input_shape_ = tuple(x.shape[1:])
        if validation_data is not None and len(np.unique(validation_data[1])) == 2:
            self.history_["final_val_auroc"] = metrics.auroc(
                validation_data[1], self.decision_function(x_val)
            )
        return self

    def selection_criteria(self, y_val) -> dict[str, tuple[str, bool]]:
        """None: phase one has a fixed length (validation curves are still recorded)."""
        return {}

    def on_epoch_end(self, epoch, x, x_val, y_val):
        """Take G_old after epoch ``old_epoch``, probe phase two, run it at the end."""
        if epoch == self.hyperparameters["old_epoch"]:
            self.backend.snapshot_old_generator()
        if self.probe_phase_two and x_val is not None and len(np.unique(y_val)) == 2:
            saved = self.backend.get_weights()
            self.phase_two(x, rng=np.random.default_rng(self.seed + 2))
            self._record(
                val_auroc_after_phase_two=metrics.auroc(
                    y_val, self.decision_function(x_val)
                )
            )
            self.backend.set_weights(saved)
        if epoch == self._phase_one_epochs:
            self.backend.end_phase_one()
            self.history_["phase_two_loss"] = self.phase_two(x)

    def phase_two(
        self,
        x,
        rng: np.random.Generator | None = None,
        alpha: float | None = None,
        beta: float | None = None,
    ) -> list[float]:
        """Train D alone to rank good above bad images (section 3.2); returns losses.

        Each iteration takes the next batch X_i of a shuffle of ``x`` and a
        second batch X_j drawn independently from all of ``x``, the partners of
        the pseudo-anomalies G((G_old(X_i) + G_old(X_j)) / 2) (eqs. 5-7), as
        the author's code draws a second batch.

        ``alpha`` and ``beta``, when given, replace the loss weights (eq. 7) for
        this call only, so that one phase-one state can be compared under
        several; the backend's weights are put back even if the call fails, and
        each call starts a fresh phase-two optimiser, so a failed call leaves the
        detector ready for the next.
        """
        x = self._resized(np.asarray(x, dtype=np.float32))  # once, not per batch
        if rng is None:
            rng = getattr(self, "_phase_rng", None)
            rng = rng if rng is not None else np.random.default_rng(self.seed + 1)
        hp = self.hyperparameters
        batch_size = min(hp["batch_size"], len(x))
        weights = {
            "alpha": hp["alpha"] if alpha is None else alpha,
            "beta": hp["beta"] if beta is None else beta,
        }
        for name, value in weights.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        kept = {name: self.backend.hp[name] for name in weights}
        losses = []
        try:
            self.backend.hp.update(weights)
            with self.compute_scope():  # threads and precision, as fit's own steps
                self.backend.start_phase_two()
                order = rng.permutation(len(x))
                for iteration in range(hp["phase_two_iterations"]):
                    start = (iteration * batch_size) % max(len(x) - batch_size + 1, 1)
                    batch = x[order[start : start + batch_size]]
                    # X_j from the whole array, independent of X_i (the code's second
                    # batch): a shuffle of `batch` would only pair images of one batch
                    drawn = rng.choice(len(x), size=len(batch), replace=False)
                    loss = self.backend.phase_two_step(batch, x[drawn])
                    if not np.isfinite(loss):
                        raise FloatingPointError(
                            f"OGNet: phase-two loss became {loss} "
                            f"at iteration {iteration + 1}"
                        )
                    losses.append(loss)
        finally:  # the weights of this call only, even when it fails
            self.backend.hp.update(kept)
        return losses

    # ------------------------------------------------------------------ scoring

    def scores_from_outputs(self, x, outputs) -> dict[str, np.ndarray]:
        """The three scores (:func:`scores_from_outputs`), G's error in model space."""
        return scores_from_outputs(self.to_model_space(x), outputs)

    def reconstruct(self, X) -> np.ndarray:
        """G(X) in inference mode, back at the input's size and in [0, 1]."""
        x = np.asarray(X, dtype=np.float32)
        return from_model_space(self.model_outputs(x)["reconstruction"], *x.shape[1:3])

    def phase_two_images(self, x, seed: int = 0) -> dict[str, np.ndarray]:
        """What phase two shows D, in [0, 1] at the networks' size (Fig. 2, eq. 7).

        Good G(X), bad G_old(X), and pseudo-anomalies G((G_old(X_i) +
        G_old(X_j)) / 2) whose partner X_j is drawn for each X_i independently
        (uniformly, with replacement) from ``x``, seeded by ``seed``: the
        pairing of :meth:`phase_two`, where X_j comes from the whole training
        array.
        """
        x = self._resized(np.asarray(x, dtype=np.float32))
        partners = x[np.random.default_rng(seed).integers(len(x), size=len(x))]
        images = self.backend.phase_two_images(x, partners)
        return {name: (value + 1.0) / 2.0 for name, value in images.items()}
