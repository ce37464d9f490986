import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

from ganlib import plots  # noqa: E402

rng = np.random.default_rng(0)
y = np.array([0] * 30 + [1] * 10)
scores = np.concatenate([rng.normal(0, 1, 30), rng.normal(3, 1, 10)])


def test_each_plot_returns_a_figure_with_its_panels():
    assert (
        len(
            plots.plot_history(
                {"epoch": [1, 2], "loss": [2.0, 1.0], "val_auroc": [0.6, 0.7]},
                best_epoch=2,
            ).axes
        )
        == 2
    )
    five = {"epoch": [1, 2, 3]} | {k: [1.0, 0.5, 0.2] for k in "abcde"}
    wrapped = plots.plot_history(five)  # at most 2 panels a row
    assert [a.get_visible() for a in wrapped.axes] == [True] * 5 + [False]
    assert wrapped.axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 2)
    ticks = wrapped.axes[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # whole epochs
    assert "AUROC" in plots.plot_score_histogram(y, scores).axes[0].get_title()
    roc = plots.plot_roc(y, {"a": scores, "b": -scores})
    assert len(roc.axes[0].lines) == 3  # two curves and the chance diagonal
    x = rng.random((5, 28, 28, 1))
    assert len(plots.plot_reconstructions(x, x * 0.5, labels=list("abcde")).axes) == 15
    # 13 samples: two blocks of 7 columns, the last cell of the second empty
    x13 = rng.random((13, 28, 28, 1))
    blocks = plots.plot_reconstructions(x13, x13, n=13)
    assert blocks.axes[0].get_subplotspec().get_gridspec().get_geometry() == (6, 7)
    assert sum(a.axison for a in blocks.axes) == 39
    assert len(plots.plot_image_grid(x, ncols=5).axes) == 5
    plt.close("all")


def test_plots_reject_bad_input():
    with pytest.raises(ValueError, match="same length|differ in length"):
        plots.plot_score_histogram(y[:-1], scores)
    with pytest.raises(ValueError, match="shape \\(n, h, w, c\\)"):
        plots.plot_reconstructions(rng.random((2, 28, 28)), rng.random((2, 28, 28)))
    with pytest.raises(ValueError, match="no curve"):
        plots.plot_history({"epoch": [1]})
    plt.close("all")


def test_figures_fit_the_column_with_text_at_body_size():
    """Under the book's style every text of a figure is at least 16 px drawn (the
    body's size) and the library's figures are no wider than the column, so
    that the page shows them unshrunk."""
    with plt.rc_context(plots.BOOK_STYLE):
        text_keys = [k for k in plt.rcParams if k.endswith(("labelsize", "titlesize"))]
        sizes = [
            FontProperties(size=plt.rcParams[k]).get_size_in_points()
            * plt.rcParams["figure.dpi"]
            / 72
            for k in text_keys + ["font.size", "legend.fontsize"]
        ]
        assert sizes and min(sizes) >= 16
        x = rng.random((13, 28, 28, 1))
        ten = {"epoch": [1, 2]} | {k: [1.0, 0.5] for k in "abcdefghij"}
        for figure in (
            plots.plot_history(ten),
            plots.plot_reconstructions(x, x, n=13),
            plots.plot_image_grid(np.concatenate([x, x, x]), ncols=10),
            plots.plot_roc(y, {"a": scores}),
            plots.plot_score_histogram(y, scores),
        ):
            assert figure.get_figwidth() <= plots.COLUMN_INCHES + 1e-9
    plt.close("all")
