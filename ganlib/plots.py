"""The book's figures: training curves, score histograms, ROC curves, reconstructions
(matplotlib).

Every function draws into a new figure (or the ``ax`` it is given) and returns
the figure, so a notebook cell can end with ``plt.show()``.  None changes
matplotlib's settings; a chapter calls :func:`use_book_style` once, so that its
own figures and these share the book's sizes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from . import metrics

#: The book's text column is 772 px wide on a wide screen (the browser check,
#: tools/browser_check.py), and a notebook draws 100 px per inch: a figure at
#: most this wide is shown at its drawn size, never shrunk.
COLUMN_INCHES = 7.6

#: Every text of a figure at 12 pt, i.e. 12 x 100 / 72 = 16.7 px at the drawn
#: size, as large as the body text (16 px); the figures stay within
#: ``COLUMN_INCHES``, so that no page shrinks them below that size.
BOOK_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.figsize": (COLUMN_INCHES, 3.6),
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.title_fontsize": 12,
    "figure.titlesize": 13,
}


def use_book_style() -> None:
    """Set matplotlib's ``rcParams`` to :data:`BOOK_STYLE` for this session.

    The chapters call it once at the top; it changes matplotlib's global
    settings, as ``plt.style.use`` does, so the library never calls it itself.
    """
    plt.rcParams.update(BOOK_STYLE)


def epoch_axis(ax) -> None:
    """Label ``ax``'s x axis "epoch", with whole numbers only as ticks."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def _show_image(ax, image) -> None:
    """One (h, w, c) image in [0, 1] on ``ax``, a single channel in grey."""
    ax.imshow(
        image.squeeze(-1) if image.shape[-1] == 1 else image,
        cmap="gray",
        vmin=0,
        vmax=1,
    )


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize)


def plot_history(
    history: dict[str, list],
    keys: list[str] | None = None,
    title: str = "",
    best_epoch=None,
    ncols: int = 2,
):
    """Per-epoch curves of ``history`` (a detector's ``history_``), a panel per key.

    At most ``ncols`` panels a row, each half the book's column wide, so that
    the figure is shown at its drawn size; epochs are whole numbers on the axis.
    """
    keys = keys or [k for k in history if k != "epoch"]
    if not keys:
        raise ValueError("history holds no curve besides 'epoch'")
    epochs = history.get("epoch") or list(range(1, len(history[keys[0]]) + 1))
    ncols = min(ncols, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(COLUMN_INCHES * ncols / 2, 3.0 * nrows),
        squeeze=False,
    )
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        ax.plot(epochs, history[key], marker="o", markersize=3)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":")
        epoch_axis(ax)
        ax.set_title(key)
        ax.grid(alpha=0.3)
    # said once above the panels: a legend in each would cover its curve
    if best_epoch is not None:
        selected = f"dotted line: the selected epoch, {best_epoch}"
        title = f"{title}\n{selected}" if title else selected
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
    fig, ax = _axes(ax, (5.0, 3.6))
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
    ax.legend()
    fig.tight_layout()
    return fig


def plot_roc(
    y_true, scores_by_name: dict[str, np.ndarray], title: str = "ROC curve", ax=None
):
    """ROC curves of several scorers on the same labels, with their AUROC in the
    legend."""
    fig, ax = _axes(ax, (5.0, 4.6))
    for name, scores in scores_by_name.items():
        fpr, tpr = metrics.roc_curve(y_true, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {metrics.auroc(y_true, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_reconstructions(
    x, x_hat, labels=None, n: int = 8, title: str = "", per_row: int = 8
):
    """Inputs, their reconstructions below, the absolute error on the third row.

    ``labels`` (optional, one string per sample) captions the columns.  More
    than ``per_row`` samples are split into blocks of three rows of equal
    length, so that each image and its caption keep a readable size in the
    book's column.
    """
    x, x_hat = np.asarray(x)[:n], np.asarray(x_hat)[:n]
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(
            "x and x_hat must both have shape (n, h, w, c), "
            f"got {x.shape} and {x_hat.shape}"
        )
    rows = (
        ("input", x),
        ("rebuilt", x_hat),
        ("|error|", np.abs(x - x_hat)),
    )
    blocks = -(-len(x) // per_row)
    ncols = -(-len(x) // blocks)
    side = min(1.2, (COLUMN_INCHES - 0.5) / ncols)
    fig, axes = plt.subplots(
        3 * blocks,
        ncols,
        figsize=(side * ncols + 0.5, (3 * side + 0.5) * blocks),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(len(x)):
        block, c = divmod(i, ncols)
        for r, (name, images) in enumerate(rows):
            ax = axes[3 * block + r, c]
            ax.set_axis_on()
            _show_image(ax, images[i])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name)
            if r == 0 and labels is not None:
                ax.set_title(str(labels[i]))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_image_grid(images, labels=None, ncols: int = 10, title: str = ""):
    """A grid of images (n, h, w, c) in [0, 1], captioned by ``labels``.

    At most the book's column wide: ten columns give images of 0.76 inches.
    """
    images = np.asarray(images)
    nrows = int(np.ceil(len(images) / ncols))
    side = min(1.05, COLUMN_INCHES / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(side * ncols, (side + 0.3) * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            _show_image(ax, images[i])
            if labels is not None:
                ax.set_title(str(labels[i]))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
