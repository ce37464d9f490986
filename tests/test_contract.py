"""PyOD's and scikit-learn's contract, run against every detector of the book, baselines included.

One small configuration per detector (tiny networks, one epoch, a few dozen
samples): these tests check the API's semantics, not detection quality.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from ganlib.alad import ALAD
from ganlib.alocc import ALOCC
from ganlib.autoencoder import ConvAutoencoder
from ganlib.baselines import (
    IsolationForestDetector,
    KNNDetector,
    OneClassSVMDetector,
    PCADetector,
)
from ganlib.egbad import EGBAD
from ganlib.ganomaly import GANomaly
from ganlib.ognet import OGNet

# detector, small hyper-parameters, input kind
NEURAL = {
    "autoencoder": (ConvAutoencoder, {"latent_dim": 8}, "image"),
    "alocc": (ALOCC, {"base_filters": 4}, "image"),
    "ognet": (OGNet, {"base_filters": 4, "image_size": None}, "image"),
    "ganomaly": (GANomaly, {"base_filters": 8, "latent_dim": 16}, "image"),
    "egbad": (EGBAD, {"learning_rate": 1e-4}, "tabular"),
    "alad": (ALAD, {"learning_rate": 1e-4}, "tabular"),
}
BASELINES = {
    "pca": PCADetector,
    "iforest": IsolationForestDetector,
    "ocsvm": OneClassSVMDetector,
    "knn": KNNDetector,
}
CASES = [(name, fw) for name in NEURAL for fw in ("torch", "keras")] + [
    (name, None) for name in BASELINES
]


@pytest.fixture(scope="module")
def samples(mnist_digit1):
    """60 training samples of each kind, and 40 test samples with both labels."""
    x_train, x_test, y_test = mnist_digit1
    rng = np.random.default_rng(0)
    test = np.concatenate(
        [np.flatnonzero(y_test == 0)[:20], np.flatnonzero(y_test == 1)[:20]]
    )
    rows = rng.normal(size=(100, 12)).astype(np.float32)
    return {
        "image": (x_train[:60], x_test[test], y_test[test]),
        "tabular": (
            rows[:60],
            np.concatenate([rows[60:80], rows[80:] + 3.0]),
            np.repeat([0, 1], 20),
        ),
    }


def _make(name, framework, **extra):
    if framework is None:
        return BASELINES[name](seed=0, verbose=False, **extra), "tabular"
    detector_class, small, kind = NEURAL[name]
    return detector_class(
        framework=framework, seed=0, verbose=False, **small, **extra
    ), kind


@pytest.mark.parametrize("name, framework", CASES, ids=lambda v: str(v))
def test_pyod_contract(name, framework, samples):
    detector, kind = _make(name, framework, contamination=0.2)
    x, x_test, y_test = samples[kind]
    y_ignored = np.zeros(len(x))
    assert detector.fit(x, y_ignored, epochs=1) is detector  # PyOD: fit(X, y) ignores y

    scores = detector.decision_scores_
    assert scores.shape == (len(x),) and np.all(np.isfinite(scores))
    assert abs(detector.labels_.mean() - 0.2) <= 0.05
    assert detector.threshold_ == pytest.approx(np.percentile(scores, 80))
    if (
        name != "knn"
    ):  # kNN's training scores leave each sample out of its own neighbours
        np.testing.assert_array_equal(detector.predict(x), detector.labels_)
    predicted = detector.predict(x_test)
    assert predicted.dtype.kind == "i" and set(np.unique(predicted)) <= {0, 1}
    for method in ("linear", "unify"):
        proba = detector.predict_proba(x_test, method=method)
        assert proba.shape == (len(x_test), 2)
        assert np.all((proba >= 0) & (proba <= 1))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the anomaly probability ranks samples as the score does (linear scaling is monotone)
    order = np.argsort(detector.decision_function(x_test), kind="stable")
    assert np.all(np.diff(detector.predict_proba(x_test)[order, 1]) >= -1e-12)

    variants = detector.score_variants(x_test)
    score = detector.get_params()["score"] if "score" in detector.get_params() else None
    if score is not None:
        assert tuple(variants) == detector.score_names
        np.testing.assert_allclose(
            variants[score], detector.decision_function(x_test), rtol=1e-6, atol=1e-8
        )

    twin = clone(detector)
    assert twin.get_params() == detector.get_params()
    assert getattr(twin, "threshold_", None) is None
    np.testing.assert_allclose(twin.fit_predict(x, epochs=1), detector.labels_)
    np.testing.assert_allclose(twin.decision_scores_, scores, rtol=1e-6, atol=1e-8)


# EGBAD has no label-free criterion (normal-only keeps the last epoch, as the
# official code): tests/test_egbad.py checks it
@pytest.mark.parametrize("name", ["autoencoder", "alad"])
def test_both_selection_rules_come_from_one_run(name, samples, capsys):
    detector, kind = _make(name, "torch")
    x, x_val, y_val = samples[kind]
    detector.set_params(selection="labelled", verbose=True)
    detector.fit(x, epochs=3, validation_data=(x_val, y_val))
    # the criterion of each rule is explicit: on the fitted detector and in the banner
    key, higher = detector.label_free_criterion
    assert detector.selection_criteria_ == {
        "labelled": ("val_auroc", True),
        "normal-only": (key, higher),
    }
    assert "selection: labelled (highest val_auroc)" in capsys.readouterr().out
    assert set(detector.selected_epochs_) == {"labelled", "normal-only", "last"}
    assert detector.selection_ == "labelled"
    labelled = detector.selected_epochs_["labelled"]
    assert labelled == int(np.argmax(detector.history_["val_auroc"])) + 1
    normal_only = detector.selected_epochs_["normal-only"]
    curve = detector.history_[key]
    assert normal_only == int(np.argmax(curve) if higher else np.argmin(curve)) + 1
    from ganlib import metrics

    assert metrics.auroc(y_val, detector.decision_function(x_val)) == pytest.approx(
        max(detector.history_["val_auroc"])
    )
    detector.use_selection("normal-only")
    assert detector.best_epoch_ == normal_only and detector.selection_ == "normal-only"
    with pytest.raises(ValueError, match="rule must be one of"):
        detector.use_selection("test-set")


def test_parameters_follow_scikit_learn(samples):
    detector = GANomaly(
        framework="torch", verbose=False, base_filters=8, contamination=0.05
    )
    params = detector.get_params()
    assert {
        "framework",
        "seed",
        "contamination",
        "selection",
        "threads",
        "base_filters",
        "score",
    } <= set(params)
    assert params["base_filters"] == 8 and params["contamination"] == 0.05
    assert detector.set_params(latent_dim=12) is detector
    assert (
        detector.get_params()["latent_dim"] == 12
        and detector.get_params()["base_filters"] == 8
    )
    with pytest.raises(ValueError, match="has no parameters \\['depth'\\]"):
        detector.set_params(depth=3)
    # a detector as the last step of a scikit-learn pipeline
    x, x_test, _ = samples["tabular"]
    pipeline = make_pipeline(MinMaxScaler(), PCADetector(contamination=0.1)).fit(x)
    assert pipeline.decision_function(x_test).shape == (len(x_test),)
    assert set(np.unique(pipeline.predict(x_test))) <= {0, 1}


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: ConvAutoencoder(verbose=False, **kw),
        lambda **kw: PCADetector(verbose=False, **kw),
    ],
    ids=["neural", "baseline"],
)
def test_contract_errors(make, samples):
    for bad in (0.0, 0.6, -0.1, True, "0.1"):
        with pytest.raises(
            ValueError, match=r"contamination must be a number in \(0, 0.5\]"
        ):
            make(contamination=bad)
    detector = make()
    x = samples["image"][0]
    for call in (detector.predict, detector.predict_proba, detector.decision_function):
        with pytest.raises(RuntimeError, match="not fitted"):
            call(x)
    with pytest.raises(TypeError, match="pass epochs=... by name"):
        detector.fit(x, 2)


def test_unknown_scores_and_mistyped_hyperparameters_are_refused():
    with pytest.raises(
        ValueError, match="score must be one of .*'d_of_reconstruction'"
    ):
        ALOCC(score="d_of_everything")
    with pytest.raises(ValueError, match="score must be one of .*'latent'"):
        GANomaly(score="pixels")
    with pytest.raises(TypeError, match="r_steps must be an integer"):
        ALOCC(r_steps=True)
    with pytest.raises(TypeError, match="base_filters must be an integer"):
        OGNet(base_filters="8")
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        ConvAutoencoder(learning_rate="fast")
    with pytest.raises(
        TypeError, match="latent_dim must be an integer like its default 32"
    ):
        ALAD(latent_dim=2.5)  # a None default is typed by the network families' values
    with pytest.raises(ValueError, match="selection must be one of"):
        ConvAutoencoder(selection="test-set")
    with pytest.raises(ValueError, match="threads must be None or a positive integer"):
        ConvAutoencoder(threads=0)


def test_a_detector_leaves_global_state_as_it_found_it(samples):
    import torch

    x = samples["image"][0]
    threads = torch.get_num_threads()
    random.seed(123)
    np.random.seed(123)
    expected_python, expected_numpy = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    for framework in ("torch", "keras"):
        GANomaly(
            framework=framework, verbose=False, base_filters=8, latent_dim=16, threads=1
        ).fit(x, epochs=1)
    assert torch.get_num_threads() == threads
    assert torch.tensor(1e-40, dtype=torch.float32).item() != 0.0  # no flush-denormal
    assert random.random() == expected_python and np.random.random() == expected_numpy


@pytest.mark.parametrize(
    "framework, absent", [("torch", ("tensorflow", "keras")), ("keras", ("torch",))]
)
def test_a_fit_imports_only_its_framework(framework, absent):
    code = (
        "import sys, numpy as np\n"
        "from ganlib.autoencoder import ConvAutoencoder\n"
        "from ganlib.ganomaly import GANomaly\n"
        "x = np.random.default_rng(0).random((16, 28, 28, 1)).astype('float32')\n"
        f"ConvAutoencoder(framework={framework!r}, verbose=False).fit(x, epochs=1)\n"
        f"GANomaly(framework={framework!r}, verbose=False, base_filters=8).fit(x, epochs=1)\n"
        f"loaded = [m for m in {absent!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_mixed_precision_trains_and_leaves_the_policy_alone(framework, mnist_digit1):
    from ganlib import metrics

    x_train, x_test, y_test = mnist_digit1
    detector = ConvAutoencoder(framework=framework, verbose=False, precision="bfloat16")
    detector.fit(x_train, epochs=2)  # as the float32 learning test, which reaches 0.95
    scores = detector.decision_function(x_test)
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))
    assert metrics.auroc(y_test, scores) > 0.9
    if framework == "keras":
        import keras

        assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        ConvAutoencoder(precision="float16")
