"""What the benchmark measures: the suites and the detectors, as declarative tables.

A **suite** is a protocol of :mod:`ganlib.protocols` with its classes; a
**detector** is a ganlib class, named by its import path so that listing the
benchmark imports neither PyTorch nor TensorFlow.  Both tables are plain data:
a reader sees here exactly which protocol call and which class a record means.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field

from .. import protocols

IMAGE_CLASSES = tuple(range(10))
BASELINE_FRAMEWORK = (
    "sklearn"  # what a record names as the framework of a classical baseline
)
RULES = (
    "labelled",
    "normal-only",
)  # the two selection rules, both from one training run


@dataclass(frozen=True)
class Suite:
    """One protocol of :mod:`ganlib.protocols`, called with ``protocol_args``.

    ``classes`` are the MNIST digits the suite loops over (``(None,)`` for a
    tabular protocol); ``approx_train_rows`` and ``approx_test_rows`` are the
    split sizes the time estimate of ``plan`` uses, so that planning loads no
    data.
    """

    name: str
    kind: str  # "image" or "tabular": which detectors take it
    protocol: str  # function name in ganlib.protocols
    classes: tuple = (None,)
    protocol_args: dict = field(default_factory=dict)
    approx_train_rows: int = 0
    approx_test_rows: int = 0
    description: str = ""

    def load(self, cls, seed: int) -> protocols.Split:
        """The split of class ``cls`` (ignored by tabular suites) for ``seed``."""
        return _load(self.name, cls, seed)


SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite(
            "mnist-normal",
            "image",
            "one_class_normal",
            IMAGE_CLASSES,
            approx_train_rows=5_400,
            approx_test_rows=10_000,
            description="one digit normal, the nine others anomalous "
            "(ALOCC, OGNet, ALAD)",
        ),
        # The papers put the whole anomalous digit in the test set, which leaves the
        # labelled rule nothing to select on: 10 % of it moves from the test set to
        # validation (as the GANomaly chapter does), so no image is in both.
        Suite(
            "mnist-anomalous",
            "image",
            "one_class_anomalous",
            IMAGE_CLASSES,
            protocol_args={"val_anomaly_fraction": 0.1},
            approx_train_rows=40_400,
            approx_test_rows=18_900,
            description="one digit anomalous, the nine others normal (GANomaly, EGBAD)",
        ),
        Suite(
            "kdd99",
            "tabular",
            "kdd99",
            approx_train_rows=158_640,
            approx_test_rows=247_011,
            description="KDDCup99 10 %, DAGMM protocol: normal. traffic anomalous, "
            "top 20 % flagged",
        ),
        Suite(
            "arrhythmia",
            "tabular",
            "arrhythmia",
            approx_train_rows=145,
            approx_test_rows=226,
            description="ODDS Arrhythmia, ALAD's 50/50 split, top 15 % flagged",
        ),
    )
}


@functools.lru_cache(maxsize=2)
def _load(name: str, cls, seed: int) -> protocols.Split:
    # Jobs are ordered suite, class, seed, detector: caching the last splits loads
    # each split once per process although every detector of a cell needs it.
    suite = SUITES[name]
    function = getattr(protocols, suite.protocol)
    args = () if suite.kind == "tabular" else (cls,)
    return function(*args, seed=seed, **suite.protocol_args)


@dataclass(frozen=True)
class DetectorSpec:
    """A detector: its class (``"module:Class"``), its kind and its input kinds.

    ``kind`` is ``"gan"``, ``"autoencoder"`` or ``"baseline"``; baselines are
    scikit-learn models with ganlib's API and one "framework", ``sklearn``.
    """

    name: str
    target: str
    kind: str
    inputs: tuple = ("image",)

    def load(self) -> type:
        """The detector class (importing its package, which imports no framework)."""
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)

    def frameworks(self) -> tuple[str, ...]:
        """``(default, other)``, or ``("sklearn",)`` for a baseline."""
        if self.kind == "baseline":
            return (BASELINE_FRAMEWORK,)
        default = self.load().default_framework
        return (default, {"torch": "keras", "keras": "torch"}[default])

    def runs_on(self, suite: Suite) -> bool:
        return suite.kind in self.inputs


DETECTORS: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        DetectorSpec("alocc", "ganlib.alocc:ALOCC", "gan"),
        DetectorSpec("ognet", "ganlib.ognet:OGNet", "gan"),
        DetectorSpec("ganomaly", "ganlib.ganomaly:GANomaly", "gan"),
        DetectorSpec("egbad", "ganlib.egbad:EGBAD", "gan", ("image", "tabular")),
        DetectorSpec("alad", "ganlib.alad:ALAD", "gan", ("image", "tabular")),
        DetectorSpec(
            "autoencoder", "ganlib.autoencoder:ConvAutoencoder", "autoencoder"
        ),
        DetectorSpec(
            "pca", "ganlib.baselines:PCADetector", "baseline", ("image", "tabular")
        ),
        DetectorSpec(
            "iforest",
            "ganlib.baselines:IsolationForestDetector",
            "baseline",
            ("image", "tabular"),
        ),
        DetectorSpec(
            "ocsvm",
            "ganlib.baselines:OneClassSVMDetector",
            "baseline",
            ("image", "tabular"),
        ),
        DetectorSpec(
            "knn", "ganlib.baselines:KNNDetector", "baseline", ("image", "tabular")
        ),
    )
}


def check_name(value: str, valid: dict | tuple, what: str) -> str:
    """``value`` if it is one of ``valid``, else a ``ValueError`` naming them."""
    if value not in valid:
        raise ValueError(
            f"unknown {what} {value!r}; valid {what}s are: {', '.join(valid)}"
        )
    return value
