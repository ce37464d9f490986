"""The contract between :class:`ganlib.detector.Detector` and a framework model.

A framework model (a *backend*) owns the networks and optimisers of one
detector in one framework.  :class:`ganlib.backend_torch.TorchBackend` and
:class:`ganlib.backend_keras.KerasBackend` fill in what differs between the
frameworks (seeding, device, tensors, weights); a paper's model then
implements two methods:

- ``train_step(batch)``: one optimisation step on a NumPy batch, returning its
  losses as floats;
- ``outputs(batch)``: the NumPy arrays its anomaly score is computed from.
"""

from __future__ import annotations

import contextlib

import numpy as np


class Backend:
    """Base of every framework model."""

    framework = ""

    def __init__(self, input_shape: tuple[int, ...], hyperparameters: dict, seed: int):
        self.seed_everything(seed)
        self.input_shape = tuple(input_shape)
        self.hp = dict(hyperparameters)
        self.device = self.pick_device()
        self.networks: dict = {}

    @staticmethod
    def seed_everything(seed: int) -> None:
        raise NotImplementedError

    @staticmethod
    def pick_device():
        raise NotImplementedError

    @classmethod
    def prepare_threads(cls, threads: int | None) -> None:
        """Called before the networks are built, with the detector's CPU thread
        count."""

    def thread_limit(self, threads: int | None):
        """A context in which the framework computes on ``threads`` CPU threads."""
        return contextlib.nullcontext()

    @classmethod
    def build_scope(cls, precision: str):
        """A context to build the networks in for ``precision`` (see ``Detector``)."""
        return contextlib.nullcontext()

    def finish_build(self, precision: str) -> None:
        """Called once the networks exist, with the detector's ``precision``."""

    def precision_scope(self, precision: str):
        """A context in which training steps and scoring compute in ``precision``."""
        return contextlib.nullcontext()

    def current_threads(self) -> int:
        """The CPU threads the framework computes on now."""
        raise NotImplementedError

    @property
    def device_name(self) -> str:
        return str(self.device)

    def train_step(self, batch: np.ndarray) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the losses."""
        raise NotImplementedError

    def end_of_epoch(self, x: np.ndarray, batch_size: int) -> None:
        """Called by ``fit`` after each epoch on the training rows ``x``, before
        scoring."""

    def outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The networks' outputs the anomaly score is computed from."""
        raise NotImplementedError

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """``outputs`` in inference mode (BatchNorm statistics frozen, dropout off)."""
        raise NotImplementedError

    def get_weights(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def parameter_counts(self) -> dict[str, int]:
        raise NotImplementedError
