"""Loss algebra written once for NumPy, PyTorch and Keras 3.

Each function takes the framework's array operations as ``ops``: the
``numpy`` module, the ``torch`` module or ``keras.ops``.  All three provide
``abs``, ``exp``, ``log1p`` and ``mean`` with the same meaning, so one line of
algebra serves both twins and the NumPy scoring code, and the chapters can
contrast what really differs between the frameworks: networks and gradient
mechanics.
"""

from __future__ import annotations

import numpy as np


def softplus(v, ops=np):
    """:math:`\\log(1 + e^{v})`, computed without overflow as
    :math:`\\max(v, 0) + \\log(1 + e^{-|v|})`.

    >>> float(softplus(np.array(0.0)))  # log 2
    0.6931471805599453
    """
    fused = _fused_softplus(ops)
    if fused is not None:
        return fused(v)
    return (v + ops.abs(v)) / 2 + ops.log1p(ops.exp(-ops.abs(v)))


def _fused_softplus(ops):
    """The framework's own softplus kernel, or ``None`` for NumPy.

    It computes the same overflow-free formula in one operation instead of
    eight, and its gradient in one more: on the book's small networks each
    operation costs more in dispatch than in arithmetic, and ALAD's step
    evaluates twelve cross-entropies.
    """
    if ops is np:
        return None
    if hasattr(ops, "softplus"):  # keras.ops
        return ops.softplus
    functional = getattr(getattr(ops, "nn", None), "functional", None)  # torch
    return getattr(functional, "softplus", None)


def bce_with_logits(logits, target, ops=np):
    """Binary cross-entropy of ``sigmoid(logits)`` against ``target``, averaged over
    every element.

    It is computed as
    :math:`-[t \\log \\sigma(l) + (1 - t) \\log(1 - \\sigma(l))]
    = \\mathrm{softplus}(l) - t\\,l`, which never takes the log of a saturated
    sigmoid.  ``target`` is an array of the logits' shape or a number (1.0 for
    "real", 0.0 for "fake").

    >>> round(float(bce_with_logits(np.array([0.0]), 1.0)), 4)
    0.6931
    """
    if isinstance(target, (int, float)) and target in (0.0, 1.0):
        # softplus(l) - l = softplus(-l): the labels "real" and "fake" need no product
        return ops.mean(softplus(-logits if target else logits, ops))
    return ops.mean(softplus(logits, ops) - target * logits)
