"""Detection metrics, on scikit-learn, with one orientation everywhere: a higher score
is more anomalous.

Labels are 0 (normal) and 1 (anomaly); the anomaly is the positive class.

- :func:`auroc` and :func:`auprc` need no threshold.
- :func:`precision_recall_f1` flags the top ``contamination`` share of scores,
  the rule EGBAD and ALAD inherit from DAGMM (top 20 % on KDD99, top 15 % on
  Arrhythmia).  It needs the anomaly rate to be known in advance, which is a
  strong assumption: the chapters always report AUROC beside it.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as _sk


def _check(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D arrays, got shapes {y.shape} and {s.shape}"
        )
    if len(y) != len(s):
        raise ValueError(
            f"labels and scores differ in length: {len(y)} labels, {len(s)} scores"
        )
    if len(y) == 0:
        raise ValueError("labels and scores are empty")
    if not np.all(np.isfinite(s)):
        raise ValueError(
            f"scores contain {int(np.sum(~np.isfinite(s)))} NaN or infinite values"
        )
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(
            f"labels must be 0 (normal) or 1 (anomaly), found {sorted(values)}"
        )
    if len(values) < 2:
        raise ValueError(
            f"labels hold a single class ({values.pop()}): "
            "the metric needs normal and anomalous samples"
        )
    return y.astype(np.int64), s


def auroc(y_true, scores) -> float:
    """Area under the ROC curve (1 = perfect, 0.5 = chance)."""
    y, s = _check(y_true, scores)
    return float(_sk.roc_auc_score(y, s))


def auprc(y_true, scores) -> float:
    """Area under the precision-recall curve, anomalies positive (average precision)."""
    y, s = _check(y_true, scores)
    return float(_sk.average_precision_score(y, s))


def roc_curve(y_true, scores):
    """``(false_positive_rate, true_positive_rate)`` arrays for plotting."""
    y, s = _check(y_true, scores)
    fpr, tpr, _ = _sk.roc_curve(y, s)
    return fpr, tpr


def threshold_at_contamination(scores, contamination: float) -> float:
    """The score above which the top ``contamination`` share of ``scores`` lies.

    Shown in chapters/01_setting.ipynb.
    """
    if not 0.0 < contamination < 1.0:
        raise ValueError(f"contamination must be in (0, 1), got {contamination!r}")
    return float(
        np.percentile(
            np.asarray(scores, dtype=np.float64), 100.0 * (1.0 - contamination)
        )
    )


TIES = ("share", "flag")


def precision_recall_f1(
    y_true, scores, contamination: float, ties: str = "share"
) -> dict[str, float]:
    """Precision, recall and F1 when the top ``contamination`` share of scores is
    flagged anomalous.

    The share is k samples, as many as :func:`threshold_at_contamination`
    flags when no two scores are equal.  Equal scores at the threshold (KDD99
    holds blocks of thousands of identical rows, which every detector scores
    alike) are handled by ``ties``:

    - ``"share"`` (default): exactly k samples are flagged; those tied at the
      k-th score share the flags left after the higher ones, each flagged with
      the same probability.  The figures are the expected precision, recall
      and F1 when the tie is broken at random (F1 = 2 TP / (k + positives) is
      linear in TP, so the expectation is exact).  Without ties at the
      threshold this is the plain top-k rule.
    - ``"flag"``: every score at or above the threshold is flagged (``>=``),
      the official EGBAD and ALAD code's rule: a block tied at the threshold is
      flagged whole, more than the share, which lowers precision (chapter 6
      shows a KDD99 run where one such block decides the F1).

    Shown in chapters/01_setting.ipynb.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    y, s = _check(y_true, scores)
    threshold = threshold_at_contamination(s, contamination)
    if ties == "flag":
        predicted = (s >= threshold).astype(np.int64)
        precision, recall, f1, _ = _sk.precision_recall_fscore_support(
            y, predicted, average="binary", zero_division=0
        )
        return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    # k: what the percentile rule flags among n distinct scores (its ranks)
    ranks = np.arange(len(s))
    k = int(np.sum(ranks >= np.percentile(ranks, 100.0 * (1.0 - contamination))))
    kth = np.sort(s)[len(s) - k]
    above, tied = s > kth, s == kth
    left = (k - above.sum()) / tied.sum()  # share of the tied block flagged
    true_positives = y[above].sum() + left * y[tied].sum()
    positives = y.sum()
    return {
        "precision": float(true_positives / k),
        "recall": float(true_positives / positives) if positives else 0.0,
        "f1": float(2 * true_positives / (k + positives)),
    }


def compare_tie_rules(y_true, scores, contamination: float) -> dict[str, float]:
    """Precision and F1 under both ``ties`` rules of :func:`precision_recall_f1`,
    the share of samples that ``"flag"`` flags, and how many samples tie at the
    threshold.

    Used in chapters/05_egbad.ipynb and chapters/06_alad.ipynb.
    """
    shared = precision_recall_f1(y_true, scores, contamination)
    flagged = precision_recall_f1(y_true, scores, contamination, ties="flag")
    s = np.asarray(scores, dtype=np.float64)
    threshold = threshold_at_contamination(s, contamination)
    return {
        "precision (ties shared)": shared["precision"],
        "F1 (ties shared)": shared["f1"],
        "precision (ties flagged)": flagged["precision"],
        "F1 (ties flagged)": flagged["f1"],
        "share flagged (ties flagged)": float(np.mean(s >= threshold)),
        "samples tied at the threshold": int(np.sum(s == threshold)),
    }


def tie_rules_table(runs: dict):
    """:func:`compare_tie_rules` for several runs, as a ``pandas.DataFrame`` with a
    row per run.

    ``runs`` maps each run's ``(framework, seed)`` to its ``(y_true, scores,
    contamination)``.  Shown in chapters/05_egbad.ipynb and 06_alad.ipynb.
    """
    import pandas as pd

    rows = {label: compare_tie_rules(*run) for label, run in runs.items()}
    table = pd.DataFrame(rows).T.astype({"samples tied at the threshold": int})
    return table.rename_axis(["framework", "seed"])


def describe_tie_rules(table) -> str:
    """A paragraph that reads a :func:`tie_rules_table` for the book: how much of
    the test set the official rule flags, the run most affected by ties, and the
    mean F1 of each framework under both rules."""
    shares = table["share flagged (ties flagged)"]
    framework, seed = shares.idxmax()
    worst = table.loc[(framework, seed)]
    f1 = table[["F1 (ties shared)", "F1 (ties flagged)"]]
    per_framework = "; ".join(
        f"{name} {row.iloc[0]:.4f} / {row.iloc[1]:.4f}"
        for name, row in f1.groupby(level=0).mean().iterrows()
    )
    same = int(((f1.iloc[:, 0] - f1.iloc[:, 1]).abs() < 1e-4).sum())
    return (
        f"Under the official rule the runs flag between {shares.min():.1%} and "
        f"{shares.max():.1%} of the test half. The most, {framework} seed {seed}, "
        f"because {int(worst['samples tied at the threshold']):,} test rows share "
        f"the threshold score, which takes its F1 from "
        f"{worst['F1 (ties shared)']:.4f} (ties shared) to "
        f"{worst['F1 (ties flagged)']:.4f} (ties flagged). {same} of the "
        f"{len(table)} runs have the same F1 under both rules (to four decimals). "
        f"Mean F1 per framework, ties shared / flagged: {per_framework}."
    )


def evaluate(
    y_true, scores, contamination: float | None = None, ties: str = "share"
) -> dict[str, float]:
    """AUROC and AUPRC, plus precision/recall/F1 when ``contamination`` is given
    (``ties``: see :func:`precision_recall_f1`)."""
    result = {"auroc": auroc(y_true, scores), "auprc": auprc(y_true, scores)}
    if contamination is not None:
        result.update(precision_recall_f1(y_true, scores, contamination, ties))
    return result


def threshold_max_f1(y_true, scores) -> float:
    """The threshold τ (flag ``score >= τ``) with the highest F1 on
    ``(y_true, scores)``, anomalies positive.

    ALOCC's F1 protocol never gives its τ (the official repository's issue #6).
    The chapters choose it with this function on the *validation* split and
    then apply it, unchanged, to the test split.
    """
    y, s = _check(y_true, scores)
    precision, recall, thresholds = _sk.precision_recall_curve(y, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(
            precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
        )
    return float(thresholds[int(np.argmax(f1[:-1]))])


def f1_at_threshold(
    y_true, scores, threshold: float, positive: str = "anomaly"
) -> float:
    """F1 when ``score >= threshold`` is flagged anomalous.

    ``positive="anomaly"`` scores the anomalies as the positive class (the
    book's convention); ``positive="normal"`` scores the normal class, the
    convention of papers that, like OGNet, report F1 for the inliers.
    """
    y, s = _check(y_true, scores)
    if positive not in ("anomaly", "normal"):
        raise ValueError(f"positive must be 'anomaly' or 'normal', got {positive!r}")
    predicted = (s >= threshold).astype(np.int64)
    label = 1 if positive == "anomaly" else 0
    return float(_sk.f1_score(y, predicted, pos_label=label, zero_division=0))
