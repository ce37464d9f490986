"""The papers' evaluation protocols as code.

Every protocol returns a :class:`Split`: training data made of normal samples
only, a validation split carved out of *training* data, and a test split, each
with labels where ``1`` means anomaly.  Nothing in the validation split comes
from the test data, so model selection and early stopping never see the test
set.  Every protocol is seeded: the same ``seed`` gives the same split.

The protocols, the papers that use them, and what is normal / anomalous:

- :func:`one_class_normal` (ALOCC, OGNet, ALAD): one class normal, the nine
  others anomalous;
- :func:`one_class_anomalous` (GANomaly, EGBAD): nine classes normal, one class
  anomalous;
- :func:`kdd99` (EGBAD, ALAD, after DAGMM): attacks normal, ``normal.`` traffic
  anomalous;
- :func:`arrhythmia` (ALAD): ODDS inliers normal, its 66 outliers anomalous.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from . import data
from .detector import check_labels

IMAGE_DATASETS = ("mnist", "cifar10")


@dataclass
class Split:
    """Train / validation / test arrays of a protocol (labels: 1 anomaly, 0 normal).

    ``contamination`` is the share of test samples the protocol flags as
    anomalous when it reports precision/recall/F1 (KDD99: 0.20, Arrhythmia:
    0.15); it is ``None`` for protocols evaluated by AUROC alone.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    contamination: float | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def summary(self):
        """A :class:`pandas.DataFrame` with the size and anomaly count of each part."""
        import pandas as pd

        rows = {}
        for part in ("train", "val", "test"):
            y = getattr(self, f"y_{part}")
            rows[{"val": "validation"}.get(part, part)] = {
                "samples": len(y),
                "normal": int((y == 0).sum()),
                "anomalous": int((y == 1).sum()),
                "anomalous %": round(100 * float(np.mean(y)) if len(y) else 0.0, 2),
            }
        frame = pd.DataFrame(rows).T
        frame.index.name = self.name
        return frame.astype({"samples": int, "normal": int, "anomalous": int})

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _rng(seed: int) -> np.random.Generator:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def _load_images(dataset: str, data_dir):
    """Images as float32 in [0, 1], shape (n, h, w, c), with integer labels."""
    if dataset == "mnist":
        (x_tr, y_tr), (x_te, y_te) = data.load_mnist(data_dir)
        x_tr, x_te = x_tr[..., None], x_te[..., None]
    elif dataset == "cifar10":
        (x_tr, y_tr), (x_te, y_te) = data.load_cifar10(data_dir)
    else:
        raise ValueError(f"dataset must be one of {IMAGE_DATASETS}, got {dataset!r}")
    scale = lambda x: x.astype(np.float32) / 255.0  # noqa: E731
    return scale(x_tr), y_tr.astype(np.int64), scale(x_te), y_te.astype(np.int64)


def _check_class(value, name: str) -> int:
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, bool)
        or not 0 <= value <= 9
    ):
        raise ValueError(f"{name} must be a class index from 0 to 9, got {value!r}")
    return int(value)


def _check_fraction(value, name: str, upper: float = 1.0) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= value < upper:
        raise ValueError(f"{name} must be a number in [0, {upper}), got {value!r}")
    return float(value)


def _carve_validation(normals, anomalies, val_fraction, anomaly_share, rng):
    """Hold out ``val_fraction`` of ``normals`` plus enough ``anomalies`` for the given
    anomaly share.

    Returns ``(train_normals, x_val, y_val, unused_anomalies)``; both inputs are
    shuffled with ``rng`` first.
    """
    normals = normals[rng.permutation(len(normals))]
    anomalies = anomalies[rng.permutation(len(anomalies))]
    n_val = int(round(val_fraction * len(normals)))
    n_anom = (
        int(round(n_val * anomaly_share / (1.0 - anomaly_share)))
        if anomaly_share
        else 0
    )
    if n_anom > len(anomalies):
        raise ValueError(
            f"the validation split needs {n_anom} anomalies "
            f"but only {len(anomalies)} are available"
        )
    x_val = np.concatenate([normals[:n_val], anomalies[:n_anom]])
    y_val = np.concatenate([np.zeros(n_val, np.int64), np.ones(n_anom, np.int64)])
    order = rng.permutation(len(y_val))
    return normals[n_val:], x_val[order], y_val[order], anomalies[n_anom:]


def one_class_normal(
    normal_class: int,
    dataset: str = "mnist",
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> Split:
    """One class normal, the nine others anomalous (ALOCC, OGNet, ALAD on images).

    - **train**: the official training images of ``normal_class``, less the
      validation share (MNIST digit 0: 5923 images, 4738 for training);
    - **validation**: ``val_fraction`` of those normal training images, plus
      as many images of the other classes drawn from the *training* split,
      so the validation set is half anomalous (AUROC does not depend on the
      mix);
    - **test**: the whole official test split (MNIST: 10000 images, about
      90 % anomalous).

    ALAD pools train and test before splitting and ALOCC samples 10-50 %
    outliers into the test set; the chapters derive those variants from this
    split and say so.

    Shown in chapters/01_setting.ipynb.
    """
    normal_class = _check_class(normal_class, "normal_class")
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    rng = _rng(seed)
    x_tr, y_tr, x_te, y_te = _load_images(dataset, data_dir)
    train, x_val, y_val, _ = _carve_validation(
        x_tr[y_tr == normal_class], x_tr[y_tr != normal_class], val_fraction, 0.5, rng
    )
    return Split(
        name=f"{dataset} one-class-normal (class {normal_class})",
        x_train=train,
        y_train=np.zeros(len(train), np.int64),
        x_val=x_val,
        y_val=y_val,
        x_test=x_te,
        y_test=(y_te != normal_class).astype(np.int64),
        extra={"test_classes": y_te},
        notes="train: one class of the official training split; "
        "test: the whole official test split",
    )


def one_class_anomalous(
    anomaly_class: int,
    dataset: str = "mnist",
    *,
    val_fraction: float = 0.2,
    val_anomaly_fraction: float = 0.0,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> Split:
    """One class anomalous, nine normal (GANomaly, EGBAD: "leave one class out").

    As in the official GANomaly and EGBAD code, the training and test images are
    pooled (MNIST: 70000).  The normal images are shuffled and split 80/20:

    - **test**: the 20 % of normal images plus *every* image of
      ``anomaly_class`` (MNIST digit 0: 12617 normal + 6903 anomalous);
    - **train**: the other 80 % of normal images, less the validation share;
    - **validation**: ``val_fraction`` of those training normals.  It holds no
      anomaly by default, because the papers put the whole anomalous class in
      the test set.  ``val_anomaly_fraction`` moves that fraction of the
      anomalous class out of the test set into the validation set, for
      chapters that select models by validation AUROC (a stated deviation).
    """
    anomaly_class = _check_class(anomaly_class, "anomaly_class")
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    val_anomaly_fraction = _check_fraction(val_anomaly_fraction, "val_anomaly_fraction")
    rng = _rng(seed)
    x_tr, y_tr, x_te, y_te = _load_images(dataset, data_dir)
    x_all, y_all = np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])
    normals = x_all[y_all != anomaly_class]
    anomalies = x_all[y_all == anomaly_class]
    normals, anomalies = (
        normals[rng.permutation(len(normals))],
        anomalies[rng.permutation(len(anomalies))],
    )
    n_test_normal = int(round(0.2 * len(normals)))
    n_val_anom = int(round(val_anomaly_fraction * len(anomalies)))
    test_x = np.concatenate([normals[:n_test_normal], anomalies[n_val_anom:]])
    test_y = np.concatenate(
        [
            np.zeros(n_test_normal, np.int64),
            np.ones(len(anomalies) - n_val_anom, np.int64),
        ]
    )
    order = rng.permutation(len(test_y))
    pool = normals[n_test_normal:]
    n_val = int(round(val_fraction * len(pool)))
    x_val = np.concatenate([pool[:n_val], anomalies[:n_val_anom]])
    y_val = np.concatenate([np.zeros(n_val, np.int64), np.ones(n_val_anom, np.int64)])
    val_order = rng.permutation(len(y_val))
    train = pool[n_val:]
    return Split(
        name=f"{dataset} one-class-anomalous (class {anomaly_class})",
        x_train=train,
        y_train=np.zeros(len(train), np.int64),
        x_val=x_val[val_order],
        y_val=y_val[val_order],
        x_test=test_x[order],
        y_test=test_y[order],
        notes="train+test pooled; normals split 80/20; "
        "the test set holds the anomalous class",
    )


def _minmax_scale(train, *others):
    """Scale every column to [0, 1] by the range it has in ``train`` (constant
    columns are left as they are)."""
    low = train.min(axis=0)
    span = train.max(axis=0) - low
    span[span == 0] = 1.0
    return tuple((a - low) / span for a in (train, *others))


def encode_kdd99(frame):
    """One-hot encode KDDCup99's symbolic features (as DAGMM, EGBAD and ALAD do):
    121 columns.

    Returns ``(features, labels, feature_names)`` with ``labels == 1`` for the
    ``normal.`` records, which these papers treat as the anomalies.
    """
    import pandas as pd

    _, symbolic = data.kddcup99_columns()
    features = frame.drop(columns="label")
    columns = [c for c in features.columns if c in symbolic]
    encoded = pd.get_dummies(features, columns=columns, dtype=np.float32)
    labels = (frame["label"] == "normal.").to_numpy(np.int64)
    return encoded.to_numpy(np.float32), labels, list(encoded.columns)


def kdd99(
    *,
    seed: int = 0,
    scale: bool = False,
    val_fraction: float = 0.2,
    data_dir: str | os.PathLike | None = None,
) -> Split:
    """KDDCup99 10 % as in EGBAD and ALAD, after DAGMM (Zong et al., 2018).

    - the 494021 records are one-hot encoded to 121 features;
    - the ``normal.`` records (19.7 %) are the *anomalies*, the attacks the
      normal class, because the attacks are the majority;
    - a seeded 50/50 split gives a training half and a test half;
    - **train**: the attack records of the training half, less the validation
      share;
    - **validation**: ``val_fraction`` of those attacks plus ``normal.``
      records of the *training* half, 20 % of the validation set;
    - **test**: the whole test half (about 19.7 % anomalous);
    - precision/recall/F1 flag the top 20 % of scores (``contamination=0.2``).

    The features are **raw** by default, as in the official EGBAD and ALAD
    code (EGBAD's loader computes a min-max scaled copy and discards it; ALAD
    passes ``scale=False``): the networks see byte counts in the millions.
    ``scale=True`` min-max scales every feature with the training rows' range
    instead.  That is not neutral: the training rows are attacks only, and
    after their scaling the L1 norm of a row alone ranks the test set
    backwards (AUROC about 0.05; 0.51 on raw features), so a generator that
    has not learned yet, or collapses, ranks the anomalies backwards too.
    """
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    rng = _rng(seed)
    x, y, names = encode_kdd99(data.load_kddcup99("10percent", data_dir))
    order = rng.permutation(len(y))
    half = len(y) // 2
    train_idx, test_idx = order[:half], order[half:]
    x_half, y_half = x[train_idx], y[train_idx]
    train, x_val, y_val, _ = _carve_validation(
        x_half[y_half == 0], x_half[y_half == 1], val_fraction, 0.2, rng
    )
    x_test, y_test = x[test_idx], y[test_idx]
    if scale:
        train, x_val, x_test = _minmax_scale(train, x_val, x_test)
    return Split(
        name="kddcup99 (DAGMM protocol)",
        x_train=train.astype(np.float32),
        y_train=np.zeros(len(train), np.int64),
        x_val=x_val.astype(np.float32),
        y_val=y_val,
        x_test=x_test.astype(np.float32),
        y_test=y_test,
        contamination=0.2,
        extra={"feature_names": names, "scaled": scale},
        notes="normal. records are the anomalies; top 20 % of scores flagged",
    )


def arrhythmia(
    *,
    seed: int = 0,
    val_fraction: float = 0.25,
    keep_outliers_in_train: bool = False,
    scale: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> Split:
    """ODDS Arrhythmia as in ALAD: a seeded 50/50 split, top 15 % of scores flagged.

    - **train**: the inliers of the training half (about 193), less the
      validation share.  The official ALAD loader leaves the training half's
      outliers (about 33) in the training data; ``keep_outliers_in_train=True``
      does the same (those rows then carry label 1 in ``y_train``);
    - **validation**: ``val_fraction`` of the training inliers plus outliers of
      the training half, 15 % of the validation set;
    - **test**: the whole test half (226 records);
    - ``scale=True`` min-max scales with the training rows' range.
    """
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    rng = _rng(seed)
    x, y = data.load_arrhythmia(data_dir)
    x = x.astype(np.float32)
    order = rng.permutation(len(y))
    half = len(y) // 2
    x_half, y_half = x[order[:half]], y[order[:half]]
    train, x_val, y_val, spare_outliers = _carve_validation(
        x_half[y_half == 0], x_half[y_half == 1], val_fraction, 0.15, rng
    )
    y_train = np.zeros(len(train), np.int64)
    if keep_outliers_in_train:
        train = np.concatenate([train, spare_outliers])
        y_train = np.concatenate([y_train, np.ones(len(spare_outliers), np.int64)])
    x_test, y_test = x[order[half:]], y[order[half:]]
    if scale:
        train, x_val, x_test = _minmax_scale(train, x_val, x_test)
    return Split(
        name="arrhythmia (ODDS)",
        x_train=train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test.astype(np.int64),
        contamination=0.15,
        extra={"scaled": scale},
        notes="50/50 split; top 15 % of scores flagged",
    )


def outlier_mixture(
    x: np.ndarray,
    y: np.ndarray,
    outlier_fraction: float,
    *,
    seed: int = 0,
    n_normal: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A subset of ``(x, y)`` in which anomalies (``y == 1``) make up a share
    ``outlier_fraction`` of the samples.

    ALOCC's MNIST protocol (section 4.2, after DRAE) and OGNet's test all the
    target-class images together with outliers "sampled from other classes"
    so that they are 10 %, 20 %, ..., 50 % of the mix.  This keeps every
    normal sample (or the first ``n_normal`` after a seeded shuffle) and draws
    the matching number of anomalies without replacement.  Apply it to a
    split's test part for the reported figures and to its validation part to
    choose a threshold for the same mix.
    """
    fraction = _check_fraction(outlier_fraction, "outlier_fraction")
    labels = check_labels(y, len(x))
    rng = _rng(seed)
    normals = rng.permutation(np.flatnonzero(labels == 0))
    anomalies = rng.permutation(np.flatnonzero(labels == 1))
    if n_normal is not None:
        if not 0 < n_normal <= len(normals):
            raise ValueError(f"n_normal must be in 1..{len(normals)}, got {n_normal!r}")
        normals = normals[:n_normal]
    n_outliers = int(round(len(normals) * fraction / (1.0 - fraction)))
    if n_outliers > len(anomalies):
        raise ValueError(
            f"{fraction:.0%} outliers need {n_outliers} anomalies besides "
            f"{len(normals)} normal samples, but only {len(anomalies)} are available"
        )
    chosen = np.sort(np.concatenate([normals, anomalies[:n_outliers]]))
    return x[chosen], labels[chosen]
