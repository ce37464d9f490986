"""A plain convolutional autoencoder: the reconstruction baseline every GAN chapter is
compared with.

It is the GAN models without the adversary: an encoder squeezes an image into a
small code, a decoder rebuilds it, and training minimises the mean squared
reconstruction error on normal images only.  An image the model never learned
to rebuild should come back worse, so the anomaly score is

.. math:: A(x) = \\frac{1}{HWC}
          \\lVert x - \\mathrm{Dec}(\\mathrm{Enc}(x)) \\rVert_2^2 .

The networks are in :mod:`ganlib.autoencoder.torch_model` and
:mod:`ganlib.autoencoder.keras_model`; the score, written once, is below.
"""

from __future__ import annotations

import numpy as np

from ..detector import Detector


def reconstruction_error(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Per-sample mean squared error between ``x`` and its reconstruction ``x_hat``.

    Any trailing shape.  Shown in chapters/01_setting.ipynb.
    """
    return np.mean(np.square(x - x_hat).reshape(len(x), -1), axis=1)


class ConvAutoencoder(Detector):
    """Convolutional autoencoder detector for images (28x28 or 32x32, 1 or 3 channels).

    Encoder: two 4x4 stride-2 convolutions (32 and 64 filters, LeakyReLU 0.2,
    BatchNorm on the second), then a dense layer to a ``latent_dim`` code.
    Decoder: the mirror image with transposed convolutions and a sigmoid
    output.  Adam, mean squared error.  Height and width must be multiples of 4.
    """

    backends = {
        "torch": "ganlib.autoencoder.torch_model:AutoencoderTorch",
        "keras": "ganlib.autoencoder.keras_model:AutoencoderKeras",
    }
    default_framework = "torch"
    defaults = {
        "latent_dim": 32,
        "learning_rate": 1e-3,
        "batch_size": 128,
        "epochs": 20,
        "score": "reconstruction_error",
    }
    score_names = ("reconstruction_error",)
    input_kind = "image"

    def fit(self, X, y=None, **kwargs):
        """Train on normal images ``X`` (see :meth:`ganlib.detector.Detector.fit`)."""
        shape = np.shape(X)
        if len(shape) == 4 and (shape[1] % 4 or shape[2] % 4):
            raise ValueError(
                "ConvAutoencoder needs height and width divisible by 4, "
                f"got {shape[1]}x{shape[2]}"
            )
        return super().fit(X, y, **kwargs)

    def scores_from_outputs(self, x, outputs):
        """The one score, the mean squared reconstruction error. Shown in
        chapters/01_setting.ipynb."""
        return {
            "reconstruction_error": reconstruction_error(x, outputs["reconstruction"])
        }

    def reconstruct(self, X) -> np.ndarray:
        """Reconstructions of ``X`` in inference mode, in the shape and range of
        ``X``."""
        return self.model_outputs(X)["reconstruction"]
