"""Image geometry of the DCGAN-style models: pad to a power-of-two square, crop back.

DCGAN encoders halve the image down to 4x4 and finish with a 4x4 convolution
(GANomaly, ALAD), so their input side must be a power of two: 32 for MNIST
and CIFAR-10.  MNIST's 28x28 digits are padded with background (0) to 32x32,
centred.  The official code *resizes* 28 -> 32; padding keeps every pixel as
it is, and :func:`crop` recovers the original frame exactly.
"""

from __future__ import annotations

import numpy as np


def network_size(height: int, width: int) -> int:
    """The square network input's side: the next power of two >= max(height, width, 16).

    A DCGAN encoder halves the image down to 4x4 and ends with a 4x4
    convolution, so the side must be a power of two (the official GANomaly code
    asserts ``isize % 16 == 0``; GANomaly and ALAD use 32 for MNIST and CIFAR-10).

    Shown in chapters/04_ganomaly.ipynb.
    """
    side = max(int(height), int(width), 16)
    return 1 << (side - 1).bit_length()


def _offsets(side: int, height: int, width: int) -> tuple[int, int]:
    return (side - height) // 2, (side - width) // 2


def pad_to_network_size(x: np.ndarray) -> np.ndarray:
    """Images (n, h, w, c) -> (n, s, s, c) with s = :func:`network_size`, zero-padded
    and centred."""
    _, height, width, _ = x.shape
    side = network_size(height, width)
    top, left = _offsets(side, height, width)
    return np.pad(
        np.asarray(x, np.float32),
        ((0, 0), (top, side - height - top), (left, side - width - left), (0, 0)),
    )


def crop(x_net: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`pad_to_network_size`: the centred (height, width) window of
    (n, s, s, c) images."""
    top, left = _offsets(x_net.shape[1], height, width)
    return x_net[:, top : top + height, left : left + width, :]
