import numpy as np
import pytest

from ganlib import protocols


def _rows(a):
    return {r.tobytes() for r in a.reshape(len(a), -1)}


def test_one_class_normal_sizes_and_labels():
    split = protocols.one_class_normal(0, seed=0)
    assert (
        split.x_train.shape == (4738, 28, 28, 1) and split.x_train.dtype == np.float32
    )
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert (split.y_train == 0).all()
    assert split.y_val.sum() == (split.y_val == 0).sum() == 1185
    assert len(split.y_test) == 10000 and (split.y_test == 0).sum() == 980


def test_one_class_normal_validation_comes_from_the_training_split_only():
    split = protocols.one_class_normal(7, seed=1)
    assert not _rows(split.x_val) & _rows(split.x_test)
    assert not _rows(split.x_val) & _rows(split.x_train)


def test_one_class_anomalous_follows_the_80_20_pooled_protocol():
    split = protocols.one_class_anomalous(0, seed=0)
    normals = 70000 - 6903  # MNIST train+test minus every zero
    assert (split.y_test == 1).sum() == 6903  # the whole anomalous class
    assert (split.y_test == 0).sum() == round(0.2 * normals)
    assert len(split.x_train) + len(split.x_val) == normals - round(0.2 * normals)
    assert (split.y_val == 0).all()
    assert not _rows(split.x_val) & _rows(split.x_test)


def test_one_class_anomalous_can_move_anomalies_into_validation():
    split = protocols.one_class_anomalous(3, val_anomaly_fraction=0.1, seed=0)
    assert split.y_val.sum() == round(0.1 * (6131 + 1010))
    assert split.y_val.sum() + split.y_test.sum() == 6131 + 1010
    assert not _rows(split.x_val) & _rows(split.x_test)


def test_kdd99_protocol():
    split = protocols.kdd99(seed=0)
    assert split.x_train.shape[1] == 121 and (split.y_train == 0).all()
    assert (
        len(split.x_train) + len(split.y_val) + len(split.y_test) - split.y_val.sum()
        <= 494021
    )
    assert len(split.y_test) == 494021 - 494021 // 2
    assert 0.19 < split.y_test.mean() < 0.21
    assert abs(split.y_val.mean() - 0.2) < 0.001
    assert split.contamination == 0.2
    # raw features by default, as the official code: byte counts in the millions
    assert split.x_train.min() >= 0 and split.x_train.max() > 1e6
    assert split.extra["scaled"] is False
    scaled = protocols.kdd99(seed=0, scale=True)
    assert scaled.x_train.min() >= 0 and scaled.x_train.max() <= 1
    np.testing.assert_array_equal(scaled.y_test, split.y_test)


def test_arrhythmia_protocol_and_the_official_variant():
    split = protocols.arrhythmia(seed=0)
    assert (
        len(split.y_test) == 226
        and split.contamination == 0.15
        and (split.y_train == 0).all()
    )
    official = protocols.arrhythmia(seed=0, keep_outliers_in_train=True)
    assert official.y_train.sum() > 0
    assert official.y_train.sum() + official.y_val.sum() + official.y_test.sum() == 66


@pytest.mark.parametrize(
    "make",
    [
        lambda s: protocols.one_class_normal(4, seed=s),
        lambda s: protocols.kdd99(seed=s),
    ],
)
def test_protocols_are_seeded(make):
    a, b, c = make(0), make(0), make(1)
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_val, c.x_val)


def test_summary_table():
    table = protocols.arrhythmia(seed=0).summary()
    assert list(table.index) == ["train", "validation", "test"]
    assert table.loc["test", "samples"] == 226


def test_bad_arguments():
    with pytest.raises(ValueError, match="normal_class must be a class index"):
        protocols.one_class_normal(10)
    with pytest.raises(ValueError, match="dataset must be one of"):
        protocols.one_class_normal(1, dataset="svhn")
    with pytest.raises(ValueError, match="val_fraction"):
        protocols.one_class_anomalous(1, val_fraction=1.5)
    with pytest.raises(TypeError, match="seed must be an integer"):
        protocols.kdd99(seed="0")


def test_outlier_mixture_keeps_every_normal_and_hits_the_outlier_share():
    y = np.array([0] * 90 + [1] * 210)
    x = np.arange(300)[:, None].astype(np.float32)
    for fraction in (0.1, 0.3, 0.5):
        x_mix, y_mix = protocols.outlier_mixture(x, y, fraction, seed=3)
        assert (y_mix == 0).sum() == 90
        assert y_mix.mean() == pytest.approx(fraction, abs=0.01)
        np.testing.assert_array_equal(
            y_mix, y[x_mix[:, 0].astype(int)]
        )  # samples keep their labels
    again = protocols.outlier_mixture(x, y, 0.3, seed=3)[0]
    np.testing.assert_array_equal(
        again, protocols.outlier_mixture(x, y, 0.3, seed=3)[0]
    )
    assert protocols.outlier_mixture(x, y, 0.2, n_normal=40)[1].tolist().count(0) == 40
    with pytest.raises(
        ValueError, match="need 810 anomalies besides 90 normal samples, but only 210"
    ):
        protocols.outlier_mixture(x, y, 0.9)
    with pytest.raises(
        ValueError, match="outlier_fraction must be a number in \\[0, 1.0\\)"
    ):
        protocols.outlier_mixture(x, y, 1.5)
    with pytest.raises(ValueError, match="1-D array of 300 labels"):
        protocols.outlier_mixture(x, y[:10], 0.1)
