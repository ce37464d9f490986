"""What every PyTorch model in ganlib shares: device, seeding, NumPy <-> tensor, weights
as NumPy.

A paper's PyTorch model subclasses :class:`TorchBackend`, builds its networks
in ``__init__`` and registers them in ``self.networks``, and implements
``train_step`` (one optimisation step on one batch, returning the losses) and
``outputs`` (the NumPy arrays its anomaly score is computed from).  This module
is imported only when a detector is built with ``framework="torch"``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from .backend import Backend
from .runmode import available_cpus


def seed_everything(seed: int) -> None:
    """Seed PyTorch and ask it for deterministic kernels, so that one seed gives one
    result on CPU.

    Deterministic mode also fills every new uninitialised tensor with NaN by
    default (about 4 % of an ALOCC step's CPU time).  ganlib never reads
    memory it has not written, so that fill buys nothing and is switched off.
    """
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


@contextlib.contextmanager
def frozen(*networks: nn.Module):
    """No weight gradients for ``networks`` inside the context: a step that only
    reads them (as a Keras ``GradientTape`` asked for other variables' gradients)
    skips that work.  Each weight's ``requires_grad`` is put back after, also when
    the step is interrupted.
    """
    params = [p for network in networks for p in network.parameters()]
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, wanted in zip(params, before):
            p.requires_grad_(wanted)


def pick_device() -> torch.device:
    """The first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al., 2016, section 4): N(0, 0.02) weights,
    BatchNorm N(1, 0.02).

    Apply it with ``network.apply(dcgan_init)``, so that it reaches every sub-module.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def glorot_init(module: nn.Module) -> None:
    """Keras' default initialisation (Glorot-uniform weights, zero biases), for twins
    that must match Keras."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def adam(params, **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel: one pass over all parameters a step.

    The default implementation launches several operations per parameter
    tensor; on the book's small networks that overhead is most of an
    optimiser step.  Measured on the 2-core CPU, one thread, in-process
    alternating blocks: training samples/s +8 % (EGBAD, GANomaly) to +14 %
    (ALAD).  The arithmetic is Adam's; only the kernel differs.  PyTorch
    before 2.4 has no fused CPU kernel and gets the default one.

    One safety net is lost: the fused kernel updates the weights without
    bumping autograd's version counters, so a step that back-propagates
    through weights an optimiser has already changed is not stopped with
    "modified by an inplace operation".  The twins that use it are tested
    against their Keras twins; OGNet, whose chapter shows that very error,
    keeps the default Adam.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except RuntimeError:  # no fused kernel for these parameters' device
        return torch.optim.Adam(params, **kwargs)


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TF/Keras ``padding="same"``: ``ceil(input / stride)`` outputs.

    When the total padding is odd, Keras puts the extra row and column at the
    bottom and right, which PyTorch's symmetric ``padding=`` cannot express
    (a 5x5, stride-2 convolution on 28x28 needs 1 row above and 2 below).  The
    padding is computed from the input size at every call, so one layer serves
    28x28 and 32x32 images alike, and a Keras twin with the same weights gives
    the same output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        bias: bool = True,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(
            reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride)
        ):
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:
            # symmetric: the convolution pads by itself, without a padded copy of x
            return nn.functional.conv2d(
                x, self.weight, self.bias, self.stride, (pads[2], pads[0])
            )
        return super().forward(nn.functional.pad(x, pads))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on the CPU.

    PyTorch's CPU dropout draws one Bernoulli variable per element, and this
    book's small discriminators put dropout after every layer.  Uniform
    numbers compared with ``p`` are cheaper: forward + backward of the dropout
    alone on a 64 x 1024 batch took 176 against 414 us
    (64 x 128: 43 against 68 us), one thread, quiet machine
    (``tools/dropout_timing.py``, ``results/speed/dropout.json``).  The kept
    elements are scaled by ``1 / (1 - p)`` as ``nn.Dropout`` does; the drop
    rate is ``p`` exactly (to float32's resolution).  On a GPU, whose dropout
    kernel is already fast, and outside training it is ``nn.Dropout`` itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cpu_training = self.training and x.device.type == "cpu" and not self.inplace
        if not (cpu_training and 0.0 < self.p < 1.0):
            return super().forward(x)
        # the mask 1 / (1 - p) or 0 made in place in the uniform draw's own memory
        # (cheaper than casting a boolean mask to float); one multiplication in
        # the graph: its backward is one multiplication too
        mask = torch.rand(x.shape).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * mask.to(x.dtype)  # bfloat16 under autocast; float32 a no-op


class ChannelsLastFlatten(nn.Module):
    """Flatten an NCHW map in (H, W, C) order, as Keras' ``Flatten`` does.

    With the same flattening order, a dense layer after it has the same weight
    matrix in both frameworks, so weights can be copied between the twins.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


class ChannelsLastUnflatten(nn.Module):
    """Inverse of :class:`ChannelsLastFlatten`: a vector to an NCHW map, read in
    (H, W, C) order."""

    def __init__(self, height: int, width: int, channels: int):
        super().__init__()
        self.shape = (height, width, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, *self.shape).permute(0, 3, 1, 2)


class TorchBackend(Backend):
    """Base of every PyTorch model: owns the networks, the device and the NumPy
    boundary."""

    framework = "torch"
    seed_everything = staticmethod(seed_everything)
    pick_device = staticmethod(pick_device)

    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """NumPy batch to a float tensor on the device; images go from NHWC to
        PyTorch's NCHW."""
        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if tensor.ndim == 4:
            tensor = tensor.permute(0, 3, 1, 2)
        return tensor.to(self.device)

    @staticmethod
    def to_numpy(tensor: torch.Tensor) -> np.ndarray:
        """Tensor to NumPy; image maps go back from NCHW to NHWC."""
        # bfloat16 (mixed precision) has no NumPy type: scores are computed in float32
        array = tensor.detach().float().cpu().numpy()
        return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array

    def finish_build(self, precision: str) -> None:
        """Store convolutional networks' weights channels-last (NHWC in memory).

        The batches arrive as NHWC arrays, and ``to_tensor``'s NCHW view of
        them is already channels-last: with the weights in the same layout,
        oneDNN (CPU) and cuDNN (GPU) convolve without reordering memory at
        every layer.  The arithmetic is the same; only the layout changes.
        """
        convolutions = (nn.Conv2d, nn.ConvTranspose2d)
        for network in self.networks.values():
            if any(isinstance(m, convolutions) for m in network.modules()):
                network.to(memory_format=torch.channels_last)

    def precision_scope(self, precision: str):
        """``torch.autocast`` to bfloat16 on the model's device when
        ``precision="bfloat16"``.

        Weights, optimiser states and losses stay float32; matrix products and
        convolutions run in bfloat16, which CPUs with AVX-512 BF16 or AMX and
        every recent GPU compute natively.  bfloat16 keeps float32's exponent
        range, so no loss scaling is needed (unlike float16).

        The weight cache is off: autocast keeps the bfloat16 copy of each
        weight until its region ends, and ``fit`` runs every step of every
        epoch in one region, so with the cache each step would compute with
        the copies cast at the first step while the optimiser updates the
        float32 weights in place (PyTorch's examples enter autocast anew for
        each forward pass instead).
        """
        return torch.autocast(
            self.device.type,
            dtype=torch.bfloat16,
            enabled=precision == "bfloat16",
            cache_enabled=False,
        )

    @contextlib.contextmanager
    def thread_limit(self, threads: int | None):
        """Compute on ``threads`` CPU threads inside the context; PyTorch's own count is
        restored after.

        ``None`` keeps PyTorch's count (``OMP_NUM_THREADS`` or the machine's
        cores), capped at the CPUs this process may use.
        """
        before = torch.get_num_threads()
        threads = threads or min(before, available_cpus())
        if threads != before:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    def current_threads(self) -> int:
        return torch.get_num_threads()

    def train_mode(self, training: bool) -> None:
        """Switch every network between training and inference (BatchNorm, dropout).

        ``train`` walks every sub-module, so a network already in the wanted
        mode (its ``training`` flag, which ``train`` and ``eval`` set on every
        sub-module) is left alone: a training step calls this each time.
        """
        for network in self.networks.values():
            if network.training != training:
                network.train(training)

    @torch.no_grad()
    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """``outputs`` in inference mode and without gradients."""
        self.train_mode(False)
        return self.outputs(batch)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer (BatchNorm statistics included) as NumPy, keyed
        ``network.name``."""
        return {
            f"{net}.{key}": value.detach().cpu().numpy().copy()
            for net, module in self.networks.items()
            for key, value in module.state_dict().items()
        }

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for net, module in self.networks.items():
            prefix = net + "."
            state = {
                k[len(prefix) :]: torch.from_numpy(np.asarray(v))
                for k, v in weights.items()
                if k.startswith(prefix)
            }
            module.load_state_dict(state, strict=True)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per network."""
        return {
            net: sum(p.numel() for p in module.parameters() if p.requires_grad)
            for net, module in self.networks.items()
        }
