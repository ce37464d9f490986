"""What every Keras 3 model (TensorFlow backend) shares: seeding, device, NumPy weights.

The Keras twin of a paper's model subclasses :class:`KerasBackend`, registers
its ``keras.Model`` networks in ``self.networks`` and implements ``train_step``
with ``tf.GradientTape``, the explicit counterpart of PyTorch's
``loss.backward(); optimizer.step()``.  This module is imported only when a
detector is built with ``framework="keras"``.
"""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "2"
)  # keep TensorFlow's C++ start-up chatter out of outputs

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .backend import Backend  # noqa: E402
from .runmode import available_cpus  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "ganlib's Keras models need KERAS_BACKEND=tensorflow, "
        f"found {keras.backend.backend()!r}"
    )


def seed_everything(seed: int) -> None:
    """Seed Keras and TensorFlow, and ask TensorFlow for deterministic kernels.

    ``keras.utils.set_random_seed`` also re-seeds Python's global generator,
    from which Keras draws each layer's seed while the networks are built;
    :meth:`ganlib.detector.Detector.build` puts Python's and NumPy's global
    states back once the networks exist, so the user's streams are untouched.
    """
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except (
        RuntimeError
    ):  # already configured once the runtime has started: nothing to change
        pass


def pick_device() -> str:
    """``"/GPU:0"`` when TensorFlow sees a GPU, else ``"/CPU:0"``
    (TensorFlow places ops there by default)."""
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"


def dcgan_initializer(seed: int | None = None):
    """DCGAN's N(0, 0.02) weight initialiser (Radford et al., 2016, section 4)."""
    return keras.initializers.RandomNormal(0.0, 0.02, seed=seed)


def _output_layers(model) -> list:
    """The innermost layers producing ``model``'s outputs (nested models unwrapped)."""
    if isinstance(model, keras.Sequential):
        return _output_layers(model.layers[-1])
    if isinstance(model, keras.Model) and getattr(model, "outputs", None):
        layers = []
        for tensor in keras.tree.flatten(model.outputs):
            layers += _output_layers(tensor._keras_history.operation)
        return layers
    return [model]


def batch_norm(**kwargs):
    """``BatchNormalization`` with PyTorch's momentum (Keras 0.9) and epsilon (1e-5).

    Every Keras twin uses it, so that both frameworks normalise alike and
    weights copied from one twin to the other give the same outputs.
    """
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)


def _environment_threads() -> int | None:
    """``TF_NUM_INTRAOP_THREADS`` as a number, or None where it is unset or not one."""
    value = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


class KerasBackend(Backend):
    """Base of every Keras model: owns the networks and the NumPy boundary."""

    framework = "keras"
    seed_everything = staticmethod(seed_everything)
    pick_device = staticmethod(pick_device)

    @classmethod
    def prepare_threads(cls, threads: int | None) -> None:
        """Give TensorFlow ``threads`` threads, if its runtime has not started yet.

        TensorFlow fixes its thread pools at its first operation and cannot
        change them afterwards, so the first Keras detector of a process (or
        ``TF_NUM_INTRAOP_THREADS``) decides for the whole process.  ``None``
        leaves an explicit ``TF_NUM_INTRAOP_THREADS`` alone and otherwise
        uses the CPUs this process may use.
        """
        threading = tf.config.threading
        if threads is None:
            if _environment_threads() is not None:
                return
            threads = available_cpus()
        if threading.get_intra_op_parallelism_threads() == threads:
            return
        try:
            threading.set_intra_op_parallelism_threads(threads)
            threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # the runtime has started: its pools stay as they are
            pass

    def current_threads(self) -> int:
        """TensorFlow's intra-op threads: as set, else as its environment variable
        sets them, else one per CPU this process may use (TensorFlow's default)."""
        configured = tf.config.threading.get_intra_op_parallelism_threads()
        return configured or _environment_threads() or available_cpus()

    def finish_build(self, precision: str) -> None:
        """Under mixed precision, make every network's output layers compute in float32.

        Inputs and losses are float32; a network built under ``mixed_bfloat16``
        returns bfloat16, which TensorFlow will not subtract from a float32
        tensor.  Keras' advice is a float32 last layer, which also keeps the
        losses' precision.
        """
        if precision != "bfloat16":
            return
        for network in self.networks.values():
            for layer in _output_layers(network):
                layer.dtype_policy = keras.DTypePolicy("float32")

    @staticmethod
    def to_tensor(batch: np.ndarray) -> tf.Tensor:
        return tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))

    @staticmethod
    def to_numpy(tensor) -> np.ndarray:
        array = keras.ops.convert_to_numpy(tensor)
        # bfloat16 (mixed precision) becomes float32, the dtype scores are computed in
        return (
            array
            if array.dtype in (np.float32, np.float64)
            else array.astype(np.float32)
        )

    @classmethod
    @contextlib.contextmanager
    def build_scope(cls, precision: str):
        """Build the networks under Keras' ``mixed_bfloat16`` policy when asked, then
        restore it.

        Keras fixes a layer's dtype policy when the layer is created: the
        global policy is switched only while this detector's layers are made,
        so other Keras models of the process keep theirs.  Variables stay
        float32; layers compute in bfloat16.
        """
        if precision != "bfloat16":
            yield
            return
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """``outputs`` in inference mode: subclasses call their networks with
        ``training=False``."""
        return self.outputs(batch)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Every variable (BatchNorm moving statistics included) as NumPy, keyed
        ``network.index.path``."""
        return {
            f"{net}.{i:03d}.{v.path}": np.array(v.numpy())
            for net, model in self.networks.items()
            for i, v in enumerate(model.weights)
        }

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for net, model in self.networks.items():
            prefix = net + "."
            values = [v for k, v in sorted(weights.items()) if k.startswith(prefix)]
            if len(values) != len(model.weights):
                raise ValueError(
                    f"{net}: {len(values)} saved arrays "
                    f"for {len(model.weights)} variables"
                )
            for variable, value in zip(model.weights, values):
                if tuple(variable.shape) != tuple(value.shape):
                    raise ValueError(
                        f"{net}: variable {variable.path} "
                        f"has shape {tuple(variable.shape)}, "
                        f"saved array has {tuple(value.shape)}"
                    )
                variable.assign(value)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per network."""
        return {
            net: int(sum(np.prod(v.shape) for v in model.trainable_weights))
            for net, model in self.networks.items()
        }
