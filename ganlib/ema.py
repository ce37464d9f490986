"""Exponential moving averages of network weights (Polyak averaging), with each framework's own machinery.

EGBAD and ALAD (Zenati et al., 2018) train with Adam and *score* with an
exponential moving average of every network's weights,

.. math:: \\bar\\theta_t = \\beta\\,\\bar\\theta_{t-1} + (1 - \\beta)\\,\\theta_t, \\qquad \\beta = 0.999,

updated after each optimiser step (the official TF1 code's
``tf.train.ExponentialMovingAverage``).  Adversarial training makes the raw
weights oscillate; their average over the last ~1/(1-β) steps is a steadier
model to score with.

Both frameworks have this built in, and ganlib uses it rather than its own code:

- PyTorch: :class:`torch.optim.swa_utils.AveragedModel` with
  :func:`~torch.optim.swa_utils.get_ema_multi_avg_fn` (:class:`TorchEMA`);
- Keras 3: an optimiser built with ``use_ema=True, ema_momentum=β`` keeps the
  averages of the variables it updates (:class:`KerasEMA` reads them, and swaps
  them into the networks while scoring, like ``keras.callbacks.SwapEMAWeights``).

Both copy the weights at the first update and average from the second on, so
the two twins hold the same averages.  As in the official code, only trainable
weights are averaged: BatchNorm's running statistics are taken from the
trained network.  This module imports neither framework at import time.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


def check_decay(decay) -> float:
    """Return ``decay`` as a float if it is in [0, 1), else raise a ``ValueError``."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be a number in [0, 1), got {decay!r}")
    return float(decay)


class TorchEMA:
    """Moving averages of several PyTorch networks, one ``AveragedModel`` each.

    ``update(name)`` after each optimiser step of that network;
    ``averaged(name)`` is the network to score with (the averaged weights and
    the trained network's BatchNorm statistics).
    """

    def __init__(self, networks: dict, decay: float):
        """One ``AveragedModel`` per network. Shown in chapters/05_egbad.ipynb."""
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.decay = check_decay(decay)
        self.networks = dict(networks)
        # use_buffers=False: average the parameters only, as tf.train.ExponentialMovingAverage over trainable variables
        self.averages = {name: AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=False)
                         for name, net in self.networks.items()}

    def update(self, *names: str) -> None:
        """Fold the current weights of the named networks (all when none is named) into their averages.

        Shown in chapters/05_egbad.ipynb.
        """
        for name in names or tuple(self.networks):
            self.averages[name].update_parameters(self.networks[name])

    def averaged(self, name: str):
        """The averaged copy of network ``name``, with the trained network's buffers, in inference mode."""
        import torch

        module = self.averages[name].module
        with torch.no_grad():
            for mine, trained in zip(module.buffers(), self.networks[name].buffers()):
                mine.copy_(trained)
        return module.eval()

    def get_weights(self) -> dict[str, np.ndarray]:
        """The averages (and each one's update count) as NumPy, keyed ``ema_<network>.<name>``."""
        return {f"ema_{name}.{key}": value.detach().cpu().numpy().copy()
                for name, average in self.averages.items() for key, value in average.state_dict().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        import torch

        for name, average in self.averages.items():
            prefix = f"ema_{name}."
            state = {k[len(prefix):]: torch.from_numpy(np.asarray(v)) for k, v in weights.items() if k.startswith(prefix)}
            average.load_state_dict(state, strict=True)


def keras_adam(learning_rate: float, beta_1: float, ema_decay: float | None = None):
    """Adam as PyTorch configures it (epsilon 1e-8), keeping weight averages when ``ema_decay`` is given."""
    import keras

    if ema_decay is None:
        return keras.optimizers.Adam(learning_rate, beta_1=beta_1, epsilon=1e-8)
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1, epsilon=1e-8,
                                 use_ema=True, ema_momentum=check_decay(ema_decay))


class KerasEMA:
    """The averages that Keras optimisers built with ``use_ema=True`` keep, for several networks.

    ``pairs`` maps a name to ``(model, optimizer)``.  Each optimiser is built on
    its model's trainable variables here, and its averages start at the initial
    weights (as in TF1 and PyTorch; Keras would start them at zero).  The
    optimiser updates them itself in ``apply_gradients``.
    """

    def __init__(self, pairs: dict):
        self.pairs = dict(pairs)
        for model, optimizer in self.pairs.values():
            if not getattr(optimizer, "use_ema", False):
                raise ValueError("KerasEMA needs optimisers built with use_ema=True (see keras_adam)")
            optimizer.build(model.trainable_variables)
            for variable, average in zip(model.trainable_variables, self._averages(optimizer)):
                average.assign(variable)
        first = next(iter(self.pairs.values()))[1] if self.pairs else None
        self.decay = float(first.ema_momentum) if first is not None else None

    @staticmethod
    def _averages(optimizer) -> list:
        # Keras keeps them in this attribute; keras.callbacks.SwapEMAWeights reads the same one
        return list(optimizer._model_variables_moving_average)

    @contextmanager
    def swapped(self, *names: str):
        """Within the block, the named networks (all when none is named) hold their averaged weights.

        Shown in chapters/05_egbad.ipynb.
        """
        names = names or tuple(self.pairs)
        saved = []
        for name in names:
            model, optimizer = self.pairs[name]
            raw = [np.array(v.numpy()) for v in model.trainable_variables]
            saved.append((model, raw))
            for variable, average in zip(model.trainable_variables, self._averages(optimizer)):
                variable.assign(average)
        try:
            yield
        finally:
            for model, raw in saved:
                for variable, value in zip(model.trainable_variables, raw):
                    variable.assign(value)

    def get_weights(self) -> dict[str, np.ndarray]:
        """The averages as NumPy, keyed ``ema_<network>.<index>``, with each optimiser's step count."""
        weights = {}
        for name, (_, optimizer) in self.pairs.items():
            for i, average in enumerate(self._averages(optimizer)):
                weights[f"ema_{name}.{i:03d}"] = np.array(average.numpy())
            weights[f"ema_{name}.iterations"] = np.array(optimizer.iterations.numpy())
        return weights

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for name, (_, optimizer) in self.pairs.items():
            averages = self._averages(optimizer)
            for i, average in enumerate(averages):
                key = f"ema_{name}.{i:03d}"
                if key not in weights:
                    raise ValueError(f"saved weights lack the moving average {key}")
                average.assign(weights[key])
            if f"ema_{name}.iterations" in weights:
                optimizer.iterations.assign(int(weights[f"ema_{name}.iterations"]))


class WithAverages:
    """Mixin for a framework model that keeps moving averages in ``self.ema``: its weights include them.

    Put it before the backend base class (``class M(WithAverages, TorchBackend)``)
    so that saving, loading and the best-epoch snapshot keep the averages,
    which the scores are computed with.
    """

    def get_weights(self) -> dict[str, np.ndarray]:
        return {**super().get_weights(), **self.ema.get_weights()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        super().set_weights({k: v for k, v in weights.items() if not k.startswith("ema_")})
        self.ema.set_weights(weights)
