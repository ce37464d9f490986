"""The book's figures: training curves, score histograms, ROC curves, reconstructions
(matplotlib).

Every function draws into a new figure (or the ``ax`` it is given) and returns
the figure, so a notebook cell can end with ``plt.show()``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from . import metrics


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize)


def plot_history(
    history: dict[str, list],
    keys: list[str] | None = None,
    title: str = "",
    best_epoch=None,
    ncols: int = 3,
):
    """Per-epoch curves of ``history`` (a detector's ``history_``), a panel per key.

    At most ``ncols`` panels a row, so that the figure stays legible at the
    book's column width and on a phone; epochs are whole numbers on the axis.
    """
    keys = keys or [k for k in history if k != "epoch"]
    if not keys:
        raise ValueError("history holds no curve besides 'epoch'")
    epochs = history.get("epoch") or list(range(1, len(history[keys[0]]) + 1))
    ncols = min(ncols, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.5 * ncols, 3.0 * nrows), squeeze=False
    )
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.plot(epochs, history[key], marker="o", markersize=3)
        if best_epoch is not None:
            ax.axvline(
                best_epoch,
                color="grey",
                linestyle=":",
                label=f"selected epoch {best_epoch}",
            )
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_score_histogram(
    y_true, scores, title: str = "", bins: int = 50, ax=None, log: bool = False
):
    """Overlaid histograms of the anomaly scores of normal (0) and anomalous (1)
    samples."""
    y, s = metrics._check(y_true, scores)
    fig, ax = _axes(ax, (5.0, 3.2))
    edges = np.histogram_bin_edges(s, bins=bins)
    for label, name, color in ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red")):
        ax.hist(
            s[y == label],
            bins=edges,
            alpha=0.55,
            density=True,
            color=color,
            label=f"{name} (n={int((y == label).sum())})",
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("density")
    ax.set_title(title or f"AUROC {metrics.auroc(y, s):.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc(
    y_true, scores_by_name: dict[str, np.ndarray], title: str = "ROC curve", ax=None
):
    """ROC curves of several scorers on the same labels, with their AUROC in the
    legend."""
    fig, ax = _axes(ax, (4.2, 4.0))
    for name, scores in scores_by_name.items():
        fpr, tpr = metrics.roc_curve(y_true, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {metrics.auroc(y_true, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_reconstructions(x, x_hat, labels=None, n: int = 8, title: str = ""):
    """A grid: inputs on the top row, their reconstructions below, |difference| on the
    third row.

    ``labels`` (optional, one string per sample) captions the columns.
    """
    x, x_hat = np.asarray(x)[:n], np.asarray(x_hat)[:n]
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(
            "x and x_hat must both have shape (n, h, w, c), "
            f"got {x.shape} and {x_hat.shape}"
        )
    rows = (
        ("input", x),
        ("reconstruction", x_hat),
        ("|difference|", np.abs(x - x_hat)),
    )
    # at most 10.5 inches wide: the book's column shows it without shrinking much
    width = min(1.2 * len(x), 10.5)
    fig, axes = plt.subplots(3, len(x), figsize=(width, 3.9), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(
                image.squeeze(-1) if image.shape[-1] == 1 else image,
                cmap="gray",
                vmin=0,
                vmax=1,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if r == 0 and labels is not None:
                ax.set_title(str(labels[c]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_image_grid(images, labels=None, ncols: int = 10, title: str = ""):
    """A grid of images (n, h, w, c) in [0, 1], captioned by ``labels``."""
    images = np.asarray(images)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.05 * ncols, 1.2 * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            image = images[i]
            ax.imshow(
                image.squeeze(-1) if image.shape[-1] == 1 else image,
                cmap="gray",
                vmin=0,
                vmax=1,
            )
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
