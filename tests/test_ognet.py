"""OGNet under the contract's tests: equivalence of the twins (both phases), learning, save/load, errors, determinism."""

import numpy as np
import pytest
from contract import make_a_loss_diverge

from ganlib import metrics, protocols
from ganlib.ognet import OFFICIAL, SCORES, OGNet, from_model_space, to_model_space
from ganlib.porting import copy_torch_to_keras

FRAMEWORKS = ["torch", "keras"]
# Training sets of the short fits are whole batches of 64: Keras traces its training step
# once per batch shape, and a smaller last batch would cost a second trace.
SMALL = {"base_filters": 4, "image_size": None}  # CPU-sized networks for the tests


@pytest.fixture(scope="module")
def mnist_digit0():
    """MNIST one-class-normal split with digit 0 normal (the seed's and the released model's target), subsampled."""
    split = protocols.one_class_normal(0, seed=0)
    test = np.random.default_rng(0).choice(len(split.y_test), 1500, replace=False)
    return split.x_train[:1500], split.x_test[test], split.y_test[test]


def _twins(**hyperparameters):
    import torch

    torch_model = OGNet(framework="torch", verbose=False, **hyperparameters).build(
        (28, 28, 1)
    )
    keras_model = OGNet(framework="keras", verbose=False, **hyperparameters).build(
        (28, 28, 1)
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for network in torch_model.networks.values():
            for module in network.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                    module.running_var.uniform_(0.5, 2.0, generator=generator)
                    module.bias.uniform_(-0.5, 0.5, generator=generator)
    for name in ("generator", "discriminator"):
        copy_torch_to_keras(torch_model.networks[name], keras_model.networks[name])
    return torch_model, keras_model


@pytest.mark.parametrize("image_size", [45, None])
def test_twins_have_equal_parameter_counts_and_outputs(image_size):
    torch_model, keras_model = _twins(base_filters=8, image_size=image_size)
    assert torch_model.parameter_counts() == keras_model.parameter_counts()
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    out_torch, out_keras = torch_model.predict(x), keras_model.predict(x)
    size = image_size or 28
    assert out_torch["reconstruction"].shape == (5, size, size, 1)
    assert np.abs(out_torch["d_logit_input"]).max() > 0.01
    for key in out_torch:
        np.testing.assert_allclose(
            out_torch[key], out_keras[key], atol=1e-5, rtol=1e-4, err_msg=key
        )


def test_twins_take_the_same_phase_one_and_phase_two_steps():
    """Same weights, batch and noise: phase one's losses agree, and so does phase two's after it."""
    torch_model, keras_model = _twins(base_filters=8, image_size=None)
    batch = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
    losses_torch, losses_keras = (
        torch_model.train_step(batch),
        keras_model.train_step(batch),
    )
    assert set(losses_torch) == {
        "loss_d",
        "loss_g_reconstruction",
        "loss_g_adversarial",
    }
    for name in losses_torch:
        assert losses_torch[name] == pytest.approx(losses_keras[name], rel=1e-4), name
    for model in (torch_model, keras_model):
        model.snapshot_old_generator()
        model.start_phase_two()
    partners = batch[::-1].copy()
    images_torch, images_keras = (
        torch_model.phase_two_images(batch, partners),
        keras_model.phase_two_images(batch, partners),
    )
    for name in ("good", "old", "pseudo"):
        # after one Adam step, whose size is lr * sign(g) for every weight, round-off can flip near-zero components
        np.testing.assert_allclose(
            images_torch[name], images_keras[name], atol=5e-3, err_msg=name
        )
    assert torch_model.phase_two_step(batch, partners) == pytest.approx(
        keras_model.phase_two_step(batch, partners), rel=1e-3
    )


def test_model_space_resizes_and_scales_once_per_array():
    x = np.zeros((6, 28, 28, 1), np.float32)
    x[:, 10:18, 10:18] = 1.0
    x[3:] = np.random.default_rng(0).random((3, 28, 28, 1))
    resized = to_model_space(x, 45)
    assert resized.shape == (6, 45, 45, 1) and resized.dtype == np.float32
    assert resized.min() == -1.0 and resized.max() == 1.0
    np.testing.assert_array_equal(to_model_space(x, None), 2 * x - 1)
    np.testing.assert_array_equal(to_model_space(x, 28), 2 * x - 1)
    # each image is resized on its own: the whole array once, or batch by batch, is the same
    rows = [4, 0, 5]
    np.testing.assert_array_equal(resized[rows], to_model_space(x[rows], 45))
    # and the inverse comes back to the input's size and range
    back = from_model_space(resized, 28, 28)
    assert back.shape == x.shape and 0.0 <= back.min() <= back.max() <= 1.0
    np.testing.assert_allclose(from_model_space(2 * x - 1, 28, 28), x, atol=1e-7)


def test_the_broken_update_order_of_the_original_code_fails_in_pytorch():
    """The author's step: D steps its optimiser, then G's loss back-propagates through D's stale output."""
    import torch
    from torch.nn import functional as F

    model = OGNet(
        framework="torch", verbose=False, base_filters=4, image_size=None
    ).build((28, 28, 1))
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    reconstruction = model.generator(x)
    d_fake = model.discriminator(reconstruction)
    loss_d = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
    loss_d.backward(retain_graph=True)
    model.optimizer_d.step()  # modifies D's weights in place ...
    loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss_g.backward()  # ... which the saved graph of d_fake still needs


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_short_training_learns_to_detect(framework, mnist_digit0):
    """Two phase-one epochs (G_old is the first) and phase two on 1500 images of digit 0: D(G(X)) separates
    the other digits."""
    x_train, x_test, y_test = mnist_digit0
    untrained = OGNet(framework=framework, seed=0, verbose=False, **SMALL)
    untrained.build(x_train.shape[1:])
    untrained_auroc = metrics.auroc(y_test, untrained.decision_function(x_test))
    trained = OGNet(
        framework=framework, seed=0, verbose=False, phase_two_iterations=20, **SMALL
    )
    trained.fit(x_train, epochs=2)
    trained_auroc = metrics.auroc(y_test, trained.decision_function(x_test))
    assert trained_auroc > 0.8, trained_auroc
    assert trained_auroc > untrained_auroc + 0.15, (untrained_auroc, trained_auroc)
    assert len(trained.history_["phase_two_loss"]) == 20


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_phase_two_trains_d_only_and_the_probe_leaves_phase_one_untouched(
    framework, mnist_digit0
):
    x_train, x_test, y_test = mnist_digit0
    detector = OGNet(
        framework=framework, seed=0, verbose=False, phase_two_iterations=5, **SMALL
    )
    detector.fit(
        x_train[:256],
        epochs=2,
        validation_data=(x_test[:200], y_test[:200]),
        probe_phase_two=True,
    )
    assert (
        len(detector.history_["val_auroc"])
        == len(detector.history_["val_auroc_after_phase_two"])
        == 2
    )
    after = detector.backend.get_weights()
    before = detector.phase_one_weights_
    assert {key.split(".")[0] for key in before} == {
        "generator",
        "discriminator",
        "generator_old",
    }
    changed = {
        key.split(".")[0]
        for key in before
        if not np.array_equal(after[key], before[key])
    }
    assert changed == {"discriminator"}
    assert (
        detector.selection_ == "last" and detector.best_epoch_ == 2
    )  # no epoch is selected
    # the last epoch's weights, scores and threshold are the finished detector's (phase two in)
    final = detector.decision_function(x_test[:50])
    np.testing.assert_array_equal(
        detector.use_selection("normal-only").decision_function(x_test[:50]), final
    )
    np.testing.assert_allclose(
        detector.decision_scores_, detector.decision_function(x_train[:256])
    )
    # with the probe off, phase one ends where it ended with the probe on: the probe restored every weight
    plain = OGNet(
        framework=framework, seed=0, verbose=False, phase_two_iterations=5, **SMALL
    )
    plain.fit(x_train[:256], epochs=2, validation_data=(x_test[:200], y_test[:200]))
    # (Keras names variables per model instance, so the arrays are compared in their saved order)
    for ours, theirs in zip(
        [plain.phase_one_weights_[k] for k in sorted(plain.phase_one_weights_)],
        [before[k] for k in sorted(before)],
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_scores_and_save_load(framework, mnist_digit0, tmp_path):
    x_train, x_test, _ = mnist_digit0

    def fitted(seed):
        return OGNet(
            framework=framework,
            seed=seed,
            verbose=False,
            phase_two_iterations=3,
            **SMALL,
        ).fit(x_train[:192], epochs=1)

    first, again = fitted(0), fitted(0)
    np.testing.assert_array_equal(
        first.decision_function(x_test[:50]), again.decision_function(x_test[:50])
    )
    assert not np.allclose(
        first.decision_function(x_test[:50]), fitted(1).decision_function(x_test[:50])
    )
    loaded = OGNet.load(first.save(tmp_path / "ognet"))
    for name, values in first.score_variants(x_test[:50]).items():
        np.testing.assert_allclose(
            loaded.score_variants(x_test[:50])[name], values, rtol=1e-6, err_msg=name
        )
    assert set(first.score_variants(x_test[:5])) == set(SCORES)
    # G_old and phase one's end travel with the file: phase two again from phase one's end
    # gives the same detector in memory and loaded (it used an untrained G_old after load)
    for detector in (first, loaded):
        detector.backend.set_weights(detector.phase_one_weights_)
        detector.phase_two(x_train[:192], rng=np.random.default_rng(0))
    np.testing.assert_allclose(
        loaded.decision_function(x_test[:50]),
        first.decision_function(x_test[:50]),
        rtol=1e-6,
    )


def test_bad_inputs_give_clear_errors(mnist_digit0):
    x_train = mnist_digit0[0]
    with pytest.raises(ValueError, match="score must be one of"):
        OGNet(score="d")
    with pytest.raises(ValueError, match="beta must be in \\[0, 1\\]"):
        OGNet(beta=2.0)
    with pytest.raises(ValueError, match="image_size must be None or an integer >= 20"):
        OGNet(image_size=8)
    with pytest.raises(
        ValueError, match="phase_two_iterations must be a positive integer"
    ):
        OGNet(phase_two_iterations=0)
    with pytest.raises(TypeError, match="old_epoch must be an integer"):
        OGNet(old_epoch=1.5)
    with pytest.raises(ValueError, match="OGNet selects no epoch"):
        OGNet(verbose=False, selection="labelled", **SMALL).fit(x_train[:50], epochs=1)
    with pytest.raises(ValueError, match="must be at least old_epoch"):
        OGNet(verbose=False, old_epoch=3, **SMALL).fit(x_train[:50], epochs=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        OGNet().decision_function(x_train[:5])
    with pytest.raises(ValueError, match="pixel values in \\[0, 1\\]"):
        OGNet(verbose=False, **SMALL).fit(x_train[:50] * 2 - 1, epochs=1)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_diverging_loss_stops_with_the_epoch_and_the_loss_named(
    framework, mnist_digit0, monkeypatch
):
    make_a_loss_diverge(
        monkeypatch, OGNet, framework, "loss_g_adversarial", float("nan"), at_step=1
    )
    with pytest.raises(
        FloatingPointError,
        match="loss 'loss_g_adversarial' became nan at epoch 1, batch 1",
    ):
        OGNet(framework=framework, verbose=False, **SMALL).fit(
            mnist_digit0[0][:100], epochs=1
        )


def test_phase_two_weights_can_be_overridden_for_one_call(mnist_digit0):
    x_train = mnist_digit0[0][:200]
    detector = OGNet(
        framework="torch", seed=0, verbose=False, phase_two_iterations=3, **SMALL
    ).fit(x_train, epochs=1)
    start = detector.backend.get_weights()
    default = detector.phase_two(x_train, rng=np.random.default_rng(0))
    detector.backend.set_weights(start)
    swapped = detector.phase_two(x_train, rng=np.random.default_rng(0), beta=0.001)
    assert not np.allclose(default, swapped)
    assert detector.backend.hp["beta"] == detector.hyperparameters["beta"] == 0.999
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\]"):
        detector.phase_two(x_train, alpha=1.5)


def _row_ids(x: np.ndarray) -> dict[bytes, int]:
    return {row.tobytes(): i for i, row in enumerate(x)}


def test_phase_two_pairs_each_batch_with_a_second_batch_drawn_from_the_whole_array(
    monkeypatch,
):
    """The pseudo-anomalies' partners X_j (eqs. 5-7) are an independent draw from
    the training array, as the author's second batch, not the batch X_i reshuffled."""
    detector = OGNet(
        framework="torch",
        seed=0,
        verbose=False,
        phase_two_iterations=3,
        batch_size=32,
        **SMALL,
    )
    backend = detector.build((28, 28, 1))
    x = np.random.default_rng(0).random((128, 28, 28, 1), dtype=np.float32)
    ids = _row_ids(x)
    seen = []
    step = backend.phase_two_step

    def spy(batch, partners):
        seen.append(
            ([ids[r.tobytes()] for r in batch], [ids[r.tobytes()] for r in partners])
        )
        return step(batch, partners)

    monkeypatch.setattr(backend, "phase_two_step", spy)
    detector.phase_two(x, rng=np.random.default_rng(0))
    assert len(seen) == 3
    for batch, partners in seen:
        assert len(batch) == len(partners) == 32 and len(set(partners)) == 32
        # drawn from all 128 images: most partners lie outside the batch (about 3 in 4)
        assert len(set(partners) - set(batch)) > 16, (sorted(batch), sorted(partners))
    # and the phase-two images draw X_j from x, seeded
    drawn = []

    def images(batch, partners):
        drawn.append(partners)
        return {"good": batch}

    monkeypatch.setattr(backend, "phase_two_images", images)
    for seed in (0, 0, 1):
        detector.phase_two_images(x[:50], seed=seed)
    assert all(row.tobytes() in _row_ids(x[:50]) for row in drawn[0])
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert not np.array_equal(drawn[0], drawn[2])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_failed_phase_two_leaves_the_detector_ready_for_the_next(
    framework, monkeypatch
):
    """A step that raises midway: the loss weights are put back, and the next phase two
    (a fresh optimiser) trains as if the failed one had never run."""
    detector = OGNet(
        framework=framework,
        seed=0,
        verbose=False,
        phase_two_iterations=3,
        batch_size=8,
        **SMALL,
    )
    backend = detector.build((28, 28, 1))
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    start = backend.get_weights()
    expected = detector.phase_two(x, rng=np.random.default_rng(0))
    backend.set_weights(start)
    step, calls = backend.phase_two_step, []

    def fails_second(batch, partners):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory, say")
        return step(batch, partners)

    monkeypatch.setattr(backend, "phase_two_step", fails_second)
    with pytest.raises(RuntimeError, match="out of memory"):
        detector.phase_two(x, rng=np.random.default_rng(0), alpha=0.5, beta=0.001)
    assert (backend.hp["alpha"], backend.hp["beta"]) == (0.1, 0.999)
    monkeypatch.undo()
    backend.set_weights(start)
    again = detector.phase_two(x, rng=np.random.default_rng(0))
    np.testing.assert_allclose(again, expected, rtol=1e-6)
    assert np.all(np.isfinite(detector.decision_function(x)))


def test_defaults_suit_a_cpu_and_the_official_sizes_are_one_argument_away():
    hp = OGNet().hyperparameters
    assert (hp["base_filters"], hp["image_size"], hp["epochs"]) == (16, None, 3)
    official = OGNet(framework="torch", verbose=False, **OFFICIAL)
    assert official.hyperparameters["base_filters"] == 64
    assert official.hyperparameters["image_size"] == 45
    # the author's networks (64 ... 512 channels on 45x45), as chapter 3 counts them
    assert official.build((28, 28, 1)).parameter_counts() == {
        "generator": 8609025,
        "discriminator": 4308865,
    }


def test_phase_two_puts_the_loss_weights_back_when_it_fails(monkeypatch):
    detector = OGNet(
        framework="torch", seed=0, verbose=False, phase_two_iterations=3, **SMALL
    )
    backend = detector.build((28, 28, 1))
    monkeypatch.setattr(backend, "phase_two_step", lambda batch, partners: float("nan"))
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    with pytest.raises(
        FloatingPointError, match="phase-two loss became nan at iteration 1"
    ):
        detector.phase_two(x, alpha=0.5, beta=0.001)
    assert (backend.hp["alpha"], backend.hp["beta"]) == (0.1, 0.999)


def test_reconstruct_returns_the_inputs_size_and_range(mnist_digit0):
    x = mnist_digit0[1][:6]
    detector = OGNet(
        framework="torch", seed=0, verbose=False, base_filters=4, image_size=36
    )
    detector.build(x.shape[1:])
    assert detector.to_model_space(x).shape == (6, 36, 36, 1)
    reconstruction = detector.reconstruct(x)
    assert reconstruction.shape == x.shape
    assert 0.0 <= reconstruction.min() <= reconstruction.max() <= 1.0
