"""Quick mode and run reports.

The book's notebooks run in two modes.  *Full* mode trains for real and its
outputs are the ones stored in the book.  *Quick* mode, switched on by the
environment variable ``GANLIB_QUICK=1``, shrinks **only** epoch and iteration
counts, so that ``pytest --nbval`` can execute every chapter on a CPU in about a
minute.  Data, splits, architectures and hyper-parameters are identical in both
modes, which is why the deterministic cells of a chapter print the same text in
either mode.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time

QUICK_ENV = "GANLIB_QUICK"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_quick() -> bool:
    """True when ``GANLIB_QUICK`` is set to a true value (1, true, yes, on)."""
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{QUICK_ENV} must be one of 1/0, true/false, yes/no, on/off; got {value!r}"
    )


def iterations(full: int, quick: int = 1) -> int:
    """Return ``full`` in full mode and ``quick`` in quick mode.

    Use it for every epoch or iteration count in a chapter, e.g.
    ``EPOCHS = iterations(full=20, quick=1)``.
    """
    for name, value in (("full", full), ("quick", quick)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return quick if is_quick() else full


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by any cgroup CPU quota.

    Frameworks count the machine's cores, which in a container can be many
    more than the process is given; more threads than CPUs oversubscribes
    them and can slow PyTorch several-fold.
    """
    cpus = (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="utf-8") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, int(cpus or 1))


def has_framework(name: str) -> bool:
    """Whether ``"torch"`` or ``"keras"`` (Keras 3 with TensorFlow) can be imported,
    without importing it.

    Chapters guard the cells that need both frameworks with it, so that an
    install with one framework (``pip install ganlib[torch]``) runs every
    chapter in that framework.
    """
    modules = {"torch": ("torch",), "keras": ("keras", "tensorflow")}
    if name not in modules:
        raise ValueError(f"name must be 'torch' or 'keras', got {name!r}")
    return all(importlib.util.find_spec(module) is not None for module in modules[name])


def mode_name() -> str:
    """``"quick"`` or ``"full"``."""
    return "quick" if is_quick() else "full"


def hardware() -> str:
    """One line describing the CPU (and the GPU, when PyTorch sees one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )
    text = (
        f"{cpu}, {cores} CPU cores available, "
        f"Python {platform.python_version()} on {platform.system()}"
    )
    import sys

    if "torch" in sys.modules:  # report a GPU only if a framework is already loaded
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            text += f", GPU: {torch.cuda.get_device_name(0)}"
    return text


def report() -> str:
    """The line every chapter prints first and last: run mode, hardware, and the
    machine's load (about the number of cores busy over the last minute), so
    that a reader can tell whether the chapter's timings ran alone."""
    load = (
        f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    )
    return (
        f"Run mode: {mode_name()} ({QUICK_ENV}={os.environ.get(QUICK_ENV, '')!r}); "
        f"hardware: {hardware()}{load}"
    )


class Stopwatch:
    """Wall-clock timer used to report training times in the chapters.

    >>> with Stopwatch() as watch:
    ...     pass
    >>> watch.seconds >= 0
    True
    """

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
