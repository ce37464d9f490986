"""Two classical detectors from scikit-learn, with ganlib's API, as the non-neural yardstick.

Both flatten images to vectors and, like every ganlib detector, return scores
where higher means more anomalous.  The neural baseline, a convolutional
autoencoder, is :class:`ganlib.autoencoder.ConvAutoencoder`.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty array of shape (n, ...), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values")
    return x.reshape(len(x), -1)


class IsolationForestDetector:
    """Isolation Forest (Liu, Ting and Zhou, 2008): anomalies are isolated by fewer random splits."""

    def __init__(self, seed: int = 0, n_estimators: int = 100):
        self.model = IsolationForest(n_estimators=n_estimators, random_state=seed, n_jobs=-1)

    def fit(self, x, **_):
        self.model.fit(_flat(x))
        return self

    def decision_function(self, x) -> np.ndarray:
        # scikit-learn's score_samples is higher for normal points: flip it
        return -self.model.score_samples(_flat(x))


class PCADetector:
    """PCA reconstruction error: the linear ancestor of the autoencoder.

    Keeps the principal components that explain ``variance`` of the training
    data and scores a sample by its squared distance to that subspace.
    """

    def __init__(self, variance: float = 0.9, seed: int = 0):
        self.model = PCA(n_components=variance, svd_solver="full", random_state=seed)

    def fit(self, x, **_):
        self.model.fit(_flat(x))
        return self

    def decision_function(self, x) -> np.ndarray:
        flat = _flat(x)
        rebuilt = self.model.inverse_transform(self.model.transform(flat))
        return np.mean(np.square(flat - rebuilt), axis=1)
