"""Helpers for the contract's tests that every detector's test file repeats (imported as ``contract``)."""

from __future__ import annotations

import importlib

import numpy as np


def make_a_loss_diverge(monkeypatch, detector_class, framework: str, loss: str, value: float, at_step: int) -> None:
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


def expected_moving_average(values: list[np.ndarray], decay: float) -> np.ndarray:
    """The averages a decay predicts: a copy at the first update, then a <- decay a + (1 - decay) w."""
    average = values[0]
    for value in values[1:]:
        average = decay * average + (1 - decay) * value
    return average


def assert_rejects_bad_input(detector_class, x, framework: str = "torch", **hyperparameters) -> None:
    """The contract's input errors, for a detector fitted on the valid samples ``x`` (at least 20 of them).

    An unknown framework or hyper-parameter, scoring before ``fit``, a wrong
    rank, an empty array, NaN, ``None``, validation labels of the wrong length,
    and samples of another shape than the fitted ones must each raise an error
    that says what was expected.
    """
    import pytest

    with pytest.raises(ValueError, match="framework must be one of"):
        detector_class(framework="jax")
    with pytest.raises(TypeError, match="unknown hyper-parameters \\['not_a_parameter'\\]"):
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
