"""Classical detectors from scikit-learn with ganlib's (PyOD's) API: the non-neural
yardstick.

Each flattens images to vectors and, like every ganlib detector, returns
scores where higher means more anomalous, and keeps PyOD's contract
(``decision_scores_``, ``threshold_``, ``labels_``, ``predict``,
``predict_proba``, ``get_params``).  The neural baseline, a convolutional
autoencoder, is :class:`ganlib.autoencoder.ConvAutoencoder`.

- :class:`PCADetector`: distance to the principal subspace;
- :class:`IsolationForestDetector` (Liu, Ting and Zhou, 2008);
- :class:`OneClassSVMDetector` (Schölkopf et al., 2001);
- :class:`KNNDetector`: distance to the k-th nearest training sample
  (Ramaswamy, Rastogi and Shim, 2000), a baseline that comparisons of deep
  detectors often find hard to beat.

Shown in chapters/01_setting.ipynb.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import OneClassSVM

from .detector import BaseDetector, check_array


class SklearnDetector(BaseDetector):
    """A scikit-learn model behind ganlib's API: flatten, fit, score, threshold.

    A subclass sets ``defaults`` and implements :meth:`make_model` and
    :meth:`score_flat`.  ``fit`` takes (and ignores) the neural detectors'
    keywords (``epochs``, ``validation_data``, ``batch_size``), so one loop
    can fit every detector of the book.
    """

    def fit(self, X, y=None, *, epochs=None, validation_data=None, batch_size=None):
        """Fit on ``X`` (images or rows, flattened); ``y`` and the training keywords
        are ignored."""
        self._check_ignored_y(y)
        x = check_array(X, "any", "X")
        self.input_shape_ = tuple(x.shape[1:])
        self.model_ = self.make_model()
        self.model_.fit(self._flat(x))
        self.history_, self.selected_epochs_, self.best_epoch_ = {}, {}, None
        self.decision_scores_ = self.training_scores(x)
        self.threshold_ = float(
            np.percentile(self.decision_scores_, 100.0 * (1.0 - self.contamination))
        )
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores of ``X``, shape ``(n,)``: higher means more anomalous."""
        if getattr(self, "model_", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        x = check_array(X, "any", "X", input_shape=self.input_shape_)
        return np.asarray(self.score_flat(self._flat(x)), dtype=np.float64)

    def training_scores(self, x: np.ndarray) -> np.ndarray:
        """Scores of the training samples (PyOD's ``decision_scores_``)."""
        return self.decision_function(x)

    def make_model(self):
        raise NotImplementedError

    def score_flat(self, flat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)


class PCADetector(SklearnDetector):
    """PCA reconstruction error: the linear ancestor of the autoencoder.

    Keeps the principal components that explain ``variance`` of the training
    data and scores a sample by its mean squared distance to that subspace.
    """

    defaults = {"variance": 0.9}

    def check_hyperparameters(self, hp):
        if not 0.0 < hp["variance"] < 1.0:
            raise ValueError(f"variance must be in (0, 1), got {hp['variance']!r}")

    def make_model(self):
        return PCA(
            n_components=self.hyperparameters["variance"],
            svd_solver="full",
            random_state=self.seed,
        )

    def score_flat(self, flat):
        rebuilt = self.model_.inverse_transform(self.model_.transform(flat))
        return np.mean(np.square(flat - rebuilt), axis=1)


class IsolationForestDetector(SklearnDetector):
    """Isolation Forest (Liu, Ting and Zhou, 2008): anomalies are isolated by fewer
    random splits."""

    defaults = {"n_estimators": 100}

    def check_hyperparameters(self, hp):
        if hp["n_estimators"] < 1:
            raise ValueError(f"n_estimators must be >= 1, got {hp['n_estimators']!r}")

    def make_model(self):
        return IsolationForest(
            n_estimators=self.hyperparameters["n_estimators"], random_state=self.seed
        )

    def score_flat(self, flat):
        # scikit-learn's score_samples is higher for normal points: flip it
        return -self.model_.score_samples(flat)


class OneClassSVMDetector(SklearnDetector):
    """One-class SVM with an RBF kernel (Schölkopf et al., 2001).

    ``nu`` bounds the share of training samples outside the learned region;
    ``gamma="scale"`` is scikit-learn's 1 / (features x variance).  Training
    is quadratic in the number of samples: subsample large training sets.
    """

    defaults = {"nu": 0.1, "gamma": "scale"}

    def check_hyperparameters(self, hp):
        if not 0.0 < hp["nu"] <= 1.0:
            raise ValueError(f"nu must be in (0, 1], got {hp['nu']!r}")

    def make_model(self):
        return OneClassSVM(
            kernel="rbf",
            nu=self.hyperparameters["nu"],
            gamma=self.hyperparameters["gamma"],
        )

    def score_flat(self, flat):
        return -self.model_.decision_function(flat)


class KNNDetector(SklearnDetector):
    """Distance to the ``n_neighbors``-th nearest training sample
    (Ramaswamy et al., 2000).

    A training sample's own score leaves the sample itself out (scikit-learn's
    ``kneighbors()`` without arguments), so ``decision_scores_`` is not
    flattered by a distance of zero to itself.
    """

    defaults = {"n_neighbors": 5}

    def check_hyperparameters(self, hp):
        if hp["n_neighbors"] < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {hp['n_neighbors']!r}")

    def make_model(self):
        return NearestNeighbors(n_neighbors=self.hyperparameters["n_neighbors"])

    def score_flat(self, flat):
        distances, _ = self.model_.kneighbors(flat)
        return distances[:, -1]

    def training_scores(self, x):
        distances, _ = self.model_.kneighbors()
        return distances[:, -1].astype(np.float64)
