"""The twins train alike: same weights, batches and noise for ten steps (issue #11 §6).

For every GAN detector the PyTorch twin's weights are copied into the Keras
twin; both then take the same ten training steps, on the same batches and with
the same noise, each with its own optimisers.  After every step the losses and
the inference outputs of a probe batch are compared, and after the last one
the weights, BatchNorm statistics included.

How close is close enough is measured, not guessed: the chaos baseline is the
PyTorch twin against copies of itself whose weights were nudged by 1e-6
(:func:`contract.perturbed_copy`, three seeds), i.e. how far runs of the same
code drift apart from round-off alone.  The twins may drift at most ten times
as far as the farthest copy (:func:`contract.assert_within_chaos`), with
floors of 1e-5 where the copies hardly drift at all.  One copy is not enough:
a ReLU that one run switches on and another does not is a jump, which a
single copy may miss while the twins hit it (EGBAD at a learning rate of 1e-3).

The noise: ALOCC and OGNet draw their input noise in NumPy from a generator
seeded by the model's seed, so twins built with one seed see the same noise.
EGBAD and ALAD draw z with their framework's generator through
``latent_noise``, which the tests replace by one NumPy stream per model
(inside Keras' compiled step, a ``tf.numpy_function``).

Residual differences between the twins:

- Keras' Adam adds epsilon before its bias correction, PyTorch's after, so
  gradients below about 3e-7 take smaller steps in Keras: removed here by
  rescaling PyTorch's epsilon each step (``_adam_epsilon_as_keras``); the
  difference it makes is shown by the expected failure of
  ``test_egbad_twins_with_each_adams_own_epsilon``;
- Keras' RMSprop (ALOCC) adds its epsilon, 1e-16, inside the square root,
  PyTorch's, 1e-8, outside: left, ALOCC's copies drift apart faster;
- Keras' BatchNorm moves its variance towards the biased batch variance,
  PyTorch's towards the unbiased one (a factor m / (m - 1), m the values per
  channel): moving variances are compared relatively, with a floor of
  1 / (m - 1) for the smallest m of the model;
- dropout masks come from each framework's generator and cannot be shared:
  EGBAD's and ALAD's discriminators train without dropout here;
- spectral normalisation differs by design (see :class:`ganlib.alad.ALAD`):
  PyTorch trains W and divides by sigma in the forward pass, Keras trains the
  kernel it overwrites with W / sigma; an expected failure shows the gap.
"""

import numpy as np
import pytest
from contract import assert_within_chaos, perturbed_copy, train_twins_alike

from ganlib.alad import ALAD
from ganlib.alocc import ALOCC
from ganlib.egbad import EGBAD
from ganlib.ganomaly import GANomaly
from ganlib.ognet import OGNet
from ganlib.porting import copy_torch_to_keras

STEPS, BATCH = 10, 16
COPIES = 3  # nudged PyTorch copies: the chaos baseline is the largest drift of any
# bounds never below these: a hundred float32 roundings of values near 1
FLOORS = {"loss": 1e-5, "outputs": 1e-5, "weights": 1e-5}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(shape, seed=0):
    """``STEPS`` batches and a probe of 32 samples in [0, 1], images or tabular rows."""
    rng = np.random.default_rng(seed)
    x = rng.random((STEPS * BATCH + 32, *shape), dtype=np.float32)
    if len(shape) == 3:  # blurred a little, so that the images have some structure
        x = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2) + np.roll(x, 1, (1, 2))) / 4
    return [x[i * BATCH : (i + 1) * BATCH] for i in range(STEPS)], x[-32:]


def _keras_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _keras_layers(layer)


def _without_dropout(backend):
    """Switch every dropout layer off (rate 0); their masks cannot be shared."""
    import keras
    import torch

    found = 0
    for network in backend.networks.values():
        if backend.framework == "torch":
            for module in network.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p, found = 0.0, found + 1
        else:
            for layer in _keras_layers(network):
                if isinstance(layer, keras.layers.Dropout):
                    layer.rate, found = 0.0, found + 1
    assert found, "no dropout layer found"
    return backend


def _same_latent_noise(backend, seed=0):
    """Make ``latent_noise`` draw z from a NumPy stream seeded by ``seed``."""
    import tensorflow as tf

    rng, latent_dim = np.random.default_rng(seed), backend.hp["latent_dim"]

    def draw(n):
        return rng.standard_normal((int(n), latent_dim)).astype(np.float32)

    if backend.framework == "torch":
        backend.latent_noise = lambda n: backend.to_tensor(draw(n))
    else:  # called while tf.function traces: the draw runs each time the graph does

        def latent_noise(n):
            z = tf.numpy_function(draw, [n], tf.float32, stateful=True)
            return tf.ensure_shape(z, (None, latent_dim))

        backend.latent_noise = latent_noise
    return backend


def _optimizers(backend):
    """Every optimiser a framework model holds, in attributes or in dicts of them."""
    found = []
    for value in vars(backend).values():
        for item in value.values() if isinstance(value, dict) else [value]:
            if hasattr(item, "param_groups") or hasattr(item, "apply_gradients"):
                found.append(item)
    return found


def _adam_epsilon_as_keras(torch_backend, keras_backend):
    """Let the PyTorch twin's Adams add epsilon where Keras' do: rescale it each step.

    Keras' Adam divides by sqrt(v) + eps and bias-corrects the step size;
    PyTorch's divides by sqrt(v_hat) + eps, after the bias correction.  With
    eps / sqrt(1 - beta_2 ** t) at step t, PyTorch computes Keras' update.
    Every Adam takes one step per training step here.
    """
    import keras
    import torch

    epsilons = {
        o.epsilon
        for o in _optimizers(keras_backend)
        if isinstance(o, keras.optimizers.Adam)
    }
    adams = [o for o in _optimizers(torch_backend) if isinstance(o, torch.optim.Adam)]
    assert len(epsilons) == 1 and adams, (epsilons, adams)
    epsilon, train_step, steps = epsilons.pop(), torch_backend.train_step, [0]

    def step(batch):
        steps[0] += 1
        for optimizer in adams:
            for group in optimizer.param_groups:
                group["eps"] = epsilon / np.sqrt(1 - group["betas"][1] ** steps[0])
        return train_step(batch)

    torch_backend.train_step = step
    return torch_backend


def _float_weights(weights):
    """The floating-point arrays of ``get_weights``, without averages and counters."""
    return {
        k: v
        for k, v in weights.items()
        if not k.startswith("ema_") and np.issubdtype(v.dtype, np.floating)
    }


def _weight_gaps(make, torch_model, keras_model, copies):
    """Largest differences of the weights after training: of the twins, of the copies.

    The PyTorch twin's weights are copied into a fresh Keras model, whose
    variables are then compared with the trained Keras twin's one by one.
    Moving variances are compared relative to their value (see the module's
    docstring), the other weights absolutely.
    """
    keys = ("weights", "variances", "chaos_weights", "chaos_variances")
    gaps = dict.fromkeys(keys, 0.0)

    def note(key, a, b, relative):
        gap = np.abs(a - b) / a if relative else np.abs(a - b)
        gaps[key] = max(gaps[key], float(np.max(gap)))

    ported = make("keras")
    for name, network in torch_model.networks.items():
        copy_torch_to_keras(network, ported.networks[name])
        for mine, trained in zip(
            ported.networks[name].weights, keras_model.networks[name].weights
        ):
            variance = "moving_variance" in mine.path
            note(
                "variances" if variance else "weights",
                np.asarray(mine),
                np.asarray(trained),
                variance,
            )
    mine = _float_weights(torch_model.get_weights())
    for copy in copies:
        nudged = _float_weights(copy.get_weights())
        for key, value in mine.items():
            variance = key.endswith("running_var")
            note(
                "chaos_variances" if variance else "chaos_weights",
                value,
                nudged[key],
                variance,
            )
    return gaps


def _values_per_channel(torch_model):
    """Record, while training, how many values per channel each BatchNorm sees."""
    import torch

    seen = []

    def record(module, inputs, output):
        if module.training:
            seen.append(inputs[0].numel() // inputs[0].shape[1])

    for network in torch_model.networks.values():
        for module in network.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.register_forward_hook(record)
    return seen


def _train_alike(make, shape, prepare=None, outputs=None, same_adam=True):
    """Build the twins and the nudged copies, train them alike: the gaps and floors.

    ``prepare(backend)`` readies each model (noise, dropout); ``same_adam``
    rescales PyTorch's Adam epsilon to Keras' placement.  Returns the gaps
    of :func:`contract.train_twins_alike`, those of the weights and moving
    variances, and the floors they are checked against.
    """
    prepare = prepare or (lambda backend: backend)
    torch_model, keras_model = make("torch"), make("keras")
    for name, network in torch_model.networks.items():
        copy_torch_to_keras(network, keras_model.networks[name])

    def make_torch():
        backend = prepare(make("torch"))
        return _adam_epsilon_as_keras(backend, keras_model) if same_adam else backend

    copies = [
        perturbed_copy(make_torch, torch_model.get_weights(), seed=seed)
        for seed in range(COPIES)
    ]
    torch_model, keras_model = prepare(torch_model), prepare(keras_model)
    if same_adam:
        _adam_epsilon_as_keras(torch_model, keras_model)
    values_per_channel = _values_per_channel(torch_model)
    batches, probe = _data(shape)
    gaps = train_twins_alike(torch_model, keras_model, batches, probe, copies, outputs)
    gaps.update(_weight_gaps(make, torch_model, keras_model, copies))
    # Keras traced each of its step functions once: the noise hooks retrace nothing
    traced = [
        f.experimental_get_tracing_count()
        for f in vars(keras_model).values()
        if hasattr(f, "experimental_get_tracing_count")
    ]
    assert max(traced) == 1, traced
    m = min(values_per_channel, default=None)
    return gaps, {**FLOORS, "variances": 1 / (m - 1) if m else 0.0}


def test_ganomaly_twins_train_alike():
    """GANomaly: an Adam step of G and one of D per batch; it draws no noise."""

    def make(framework):
        return GANomaly(
            framework=framework, seed=0, verbose=False, base_filters=8, latent_dim=16
        ).build((16, 16, 1))

    assert_within_chaos(*_train_alike(make, (16, 16, 1)))


def test_alocc_twins_train_alike():
    """ALOCC: an RMSprop step of D, then two of R, on the same NumPy noise.

    RMSprop's first steps are lr / sqrt(1 - rho) = 3.2 lr in the direction of
    the gradient's sign, even for gradients that are round-off (the biases in
    front of BatchNorm): the copies drift apart within a few steps, and so do
    the twins, no faster.
    """

    def make(framework):
        return ALOCC(framework=framework, seed=0, verbose=False, base_filters=8).build(
            (16, 16, 1)
        )

    assert_within_chaos(*_train_alike(make, (16, 16, 1), same_adam=False))


def test_ognet_twins_train_alike():
    """OGNet, phase one: an Adam step of D, then one of G, on the same NumPy noise."""

    def make(framework):
        return OGNet(
            framework=framework, seed=0, verbose=False, base_filters=4, image_size=None
        ).build((28, 28, 1))

    assert_within_chaos(*_train_alike(make, (28, 28, 1)))


def _same_z_no_dropout(backend):
    return _same_latent_noise(_without_dropout(backend))


def _raw_and_averaged(backend, probe):
    """The outputs of the trained weights and of their moving averages (``predict``)."""
    averaged = {f"averaged_{k}": v for k, v in backend.predict(probe).items()}
    return {**backend.raw_outputs(probe), **averaged}


def _bigan(detector_class, **hyperparameters):
    """Tabular EGBAD or ALAD at ten times the default learning rate: ten steps count."""

    def make(framework):
        return detector_class(
            framework=framework,
            seed=0,
            verbose=False,
            learning_rate=1e-4,
            **hyperparameters,
        ).build((20,))

    return make


def test_egbad_twins_train_alike():
    """EGBAD, tabular: Adam steps of D, then of G and E, on the same z (no dropout)."""
    assert_within_chaos(
        *_train_alike(_bigan(EGBAD), (20,), _same_z_no_dropout, _raw_and_averaged)
    )


def test_alad_twins_train_alike():
    """ALAD, tabular: Adam steps of the three Ds, then of G and E, on the same z."""
    assert_within_chaos(
        *_train_alike(_bigan(ALAD), (20,), _same_z_no_dropout, _raw_and_averaged)
    )


@pytest.mark.xfail(
    strict=True,
    reason=(
        "spectral normalisation differs by design: PyTorch trains W and divides by sigma, "
        "Keras trains the kernel it overwrites with W / sigma. Measured over ten steps "
        "(chaos): loss 0.056 (1e-6), outputs 0.037 (1e-6), weights 9e-3 (2e-4)"
    ),
)
def test_alad_twins_with_spectral_norm_train_alike():
    """ALAD, tabular, with spectral normalisation (each framework's own)."""
    assert_within_chaos(
        *_train_alike(
            _bigan(ALAD, spectral_norm=True),
            (20,),
            _same_z_no_dropout,
            _raw_and_averaged,
        )
    )


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Keras' Adam adds epsilon before the bias correction: gradients below about "
        "3e-7 take smaller steps than in PyTorch. Measured over ten steps (chaos): "
        "outputs 3.7e-5 (1.9e-6), weights 9.1e-5 (1.2e-6), loss 5.4e-6 (6e-7)"
    ),
)
def test_egbad_twins_with_each_adams_own_epsilon():
    """EGBAD as above, but each Adam adds epsilon where its framework does.

    When this passes, Keras' Adam computes PyTorch's update: drop the marker,
    and ``_adam_epsilon_as_keras`` with it.
    """
    assert_within_chaos(
        *_train_alike(
            _bigan(EGBAD), (20,), _same_z_no_dropout, _raw_and_averaged, same_adam=False
        )
    )
