import numpy as np
import pytest

from ganlib import metrics


def test_perfect_random_and_inverted_scores():
    y = np.array([0, 0, 0, 1, 1])
    assert metrics.auroc(y, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert (
        metrics.auroc(y, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0
    )  # orientation: higher = more anomalous
    assert metrics.auroc(y, [1, 1, 1, 1, 1]) == 0.5


def test_auprc_equals_average_precision_by_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    # ranks: 1 (tp, precision 1), 0, 1 (tp, precision 2/3) -> AP = (1 + 2/3) / 2
    assert metrics.auprc(y, s) == pytest.approx((1 + 2 / 3) / 2)


def test_precision_recall_f1_flags_the_top_share():
    y = np.array([0] * 8 + [1] * 2)
    s = np.arange(10, dtype=float)  # the two anomalies hold the two top scores
    assert metrics.precision_recall_f1(y, s, 0.2) == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
    }
    half = metrics.precision_recall_f1(y, s, 0.4)  # four flagged, two right
    assert (
        half["precision"] == 0.5
        and half["recall"] == 1.0
        and half["f1"] == pytest.approx(2 / 3)
    )


def test_ties_at_the_threshold_share_the_flags_as_a_random_tie_break_would():
    """Ten samples, two flagged; four normal samples and one anomaly tie at the
    second-highest score: the anomaly above is flagged, one flag is left for
    the five tied samples.  Expected over every way of breaking the tie: one
    in five times the tied anomaly gets it."""
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([9.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 1.0, 0.0, 0.0])
    shared = metrics.precision_recall_f1(y, s, 0.2)
    # brute force: flag the top sample and each tied one in turn, average
    tied = np.flatnonzero(s == 5.0)
    outcomes = []
    for chosen in tied:
        predicted = np.zeros(10, dtype=int)
        predicted[[0, chosen]] = 1
        tp = int(np.sum(predicted & y))
        outcomes.append((tp / 2, tp / 2, 2 * tp / (2 + 2)))
    expected = np.mean(outcomes, axis=0)
    assert [shared[k] for k in ("precision", "recall", "f1")] == pytest.approx(
        list(expected)
    )
    assert shared["precision"] == pytest.approx(0.6)
    # the official rule flags all six samples at or above the threshold
    flagged = metrics.precision_recall_f1(y, s, 0.2, ties="flag")
    assert flagged == {"precision": 2 / 6, "recall": 1.0, "f1": pytest.approx(0.5)}
    report = metrics.compare_tie_rules(y, s, 0.2)
    assert report["F1 (ties shared)"] == pytest.approx(shared["f1"])
    assert report["F1 (ties flagged)"] == pytest.approx(0.5)
    assert report["share flagged (ties flagged)"] == 0.6
    assert report["samples tied at the threshold"] == 5
    with pytest.raises(ValueError, match="ties must be one of"):
        metrics.precision_recall_f1(y, s, 0.2, ties="random")


def test_without_ties_both_rules_flag_the_same_samples():
    rng = np.random.default_rng(0)
    for n, share in [(10, 0.2), (1001, 0.15), (4937, 0.2), (247011, 0.2)]:
        y = (rng.random(n) < share).astype(int)
        s = rng.random(n) + y  # distinct scores
        assert metrics.precision_recall_f1(y, s, share) == pytest.approx(
            metrics.precision_recall_f1(y, s, share, ties="flag"), abs=1e-12
        )


def test_evaluate_keys():
    y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.3])
    assert set(metrics.evaluate(y, s)) == {"auroc", "auprc"}
    assert set(metrics.evaluate(y, s, 0.5)) == {
        "auroc",
        "auprc",
        "precision",
        "recall",
        "f1",
    }


@pytest.mark.parametrize(
    "y, s, message",
    [
        ([0, 1, 1], [0.1, 0.2], "differ in length"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([1, 1], [0.1, 0.2], "single class"),
        ([0, 2], [0.1, 0.2], "0 \\(normal\\) or 1"),
        ([], [], "empty"),
    ],
)
def test_clear_errors(y, s, message):
    with pytest.raises(ValueError, match=message):
        metrics.auroc(y, s)


def test_contamination_must_be_a_share():
    with pytest.raises(ValueError, match="contamination"):
        metrics.precision_recall_f1([0, 1], [0.1, 0.2], 20)


def test_threshold_max_f1_finds_the_best_cut_and_f1_at_threshold_scores_either_class():
    y = np.array([0, 0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    tau = metrics.threshold_max_f1(y, s)
    assert (
        tau == 0.4
    )  # flags 0.4..0.7: precision 3/4, recall 1 -> F1 0.857, the best cut
    assert metrics.f1_at_threshold(y, s, tau) == pytest.approx(6 / 7)
    # normal class positive: predicted normal = below 0.4 -> 3 of 4 normals, no false normal
    assert metrics.f1_at_threshold(y, s, tau, positive="normal") == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="positive must be"):
        metrics.f1_at_threshold(y, s, tau, positive="inlier")
    with pytest.raises(ValueError, match="single class"):
        metrics.threshold_max_f1(np.zeros(3), s[:3])


def test_tie_rules_table_and_its_paragraph_name_the_run_that_ties():
    y = np.r_[np.zeros(80), np.ones(20)].astype(int)
    distinct = np.arange(100, dtype=float)  # no ties: both rules agree
    tied = distinct.copy()
    tied[70:90] = 75.0  # 20 samples, half of them anomalies, tie at the threshold
    table = metrics.tie_rules_table(
        {("torch", 0): (y, distinct, 0.2), ("keras", 1): (y, tied, 0.2)}
    )
    assert list(table.index) == [("torch", 0), ("keras", 1)]
    assert table.loc[("keras", 1), "samples tied at the threshold"] == 20
    assert table.loc[("keras", 1), "share flagged (ties flagged)"] == 0.3
    assert table.loc[("keras", 1), "F1 (ties flagged)"] == pytest.approx(0.8)
    assert table.loc[("keras", 1), "F1 (ties shared)"] == pytest.approx(0.75)
    text = metrics.describe_tie_rules(table)
    assert "between 20.0% and 30.0%" in text and "The most, keras seed 1" in text
    assert "20 test rows" in text and "1 of the 2 runs" in text
