"""Copy weights from a PyTorch network into its Keras twin, to show the two are the same
function.

The twins are written so that their weighted layers come in the same order.
:func:`copy_torch_to_keras` walks both lists side by side and converts each
tensor to the other framework's layout:

====================  ==========================  ==========================
layer                 PyTorch layout              Keras layout
====================  ==========================  ==========================
Conv2d                (out, in, kh, kw)           (kh, kw, in, out)
ConvTranspose2d       (in, out, kh, kw)           (kh, kw, out, in)
Linear                (out, in)                   (in, out)
BatchNorm             weight, bias, mean, var     gamma, beta, mean, var
====================  ==========================  ==========================

A spectrally normalised layer (PyTorch's ``parametrizations.spectral_norm``,
Keras' ``SpectralNormalization`` wrapper) is copied as the weight it applies
in inference mode, W / σ, together with the power iteration's vector u.

The equivalence tests of every chapter use it: same weights, same input, same
output within about 1e-4.
"""

from __future__ import annotations

import numpy as np


def _torch_layers(module):
    from torch import nn

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
    return [m for m in module.modules() if isinstance(m, kinds)]


def _keras_layers(model):
    layers = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers"):
            layers.extend(_keras_layers(layer))
        elif layer.weights:
            layers.append(layer)
    return layers


def _is_normalized(torch_layer) -> bool:
    from torch.nn.utils import parametrize

    return parametrize.is_parametrized(torch_layer, "weight")


def _converted(torch_layer) -> list[np.ndarray]:
    import torch
    from torch import nn

    if isinstance(torch_layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return [
            t.detach().cpu().numpy()
            for t in (
                torch_layer.weight,
                torch_layer.bias,
                torch_layer.running_mean,
                torch_layer.running_var,
            )
        ]
    training = torch_layer.training
    # a spectrally normalised weight is W / sigma without a power-iteration step
    torch_layer.eval()
    with torch.no_grad():
        weight = torch_layer.weight.detach().cpu().numpy()
    torch_layer.train(training)
    if isinstance(torch_layer, nn.Conv2d):
        weight = weight.transpose(2, 3, 1, 0)
    elif isinstance(torch_layer, nn.ConvTranspose2d):
        weight = weight.transpose(2, 3, 1, 0)  # (in, out, kh, kw) -> (kh, kw, out, in)
    else:
        weight = weight.T
    arrays = [weight]
    if torch_layer.bias is not None:
        arrays.append(torch_layer.bias.detach().cpu().numpy())
    return arrays


def copy_torch_to_keras(torch_module, keras_model) -> int:
    """Copy every weight of ``torch_module`` into ``keras_model``; return the number of
    layers copied.

    Raises ``ValueError`` when the two have different numbers, kinds or shapes
    of weighted layers, or when only one of a pair is spectrally normalised.
    """
    import keras

    sources, targets = _torch_layers(torch_module), _keras_layers(keras_model)
    if len(sources) != len(targets):
        raise ValueError(
            f"PyTorch network has {len(sources)} weighted layers, "
            f"Keras network has {len(targets)}"
        )
    for source, target in zip(sources, targets):
        arrays = _converted(source)
        wrapped = isinstance(target, keras.layers.SpectralNormalization)
        if wrapped != _is_normalized(source):
            raise ValueError(
                f"{type(source).__name__} -> {target.name}: "
                "spectral normalisation on one side only"
            )
        layer = target.layer if wrapped else target
        shapes = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != shapes:
            raise ValueError(
                f"{type(source).__name__} -> {target.name}: "
                f"shapes {[a.shape for a in arrays]} "
                f"do not fit {shapes}"
            )
        layer.set_weights(arrays)
        if wrapped:
            target.vector_u.assign(
                source.parametrizations.weight[0]._u.detach().cpu().numpy()[None, :]
            )
    return len(sources)
