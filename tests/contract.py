"""Helpers for the contract's tests that every detector's test file repeats (imported as ``contract``)."""

from __future__ import annotations

import importlib

import numpy as np


def make_a_loss_diverge(
    monkeypatch, detector_class, framework: str, loss: str, value: float, at_step: int
) -> None:
    """Patch the framework model's ``train_step`` so that ``loss`` reads ``value`` (NaN or inf) at step ``at_step``.

    The real step still runs; only the reported loss is replaced, which is what
    ``Detector.fit`` checks after every step.
    """
    module, name = detector_class.backends[framework].split(":")
    backend_class = getattr(importlib.import_module(module), name)
    real_step, calls = backend_class.train_step, []

    def step_that_diverges(self, batch):
        calls.append(1)
        losses = real_step(self, batch)
        return {**losses, loss: value} if len(calls) == at_step else losses

    monkeypatch.setattr(backend_class, "train_step", step_that_diverges)


def expected_moving_average(
    values: list[np.ndarray], decay: float, warmup: bool = False
) -> np.ndarray:
    """The averages a decay predicts: a copy at the first update, then a <- d a + (1 - d) w.

    ``d`` is ``decay``, or with ``warmup`` min(decay, (1 + n) / (10 + n)) at
    the update that follows n earlier ones (TF's ``num_updates`` rule).
    """
    average = values[0]
    for n, value in enumerate(values[1:], start=1):
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        average = d * average + (1 - d) * value
    return average


def assert_rejects_bad_input(
    detector_class, x, framework: str = "torch", **hyperparameters
) -> None:
    """The contract's input errors, for a detector fitted on the valid samples ``x`` (at least 20 of them).

    An unknown framework or hyper-parameter, scoring before ``fit``, a wrong
    rank, an empty array, NaN, ``None``, validation labels of the wrong length,
    and samples of another shape than the fitted ones must each raise an error
    that says what was expected.
    """
    import pytest

    with pytest.raises(ValueError, match="framework must be one of"):
        detector_class(framework="jax")
    with pytest.raises(
        TypeError, match="unknown hyper-parameters \\['not_a_parameter'\\]"
    ):
        detector_class(not_a_parameter=3)
    detector = detector_class(framework=framework, verbose=False, **hyperparameters)
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.decision_function(x)
    with pytest.raises(ValueError, match="shape"):
        detector.fit(x[0])
    with pytest.raises(ValueError, match="empty"):
        detector.fit(x[:0])
    with pytest.raises(ValueError, match="NaN"):
        detector.fit(np.full_like(x[:4], np.nan))
    with pytest.raises(TypeError, match="must be a NumPy array"):
        detector.fit(None)
    with pytest.raises(ValueError, match="1-D array of 10 labels"):
        detector.fit(x, epochs=1, validation_data=(x[:10], np.zeros(9)))
    detector.fit(x, epochs=1)
    other_shape = np.zeros((2, *x.shape[1:-1], x.shape[-1] - 1), np.float32)
    with pytest.raises(ValueError, match="the detector was fitted on"):
        detector.decision_function(other_shape)


def train_twins_alike(
    torch_backend, keras_backend, batches, probe, perturbed_backend=None, outputs=None
):
    """Feed both twins the same batches and compare losses and inference outputs after each step.

    The twins start from the same weights (the caller copies them).  Returns
    the largest absolute difference of the losses and of the ``probe``'s
    inference outputs over the steps, for the twins and, when
    ``perturbed_backend`` is given (a copy of the PyTorch twin whose weights
    were nudged by about 1e-6), for PyTorch against that copy: the chaos
    baseline, how far two runs drift apart from round-off alone.
    ``perturbed_backend`` may also be a list of such copies, nudged with
    different seeds: the baseline is then the largest drift of any of them.
    ``outputs(backend, probe)`` gives the outputs compared (default:
    ``backend.predict(probe)``).
    """
    if outputs is None:

        def outputs(backend, probe):
            return backend.predict(probe)

    copies = (
        list(perturbed_backend)
        if isinstance(perturbed_backend, (list, tuple))
        else []
        if perturbed_backend is None
        else [perturbed_backend]
    )

    def largest(a: dict, b: dict) -> float:
        return max(
            float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a
        )

    gaps = {"loss": 0.0, "outputs": 0.0, "chaos_loss": 0.0, "chaos_outputs": 0.0}
    for batch in batches:
        losses = torch_backend.train_step(batch)
        gaps["loss"] = max(
            gaps["loss"], largest(losses, keras_backend.train_step(batch))
        )
        out = outputs(torch_backend, probe)
        twin = outputs(keras_backend, probe)
        gaps["outputs"] = max(gaps["outputs"], largest(out, twin))
        for nudged in copies:
            chaos = nudged.train_step(batch)
            gaps["chaos_loss"] = max(gaps["chaos_loss"], largest(losses, chaos))
            chaos_outputs = outputs(nudged, probe)
            gaps["chaos_outputs"] = max(
                gaps["chaos_outputs"], largest(out, chaos_outputs)
            )
    return gaps


def assert_within_chaos(gaps: dict, floors: dict, factor: float = 10.0) -> None:
    """Each gap is at most ``factor`` times its chaos baseline, or its floor.

    ``gaps`` holds ``k`` (twins) and ``"chaos_" + k`` (PyTorch against its
    nudged copies) for every key ``k`` of ``floors`` (see
    :func:`train_twins_alike`); the floor ``floors[k]`` keeps the bound
    meaningful when round-off alone hardly moves the copies.
    """
    for key, floor in floors.items():
        bound = max(factor * gaps[f"chaos_{key}"], floor)
        assert gaps[key] <= bound, f"{key}: {gaps[key]:.3g} > bound {bound:.3g}; {gaps}"


def perturbed_copy(backend_factory, weights: dict, scale: float = 1e-6, seed: int = 0):
    """A new framework model with ``weights`` nudged by relative noise of ``scale`` (chaos baseline)."""
    rng = np.random.default_rng(seed)
    backend = backend_factory()
    nudged = {
        k: (
            v * (1 + scale * rng.standard_normal(v.shape)).astype(v.dtype)
            if np.issubdtype(v.dtype, np.floating)
            else v
        )
        for k, v in weights.items()
    }
    backend.set_weights(nudged)
    return backend
