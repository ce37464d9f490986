"""The PyTorch shortcuts that issue #13 added compute what they replace."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_dropout_drops_p_scales_the_rest_and_backpropagates_its_mask():
    from ganlib.backend_torch import Dropout

    torch.manual_seed(0)
    layer = Dropout(0.3)
    x = torch.ones(400_000, requires_grad=True)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.005
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    assert abs(y.mean().item() - 1.0) < 0.01  # the expectation is kept
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d y / d x is the scaled mask
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # the default generator's seed decides
    layer.eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


@pytest.mark.parametrize("stride, size", [(1, 28), (2, 28), (2, 32), (1, 7)])
def test_conv2d_same_gives_keras_same_padding(stride, size):
    from ganlib.backend_torch import Conv2dSame

    torch.manual_seed(0)
    layer = Conv2dSame(3, 4, 5, stride=stride)
    x = torch.randn(2, 3, size, size)
    out = -(-size // stride)
    total = max((out - 1) * stride + 5 - size, 0)
    padded = torch.nn.functional.pad(x, [total // 2, total - total // 2] * 2)
    expected = torch.nn.functional.conv2d(padded, layer.weight, layer.bias, stride)
    assert layer(x).shape == (2, 4, out, out)
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_fused_softplus_is_the_overflow_free_formula():
    keras = pytest.importorskip("keras")
    from ganlib.losses import bce_with_logits, softplus

    v = np.array([-100.0, -20.0, -1.0, 0.0, 0.5, 30.0, 100.0], np.float32)
    expected = softplus(v)  # NumPy: the formula itself
    for ops, tensor in ((torch, torch.from_numpy(v)), (keras.ops, v)):
        got = np.asarray(softplus(tensor, ops), np.float64)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
        for target in (0.0, 1.0, 0.25):
            np.testing.assert_allclose(
                float(bce_with_logits(tensor, target, ops)),
                float(bce_with_logits(v, target)),
                rtol=1e-5,
            )


@pytest.mark.parametrize("model", ["alocc", "egbad", "alad"])
def test_a_training_step_leaves_every_network_trainable(model):
    from ganlib.speed import MODELS, _detector_class, _samples

    path, hyperparameters, shape = MODELS[model]
    detector = _detector_class(path)(
        framework="torch", seed=0, verbose=False, threads=1, **hyperparameters
    )
    backend = detector.build(shape)
    before = {k: v.copy() for k, v in backend.get_weights().items()}
    backend.train_step(_samples(shape, 16))
    after = backend.get_weights()
    for name, network in backend.networks.items():
        assert all(p.requires_grad for p in network.parameters()), name
        # every network that has weights was updated by the step
        keys = [k for k in before if k.startswith(name + ".") and "weight" in k]
        assert any(not np.array_equal(before[k], after[k]) for k in keys), name


def test_frozen_networks_are_trainable_again_after_an_interrupted_step():
    from ganlib.backend_torch import frozen

    network = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    network[1].bias.requires_grad_(False)  # a weight frozen by the user stays so
    with pytest.raises(KeyboardInterrupt):
        with frozen(network):
            assert not any(p.requires_grad for p in network.parameters())
            raise KeyboardInterrupt
    assert [p.requires_grad for p in network.parameters()] == [True, True, True, False]


def test_bfloat16_steps_in_one_scope_compute_with_the_updated_weights():
    """fit runs all its steps in one compute scope: a scoring pass inside it must
    see the weights the steps wrote, as a pass in a new scope does (autocast's
    weight cache would keep the first step's bfloat16 copies)."""
    from ganlib.ganomaly import GANomaly

    detector = GANomaly(
        framework="torch", seed=0, verbose=False, base_filters=8, precision="bfloat16"
    )
    backend = detector.build((28, 28, 1))
    batch = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    with detector.compute_scope():
        backend.predict(batch)  # casts (and, with a cache, keeps) the weights
        for _ in range(3):
            backend.train_step(batch)
        inside = backend.predict(batch)["latent"]
    with detector.compute_scope():
        fresh = backend.predict(batch)["latent"]
    np.testing.assert_array_equal(inside, fresh)


def test_weight_averages_match_averaged_model_on_a_channels_last_network():
    """``TorchEMA.update`` keeps its own tensor lists instead of calling
    ``AveragedModel.update_parameters``: after training steps on a network that
    became channels-last after the averages were built (as ``finish_build``
    does), its averages and buffers equal ``AveragedModel``'s to the bit."""
    import torch
    from torch import nn
    from torch.optim.swa_utils import AveragedModel

    from ganlib.ema import TorchEMA

    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten())
    ema = TorchEMA({"net": network}, decay=0.99)
    reference = AveragedModel(network, multi_avg_fn=ema._average, use_buffers=False)
    network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1)
    for _ in range(5):
        x = torch.rand(8, 2, 6, 6).to(memory_format=torch.channels_last)
        optimizer.zero_grad()
        network(x).square().mean().backward()
        optimizer.step()
        ema.update()
        reference.update_parameters(network)
    mine = ema.averages["net"].state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(mine[key], value), key
    # and the average moved: it is not the first step's copy
    assert not torch.equal(mine["module.0.weight"], network[0].weight.detach())
