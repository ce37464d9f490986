"""ALOCC under the contract's tests: equivalence of the twins, learning, selection, save/load, errors, determinism."""

import numpy as np
import pytest
from contract import make_a_loss_diverge

from ganlib import metrics
from ganlib.alocc import ALOCC, SCORES, add_noise, reconstruction_loss
from ganlib.porting import copy_torch_to_keras

FRAMEWORKS = ["torch", "keras"]
# Training sets of the short fits are whole batches of 128: Keras traces its training step
# once per batch shape, and a smaller last batch would cost a second trace.


def _twins(shape, **hyperparameters):
    """A PyTorch and a Keras ALOCC model holding the same weights, BatchNorm statistics included."""
    import torch

    from ganlib.backend_torch import glorot_init

    torch_model = ALOCC(framework="torch", verbose=False, **hyperparameters).build(
        shape
    )
    keras_model = ALOCC(framework="keras", verbose=False, **hyperparameters).build(
        shape
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for network in torch_model.networks.values():
            # larger weights than DCGAN's N(0, 0.02), so that D's logits are far from 0 and really compared
            network.apply(glorot_init)
            for module in network.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                    module.running_var.uniform_(0.5, 2.0, generator=generator)
                    module.bias.uniform_(-0.5, 0.5, generator=generator)
    for name in ("reconstructor", "discriminator"):
        copy_torch_to_keras(torch_model.networks[name], keras_model.networks[name])
    return torch_model, keras_model


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_twins_have_equal_parameter_counts_and_outputs(shape):
    torch_model, keras_model = _twins(shape)
    counts = torch_model.parameter_counts()
    assert counts == keras_model.parameter_counts()
    assert set(counts) == {"reconstructor", "discriminator"}
    x = np.random.default_rng(0).random((6, *shape), dtype=np.float32)
    out_torch, out_keras = torch_model.predict(x), keras_model.predict(x)
    assert out_torch["reconstruction"].shape == x.shape
    assert (
        np.abs(out_torch["d_logit_input"]).max() > 0.01
    )  # D's logits are compared well above the tolerance
    for key in ("reconstruction", "d_logit_input", "d_logit_reconstruction"):
        np.testing.assert_allclose(
            out_torch[key], out_keras[key], atol=1e-5, rtol=1e-4, err_msg=key
        )


@pytest.mark.parametrize(
    "loss, reduction", [("l2", "sum"), ("official", "mean"), ("cross_entropy", "sum")]
)
def test_twins_take_the_same_training_step(loss, reduction):
    """Same weights, batch and noise: the losses and the updated networks agree across frameworks.

    D's loss is computed before any update and must agree to float precision.
    R's losses come after D's update, and RMSprop's first step is
    ``lr * sign(g) / sqrt(1 - rho)`` whatever the gradient's size, so components
    whose gradient is zero up to round-off may move in opposite directions in
    the two frameworks: those are compared to a few per cent.
    """
    torch_model, keras_model = _twins(
        (28, 28, 1), reconstruction_loss=loss, reconstruction_reduction=reduction
    )
    batch = np.random.default_rng(1).random((16, 28, 28, 1), dtype=np.float32)
    losses_torch, losses_keras = (
        torch_model.train_step(batch),
        keras_model.train_step(batch),
    )
    assert set(losses_torch) == {
        "loss_d",
        "loss_r_adversarial",
        "loss_r_reconstruction",
    }
    assert losses_torch["loss_d"] == pytest.approx(losses_keras["loss_d"], rel=1e-5)
    assert losses_torch["loss_r_reconstruction"] == pytest.approx(
        losses_keras["loss_r_reconstruction"], rel=5e-3
    )
    assert losses_torch["loss_r_adversarial"] == pytest.approx(
        losses_keras["loss_r_adversarial"], rel=5e-2
    )
    probe = np.random.default_rng(2).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(
        torch_model.predict(probe)["reconstruction"],
        keras_model.predict(probe)["reconstruction"],
        atol=5e-2,
    )


def _official_numpy(h, x_noisy):
    """TensorFlow's documented sigmoid_cross_entropy_with_logits(logits=tanh(h), labels=X̃), averaged."""
    logits = np.tanh(h.astype(np.float64))
    return np.mean(
        np.maximum(logits, 0) - logits * x_noisy + np.log1p(np.exp(-np.abs(logits)))
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_reconstruction_losses_match_numpy(framework):
    """Each twin's loss against NumPy: the official tanh-logit cross-entropy, and "mean" = "sum" / pixels.

    R ends in a sigmoid of its pre-activation a, and sigmoid(a) = (1 + tanh(a / 2)) / 2,
    so the official ``tanh(h)`` is that of h = a / 2.
    """
    rng = np.random.default_rng(3)
    shape = (5, 28, 28, 1)
    pixels = 28 * 28
    x = rng.random(shape, dtype=np.float32)
    x_noisy = add_noise(x, 0.155, rng)
    a = rng.normal(0.0, 3.0, shape).astype(np.float32)
    x_hat = (1 / (1 + np.exp(-a))).astype(np.float32)
    p = np.clip(x_hat.astype(np.float64), 1e-7, 1 - 1e-7)
    expected_mean = {
        "l2": np.mean(np.square(x_hat.astype(np.float64) - x)),
        "official": _official_numpy(a / 2, x_noisy),
        "cross_entropy": -np.mean(x_noisy * np.log(p) + (1 - x_noisy) * np.log(1 - p)),
    }
    per_image_sum = np.mean(
        np.sum(np.square(x_hat.astype(np.float64) - x), axis=(1, 2, 3))
    )
    assert expected_mean["l2"] * pixels == pytest.approx(per_image_sum)
    for loss, mean in expected_mean.items():
        values = {}
        for reduction in ("sum", "mean"):
            backend = ALOCC(
                framework=framework,
                verbose=False,
                base_filters=2,
                reconstruction_loss=loss,
                reconstruction_reduction=reduction,
            ).build(shape[1:])
            tensors = [backend.to_tensor(v) for v in (x, x_noisy, x_hat)]
            values[reduction] = float(backend.reconstruction_loss(*tensors))
            assert float(
                reconstruction_loss(x, x_noisy, x_hat, loss, reduction)
            ) == pytest.approx(
                values[reduction], rel=1e-5
            )  # the NumPy path of the shared definition
        assert values["mean"] == pytest.approx(mean, rel=1e-5), loss
        assert values["sum"] == pytest.approx(mean * pixels, rel=1e-5), loss


def test_noise_is_seeded_clipped_and_optional():
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    noisy = add_noise(x, 0.155, np.random.default_rng(5))
    np.testing.assert_array_equal(noisy, add_noise(x, 0.155, np.random.default_rng(5)))
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0 and not np.allclose(noisy, x)
    assert np.std(noisy - x) == pytest.approx(
        0.155 * 0.8, rel=0.25
    )  # clipping trims some noise
    assert add_noise(x, 0.0, np.random.default_rng(5)) is x


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_short_training_learns_to_detect(framework, mnist_digit1):
    """One epoch on 2000 images of digit 1: R's reconstruction error separates the other digits."""
    x_train, x_test, y_test = mnist_digit1
    untrained = ALOCC(
        framework=framework, seed=0, verbose=False, score="reconstruction_error"
    )
    untrained.build(x_train.shape[1:])
    untrained_auroc = metrics.auroc(y_test, untrained.decision_function(x_test))
    trained = ALOCC(
        framework=framework, seed=0, verbose=False, score="reconstruction_error"
    )
    trained.fit(x_train, epochs=1)
    trained_auroc = metrics.auroc(y_test, trained.decision_function(x_test))
    assert trained_auroc > 0.95, trained_auroc
    assert trained_auroc > untrained_auroc + 0.2, (untrained_auroc, trained_auroc)
    assert np.isfinite(trained.history_["loss_d"][0])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_reconstruction_stopping_keeps_the_epoch_with_the_lowest_validation_error(
    framework, mnist_digit1
):
    """Section 3.3's rule (``stopping="reconstruction"``); the labelled rule picks on val_auroc."""
    x_train, x_test, y_test = mnist_digit1
    x_val, y_val = x_test[:300], y_test[:300]
    detector = ALOCC(
        framework=framework,
        seed=0,
        verbose=False,
        selection="normal-only",
        stopping="reconstruction",
    )
    assert detector.label_free_criterion == ("val_reconstruction_error", False)
    detector.fit(x_train[:256], epochs=3, validation_data=(x_val, y_val))
    errors = detector.history_["val_reconstruction_error"]
    assert (
        detector.best_epoch_
        == detector.selected_epochs_["normal-only"]
        == int(np.argmin(errors)) + 1
    )
    assert len(detector.history_["val_d_separation"]) == 3  # recorded whatever the rule
    assert {f"val_auroc_{name}" for name in SCORES} <= set(detector.history_)
    assert (
        detector.history_["val_auroc"]
        == detector.history_["val_auroc_reconstruction_error"]
    )
    restored = detector.score_variants(x_val)["reconstruction_error"][y_val == 0].mean()
    assert restored == pytest.approx(min(errors), rel=1e-5)
    detector.use_selection("labelled")
    assert detector.best_epoch_ == int(np.argmax(detector.history_["val_auroc"])) + 1
    assert metrics.auroc(y_val, detector.decision_function(x_val)) == pytest.approx(
        max(detector.history_["val_auroc"]), rel=1e-5
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_d_separation_stopping_keeps_the_epoch_where_d_separates_best(
    framework, mnist_digit1
):
    """Our rule for the D scores: the epoch with the highest AUROC of D on normal X (real)
    against R(X̃) (fake)."""
    x_train, x_test, y_test = mnist_digit1
    x_val, y_val = x_test[:200], y_test[:200]
    normal = x_val[y_val == 0]
    assert (
        ALOCC().hyperparameters["stopping"] == "reconstruction"
    )  # the default: the paper's
    detector = ALOCC(
        framework=framework,
        seed=0,
        verbose=False,
        selection="normal-only",
        stopping="d_separation",
    )
    assert detector.label_free_criterion == ("val_d_separation", True)
    detector.fit(x_train[:256], epochs=3, validation_data=(x_val, y_val))
    separation = detector.history_["val_d_separation"]
    assert len(separation) == len(detector.history_["val_reconstruction_error"]) == 3
    assert all(0.0 <= value <= 1.0 for value in separation)
    assert (
        detector.best_epoch_
        == detector.selected_epochs_["normal-only"]
        == int(np.argmax(separation)) + 1
    )
    # the kept weights give the recorded value again: the validation noise is the same at every call
    assert detector.d_separation(normal) == pytest.approx(max(separation), rel=1e-6)
    real = detector.model_outputs(normal)["d_logit_input"]
    sigma = detector.hyperparameters["noise_std"]
    noisy = add_noise(normal, sigma, np.random.default_rng(detector.seed + 3))
    fake = detector.model_outputs(noisy)["d_logit_reconstruction"]
    labels = np.r_[np.ones(len(real)), np.zeros(len(fake))]
    assert detector.d_separation(normal) == pytest.approx(
        metrics.auroc(labels, np.r_[real[:, 0], fake[:, 0]]), rel=1e-9
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_scores_are_the_papers_three_and_decision_function_picks_one(
    framework, mnist_digit1
):
    x_train, x_test, _ = mnist_digit1
    detector = ALOCC(framework=framework, seed=0, verbose=False).fit(
        x_train[:256], epochs=1
    )
    scores = detector.score_variants(x_test[:50])
    assert set(scores) == set(SCORES)
    outputs = detector.model_outputs(x_test[:50])
    reconstruction = detector.reconstruct(x_test[:50])  # the input's shape and range
    assert (
        reconstruction.shape == x_test[:50].shape
        and 0 <= reconstruction.min() <= reconstruction.max() <= 1
    )
    np.testing.assert_allclose(
        scores["d_of_reconstruction"], -outputs["d_logit_reconstruction"][:, 0]
    )
    assert detector.hyperparameters["score"] == "reconstruction_error"  # the default
    np.testing.assert_allclose(
        detector.decision_function(x_test[:50]), scores["reconstruction_error"]
    )
    detector.hyperparameters["score"] = "d_of_input"
    np.testing.assert_allclose(
        detector.decision_function(x_test[:50]), scores["d_of_input"]
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_scores(framework, mnist_digit1):
    x_train, x_test, _ = mnist_digit1

    def scores(seed):
        detector = ALOCC(framework=framework, seed=seed, verbose=False).fit(
            x_train[:256], epochs=1
        )
        return detector.score_variants(x_test[:100])

    first, again, other = scores(0), scores(0), scores(1)
    for name in SCORES:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.allclose(first["reconstruction_error"], other["reconstruction_error"])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_save_load_round_trip(framework, mnist_digit1, tmp_path):
    x_train, x_test, _ = mnist_digit1
    detector = ALOCC(
        framework=framework, seed=0, verbose=False, score="d_of_input"
    ).fit(x_train[:256], epochs=1)
    loaded = ALOCC.load(detector.save(tmp_path / "alocc"))
    assert (
        loaded.framework == framework
        and loaded.hyperparameters == detector.hyperparameters
    )
    for name, values in detector.score_variants(x_test[:100]).items():
        np.testing.assert_allclose(
            loaded.score_variants(x_test[:100])[name], values, rtol=1e-6, err_msg=name
        )
    from ganlib.autoencoder import ConvAutoencoder

    with pytest.raises(
        ValueError, match="holds a ALOCC detector, not a ConvAutoencoder"
    ):
        ConvAutoencoder.load(tmp_path / "alocc.npz")


def test_bad_inputs_give_clear_errors(mnist_digit1):
    x_train, x_test, _ = mnist_digit1
    with pytest.raises(ValueError, match="score must be one of"):
        ALOCC(score="d_of_x")
    with pytest.raises(
        ValueError, match="reconstruction_loss must be one of \\('l2', 'official', "
    ):
        ALOCC(reconstruction_loss="l1")
    with pytest.raises(
        ValueError, match="reconstruction_reduction must be one of \\('sum', 'mean'\\)"
    ):
        ALOCC(reconstruction_reduction="median")
    with pytest.raises(
        ValueError,
        match="stopping must be one of \\('d_separation', 'reconstruction'\\)",
    ):
        ALOCC(stopping="early")
    with pytest.raises(ValueError, match="r_steps must be a positive integer"):
        ALOCC(r_steps=0)
    with pytest.raises(TypeError, match="r_steps must be an integer"):
        ALOCC(r_steps=True)  # the base's type check of int defaults
    with pytest.raises(TypeError, match="noise_std must be a number"):
        ALOCC(noise_std="0.1")
    with pytest.raises(ValueError, match="noise_std must be >= 0"):
        ALOCC(noise_std=-0.1)
    with pytest.raises(TypeError, match="unknown hyper-parameters \\['lambda'\\]"):
        ALOCC(**{"lambda": 0.4})
    with pytest.raises(ValueError, match="framework must be one of"):
        ALOCC(framework="tensorflow")
    detector = ALOCC(framework="torch", verbose=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.decision_function(x_test)
    with pytest.raises(ValueError, match="shape \\(n, height, width, channels\\)"):
        detector.fit(x_train[:10, :, :, 0])
    with pytest.raises(ValueError, match="pixel values in \\[0, 1\\]"):
        detector.fit(x_train[:10] * 255)
    with pytest.raises(ValueError, match="normal samples \\(y_val == 0\\)"):
        ALOCC(framework="torch", verbose=False, selection="normal-only").fit(
            x_train[:20], epochs=1, validation_data=(x_test[:5], np.ones(5))
        )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_diverging_loss_stops_with_the_epoch_and_the_loss_named(
    framework, mnist_digit1, monkeypatch
):
    make_a_loss_diverge(
        monkeypatch, ALOCC, framework, "loss_d", float("inf"), at_step=2
    )
    with pytest.raises(
        FloatingPointError, match="loss 'loss_d' became inf at epoch 2, batch 1"
    ):
        ALOCC(framework=framework, verbose=False, batch_size=100).fit(
            mnist_digit1[0][:100], epochs=2
        )
