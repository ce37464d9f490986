"""EGBAD under the contract's tests: equivalence, weight averaging, learning, determinism, save/load, errors."""

import numpy as np
import pytest
from contract import (
    assert_rejects_bad_input,
    expected_moving_average,
    make_a_loss_diverge,
)

from ganlib import metrics, protocols
from ganlib.egbad import (
    EGBAD,
    OFFICIAL_IMAGE,
    SCORES,
    anomaly_scores,
    bigan_losses,
)
from ganlib.porting import copy_torch_to_keras

FRAMEWORKS = ["torch", "keras"]
NETWORKS = ("encoder", "generator", "discriminator")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mnist_small():
    split = protocols.one_class_anomalous(0, seed=0)
    return split.x_train[:300], split.x_test[:200], split.y_test[:200]


def _fitted(framework, x, epochs=1, **kwargs):
    return EGBAD(framework=framework, seed=0, verbose=False, **kwargs).fit(
        x, epochs=epochs
    )


# ---------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("shape", [(121,), (28, 28, 1)], ids=["tabular", "image"])
def test_twins_have_equal_parameter_counts_and_outputs(shape):
    import torch

    from ganlib.backend_torch import glorot_init

    rng = np.random.default_rng(0)
    x = rng.random((6, *shape), dtype=np.float32)
    torch_model = EGBAD(framework="torch", verbose=False).build(shape)
    keras_model = EGBAD(framework="keras", verbose=False).build(shape)
    assert torch_model.parameter_counts() == keras_model.parameter_counts()
    with torch.no_grad():
        for name in NETWORKS:
            net = torch_model.networks[name]
            net.apply(
                glorot_init
            )  # larger weights than N(0, 0.02), so that the comparison is not trivially small
            for module in net.modules():
                if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
                    module.weight.uniform_(0.5, 1.5)
    expected_layers = {(121,): (2, 3, 4), (28, 28, 1): (6, 7, 6)}[shape]
    for name, layers in zip(NETWORKS, expected_layers):
        assert (
            copy_torch_to_keras(torch_model.networks[name], keras_model.networks[name])
            == layers
        )
    # score with the copied weights: make the averages equal to them in both twins
    torch_model.ema.set_weights(
        {k: v for k, v in torch_model.get_weights().items() if k.startswith("ema_")}
    )
    for name in NETWORKS:
        torch_model.ema.averages[name].module.load_state_dict(
            torch_model.networks[name].state_dict()
        )
    keras_model.ema.set_weights(
        {
            **keras_model.ema.get_weights(),
            **{
                f"ema_{name}.{i:03d}": np.array(v.numpy())
                for name in NETWORKS
                for i, v in enumerate(keras_model.networks[name].trainable_variables)
            },
        }
    )
    out_torch, out_keras = torch_model.predict(x), keras_model.predict(x)
    assert set(out_torch) == set(out_keras)
    for key in out_torch:
        assert out_torch[key].shape == out_keras[key].shape, key
        np.testing.assert_allclose(
            out_torch[key], out_keras[key], atol=1e-4, rtol=1e-4, err_msg=key
        )
    assert (
        np.abs(out_torch["logit_input"]).max() > 1e-2
    )  # the comparison is not between zeros
    assert EGBAD().hyperparameters["alpha"] == 0.9
    x_model = EGBAD().to_model_space(x)
    scores_torch, scores_keras = (
        anomaly_scores(x_model, out_torch),
        anomaly_scores(x_model, out_keras),
    )
    for name in SCORES:
        np.testing.assert_allclose(
            scores_torch[name], scores_keras[name], rtol=1e-4, err_msg=name
        )


def test_bigan_losses_are_the_same_through_torch_and_keras_ops():
    import keras
    import torch

    rng = np.random.default_rng(0)
    real, fake = (
        rng.normal(0, 3, (8, 1)).astype(np.float32),
        rng.normal(0, 3, (8, 1)).astype(np.float32),
    )
    expected = bigan_losses(real.astype(np.float64), fake.astype(np.float64))
    for ops, to_tensor in (
        (torch, torch.from_numpy),
        (keras.ops, keras.ops.convert_to_tensor),
    ):
        losses = bigan_losses(to_tensor(real), to_tensor(fake), ops)
        for name, value in expected.items():
            np.testing.assert_allclose(
                float(losses[name]), value, rtol=1e-5, err_msg=name
            )
    with torch.no_grad():  # the framework's own cross-entropy agrees
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        np.testing.assert_allclose(
            expected["loss_g"],
            float(bce(torch.from_numpy(fake), torch.ones(8, 1))),
            rtol=1e-5,
        )


# ---------------------------------------------------------------------- weight averaging


@pytest.mark.parametrize("warmup", [False, True])
def test_torch_moving_average_follows_the_decay(warmup):
    import torch

    from ganlib.ema import TorchEMA

    decay, steps = 0.9, 6
    layer = torch.nn.Linear(3, 2)
    ema = TorchEMA({"layer": layer}, decay, warmup=warmup)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    history = []
    for step in range(steps):
        optimizer.zero_grad()
        (layer.weight.sum() * (step + 1) + layer.bias.sum()).backward()
        optimizer.step()
        ema.update()
        history.append(layer.weight.detach().numpy().copy())
    averaged = ema.averaged("layer").weight.detach().numpy()
    np.testing.assert_allclose(
        averaged, expected_moving_average(history, decay, warmup), rtol=1e-5
    )
    assert (
        np.abs(averaged - history[-1]).min() > 0.5
    )  # the raw weights moved on; the average lags behind
    if (
        warmup
    ):  # early updates weigh the new weights more: the average is nearer the last
        fixed = expected_moving_average(history, decay)
        assert (np.abs(averaged - history[-1]) < np.abs(fixed - history[-1])).all()


@pytest.mark.parametrize("warmup", [False, True])
def test_keras_moving_average_follows_the_decay(warmup):
    import keras

    from ganlib.ema import KerasEMA

    decay, steps = 0.9, 6
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(1.0, use_ema=True, ema_momentum=decay)
    ema = KerasEMA({"layer": (model, optimizer)}, warmup=warmup)
    kernel = model.trainable_variables[0]
    np.testing.assert_array_equal(
        ema.get_weights()["ema_layer.000"], kernel.numpy()
    )  # starts at the initial weights
    history = []
    for step in range(steps):
        grads = [
            np.full(v.shape, step + 1.0, np.float32) for v in model.trainable_variables
        ]
        ema.before_step()
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        history.append(np.array(kernel.numpy()))
    expected = expected_moving_average(history, decay, warmup)
    with ema.swapped():
        np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(
        kernel.numpy(), history[-1]
    )  # the raw weights are back after the block
    assert np.abs(expected - history[-1]).min() > 0.5


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_scores_use_the_averaged_weights(framework, kdd):
    x_train, x_val = kdd[0][:1000], kdd[1][:200]
    detector = _fitted(framework, x_train)
    backend = detector.backend
    averaged, raw = backend.predict(x_val), backend.raw_outputs(x_val)
    assert not np.allclose(averaged["latent"], raw["latent"], atol=1e-6)
    no_average = _fitted(
        framework, x_train, ema_decay=0.0
    )  # decay 0: the average is the last weights
    np.testing.assert_allclose(
        no_average.backend.predict(x_val)["latent"],
        no_average.backend.raw_outputs(x_val)["latent"],
        rtol=1e-5,
        atol=1e-6,
    )
    raw_scores = detector.score_variants(x_val, averaged=False)
    expected = detector.scores_from_outputs(x_val, raw)
    for name in SCORES:
        np.testing.assert_allclose(raw_scores[name], expected[name], rtol=1e-6)
    assert not np.allclose(
        raw_scores["reconstruction"], detector.score_variants(x_val)["reconstruction"]
    )


def test_only_a_model_with_averages_scores_with_raw_weights():
    from ganlib.autoencoder import ConvAutoencoder

    images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1))
    detector = ConvAutoencoder(framework="torch", seed=0, verbose=False)
    detector.fit(images.astype(np.float32), epochs=1)
    with pytest.raises(ValueError, match="keeps no moving average"):
        detector.score_variants(images[:4], averaged=False)


# ---------------------------------------------------------------------- learning


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_short_kdd99_training_learns_to_detect(framework, kdd):
    x_train, x_val, y_val, x_test, y_test = kdd
    untrained = EGBAD(framework=framework, seed=0, verbose=False)
    untrained.build(x_train.shape[1:])
    untrained_f1 = metrics.precision_recall_f1(
        y_test, untrained.decision_function(x_test), 0.2
    )["f1"]
    # A CI-sized run: 2400 steps at 100x the official learning rate, with a 100-step
    # average.  The ranking flips from epoch to epoch (the instability of the official
    # repository's issue #7), so, as in the chapter, the epoch is selected on the
    # validation split by the F1 the test checks.  Seeds 0-3 on this machine: test F1
    # 0.909-0.947 (Keras), 0.943-0.953 (PyTorch), AUROC at least 0.933; selected on
    # validation AUROC instead, Keras seed 0 fell to F1 0.814.
    trained = EGBAD(
        framework=framework,
        seed=0,
        verbose=False,
        learning_rate=1e-3,
        ema_decay=0.99,
        labelled_metric="f1",
    )
    trained.fit(x_train[:10000], epochs=12, validation_data=(x_val, y_val))
    result = metrics.evaluate(y_test, trained.decision_function(x_test), 0.2)
    assert set(trained.history_) >= {
        "loss_d",
        "loss_g",
        "loss_e",
        "val_auroc",
        "val_auprc",
        "val_f1",
    }
    assert trained.history_["val_f1"][trained.best_epoch_ - 1] == max(
        trained.history_["val_f1"]
    )
    # the normal-only rule has no label-free criterion: the official fixed budget
    assert "normal-only" not in trained.selection_criteria_
    assert trained.use_selection("normal-only").best_epoch_ == 12
    # untrained networks flag by input norm: F1 0.45 on this split
    assert result["f1"] > 0.8, (untrained_f1, result)
    assert result["auroc"] > 0.9, (untrained_f1, result)
    assert result["f1"] > untrained_f1 + 0.3, (untrained_f1, result)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_image_networks_train_and_score(framework, mnist_small):
    x_train, x_test, y_test = mnist_small
    detector = _fitted(framework, x_train)
    scores = detector.decision_function(x_test)
    assert scores.shape == (len(x_test),) and np.all(np.isfinite(scores))
    variants = detector.score_variants(x_test)
    assert tuple(variants) == SCORES
    np.testing.assert_array_equal(variants["cross_entropy"], scores)
    reconstruction = detector.reconstruct(x_test[:4])
    assert reconstruction.shape == (4, 28, 28, 1)
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    assert detector.encode(x_test[:4]).shape == (4, 200)
    assert detector.backend.parameter_counts()["generator"] == 6781505


def test_image_defaults_are_for_short_runs_and_the_official_ones_one_argument_away():
    """Batch 32 at 5e-4 on images (issue #11, chosen on validation digits), 1e-4 on
    tabular rows, and the official image batch and rate through ``OFFICIAL_IMAGE``;
    the torch optimisers get the rate of the family that was built."""
    detector = EGBAD(framework="torch", verbose=False)
    image = detector.resolved_hyperparameters("image")
    tabular = detector.resolved_hyperparameters("tabular")
    assert (image["batch_size"], image["learning_rate"]) == (32, 5e-4)
    assert (tabular["batch_size"], tabular["learning_rate"]) == (50, 1e-4)
    official = EGBAD(framework="torch", verbose=False, **OFFICIAL_IMAGE)
    assert official.resolved_hyperparameters("image")["learning_rate"] == 1e-5
    for shape, rate in (((28, 28, 1), 5e-4), ((121,), 1e-4)):
        backend = EGBAD(framework="torch", verbose=False).build(shape)
        for optimizer in backend.optimizers.values():
            assert optimizer.param_groups[0]["lr"] == rate, shape


# ---------------------------------------------------------------------- determinism, save/load


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_scores(framework, kdd):
    x_train, x_test = kdd[0][:1500], kdd[3][:300]
    a = _fitted(framework, x_train).decision_function(x_test)
    b = _fitted(framework, x_train).decision_function(x_test)
    c = (
        EGBAD(framework=framework, seed=1, verbose=False)
        .fit(x_train, epochs=1)
        .decision_function(x_test)
    )
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_save_load_round_trip(framework, kdd, tmp_path):
    x_train, x_test = kdd[0][:1000], kdd[3][:300]
    detector = _fitted(framework, x_train, score="feature_matching")
    path = detector.save(tmp_path / "egbad")
    loaded = EGBAD.load(path)
    assert loaded.framework == framework and loaded.history_ == detector.history_
    assert loaded.hyperparameters["score"] == "feature_matching"
    np.testing.assert_allclose(
        loaded.decision_function(x_test), detector.decision_function(x_test), rtol=1e-6
    )
    other = {"torch": "keras", "keras": "torch"}[framework]
    with pytest.raises(
        ValueError, match=f"holds a {framework} model, not a {other} one"
    ):
        EGBAD.load(path, framework=other)


def test_load_rejects_another_model(kdd, tmp_path):
    from ganlib.autoencoder import ConvAutoencoder

    path = _fitted("torch", kdd[0][:300]).save(tmp_path / "egbad.npz")
    with pytest.raises(
        ValueError, match="holds a EGBAD detector, not a ConvAutoencoder"
    ):
        ConvAutoencoder.load(path)


def test_score_variants_and_the_formula():
    rng = np.random.default_rng(0)
    x = rng.random((4, 5))
    outputs = {
        "reconstruction": x + 0.5,
        "logit_input": np.zeros((4, 1)),
        "logit_reconstruction": np.full((4, 1), 50.0),
        "features_input": np.ones((4, 3)),
        "features_reconstruction": np.zeros((4, 3)),
    }
    scores = anomaly_scores(x, outputs)
    assert tuple(scores) == SCORES == EGBAD.score_names
    np.testing.assert_allclose(scores["cross_entropy"], 0.9 * 2.5 + 0.1 * np.log(2))
    np.testing.assert_allclose(scores["cross_entropy_code"], 0.9 * 2.5, rtol=1e-9)
    np.testing.assert_allclose(scores["reconstruction"], 2.5)
    np.testing.assert_allclose(
        anomaly_scores(x, outputs, alpha=0.5)["feature_matching"], 0.5 * 2.5 + 0.5 * 3
    )


# ---------------------------------------------------------------------- errors


def test_bad_inputs_give_clear_errors(kdd):
    assert_rejects_bad_input(EGBAD, kdd[0][:200])
    with pytest.raises(ValueError, match="score must be one of"):
        EGBAD(score="cross-e")
    with pytest.raises(TypeError, match="alpha must be a number"):
        EGBAD(alpha="0.9")
    with pytest.raises(ValueError, match="ema_decay must be a number in \\[0, 1\\)"):
        EGBAD(ema_decay=1.0)
    with pytest.raises(ValueError, match="alpha must be a number in \\[0, 1\\]"):
        EGBAD(alpha=2)
    detector = EGBAD(framework="torch", verbose=False)
    with pytest.raises(ValueError, match="\\(n, features\\) or images"):
        detector.fit(kdd[0][0])
    with pytest.raises(ValueError, match="pixel values in \\[0, 1\\]"):
        detector.fit(np.full((4, 28, 28, 1), 255.0, np.float32))
    with pytest.raises(ValueError, match="divisible by 4"):
        detector.fit(np.zeros((4, 30, 30, 1), np.float32))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_diverging_loss_stops_with_the_epoch_and_the_loss_named(
    framework, kdd, monkeypatch
):
    make_a_loss_diverge(
        monkeypatch, EGBAD, framework, "loss_e", float("inf"), at_step=3
    )
    with pytest.raises(
        FloatingPointError, match="loss 'loss_e' became inf at epoch 2, batch 1"
    ):
        EGBAD(framework=framework, verbose=False, batch_size=100).fit(
            kdd[0][:200], epochs=3
        )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_batchnorm_statistics_are_recomputed_under_the_averaged_weights(framework):
    """Averaged weights are scored with statistics of their own (ganlib.ema), not the trained ones.

    A Dense layer followed by BatchNorm: the average holds other weights than
    the trained layer, and after ``recompute_statistics`` the averaged
    network's BatchNorm holds the mean (over batches) of the batch means and
    variances of *its* Dense outputs.  Before any recomputation, and again
    after the next update, the trained network's statistics are used.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (96, 3)).astype(np.float32)
    batches = [x[i : i + 32] for i in range(0, 96, 32)]
    averaged_kernel = rng.normal(0, 3.0, (3, 4)).astype(np.float32)  # (in, out)
    per_batch = [b @ averaged_kernel for b in batches]  # biases are zero
    expected_mean = np.mean([h.mean(0) for h in per_batch], axis=0)
    if framework == "torch":
        import torch

        from ganlib.ema import TorchEMA

        net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        torch.nn.init.zeros_(net[0].bias)
        ema = TorchEMA({"net": net}, 0.9)
        with torch.no_grad():
            ema.averages["net"].module[0].weight.copy_(
                torch.from_numpy(averaged_kernel.T)
            )
            net[1].running_mean.fill_(-7.0)
        assert (
            ema.averaged("net")[1].running_mean[0].item() == -7.0
        )  # not recomputed yet
        ema.recompute_statistics(lambda n, b: n(torch.from_numpy(b)), batches)
        bn = ema.averaged("net")[1]
        mean, var = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
        expected_var = np.mean([h.var(0, ddof=1) for h in per_batch], axis=0)
        assert (
            net[1].running_mean[0].item() == -7.0
        )  # the trained network keeps its own
        ema.update()
        assert ema.averaged("net")[1].running_mean[0].item() == -7.0  # stale: fallback
    else:
        import keras

        from ganlib.ema import KerasEMA

        net = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4),
                keras.layers.BatchNormalization(),
            ]
        )
        optimizer = keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9)
        ema = KerasEMA({"net": (net, optimizer)})
        ema._averages(optimizer)[0].assign(averaged_kernel)
        bn = net.layers[1]
        bn.moving_mean.assign(np.full(4, -7.0, np.float32))
        ema.recompute_statistics(lambda b, training: net(b, training=training), batches)
        np.testing.assert_array_equal(bn.moving_mean.numpy(), -7.0)  # raw ones are back
        with ema.swapped():
            mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
        expected_var = np.mean([h.var(0) for h in per_batch], axis=0)  # Keras: biased
        ema.before_step()
        with ema.swapped():  # stale after the next step: the trained statistics
            np.testing.assert_array_equal(bn.moving_mean.numpy(), -7.0)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(var, expected_var, rtol=1e-4)


def test_normal_only_selection_keeps_the_last_epoch_as_the_official_code(kdd):
    x_train, x_val = kdd[0][:300], kdd[0][-200:]
    detector = EGBAD(framework="torch", seed=0, verbose=False, selection="normal-only")
    detector.fit(x_train, epochs=2, validation_data=(x_val, np.zeros(200, int)))
    assert detector.label_free_criterion is None
    assert detector.selected_epochs_["normal-only"] == 2 == detector.best_epoch_
    np.testing.assert_allclose(
        detector.decision_function(x_val),
        detector.use_selection("last").decision_function(x_val),
    )


@pytest.mark.parametrize("model", ["egbad", "alad"])
def test_labelled_rule_selects_on_the_metric_asked_for(model):
    from ganlib.alad import ALAD

    cls = {"egbad": EGBAD, "alad": ALAD}[model]
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(200, 6)).astype(np.float32)
    x_val = rng.normal(size=(60, 6)).astype(np.float32)
    y_val = np.r_[np.zeros(45, int), np.ones(15, int)]
    x_val[y_val == 1] += 3.0
    detector = cls(framework="torch", seed=0, verbose=False, labelled_metric="f1")
    detector.fit(x_train, epochs=3, validation_data=(x_val, y_val))
    assert detector.selection_criteria_["labelled"] == ("val_f1", True)
    f1 = detector.history_["val_f1"]
    assert detector.best_epoch_ == 1 + int(np.argmax(f1))
    with pytest.raises(ValueError, match="labelled_metric must be one of"):
        cls(labelled_metric="accuracy")


@pytest.mark.parametrize("model", ["egbad", "alad"])
def test_labelled_metrics_peaking_apart_select_different_epochs(model, monkeypatch):
    """Validation AUROC best at epoch 1 and F1 best at epoch 3 (scripted over
    the real values): each metric selects its own epoch, so the selection
    follows ``labelled_metric`` and not a curve that happens to agree."""
    from ganlib.alad import ALAD

    cls = {"egbad": EGBAD, "alad": ALAD}[model]
    scripted = {"val_auroc": [0.9, 0.8, 0.7], "val_f1": [0.1, 0.2, 0.3]}
    real = cls.validation_values

    def validation_values(self, x_val, y_val):
        values = real(self, x_val, y_val)
        epoch = len(self.history_.get("val_auroc", []))
        return values | {key: curve[epoch] for key, curve in scripted.items()}

    monkeypatch.setattr(cls, "validation_values", validation_values)
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(100, 6)).astype(np.float32)
    x_val = rng.normal(size=(40, 6)).astype(np.float32)
    y_val = np.r_[np.zeros(30, int), np.ones(10, int)]
    selected = {}
    for metric in ("auroc", "f1"):
        detector = cls(framework="torch", seed=0, verbose=False, labelled_metric=metric)
        detector.fit(x_train, epochs=3, validation_data=(x_val, y_val))
        assert detector.history_["val_f1"] == scripted["val_f1"]
        selected[metric] = detector.best_epoch_
    assert selected == {"auroc": 1, "f1": 3}
