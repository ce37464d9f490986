"""Exponential moving averages of network weights (Polyak averaging), with each
framework's own machinery.

EGBAD and ALAD (Zenati et al., 2018) train with Adam and *score* with an
exponential moving average of every network's weights,

.. math:: \\bar\\theta_t = \\beta\\,\\bar\\theta_{t-1} + (1 - \\beta)\\,\\theta_t,
          \\qquad \\beta = 0.999,

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
the two twins hold the same averages.  Two choices differ from the official
code, both because short runs need them:

- **Warm-up** (``warmup=True``, the default of the detectors' ``ema_warmup``):
  the decay of update :math:`n` is :math:`\\min(\\beta, (1+n)/(10+n))`, the
  ``num_updates`` option of ``tf.train.ExponentialMovingAverage``.  With a
  fixed :math:`\\beta = 0.999`, after 150 steps the average still holds 86 %
  of the weights of the first step: a detector trained for a few epochs would
  score with nearly untrained networks, which rank anomalies by input norm.
  With the warm-up the average covers roughly the last tenth of training.
  ``warmup=False`` is the official fixed decay.
- **BatchNorm statistics under the averaged weights.**  Only trainable weights
  are averaged (as in the official code), so the running statistics of the
  trained network do not match the averaged one: scoring with that mixture
  cost ALAD on MNIST most of its ``logits`` score (the review of issue #11).
  :meth:`TorchEMA.recompute_statistics` and
  :meth:`KerasEMA.recompute_statistics` run the scoring path of the averaged
  networks over training batches with BatchNorm in training mode and keep the
  resulting statistics, as :func:`torch.optim.swa_utils.update_bn` does for
  stochastic weight averaging (and with it, in PyTorch).  ``Detector.fit``
  does it after every epoch; until it has been done after the latest update,
  the averaged networks fall back on the trained network's statistics.

This module imports neither framework at import time.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


STATISTICS_ROWS = 2048  # training rows that BatchNorm statistics are recomputed on


def warmed_up_decay(decay: float, updates: int, warmup: bool = True) -> float:
    """The decay of the next update after ``updates`` earlier ones.

    ``min(decay, (1 + updates) / (10 + updates))`` with the warm-up (the
    ``num_updates`` rule of ``tf.train.ExponentialMovingAverage``), else
    ``decay``.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates)) if warmup else decay


def statistics_batches(x: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """At most :data:`STATISTICS_ROWS` rows of ``x``, evenly spaced, in batches.

    No random draw: the same rows after every epoch and in both frameworks.
    """
    rows = x[:: max(1, len(x) // STATISTICS_ROWS)][:STATISTICS_ROWS]
    return [
        rows[i : i + batch_size]
        for i in range(0, len(rows), batch_size)
        if len(rows[i : i + batch_size]) > 1
    ]


def check_decay(decay) -> float:
    """Return ``decay`` as a float if it is in [0, 1), else raise a ``ValueError``."""
    if (
        isinstance(decay, bool)
        or not isinstance(decay, (int, float))
        or not 0.0 <= decay < 1.0
    ):
        raise ValueError(f"ema_decay must be a number in [0, 1), got {decay!r}")
    return float(decay)


class TorchEMA:
    """Moving averages of several PyTorch networks, one ``AveragedModel`` each.

    ``update(name)`` after each optimiser step of that network;
    ``recompute_statistics`` once the averages should be scored with;
    ``averaged(name)`` is the network to score with.
    """

    def __init__(self, networks: dict, decay: float, warmup: bool = True):
        """One ``AveragedModel`` per network. Shown in chapters/05_egbad.ipynb."""
        from torch.optim.swa_utils import AveragedModel

        self.decay, self.warmup = check_decay(decay), bool(warmup)
        self.networks = dict(networks)
        self.fresh = False  # statistics recomputed since the last update?
        # use_buffers=False: average the parameters only, as
        # tf.train.ExponentialMovingAverage over trainable variables
        self.averages = {
            name: AveragedModel(net, multi_avg_fn=self._average, use_buffers=False)
            for name, net in self.networks.items()
        }
        self.tensors: dict[str, tuple] = {}  # gathered at the first update

    def _average(self, averaged: list, current: list, updates) -> None:
        """``AveragedModel``'s update from the second on: a <- d a + (1 - d) w."""
        import torch

        weight = 1.0 - warmed_up_decay(self.decay, int(updates), self.warmup)
        # all of a network's tensors in one call, as get_ema_multi_avg_fn does
        torch._foreach_lerp_(averaged, current, weight)

    def update(self, *names: str) -> None:
        """Fold the current weights of the named networks (all when none is named) into
        their averages.

        Shown in chapters/05_egbad.ipynb.
        """
        import torch

        # AveragedModel.update_parameters(network) does this, but walks both
        # module trees and regroups their tensors at every call: 14 % of an
        # EGBAD tabular step on the CPU.  Same arithmetic, on the lists above.
        for name in names or tuple(self.networks):
            average = self.averages[name]
            if name not in self.tensors:
                # the Parameter objects themselves, not views of their data: a
                # later .to(memory_format=...) swaps the data, not the objects;
                # optimisers and load_state_dict write in place
                self.tensors[name] = tuple(
                    list(tensors)
                    for tensors in (
                        average.module.parameters(),
                        self.networks[name].parameters(),
                        average.module.buffers(),
                        self.networks[name].buffers(),
                    )
                )
            averaged, current, averaged_buffers, buffers = self.tensors[name]
            updates = int(average.n_averaged)
            with torch.no_grad():
                if updates == 0:  # the first update copies the weights
                    torch._foreach_copy_(averaged, current)
                else:
                    self._average(averaged, current, updates)
                # BatchNorm statistics follow the trained network until recomputed
                for mine, trained in zip(averaged_buffers, buffers, strict=True):
                    mine.copy_(trained)
                average.n_averaged += 1
        self.fresh = False

    def recompute_statistics(self, forward, batches: list, names=()) -> None:
        """BatchNorm statistics of the averaged networks, from ``forward`` over
        ``batches``.

        ``forward(*networks, batch)`` is the model's scoring path, called with
        the averaged copies of ``names`` (all networks when empty) in
        training mode; :func:`torch.optim.swa_utils.update_bn` resets their
        statistics and averages them over the batches.
        """
        import torch
        from torch.optim.swa_utils import update_bn

        names = tuple(names) or tuple(self.networks)
        modules = [self.averages[name].module for name in names]

        class ScoringPath(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.parts = torch.nn.ModuleList(modules)

            def forward(self, batch):
                return forward(*self.parts, batch)

        with torch.no_grad():
            update_bn(batches, ScoringPath())
        self.fresh = True

    def averaged(self, name: str):
        """The averaged copy of network ``name``, in inference mode.

        Its BatchNorm statistics are the recomputed ones, or, when the
        averages have changed since, the trained network's.
        """
        import torch

        module = self.averages[name].module
        if not self.fresh:
            with torch.no_grad():
                for mine, trained in zip(
                    module.buffers(), self.networks[name].buffers()
                ):
                    mine.copy_(trained)
        return module.eval()

    def get_weights(self) -> dict[str, np.ndarray]:
        """The averages (and each one's update count) as NumPy, keyed
        ``ema_<network>.<name>``.

        ``ema_fresh`` says whether their BatchNorm buffers are recomputed ones.
        """
        weights = {
            f"ema_{name}.{key}": value.detach().cpu().numpy().copy()
            for name, average in self.averages.items()
            for key, value in average.state_dict().items()
        }
        return {**weights, "ema_fresh": np.array(self.fresh)}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        import torch

        for name, average in self.averages.items():
            prefix = f"ema_{name}."
            state = {
                k[len(prefix) :]: torch.from_numpy(np.asarray(v))
                for k, v in weights.items()
                if k.startswith(prefix)
            }
            average.load_state_dict(state, strict=True)
        self.fresh = bool(weights.get("ema_fresh", False))


def keras_adam(learning_rate: float, beta_1: float, ema_decay: float | None = None):
    """Adam as PyTorch configures it (epsilon 1e-8), keeping weight averages when
    ``ema_decay`` is given."""
    import keras

    if ema_decay is None:
        return keras.optimizers.Adam(learning_rate, beta_1=beta_1, epsilon=1e-8)
    return keras.optimizers.Adam(
        learning_rate,
        beta_1=beta_1,
        epsilon=1e-8,
        use_ema=True,
        ema_momentum=check_decay(ema_decay),
    )


def _batch_norm_layers(model) -> list:
    """The BatchNormalization layers of ``model`` and of the models nested in it."""
    import keras

    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        else:
            found.extend(_batch_norm_layers(layer))
    return found


class KerasEMA:
    """The averages that Keras optimisers built with ``use_ema=True`` keep, for several
    networks.

    ``pairs`` maps a name to ``(model, optimizer)``.  Each optimiser is built on
    its model's trainable variables here, and its averages start at the initial
    weights (as in TF1 and PyTorch; Keras would start them at zero).  The
    optimiser updates them itself in ``apply_gradients``; with ``warmup``, its
    ``ema_momentum`` becomes a variable that :meth:`before_step` sets to the
    warmed-up decay before each step (the graph reads it there).
    """

    def __init__(self, pairs: dict, warmup: bool = True):
        import tensorflow as tf

        self.pairs = dict(pairs)
        self.warmup = bool(warmup)
        self.statistics: dict[str, list] = {}  # recomputed BatchNorm statistics
        self.fresh = False
        self.decay = None
        for model, optimizer in self.pairs.values():
            if not getattr(optimizer, "use_ema", False):
                raise ValueError(
                    "KerasEMA needs optimisers built with use_ema=True (see keras_adam)"
                )
            optimizer.build(model.trainable_variables)
            for variable, average in zip(
                model.trainable_variables, self._averages(optimizer)
            ):
                average.assign(variable)
            self.decay = float(optimizer.ema_momentum)
            if self.warmup:
                optimizer.ema_momentum = tf.Variable(
                    self.decay, trainable=False, dtype=tf.float32
                )
        if self.pairs:
            self.before_step()

    @staticmethod
    def _averages(optimizer) -> list:
        # Keras keeps them in this attribute; keras.callbacks.SwapEMAWeights reads the
        # same one
        return list(optimizer._model_variables_moving_average)

    def before_step(self) -> None:
        """Called before each training step: set the decay of the coming update."""
        self.fresh = False
        if not self.warmup:
            return
        for _, optimizer in self.pairs.values():
            updates = int(optimizer.iterations.numpy())
            optimizer.ema_momentum.assign(warmed_up_decay(self.decay, updates))

    @contextmanager
    def swapped(self, *names: str):
        """Within the block, the named networks (all when none is named) hold their
        averaged weights.

        And the BatchNorm statistics recomputed for them, when the averages
        have not changed since (else the trained network's).  Shown in
        chapters/05_egbad.ipynb.
        """
        names = names or tuple(self.pairs)
        saved = []
        for name in names:
            model, optimizer = self.pairs[name]
            saved.append((model, [np.array(v.numpy()) for v in model.weights]))
            for variable, average in zip(
                model.trainable_variables, self._averages(optimizer)
            ):
                variable.assign(average)
            if self.fresh and name in self.statistics:
                for variable, value in zip(
                    self._statistics_variables(model), self.statistics[name]
                ):
                    variable.assign(value)
        try:
            yield
        finally:
            for model, values in saved:
                for variable, value in zip(model.weights, values):
                    variable.assign(value)

    @staticmethod
    def _statistics_variables(model) -> list:
        return [
            v
            for layer in _batch_norm_layers(model)
            for v in (layer.moving_mean, layer.moving_variance)
        ]

    def recompute_statistics(self, forward, batches: list, names=()) -> None:
        """BatchNorm statistics of the averaged networks, from ``forward`` over
        ``batches``.

        ``forward(batch, training=True)`` runs the model's scoring path; it is
        called with the averaged weights of ``names`` (all when empty)
        swapped in.  A momentum of k/(k+1) at batch k makes Keras's moving
        statistics the plain mean over the batches, as ``update_bn`` does.
        """
        names = tuple(names) or tuple(self.pairs)
        layers = [
            layer for name in names for layer in _batch_norm_layers(self.pairs[name][0])
        ]
        self.fresh = False  # swap in the averaged weights only, not stale statistics
        with self.swapped(*names):
            momenta = [layer.momentum for layer in layers]
            try:
                for k, batch in enumerate(batches):
                    for layer in layers:
                        layer.momentum = k / (k + 1)
                    forward(batch, training=True)
            finally:
                for layer, momentum in zip(layers, momenta):
                    layer.momentum = momentum
            self.statistics = {
                name: [
                    np.array(v.numpy())
                    for v in self._statistics_variables(self.pairs[name][0])
                ]
                for name in names
            }
        self.fresh = True

    def get_weights(self) -> dict[str, np.ndarray]:
        """The averages as NumPy, keyed ``ema_<network>.<index>``, with each optimiser's
        step count.

        And the recomputed BatchNorm statistics (``ema_<network>.statistics.<index>``)
        when they match the averages.
        """
        weights = {}
        for name, (_, optimizer) in self.pairs.items():
            for i, average in enumerate(self._averages(optimizer)):
                weights[f"ema_{name}.{i:03d}"] = np.array(average.numpy())
            weights[f"ema_{name}.iterations"] = np.array(optimizer.iterations.numpy())
            if self.fresh:
                for i, value in enumerate(self.statistics.get(name, [])):
                    weights[f"ema_{name}.statistics.{i:03d}"] = value
        return weights

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for name, (model, optimizer) in self.pairs.items():
            averages = self._averages(optimizer)
            for i, average in enumerate(averages):
                key = f"ema_{name}.{i:03d}"
                if key not in weights:
                    raise ValueError(f"saved weights lack the moving average {key}")
                average.assign(weights[key])
            if f"ema_{name}.iterations" in weights:
                optimizer.iterations.assign(int(weights[f"ema_{name}.iterations"]))
            prefix = f"ema_{name}.statistics."
            saved = [v for k, v in sorted(weights.items()) if k.startswith(prefix)]
            if saved:
                self.statistics[name] = saved
        self.fresh = any(".statistics." in k for k in weights)


class WithAverages:
    """Mixin for a framework model that keeps moving averages in ``self.ema``: its
    weights include them.

    Put it before the backend base class (``class M(WithAverages, TorchBackend)``)
    so that saving, loading and the best-epoch snapshot keep the averages,
    which the scores are computed with.  After every epoch the BatchNorm
    statistics of the averaged ``scoring_networks`` are recomputed through the
    model's ``_forward`` (its scoring path) on training rows.
    """

    scoring_networks: tuple[str, ...] = ()  # in the order ``_forward`` takes them

    def end_of_epoch(self, x: np.ndarray, batch_size: int) -> None:
        batches = statistics_batches(x, batch_size)
        if batches:
            self.ema.recompute_statistics(self._forward, batches, self.scoring_networks)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {**super().get_weights(), **self.ema.get_weights()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        super().set_weights(
            {k: v for k, v in weights.items() if not k.startswith("ema_")}
        )
        self.ema.set_weights(weights)


class TorchAverages(WithAverages):
    """:class:`WithAverages` for a PyTorch model: its ``_forward(*networks, batch)``
    scores with the averaged copies, or with the trained networks."""

    def outputs(self, batch):
        """Scoring outputs with the averaged weights (call through ``predict``:
        inference mode, no gradients)."""
        return self._forward(*map(self.ema.averaged, self.scoring_networks), batch)

    def raw_outputs(self, batch):
        """These outputs with the trained (not averaged) weights, in inference mode."""
        import torch

        self.train_mode(False)
        with torch.no_grad():
            return self._forward(
                *(self.networks[k] for k in self.scoring_networks), batch
            )


class KerasAverages(WithAverages):
    """:class:`WithAverages` for a Keras model: its ``_forward(batch)`` scores with
    whatever weights the networks hold, the averages swapped in or the trained ones."""

    def outputs(self, batch):
        """Scoring outputs with the averaged weights swapped in, in inference mode."""
        with self.ema.swapped(*self.scoring_networks):
            return self._forward(batch)

    def raw_outputs(self, batch):
        """These outputs with the trained (not averaged) weights, in inference mode."""
        return self._forward(batch)
