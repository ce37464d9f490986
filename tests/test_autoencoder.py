"""The autoencoder baseline under the contract's tests: equivalence, learning, save/load, errors, determinism."""

import numpy as np
import pytest
from contract import make_a_loss_diverge

from ganlib import metrics
from ganlib.autoencoder import ConvAutoencoder
from ganlib.porting import copy_torch_to_keras

FRAMEWORKS = ["torch", "keras"]


def _fitted(framework, x, epochs=1, **kwargs):
    return ConvAutoencoder(framework=framework, seed=0, verbose=False, **kwargs).fit(
        x, epochs=epochs
    )


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_twins_have_equal_parameter_counts_and_outputs(shape):
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((6, *shape), dtype=np.float32)
    torch_model = ConvAutoencoder(framework="torch", verbose=False).build(shape)
    keras_model = ConvAutoencoder(framework="keras", verbose=False).build(shape)
    assert torch_model.parameter_counts() == keras_model.parameter_counts()
    # give BatchNorm non-trivial statistics, so that inference mode really is compared
    with torch.no_grad():
        for module in torch_model.autoencoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    assert copy_torch_to_keras(torch_model.autoencoder, keras_model.autoencoder) == 8
    out_torch = torch_model.predict(x)["reconstruction"]
    out_keras = keras_model.predict(x)["reconstruction"]
    assert out_torch.shape == x.shape
    np.testing.assert_allclose(out_torch, out_keras, atol=1e-4)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_short_training_learns_to_detect(framework, mnist_digit1):
    x_train, x_test, y_test = mnist_digit1
    untrained = ConvAutoencoder(framework=framework, seed=0, verbose=False)
    untrained.build(x_train.shape[1:])
    untrained_auroc = metrics.auroc(y_test, untrained.decision_function(x_test))
    trained = _fitted(framework, x_train, epochs=2)
    trained_auroc = metrics.auroc(y_test, trained.decision_function(x_test))
    assert trained_auroc > 0.95, trained_auroc
    assert trained_auroc > untrained_auroc + 0.05, (untrained_auroc, trained_auroc)
    assert trained.history_["loss"][1] < trained.history_["loss"][0]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_scores(framework, mnist_digit1):
    x_train, x_test, _ = mnist_digit1
    a = _fitted(framework, x_train[:600]).decision_function(x_test[:200])
    b = _fitted(framework, x_train[:600]).decision_function(x_test[:200])
    c = ConvAutoencoder(framework=framework, seed=1, verbose=False).fit(
        x_train[:600], epochs=1
    )
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c.decision_function(x_test[:200]))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_save_load_round_trip(framework, mnist_digit1, tmp_path):
    x_train, x_test, _ = mnist_digit1
    detector = _fitted(framework, x_train[:600])
    path = detector.save(tmp_path / "ae")
    loaded = ConvAutoencoder.load(path)
    assert loaded.framework == framework and loaded.history_ == detector.history_
    np.testing.assert_allclose(
        loaded.decision_function(x_test[:100]),
        detector.decision_function(x_test[:100]),
        rtol=1e-6,
    )
    other = {"torch": "keras", "keras": "torch"}[framework]
    with pytest.raises(
        ValueError, match=f"holds a {framework} model, not a {other} one"
    ):
        ConvAutoencoder.load(path, framework=other)


def test_load_rejects_another_model_and_foreign_files(mnist_digit1, tmp_path):
    from ganlib.detector import Detector

    class OtherModel(Detector):
        defaults = ConvAutoencoder.defaults

    path = _fitted("torch", mnist_digit1[0][:300]).save(tmp_path / "ae.npz")
    with pytest.raises(
        ValueError, match="holds a ConvAutoencoder detector, not a OtherModel"
    ):
        OtherModel.load(path)
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a file saved by ganlib"):
        ConvAutoencoder.load(tmp_path / "foreign.npz")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_validation_selects_and_restores_the_best_epoch(framework, mnist_digit1):
    x_train, x_test, y_test = mnist_digit1
    detector = ConvAutoencoder(framework=framework, seed=0, verbose=False)
    detector.fit(x_train[:600], epochs=3, validation_data=(x_test[:400], y_test[:400]))
    history = detector.history_["val_auroc"]
    assert detector.best_epoch_ == int(np.argmax(history)) + 1
    restored = metrics.auroc(y_test[:400], detector.decision_function(x_test[:400]))
    assert restored == pytest.approx(max(history))


def test_bad_inputs_give_clear_errors(mnist_digit1):
    x_train = mnist_digit1[0][:300]
    with pytest.raises(ValueError, match="framework must be one of"):
        ConvAutoencoder(framework="jax")
    with pytest.raises(TypeError, match="unknown hyper-parameters \\['latent'\\]"):
        ConvAutoencoder(latent=3)
    detector = ConvAutoencoder(framework="torch", verbose=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.decision_function(x_train)
    with pytest.raises(ValueError, match="shape \\(n, height, width, channels\\)"):
        detector.fit(x_train[..., 0])
    with pytest.raises(ValueError, match="empty"):
        detector.fit(x_train[:0])
    with pytest.raises(ValueError, match="NaN"):
        detector.fit(np.full((4, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="pixel values in \\[0, 1\\]"):
        detector.fit(x_train * 255)
    with pytest.raises(TypeError, match="must hold numbers"):
        detector.fit(np.array([["a"]]))
    with pytest.raises(ValueError, match="1-D array of 10 labels"):
        detector.fit(x_train, epochs=1, validation_data=(x_train[:10], np.zeros(9)))
    with pytest.raises(ValueError, match="divisible by 4"):
        detector.fit(np.zeros((4, 30, 30, 1), np.float32))
    detector.fit(x_train, epochs=1)
    with pytest.raises(ValueError, match="fitted on \\(28, 28, 1\\)"):
        detector.decision_function(np.zeros((2, 32, 32, 1), np.float32))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_diverging_loss_stops_with_the_epoch_and_the_loss_named(
    framework, mnist_digit1, monkeypatch
):
    make_a_loss_diverge(
        monkeypatch, ConvAutoencoder, framework, "loss", float("nan"), at_step=3
    )
    detector = ConvAutoencoder(framework=framework, verbose=False, batch_size=100)
    with pytest.raises(
        FloatingPointError, match="loss 'loss' became nan at epoch 2, batch 1"
    ):
        detector.fit(mnist_digit1[0][:200], epochs=3)


def test_twins_train_alike_for_ten_steps(mnist_digit1, one_torch_thread):
    """Same weights, same ten batches, each twin with its own Adam: same losses and outputs.

    The tolerance is set by the chaos baseline: the PyTorch twin against a
    copy of itself whose weights were nudged by 1e-6 (measured: loss 8e-6,
    outputs 8e-4 after ten steps; the twins: 3e-5 and 1e-3).  Two residual
    differences are known and left: Keras' Adam adds epsilon before its bias
    correction and PyTorch's after, and Keras' BatchNorm moves its variance
    towards the biased batch variance where PyTorch uses the unbiased one.
    """
    from contract import perturbed_copy, train_twins_alike

    x = mnist_digit1[0]
    shape = x.shape[1:]

    def make(framework):
        return ConvAutoencoder(framework=framework, seed=0, verbose=False).build(shape)

    torch_model, keras_model = make("torch"), make("keras")
    copy_torch_to_keras(torch_model.autoencoder, keras_model.autoencoder)
    chaos = perturbed_copy(lambda: make("torch"), torch_model.get_weights())
    batches = [x[i * 64 : (i + 1) * 64] for i in range(10)]
    gaps = train_twins_alike(torch_model, keras_model, batches, x[-32:], chaos)
    assert gaps["loss"] <= max(10 * gaps["chaos_loss"], 1e-4), gaps
    assert gaps["outputs"] <= max(10 * gaps["chaos_outputs"], 1e-3), gaps
