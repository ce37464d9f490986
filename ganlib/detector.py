"""The framework-neutral detector: what the five papers' detectors share, written once.

Two classes, after PyOD's ``BaseDetector`` and scikit-learn's estimator
conventions:

- :class:`BaseDetector`: the contract every detector of the book keeps, the
  classical baselines included: ``fit(X, y=None)``, ``decision_function``,
  ``decision_scores_``, ``threshold_``, ``labels_``, ``predict``,
  ``predict_proba``, ``fit_predict``, ``get_params``/``set_params`` (so that
  ``sklearn.base.clone`` works and a detector can sit in a ``Pipeline``), and
  typed hyper-parameters checked in one place;
- :class:`Detector`: a neural detector with a PyTorch and a Keras twin.  A
  paper's detector subclasses it and declares

  - ``backends``: where its PyTorch and Keras models live (imported lazily);
  - ``default_framework``: the seed article's framework;
  - ``defaults``: its hyper-parameters (the type of each default is enforced),
    ``choices`` for those restricted to a set of values, and
    ``check_hyperparameters`` for ranges;
  - ``input_kind``: ``"image"`` or ``"tabular"``;
  - ``score_names`` and ``score_variants``: all of its paper's scores, one of
    which (the ``score`` hyper-parameter) ``decision_function`` returns;
  - ``label_free_criterion``: what the *normal-only* selection rule looks at.

  The base class does the rest: argument checks, seeding, CPU threads, the
  training loop with its progress bar, ``history_``, NaN/inf detection, model
  selection on the validation split under two rules at once, scoring in
  inference mode, and save/load.

Shown in chapters/01_setting.ipynb (``Detector.fit``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
from pathlib import Path

import numpy as np
from scipy.special import erf
from tqdm import tqdm

from . import metrics

FRAMEWORKS = ("torch", "keras")
SELECTIONS = ("auto", "labelled", "normal-only", "last")
PRECISIONS = ("float32", "bfloat16")
PROBABILITY_METHODS = ("linear", "unify")
FORMAT_TAG = "ganlib-detector"
FORMAT_VERSION = 2


def check_framework(framework: str) -> str:
    """Return ``framework`` if it is ``"torch"`` or ``"keras"``, else raise a
    ``ValueError``."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    return framework


def check_choice(value, options: tuple, name: str):
    """Return ``value`` if it is one of ``options``, else raise a ``ValueError``
    naming them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def check_array(
    x, kind: str, name: str = "x", input_shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Validate a NumPy input and return it as float32.

    ``kind="image"`` expects ``(n, height, width, channels)`` in [0, 1];
    ``kind="tabular"`` expects ``(n, features)``; ``kind="any"`` takes either
    (the classical baselines flatten images).  ``input_shape``, when given,
    is the per-sample shape the detector was fitted on.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    expected = {
        "image": "(n, height, width, channels)",
        "tabular": "(n, features)",
        "any": "(n, features) or (n, height, width, channels)",
    }[kind]
    if array.ndim not in {"image": (4,), "tabular": (2,), "any": (2, 4)}[kind]:
        raise ValueError(f"{name} must have shape {expected}, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if kind == "image":
        if array.shape[-1] not in (1, 3):
            raise ValueError(
                f"{name} must have 1 or 3 channels last, shape {expected}; "
                f"got shape {array.shape}"
            )
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} must hold pixel values in [0, 1], "
                f"found values in [{low:.3g}, {high:.3g}]"
            )
    if input_shape is not None and tuple(array.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"{name} has samples of shape {array.shape[1:]}, "
            f"the detector was fitted on {tuple(input_shape)}"
        )
    return array


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """Validate 0/1 labels of length ``n``."""
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(
            f"{name} must be a 1-D array of {n} labels (one per sample), "
            f"got shape {labels.shape}"
        )
    found = sorted(set(np.unique(labels).tolist()))
    if not set(found) <= {0, 1}:
        raise ValueError(f"{name} must hold 0 (normal) and 1 (anomaly), found {found}")
    return labels.astype(np.int64)


def check_contamination(contamination) -> float:
    """PyOD's rule: the expected share of anomalies must be in (0, 0.5]."""
    if (
        isinstance(contamination, bool)
        or not isinstance(contamination, (int, float, np.integer, np.floating))
        or not 0.0 < float(contamination) <= 0.5
    ):
        raise ValueError(
            f"contamination must be a number in (0, 0.5], got {contamination!r}"
        )
    return float(contamination)


@contextlib.contextmanager
def _global_random_state_kept():
    """Put Python's and NumPy's global random states back after the block.

    Seeding Keras re-seeds Python's generator (Keras draws layer seeds from it
    while building); ganlib draws from its own generators, so a detector
    leaves the user's global streams as it found them.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _type_error(owner: str, name: str, default, value) -> TypeError | None:
    """The error for a hyper-parameter of another type than its default, or None."""
    number = (int, float, np.integer, np.floating)
    if default is None or value is None and isinstance(default, number):
        return None  # a default of None is checked by the model; numbers may be None
    if isinstance(default, bool):
        ok, kind = isinstance(value, (bool, np.bool_)), "True or False"
    elif isinstance(default, (int, np.integer)):
        ok = isinstance(value, (int, np.integer)) and not isinstance(
            value, (bool, np.bool_)
        )
        kind = "an integer"
    elif isinstance(default, (float, np.floating)):
        ok = isinstance(value, number) and not isinstance(value, (bool, np.bool_))
        kind = "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, (tuple, list)):
        ok, kind = isinstance(value, (tuple, list)), "a tuple or list"
    else:
        return None
    if ok:
        return None
    return TypeError(
        f"{owner}: {name} must be {kind} like its default {default!r}, got {value!r}"
    )


class BaseDetector:
    """The contract of every detector in the book: PyOD's ``BaseDetector`` with
    scikit-learn's parameter conventions.

    Parameters
    ----------
    seed:
        Seeds every random choice of the detector; the same seed gives the same
        scores on CPU.
    verbose:
        Print progress while fitting.
    contamination:
        The expected share of anomalies in the training data, in (0, 0.5]
        (PyOD's default 0.1).  It sets ``threshold_``, and with it ``labels_``
        and :meth:`predict`; it changes no score.
    **hyperparameters:
        The model's hyper-parameters; see ``defaults``.

    After :meth:`fit`: ``decision_scores_`` (the training samples' scores),
    ``threshold_`` (the score above which the top ``contamination`` share of
    them lies) and ``labels_`` (0 normal, 1 anomaly, for the training samples).
    """

    defaults: dict = {}
    choices: dict[str, tuple] = {}
    score_names: tuple = ()
    input_kind = "any"
    #: constructor arguments besides the hyper-parameters, in signature order
    base_parameters: tuple = ("seed", "verbose", "contamination")

    def __init__(
        self,
        seed: int = 0,
        verbose: bool = True,
        contamination: float = 0.1,
        **hyperparameters,
    ):
        if (
            not isinstance(seed, (int, np.integer))
            or isinstance(seed, (bool, np.bool_))
            or seed < 0
        ):
            raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
        check_contamination(contamination)
        self.seed, self.verbose, self.contamination = seed, verbose, contamination
        self.hyperparameters = self.validated_hyperparameters(hyperparameters)
        self.history_: dict[str, list] = {}
        self.input_shape_: tuple[int, ...] | None = None

    # ----------------------------------------------------------------- hyper-parameters

    def validated_hyperparameters(self, given: dict) -> dict:
        """``defaults`` updated with ``given``, after every check: names, types,
        choices, ranges."""
        name = type(self).__name__
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"{name} got unknown hyper-parameters {unknown}; "
                f"valid ones are {sorted(self.defaults)}"
            )
        hp = {**self.defaults, **given}
        for key, default in self.defaults.items():
            error = _type_error(name, key, default, hp[key])
            if error is not None:
                raise error
        for key, options in self.choices.items():
            check_choice(hp[key], options, key)
        if "score" in hp and self.score_names:
            check_choice(hp["score"], self.score_names, "score")
        self.check_hyperparameters(hp)
        return hp

    def check_hyperparameters(self, hp: dict) -> None:
        """Model-specific checks (ranges, combinations); raise ``ValueError`` naming
        the rule."""

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments and every hyper-parameter (as scikit-learn)."""
        return {
            **{name: getattr(self, name) for name in self.base_parameters},
            **self.hyperparameters,
        }

    def set_params(self, **params):
        """Change constructor arguments or hyper-parameters; checks them all and
        clears the fit."""
        valid = set(self.get_params())
        unknown = sorted(set(params) - valid)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameters {unknown}; "
                f"valid ones are {sorted(valid)}"
            )
        self.__init__(**{**self.get_params(), **params})
        return self

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags (1.6 and later): an outlier detector, ``y``
        optional.

        Declared here rather than inherited from ``sklearn.base.BaseEstimator``,
        whose parameter introspection cannot read ``**hyperparameters``.
        """
        from sklearn.utils import Tags, TargetTags

        return Tags(
            estimator_type="outlier_detector",
            target_tags=TargetTags(required=False),
            non_deterministic=False,
        )

    def __repr__(self) -> str:
        base = [
            f"{name}={getattr(self, name)!r}"
            for name in self.base_parameters
            if name not in ("verbose",)
        ]
        changed = [
            f"{k}={v!r}"
            for k, v in self.hyperparameters.items()
            if self.defaults.get(k) != v
        ]
        return f"{type(self).__name__}({', '.join(base + changed)})"

    # ------------------------------------------------------------------ PyOD's contract

    def fit(self, X, y=None, **kwargs):
        """Train on (mostly) normal samples ``X``; ``y`` is ignored, as in PyOD."""
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores of ``X``, shape ``(n,)``: higher means more anomalous."""
        raise NotImplementedError

    def score_variants(self, X) -> dict[str, np.ndarray]:
        """The model's scores, keyed by ``score_names`` (one pass where possible)."""
        name = self.hyperparameters.get("score", "score")
        return {name: self.decision_function(X)}

    def fit_threshold(self, X) -> None:
        """Set ``decision_scores_``, ``threshold_`` and ``labels_`` from the training
        samples ``X``.

        PyOD's rule: the threshold is the ``1 - contamination`` quantile of the
        training scores.  :meth:`fit` calls it; a model that changes its weights
        after ``fit`` (OGNet's phase two) calls it again.
        """
        self.decision_scores_ = self.decision_function(X)
        self.threshold_ = float(
            np.percentile(self.decision_scores_, 100.0 * (1.0 - self.contamination))
        )
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    def _check_fitted(self) -> None:
        if getattr(self, "threshold_", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    def predict(self, X) -> np.ndarray:
        """0 (normal) or 1 (anomaly) per sample: 1 where the score exceeds
        ``threshold_``."""
        self._check_fitted()
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def predict_proba(self, X, method: str = "linear") -> np.ndarray:
        """Probabilities of ``[normal, anomaly]`` per sample, shape ``(n, 2)``, rows
        summing to 1.

        As PyOD: ``"linear"`` min-max scales the scores by the training scores'
        range; ``"unify"`` maps them through the Gaussian error function of
        their standardised value (Kriegel et al., 2011).  Both clip to [0, 1].
        """
        check_choice(method, PROBABILITY_METHODS, "method")
        self._check_fitted()
        scores, train = self.decision_function(X), self.decision_scores_
        if method == "linear":
            span = float(train.max() - train.min()) or 1.0
            anomaly = (scores - train.min()) / span
        else:
            spread = float(train.std()) or 1.0
            anomaly = erf((scores - train.mean()) / (spread * np.sqrt(2.0)))
        anomaly = np.clip(anomaly, 0.0, 1.0)
        return np.column_stack([1.0 - anomaly, anomaly])

    def fit_predict(self, X, y=None, **fit_kwargs) -> np.ndarray:
        """Fit on ``X`` and return the training labels ``labels_``."""
        return self.fit(X, y, **fit_kwargs).labels_

    @staticmethod
    def _check_ignored_y(y) -> None:
        # fit(x, 5) meant fit(x, epochs=5) before this API: say so rather than ignore 5
        if y is not None and np.ndim(y) == 0:
            raise TypeError(
                f"fit's second argument is y (ignored, as in PyOD), got {y!r}; "
                "pass epochs=... by name"
            )


class Detector(BaseDetector):
    """Base class of ganlib's neural detectors, each with a PyTorch and a Keras twin.

    Parameters
    ----------
    framework:
        ``"torch"`` or ``"keras"``; defaults to the seed article's framework.
    seed:
        Seeds the framework, weight initialisation and the batch order.  The same
        seed gives the same scores on CPU.
    verbose:
        Print the device and show a progress bar while fitting.
    contamination:
        Expected share of anomalies, in (0, 0.5]; sets ``threshold_`` (PyOD).
    selection:
        Which epoch's weights :meth:`fit` keeps (see :meth:`fit`): ``"auto"``,
        ``"labelled"``, ``"normal-only"`` or ``"last"``.
    precision:
        ``"float32"`` (default) or ``"bfloat16"``: mixed precision, where
        weights stay float32 and the networks compute in bfloat16
        (``torch.autocast`` in PyTorch, the ``mixed_bfloat16`` policy in Keras).
        Faster on CPUs with bfloat16 instructions and on GPUs.
    threads:
        CPU threads for PyTorch while this detector trains and scores (restored
        afterwards); ``None`` keeps PyTorch's setting, capped at the CPUs this
        process may use.  TensorFlow
        fixes its thread pools when it starts, so for Keras the setting takes
        effect only if it is made before TensorFlow's first operation.
    **hyperparameters:
        The model's hyper-parameters; see ``defaults``.
    """

    backends: dict[str, str] = {}
    default_framework = "keras"
    input_kind = "image"
    score_batch_size = 512
    #: (history key, higher is better) of the rule that needs no labelled anomaly;
    #: ``None`` means a fixed budget: the last epoch
    label_free_criterion: tuple[str, bool] | None = ("val_mean_score", False)
    base_parameters = (
        "framework",
        "seed",
        "verbose",
        "contamination",
        "selection",
        "threads",
        "precision",
    )

    def __init__(
        self,
        framework: str | None = None,
        seed: int = 0,
        verbose: bool = True,
        contamination: float = 0.1,
        selection: str = "auto",
        threads: int | None = None,
        precision: str = "float32",
        **hyperparameters,
    ):
        self.framework = check_framework(
            framework if framework is not None else self.default_framework
        )
        check_choice(selection, SELECTIONS, "selection")
        if threads is not None and (
            not isinstance(threads, (int, np.integer))
            or isinstance(threads, bool)
            or threads < 1
        ):
            raise ValueError(
                f"threads must be None or a positive integer, got {threads!r}"
            )
        check_choice(precision, PRECISIONS, "precision")
        self.selection, self.threads, self.precision = selection, threads, precision
        super().__init__(seed, verbose, contamination, **hyperparameters)
        self.best_epoch_: int | None = None
        self.selected_epochs_: dict[str, int] = {}
        self.selection_: str | None = None
        self._backend = None
        self._selected: dict[str, tuple] = {}

    # ------------------------------------------------------------------ building

    def build(self, input_shape: tuple[int, ...]):
        """Build the framework model for samples of ``input_shape``; returns it (also
        ``backend``).

        A public hook: chapters build untrained networks with it to show their
        sizes, and subclasses extend it.
        """
        module_name, class_name = self.backends[self.framework].split(":")
        backend_class = getattr(importlib.import_module(module_name), class_name)
        backend_class.prepare_threads(self.threads)
        with _global_random_state_kept(), backend_class.build_scope(self.precision):
            self._backend = backend_class(input_shape, self.hyperparameters, self.seed)
        self._backend.finish_build(self.precision)
        self.input_shape_ = tuple(input_shape)
        return self._backend

    @property
    def backend(self):
        """The framework model (networks, optimisers, training step); available after
        ``fit`` or ``load``."""
        if self._backend is None:
            raise RuntimeError(
                f"{type(self).__name__} has no networks yet: call fit() or load() first"
            )
        return self._backend

    @contextlib.contextmanager
    def compute_scope(self):
        """The context every training step and scoring pass runs in: threads and
        precision.

        PyTorch's thread count is set to ``threads`` and restored on exit;
        with ``precision="bfloat16"`` the networks compute in bfloat16.
        """
        if self._backend is None:
            yield
            return
        with self._backend.thread_limit(self.threads):
            with self._backend.precision_scope(self.precision):
                yield

    # ------------------------------------------------------------------ training

    def fit(
        self,
        X,
        y=None,
        *,
        epochs: int | None = None,
        validation_data=None,
        batch_size: int | None = None,
    ):
        """Train on ``X`` (normal samples only; ``y`` is ignored as in PyOD) and return
        ``self``.

        ``validation_data=(x_val, y_val)`` is evaluated after every epoch by
        :meth:`validation_values`, and two selection rules track their best
        epoch in the same run:

        - ``"labelled"``: the highest validation AUROC; needs anomalies in
          ``y_val``, which a practitioner often does not have;
        - ``"normal-only"``: the model's ``label_free_criterion``, computed on
          the normal validation samples alone (the last epoch for a model
          without one).

        ``selection_criteria_`` names the history key and direction of each
        rule, and the banner of a verbose fit prints the one in force.

        The constructor's ``selection`` says whose weights are kept (``"auto"``:
        labelled when ``y_val`` holds both classes, else normal-only, else the
        last epoch); :meth:`use_selection` switches to another rule's.  A
        detector with a ``patience`` hyper-parameter stops once that many epochs
        in a row have not improved the rule in force.  Afterwards
        ``decision_scores_``, ``threshold_`` and ``labels_`` hold PyOD's
        training-set scores and threshold at ``contamination``.

        Shown in chapters/01_setting.ipynb.
        """
        self._check_ignored_y(y)
        x = check_array(X, self.input_kind, "X")
        epochs = self.hyperparameters.get("epochs") if epochs is None else epochs
        if (
            not isinstance(epochs, (int, np.integer))
            or isinstance(epochs, bool)
            or epochs < 1
        ):
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        batch_size = batch_size or self.hyperparameters["batch_size"]
        x_val = y_val = None
        if validation_data is not None:
            if (
                not isinstance(validation_data, (tuple, list))
                or len(validation_data) != 2
            ):
                raise TypeError("validation_data must be a tuple (x_val, y_val)")
            x_val = check_array(
                validation_data[0], self.input_kind, "x_val", input_shape=x.shape[1:]
            )
            y_val = check_labels(validation_data[1], len(x_val), "y_val")
        criteria = self.selection_criteria(y_val)
        in_force = self._rule_in_force(criteria)
        # what each rule looks at, e.g. {"normal-only": ("val_d_separation", True)}
        self.selection_criteria_ = dict(criteria)

        backend = self.build(x.shape[1:])
        rng = np.random.default_rng(self.seed)
        self.history_ = {"epoch": []}
        best: dict[str, tuple] = {}  # rule -> (value, epoch, weights)
        with self.compute_scope():
            if self.verbose:
                print(
                    f"{type(self).__name__} ({self.framework}) training on "
                    f"{backend.device_name}, "
                    f"{backend.current_threads()} CPU thread(s); "
                    f"selection: {in_force}{self._criterion_text(criteria, in_force)}"
                )
            bar = tqdm(
                range(1, int(epochs) + 1),
                desc=type(self).__name__,
                unit="epoch",
                disable=not self.verbose,
            )
            for epoch in bar:
                self._record(
                    epoch=epoch, **self._train_one_epoch(x, batch_size, rng, epoch)
                )
                backend.end_of_epoch(
                    x, batch_size
                )  # e.g. statistics of averaged weights
                if x_val is not None:
                    self._record(**self.validation_values(x_val, y_val))
                    for rule, (key, higher) in criteria.items():
                        value = self.history_[key][-1]
                        old = best.get(rule)
                        if old is None or (
                            value > old[0] if higher else value < old[0]
                        ):
                            best[rule] = (value, epoch, backend.get_weights())
                self.on_epoch_end(epoch, x, x_val, y_val)
                bar.set_postfix(
                    {
                        k: f"{v[-1]:.4g}"
                        for k, v in self.history_.items()
                        if k != "epoch" and v
                    }
                )
                patience = self.hyperparameters.get("patience")
                if (
                    patience
                    and in_force in best
                    and epoch - best[in_force][1] >= patience
                ):
                    # `patience` epochs in a row without improving the rule in force
                    break
            bar.close()
        self._selected = {
            rule: (epoch, weights) for rule, (_, epoch, weights) in best.items()
        }
        self._selected["last"] = (
            int(self.history_["epoch"][-1]),
            backend.get_weights(),
        )
        self.selected_epochs_ = {
            rule: epoch for rule, (epoch, _) in self._selected.items()
        }
        self._fit_scores: dict[str, np.ndarray] = {}
        for (
            rule
        ) in self._selected:  # the training scores of each rule, for use_selection
            self._activate(rule)
            self.fit_threshold(x)
            self._fit_scores[rule] = self.decision_scores_
        return self.use_selection(in_force)

    def _train_one_epoch(self, x, batch_size, rng, epoch) -> dict[str, float]:
        """One pass over ``x`` in a seeded random order; the mean of each loss."""
        sums: dict[str, float] = {}
        order = rng.permutation(len(x))
        n_batches = 0
        for start in range(0, len(x), batch_size):
            batch = x[order[start : start + batch_size]]
            if len(batch) < 2:  # BatchNorm cannot train on a single sample
                continue
            for name, value in self.backend.train_step(batch).items():
                if not np.isfinite(value):
                    raise FloatingPointError(
                        f"{type(self).__name__}: loss '{name}' became {value} at epoch "
                        f"{epoch}, batch {n_batches + 1}; lower the learning rate or "
                        "check the input scaling"
                    )
                sums[name] = sums.get(name, 0.0) + float(value)
            n_batches += 1
        return {name: total / max(n_batches, 1) for name, total in sums.items()}

    def selection_criteria(self, y_val) -> dict[str, tuple[str, bool]]:
        """Rules the labels ``y_val`` allow: rule -> (history key, higher is better)."""
        criteria = {}
        if y_val is None:
            return criteria
        if np.any(y_val == 0) and self.label_free_criterion is not None:
            criteria["normal-only"] = self.label_free_criterion
        if len(np.unique(y_val)) == 2:
            criteria["labelled"] = ("val_auroc", True)
        return criteria

    @staticmethod
    def _criterion_text(criteria: dict, rule: str) -> str:
        """`` (highest val_auroc)`` for the fit banner; empty for a fixed budget."""
        if rule not in criteria:
            return " (the last epoch)"
        key, higher = criteria[rule]
        return f" ({'highest' if higher else 'lowest'} {key})"

    def _rule_in_force(self, criteria: dict) -> str:
        if self.selection == "auto":
            return next(
                (r for r in ("labelled", "normal-only") if r in criteria), "last"
            )
        if self.selection == "labelled" and "labelled" not in criteria:
            raise ValueError(
                "selection='labelled' needs validation_data whose labels hold "
                "both classes (0 normal, 1 anomaly)"
            )
        if self.selection == "normal-only" and "normal-only" not in criteria:
            if self.label_free_criterion is not None:
                raise ValueError(
                    "selection='normal-only' needs validation_data with "
                    "normal samples (y_val == 0)"
                )
            return "normal-only"  # a fixed budget: the last epoch stands for the rule
        return self.selection

    def use_selection(self, rule: str):
        """Keep the weights that selection rule ``rule`` chose during :meth:`fit`;
        returns ``self``.

        Also sets ``best_epoch_``, ``selection_`` and the PyOD attributes
        (``decision_scores_``, ``threshold_``, ``labels_``) for those weights.
        """
        check_choice(rule, SELECTIONS[1:], "rule")
        if not self._selected:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        if (
            rule == "normal-only"
            and rule not in self._selected
            and self.label_free_criterion is None
        ):
            self._selected[rule] = self._selected["last"]  # a fixed budget
            self._fit_scores[rule] = self._fit_scores["last"]
            self.selected_epochs_[rule] = self.selected_epochs_["last"]
        if rule not in self._selected:
            raise ValueError(
                f"rule {rule!r} selected nothing in this fit; "
                f"available: {sorted(self._selected)}"
            )
        self._activate(rule)
        scores = self._fit_scores[rule]
        self.decision_scores_ = scores
        self.threshold_ = float(
            np.percentile(scores, 100.0 * (1.0 - self.contamination))
        )
        self.labels_ = (scores > self.threshold_).astype(np.int64)
        self.selection_ = rule
        return self

    def _activate(self, rule: str) -> None:
        epoch, weights = self._selected[rule]
        self.backend.set_weights(weights)
        self.best_epoch_ = epoch

    def on_epoch_end(self, epoch: int, x, x_val, y_val) -> None:
        """Called after every epoch (and its validation); a model with an
        epoch-dependent schedule overrides it."""

    def _record(self, **values) -> None:
        for key, value in values.items():
            self.history_.setdefault(key, []).append(value)

    def validation_values(self, x_val, y_val) -> dict[str, float]:
        """What :meth:`fit` records after each epoch: keys start with ``val_``.

        Here: ``val_mean_score``, the mean score of the *normal* validation
        samples (the default label-free criterion), and, when ``y_val`` holds
        both classes, ``val_auroc``.  A model overrides it to add its own
        label-free criterion and curves.
        """
        scores = self.decision_function(x_val)
        values = {}
        if np.any(y_val == 0):
            values["val_mean_score"] = float(np.mean(scores[y_val == 0]))
        if len(np.unique(y_val)) == 2:
            values["val_auroc"] = metrics.auroc(y_val, scores)
        return values

    # ------------------------------------------------------------------ scoring

    def to_model_space(self, X) -> np.ndarray:
        """What the networks take, from an input in the detector's input range
        (identity here)."""
        return np.asarray(X, dtype=np.float32)

    def model_outputs(self, X, averaged: bool = True) -> dict[str, np.ndarray]:
        """The networks' outputs on ``X`` in inference mode, batch by batch, joined.

        ``averaged=False`` uses the trained weights instead of their moving
        averages, for a model that keeps them (EGBAD, ALAD: chapter 6 compares
        the two).
        """
        x = check_array(X, self.input_kind, "X", input_shape=self._fitted_shape())
        predict = self._predict_function(averaged)
        parts: dict[str, list] = {}
        with self.compute_scope():
            for start in range(0, len(x), self.score_batch_size):
                batch = x[start : start + self.score_batch_size]
                for key, value in predict(batch).items():
                    parts.setdefault(key, []).append(value)
        return {key: np.concatenate(values) for key, values in parts.items()}

    def _predict_function(self, averaged: bool):
        if averaged:
            return self.backend.predict
        if not hasattr(self.backend, "raw_outputs"):
            raise ValueError(
                f"{type(self).__name__} keeps no moving average of its weights: "
                "averaged=False has no other weights to score with"
            )
        return self.backend.raw_outputs

    def score_from_outputs(
        self, x: np.ndarray, outputs: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The anomaly score of each sample of ``x``, from the networks' ``outputs``."""
        return self.scores_from_outputs(x, outputs)[self.hyperparameters["score"]]

    def scores_from_outputs(self, x, outputs) -> dict[str, np.ndarray]:
        """Every score of ``score_names`` from one set of network outputs (models
        override)."""
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores of ``X``, shape ``(n,)``: higher means more anomalous."""
        x = check_array(X, self.input_kind, "X", input_shape=self._fitted_shape())
        scores = np.asarray(
            self.score_from_outputs(x, self.model_outputs(x)), dtype=np.float64
        )
        if scores.shape != (len(x),):
            raise RuntimeError(f"score has shape {scores.shape}, expected ({len(x)},)")
        return scores

    def score_variants(self, X, averaged: bool = True) -> dict[str, np.ndarray]:
        """Every score of ``score_names`` from one pass through the networks
        (``averaged``: see :meth:`model_outputs`)."""
        if not self.score_names:
            self._predict_function(averaged)  # averaged=False: a clear error
            return super().score_variants(X)
        x = check_array(X, self.input_kind, "X", input_shape=self._fitted_shape())
        variants = self.scores_from_outputs(x, self.model_outputs(x, averaged))
        return {
            name: np.asarray(variants[name], dtype=np.float64)
            for name in self.score_names
        }

    def _fitted_shape(self) -> tuple[int, ...]:
        if self._backend is None:
            raise RuntimeError(
                f"{type(self).__name__} is not fitted: call fit() before "
                "decision_function()"
            )
        return self.input_shape_

    def _check_fitted(self) -> None:
        self._fitted_shape()
        super()._check_fitted()

    # ------------------------------------------------------------------ saving

    def save(self, path: str | os.PathLike) -> Path:
        """Save weights, settings and threshold to one ``.npz`` file, tagged with the
        model and framework."""
        meta = {
            "format": FORMAT_TAG,
            "version": FORMAT_VERSION,
            "model": type(self).__name__,
            "params": {k: v for k, v in self.get_params().items() if k != "verbose"},
            "input_shape": list(self._fitted_shape()),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "selection": self.selection_,
            "threshold": getattr(self, "threshold_", None),
        }
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        arrays = {f"w:{k}": v for k, v in self.backend.get_weights().items()}
        if getattr(self, "decision_scores_", None) is not None:
            arrays["decision_scores"] = self.decision_scores_
        np.savez(path, __ganlib__=np.array(json.dumps(meta)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, framework: str | None = None):
        """Load a detector saved by :meth:`save`.

        Raises ``ValueError`` when the file is not a ganlib detector, holds
        another model, or (if ``framework`` is given) another framework.
        """
        try:
            archive = np.load(path, allow_pickle=False)
            meta = json.loads(str(archive["__ganlib__"]))
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(
                f"{path} is not a file saved by ganlib's Detector.save ({error})"
            ) from None
        if meta.get("format") != FORMAT_TAG or meta.get("version") not in (
            1,
            FORMAT_VERSION,
        ):
            raise ValueError(
                f"{path}: unknown format {meta.get('format')!r} "
                f"version {meta.get('version')!r}"
            )
        if meta["model"] != cls.__name__:
            raise ValueError(
                f"{path} holds a {meta['model']} detector, not a {cls.__name__}; "
                f"load it with {meta['model']}.load"
            )
        params = meta.get("params") or {
            "framework": meta["framework"],
            "seed": meta["seed"],
            **meta["hyperparameters"],
        }
        if framework is not None and check_framework(framework) != params["framework"]:
            raise ValueError(
                f"{path} holds a {params['framework']} model, not a {framework} one"
            )
        detector = cls(**{**params, "verbose": False})
        detector.build(tuple(meta["input_shape"]))
        detector.backend.set_weights(
            {k[2:]: archive[k] for k in archive.files if k.startswith("w:")}
        )
        detector.history_, detector.best_epoch_ = meta["history"], meta["best_epoch"]
        detector.selection_ = meta.get("selection")
        if meta.get("threshold") is not None and "decision_scores" in archive.files:
            detector.threshold_ = float(meta["threshold"])
            detector.decision_scores_ = archive["decision_scores"]
            detector.labels_ = (detector.decision_scores_ > detector.threshold_).astype(
                np.int64
            )
        return detector


class TabularOrImageDetector(Detector):
    """A detector with two network families, chosen by the input's rank: tabular
    ``(n, features)`` or images.

    EGBAD and ALAD ship fully connected networks for tabular data and
    convolutional ones for images, each with its own official defaults.
    Hyper-parameters left at ``None`` take the family's value from
    ``family_defaults`` (``{"tabular": {...}, "image": {...}}``) when the
    networks are built; ``check_image_shape`` refuses image sizes the image
    networks cannot take.
    """

    family_defaults: dict[str, dict] = {"tabular": {}, "image": {}}
    input_kind = "tabular"

    def validated_hyperparameters(self, given: dict) -> dict:
        """As :meth:`BaseDetector.validated_hyperparameters`; a ``None`` default is
        typed by its families."""
        hp = super().validated_hyperparameters(given)
        for family in self.family_defaults.values():
            for key, default in family.items():
                if self.defaults.get(key, 0) is None and hp.get(key) is not None:
                    error = _type_error(type(self).__name__, key, default, hp[key])
                    if error is not None:
                        raise error
        return hp

    def check_image_shape(self, shape: tuple) -> None:
        """Raise a ``ValueError`` if the image networks cannot take images of
        ``shape`` (n, h, w, c)."""

    def _kind_of(self, shape) -> str:
        if len(shape) == 2:
            return "tabular"
        if len(shape) == 4:
            self.check_image_shape(tuple(shape))
            return "image"
        raise ValueError(
            f"{type(self).__name__} takes tabular data of shape (n, features) or "
            f"images of shape (n, height, width, channels), got shape {tuple(shape)}"
        )

    def resolved_hyperparameters(self, kind: str) -> dict:
        """The hyper-parameters with the family defaults (where ``None``) filled in
        for ``kind``."""
        family = self.family_defaults[kind]
        return {
            k: (family[k] if v is None and k in family else v)
            for k, v in self.hyperparameters.items()
        }

    def build(self, input_shape):
        """Build the network family that samples of ``input_shape`` need (see
        :meth:`Detector.build`)."""
        self.input_kind = self._kind_of((None, *input_shape))
        saved = self.hyperparameters
        self.hyperparameters = self.resolved_hyperparameters(self.input_kind)
        try:
            return super().build(input_shape)
        finally:
            self.hyperparameters = saved

    def fit(self, X, y=None, *, epochs=None, validation_data=None, batch_size=None):
        """Train on normal samples ``X`` with the network family of its rank (see
        :meth:`Detector.fit`)."""
        if isinstance(X, (str, bytes)) or X is None:
            raise TypeError(f"X must be a NumPy array, got {type(X).__name__}")
        self.input_kind = self._kind_of(np.shape(X))
        batch_size = (
            batch_size or self.resolved_hyperparameters(self.input_kind)["batch_size"]
        )
        return super().fit(
            X, y, epochs=epochs, validation_data=validation_data, batch_size=batch_size
        )
