"""The framework-neutral detector: everything the five papers' detectors share, written once.

A paper's detector subclasses :class:`Detector` and declares

- ``backends``: where its PyTorch and Keras models live (imported lazily);
- ``default_framework``: the seed article's framework;
- ``defaults``: its hyper-parameters, from the paper and the official code;
- ``input_kind``: ``"image"`` or ``"tabular"``;
- ``score_from_outputs``: the anomaly score, computed in NumPy from the
  networks' outputs, so that the formula is the same code for both frameworks.

The base class does the rest: argument checks, seeding, the training loop with
its progress bar, ``history_``, NaN/inf detection, model selection on the
validation split, scoring in inference mode, and save/load.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import metrics

FRAMEWORKS = ("torch", "keras")
FORMAT_TAG = "ganlib-detector"
FORMAT_VERSION = 1


def check_framework(framework: str) -> str:
    """Return ``framework`` if it is ``"torch"`` or ``"keras"``, else raise a ``ValueError``."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    return framework


def check_choice(value, options: tuple, name: str):
    """Return ``value`` if it is one of ``options``, else raise a ``ValueError`` naming them."""
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_array(x, kind: str, name: str = "x", input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate a NumPy input and return it as float32.

    ``kind="image"`` expects ``(n, height, width, channels)`` in [0, 1];
    ``kind="tabular"`` expects ``(n, features)``.  ``input_shape``, when given,
    is the per-sample shape the detector was fitted on.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    expected = {"image": "(n, height, width, channels)", "tabular": "(n, features)"}[kind]
    if array.ndim != {"image": 4, "tabular": 2}[kind]:
        raise ValueError(f"{name} must have shape {expected}, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if kind == "image":
        if array.shape[-1] not in (1, 3):
            raise ValueError(f"{name} must have 1 or 3 channels last, shape {expected}; got shape {array.shape}")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{name} must hold pixel values in [0, 1], found values in [{low:.3g}, {high:.3g}]")
    if input_shape is not None and tuple(array.shape[1:]) != tuple(input_shape):
        raise ValueError(f"{name} has samples of shape {array.shape[1:]}, the detector was fitted on {tuple(input_shape)}")
    return array


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """Validate 0/1 labels of length ``n``."""
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{name} must be a 1-D array of {n} labels (one per sample), got shape {labels.shape}")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError(f"{name} must hold 0 (normal) and 1 (anomaly), found {sorted(set(np.unique(labels).tolist()))}")
    return labels.astype(np.int64)


class Detector:
    """Base class of ganlib's detectors (PyOD's API: ``fit``, then ``decision_function``).

    Parameters
    ----------
    framework:
        ``"torch"`` or ``"keras"``; defaults to the seed article's framework.
    seed:
        Seeds the framework, weight initialisation and the batch order.  The same
        seed gives the same scores on CPU.
    verbose:
        Print the device and show a progress bar while fitting.
    **hyperparameters:
        The model's hyper-parameters; see ``defaults``.
    """

    backends: dict[str, str] = {}
    default_framework = "keras"
    defaults: dict = {}
    input_kind = "image"
    score_batch_size = 512

    def __init__(self, framework: str | None = None, seed: int = 0, verbose: bool = True, **hyperparameters):
        self.framework = check_framework(framework if framework is not None else self.default_framework)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
        unknown = sorted(set(hyperparameters) - set(self.defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown hyper-parameters {unknown}; "
                            f"valid ones are {sorted(self.defaults)}")
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.hyperparameters = {**self.defaults, **hyperparameters}
        self.history_: dict[str, list] = {}
        self.best_epoch_: int | None = None
        self.input_shape_: tuple[int, ...] | None = None
        self._backend = None

    # ------------------------------------------------------------------ what a paper's detector provides

    def score_from_outputs(self, x: np.ndarray, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The anomaly score of each sample of ``x``, from the networks' ``outputs``; higher = more anomalous."""
        raise NotImplementedError

    # ------------------------------------------------------------------ building

    def _build_backend(self, input_shape: tuple[int, ...]):
        module_name, class_name = self.backends[self.framework].split(":")
        backend_class = getattr(importlib.import_module(module_name), class_name)
        self._backend = backend_class(input_shape, self.hyperparameters, self.seed)
        self.input_shape_ = tuple(input_shape)
        return self._backend

    @property
    def backend(self):
        """The framework model (networks, optimisers, training step); available after ``fit`` or ``load``."""
        if self._backend is None:
            raise RuntimeError(f"{type(self).__name__} has no networks yet: call fit() or load() first")
        return self._backend

    # ------------------------------------------------------------------ training

    def fit(self, x, epochs: int | None = None, validation_data=None, batch_size: int | None = None,
            restore_best: bool = True):
        """Train on ``x`` (normal samples only) and return ``self``.

        ``validation_data=(x_val, y_val)`` is scored after every epoch.  When
        ``y_val`` holds both classes, the validation AUROC selects the epoch;
        when it holds normal samples only, the lowest mean validation score
        does.  With ``restore_best`` the weights of the selected epoch are kept.
        A detector with a ``patience`` hyper-parameter stops early once that
        many epochs in a row have not improved on the selected one.
        """
        x = check_array(x, self.input_kind, "x")
        epochs = self.hyperparameters.get("epochs") if epochs is None else epochs
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        batch_size = batch_size or self.hyperparameters["batch_size"]
        x_val = y_val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a tuple (x_val, y_val)")
            x_val = check_array(validation_data[0], self.input_kind, "x_val", input_shape=x.shape[1:])
            y_val = check_labels(validation_data[1], len(x_val), "y_val")

        backend = self._build_backend(x.shape[1:])
        if self.verbose:
            print(f"{type(self).__name__} ({self.framework}) training on {backend.device_name}")
        rng = np.random.default_rng(self.seed)
        self.history_ = {"epoch": []}
        best_value, best_weights = None, None
        bar = tqdm(range(1, int(epochs) + 1), desc=type(self).__name__, unit="epoch", disable=not self.verbose)
        for epoch in bar:
            sums: dict[str, float] = {}
            order = rng.permutation(len(x))
            n_batches = 0
            for start in range(0, len(x), batch_size):
                batch = x[order[start:start + batch_size]]
                if len(batch) < 2:  # BatchNorm cannot train on a single sample
                    continue
                losses = backend.train_step(batch)
                for name, value in losses.items():
                    if not np.isfinite(value):
                        raise FloatingPointError(
                            f"{type(self).__name__}: loss '{name}' became {value} at epoch {epoch}, "
                            f"batch {n_batches + 1}; lower the learning rate or check the input scaling")
                    sums[name] = sums.get(name, 0.0) + float(value)
                n_batches += 1
            self._record(epoch=epoch, **{name: total / n_batches for name, total in sums.items()})
            if x_val is not None:
                name, value, higher_is_better = self._validation_metric(x_val, y_val)
                self._record(**{name: value})
                if best_value is None or (value > best_value if higher_is_better else value < best_value):
                    best_value, best_weights, self.best_epoch_ = value, backend.get_weights(), epoch
            self._end_of_epoch(epoch, x, x_val, y_val)
            bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in self.history_.items() if k != "epoch"})
            patience = self.hyperparameters.get("patience")
            if patience and best_weights is not None and epoch - self.best_epoch_ >= patience:
                break  # early stopping: `patience` epochs in a row without a better validation value
        bar.close()
        if restore_best and best_weights is not None:
            backend.set_weights(best_weights)
        else:
            self.best_epoch_ = int(self.history_["epoch"][-1])
        return self

    def _end_of_epoch(self, epoch: int, x, x_val, y_val) -> None:
        """Called after every epoch (and its validation); a model with an epoch-dependent schedule overrides it."""

    def _record(self, **values) -> None:
        for key, value in values.items():
            self.history_.setdefault(key, []).append(value)

    def _validation_metric(self, x_val, y_val) -> tuple[str, float, bool]:
        scores = self.decision_function(x_val)
        if len(np.unique(y_val)) == 2:
            return "val_auroc", metrics.auroc(y_val, scores), True
        return "val_mean_score", float(np.mean(scores)), False

    # ------------------------------------------------------------------ scoring

    def model_outputs(self, x) -> dict[str, np.ndarray]:
        """The networks' outputs on ``x`` in inference mode, batch by batch, concatenated."""
        x = check_array(x, self.input_kind, "x", input_shape=self._fitted_shape())
        parts: dict[str, list] = {}
        for start in range(0, len(x), self.score_batch_size):
            for key, value in self.backend.predict(x[start:start + self.score_batch_size]).items():
                parts.setdefault(key, []).append(value)
        return {key: np.concatenate(values) for key, values in parts.items()}

    def decision_function(self, x) -> np.ndarray:
        """Anomaly scores of ``x``, shape ``(n,)``: higher means more anomalous."""
        x = check_array(x, self.input_kind, "x", input_shape=self._fitted_shape())
        scores = np.asarray(self.score_from_outputs(x, self.model_outputs(x)), dtype=np.float64)
        if scores.shape != (len(x),):
            raise RuntimeError(f"score has shape {scores.shape}, expected ({len(x)},)")
        return scores

    def _fitted_shape(self) -> tuple[int, ...]:
        if self._backend is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() before decision_function()")
        return self.input_shape_

    # ------------------------------------------------------------------ saving

    def save(self, path: str | os.PathLike) -> Path:
        """Save weights and settings to one ``.npz`` file, tagged with the model and framework."""
        meta = {
            "format": FORMAT_TAG, "version": FORMAT_VERSION, "model": type(self).__name__,
            "framework": self.framework, "seed": self.seed, "hyperparameters": self.hyperparameters,
            "input_shape": list(self._fitted_shape()), "history": self.history_, "best_epoch": self.best_epoch_,
        }
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        weights = {f"w:{k}": v for k, v in self.backend.get_weights().items()}
        np.savez(path, __ganlib__=np.array(json.dumps(meta)), **weights)
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
            raise ValueError(f"{path} is not a file saved by ganlib's Detector.save ({error})") from None
        if meta.get("format") != FORMAT_TAG or meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown format {meta.get('format')!r} version {meta.get('version')!r}")
        if meta["model"] != cls.__name__:
            raise ValueError(f"{path} holds a {meta['model']} detector, not a {cls.__name__}; "
                             f"load it with {meta['model']}.load")
        if framework is not None and check_framework(framework) != meta["framework"]:
            raise ValueError(f"{path} holds a {meta['framework']} model, not a {framework} one")
        detector = cls(framework=meta["framework"], seed=meta["seed"], verbose=False, **meta["hyperparameters"])
        detector._build_backend(tuple(meta["input_shape"]))
        detector.backend.set_weights({k[2:]: archive[k] for k in archive.files if k.startswith("w:")})
        detector.history_, detector.best_epoch_ = meta["history"], meta["best_epoch"]
        return detector

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.hyperparameters.items() if self.defaults.get(k) != v}
        args = ", ".join([f"framework={self.framework!r}", f"seed={self.seed}"] + [f"{k}={v!r}" for k, v in changed.items()])
        return f"{type(self).__name__}({args})"


class TabularOrImageDetector(Detector):
    """A detector with two network families, chosen by the input's rank: tabular ``(n, features)`` or images.

    EGBAD and ALAD ship fully connected networks for tabular data and
    convolutional ones for images, each with its own official defaults.
    Hyper-parameters left at ``None`` take the family's value from
    ``family_defaults`` (``{"tabular": {...}, "image": {...}}``) when the
    networks are built; ``check_image_shape`` refuses image sizes the image
    networks cannot take.
    """

    family_defaults: dict[str, dict] = {"tabular": {}, "image": {}}
    input_kind = "tabular"

    def check_image_shape(self, shape: tuple) -> None:
        """Raise a ``ValueError`` if the image networks cannot take images of ``shape`` (n, h, w, c)."""

    def _kind_of(self, shape) -> str:
        if len(shape) == 2:
            return "tabular"
        if len(shape) == 4:
            self.check_image_shape(tuple(shape))
            return "image"
        raise ValueError(f"{type(self).__name__} takes tabular data of shape (n, features) or images of shape "
                         f"(n, height, width, channels), got shape {tuple(shape)}")

    def resolved_hyperparameters(self, kind: str) -> dict:
        """The hyper-parameters with the family defaults (where ``None``) filled in for ``kind``."""
        family = self.family_defaults[kind]
        return {k: (family[k] if v is None and k in family else v) for k, v in self.hyperparameters.items()}

    def _build_backend(self, input_shape):
        self.input_kind = self._kind_of((None, *input_shape))
        saved, self.hyperparameters = self.hyperparameters, self.resolved_hyperparameters(self.input_kind)
        try:
            return super()._build_backend(input_shape)
        finally:
            self.hyperparameters = saved

    def fit(self, x, epochs=None, validation_data=None, batch_size=None, restore_best=True):
        """Train on normal samples ``x`` with the network family of its rank (see :meth:`Detector.fit`)."""
        if isinstance(x, (str, bytes)) or x is None:
            raise TypeError(f"x must be a NumPy array, got {type(x).__name__}")
        self.input_kind = self._kind_of(np.shape(x))
        batch_size = batch_size or self.resolved_hyperparameters(self.input_kind)["batch_size"]
        return super().fit(x, epochs=epochs, validation_data=validation_data, batch_size=batch_size,
                           restore_best=restore_best)
