"""The benchmark chapter's figures, drawn from the tables of :mod:`.tables`.

Each function takes a table (a DataFrame) and returns the matplotlib
``Figure``; none reads the store or trains anything.  None is wider than the
book's column (:data:`ganlib.plots.COLUMN_INCHES`), and none sets a font size
of its own: the chapter's style (:func:`ganlib.plots.use_book_style`) decides.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..plots import COLUMN_INCHES


def heatmap(per_class: pd.DataFrame, suite: str, rule: str, title: str = ""):
    """Mean test AUROC per detector (rows) and class (columns), annotated."""
    table = per_class.xs((suite, rule), level=("suite", "rule"))
    table = table.loc[table.mean(axis=1).sort_values(ascending=False).index]
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.45 * len(table) + 1.4))
    image = ax.imshow(table.to_numpy(), cmap="RdYlGn", vmin=0.5, vmax=1.0)
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(len(table)), table.index)
    ax.set_xlabel("class (digit)")
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        if np.isfinite(value):
            colour = "white" if value < 0.6 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=colour)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="test AUROC")
    ax.set_title(title or f"{suite}, {rule} selection: mean over seeds")
    fig.tight_layout()
    return fig


def rank_diagram(ranks: pd.DataFrame, suite: str, rule: str):
    """Mean ranks on one axis with the Nemenyi critical difference as a bar.

    Two detectors whose ranks lie closer than the bar are not told apart by
    the Friedman-Nemenyi procedure at the table's level.
    """
    table = ranks.xs((suite, rule), level=("suite", "rule")).sort_values("mean_rank")
    k, cd = len(table), float(table["critical_difference"].iloc[0])
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.35 * k + 1.6))
    y = np.arange(k)[::-1]
    ax.scatter(table["mean_rank"], y, color="tab:blue", zorder=3)
    for position, (name, row) in zip(y, table.iterrows()):
        ax.annotate(
            f"{name} ({row['mean_rank']:.1f})",
            (row["mean_rank"], position),
            xytext=(6, -3),
            textcoords="offset points",
        )
    best = table["mean_rank"].iloc[0]
    if np.isfinite(cd):  # the band: ranks not told apart from the best one
        ax.axvspan(best, best + cd, color="tab:orange", alpha=0.15)
    ax.set_xlim(0.5, k + 2)
    ax.set_yticks([])
    ax.set_xlabel(
        "mean rank (1 = best test AUROC)\nshaded: within the critical "
        "difference of the best"
    )
    blocks = int(table["blocks"].iloc[0])
    p_value = table["friedman_p"].iloc[0]
    ax.set_title(
        f"{suite}, {rule}: {blocks} blocks, Friedman p = {p_value:.2g},\n"
        f"critical difference {cd:.2f}"
    )
    fig.tight_layout()
    return fig


def curve_bands(
    curves: pd.DataFrame, suite: str, key: str = "val_auroc", ncols: int = 2
):
    """Validation ``key`` per epoch: mean and min-max over runs, one panel per model.

    A run is one (class, seed, framework) training; a wide band means the
    epoch a run ends on decides much of its result.
    """
    part = curves[curves["suite"] == suite]
    names = sorted(part["detector"].unique())
    nrows = max(1, -(-len(names) // ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(COLUMN_INCHES, 2.6 * nrows), sharey=True, squeeze=False
    )
    for ax, name in zip(axes.flat, names):
        runs = part[part["detector"] == name].groupby("epoch")[key]
        epochs = runs.mean().index
        ax.fill_between(epochs, runs.min(), runs.max(), alpha=0.25, label="min to max")
        ax.plot(epochs, runs.mean(), marker=".", label="mean")
        count = len(
            part[part["detector"] == name][
                ["class", "seed", "framework"]
            ].drop_duplicates()
        )
        ax.set_title(f"{name} ({count} run{'s' if count != 1 else ''})")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(key.replace("_", " "))
    axes[0, 0].legend()
    fig.suptitle(f"{suite}: validation AUROC per epoch")
    fig.tight_layout()
    return fig


def cost_chart(cost: pd.DataFrame, suite: str):
    """Training and scoring seconds per job, log scale, per detector and framework."""
    table = cost.xs(suite, level="suite").sort_values("train_seconds")
    labels = [f"{d} ({f})" for d, f in table.index]
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.35 * len(table) + 1.6))
    y = np.arange(len(table))
    ax.barh(y + 0.2, table["train_seconds"], height=0.4, label="training")
    ax.barh(y - 0.2, table["score_seconds"], height=0.4, label="scoring the test set")
    ax.set_yticks(y, labels)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per job (log scale)")
    ax.legend(loc="lower right")
    ax.set_title(f"{suite}: cost per job")
    fig.tight_layout()
    return fig
