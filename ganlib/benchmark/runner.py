"""Running the benchmark: jobs, shards, one training run per job, one record per rule.

A **job** is one training run: (suite, class, seed, detector, framework).  It
fits the detector once on a validation split that holds anomalies (every
suite's does), and the detector tracks both rules' best weights in that run,
so scoring the test set after ``use_selection("labelled")`` and again after
``use_selection("normal-only")`` gives one record per rule.  A record's
``weights`` field names the rule whose weights were scored: ``"last"`` where a
model selects no epoch by that rule and trains a fixed budget instead (OGNet
under both rules, a model without a label-free criterion under "normal-only").
The classical baselines have no epochs: both records hold the same scores,
``weights`` and ``selected_epoch`` are ``None``.

Which frameworks run (``framework=``):

- ``"plan"`` (default): the benchmark's design. Every cell in the detector's
  default framework; the other framework on classes :data:`OTHER_CLASSES` of
  each image suite and on the suites in :data:`OTHER_TABULAR_SUITES`;
- ``"default"``, ``"other"``, ``"both"``: that, for every cell.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .. import __version__, metrics, runmode
from .profiles import Profile, get_profile
from .store import KEY_FIELDS, Store, record_key
from .suites import DETECTORS, RULES, SUITES, check_name

FRAMEWORK_OPTIONS = ("plan", "default", "other", "both")
# the other framework's image cells: the first three digits, a fixed choice that
# was not picked on results
OTHER_CLASSES = (0, 1, 2)
OTHER_TABULAR_SUITES = ("kdd99",)
DEFAULT_SEEDS = (0, 1, 2)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


@dataclass(frozen=True)
class Job:
    """One training run; it yields one record per selection rule."""

    suite: str
    cls: int | None
    seed: int
    detector: str
    framework: str
    framework_role: str  # "default" or "other"

    def key(self, rule: str, profile: str) -> tuple:
        """The store key of this job's record for ``rule``."""
        values = {
            "suite": self.suite,
            "class": self.cls,
            "detector": self.detector,
            "framework": self.framework,
            "seed": self.seed,
            "rule": rule,
            "profile": profile,
        }
        return tuple(values[name] for name in KEY_FIELDS)

    def __str__(self) -> str:
        where = self.suite if self.cls is None else f"{self.suite} class {self.cls}"
        return f"{where} seed {self.seed} {self.detector} ({self.framework})"


def parse_shard(shard: str | tuple) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``, ``1 <= i <= n``; shard i takes jobs i, i+n, i+2n..."""
    text = "/".join(map(str, shard)) if isinstance(shard, tuple) else str(shard)
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (0, 0)
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise ValueError(
            f"shard must be 'i/n' with integers 1 <= i <= n (e.g. '1/2' and "
            f"'2/2' for two processes), got {text!r}"
        )
    return index, count


def _check_ints(
    values, name: str, low: int, high: int | None = None
) -> tuple[int, ...]:
    values = tuple(values)
    for value in values:
        bad = not isinstance(value, (int, np.integer)) or isinstance(value, bool)
        if bad or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f">= {low}"
            raise ValueError(f"{name} must be integers {span}, got {value!r}")
    if not values:
        raise ValueError(f"{name} must not be empty")
    return tuple(dict.fromkeys(int(v) for v in values))  # once each, in order


def jobs(
    suites=None,
    detectors=None,
    seeds=DEFAULT_SEEDS,
    classes=None,
    framework: str = "plan",
) -> list[Job]:
    """The job list in a fixed order: suite, class, seed, detector, framework.

    ``None`` for suites, detectors or classes means all.  Detectors that do not
    take a suite's input kind are left out of it (ALOCC on KDD99); a selection
    that leaves no job at all is an error.
    """
    suites = tuple(SUITES) if suites is None else tuple(dict.fromkeys(suites))
    detectors = (
        tuple(DETECTORS) if detectors is None else tuple(dict.fromkeys(detectors))
    )
    for name in suites:
        check_name(name, SUITES, "suite")
    for name in detectors:
        check_name(name, DETECTORS, "detector")
    check_name(framework, FRAMEWORK_OPTIONS, "framework option")
    seeds = _check_ints(seeds, "seeds", 0)
    classes = None if classes is None else _check_ints(classes, "classes", 0, 9)
    result = []
    for suite in (SUITES[name] for name in suites):
        cells = suite.classes if suite.kind == "tabular" or classes is None else classes
        for cls in cells:
            for seed in seeds:
                for spec in (DETECTORS[name] for name in detectors):
                    if not spec.runs_on(suite):
                        continue
                    for fw, role in _frameworks(spec, suite, cls, framework):
                        result.append(Job(suite.name, cls, seed, spec.name, fw, role))
    if not result:
        raise ValueError(
            f"no jobs: none of the detectors {list(detectors)} runs on the suites "
            f"{list(suites)} with framework option {framework!r} (image models take "
            "image suites only; baselines have no 'other' framework)"
        )
    return result


def _frameworks(spec, suite, cls, option: str) -> list[tuple[str, str]]:
    """The (framework, role) pairs that ``option`` runs ``spec`` in for this cell."""
    frameworks = spec.frameworks()
    pairs = list(zip(frameworks, ("default", "other")))
    if len(pairs) == 1:  # a baseline: its one "framework" is its default
        return pairs if option != "other" else []
    if option == "plan":
        other = (
            cls in OTHER_CLASSES
            if suite.kind == "image"
            else suite.name in OTHER_TABULAR_SUITES
        )
        return pairs if other else pairs[:1]
    return {"default": pairs[:1], "other": pairs[1:], "both": pairs}[option]


def limit_threads(threads: int | None):
    """Cap CPU threads: the thread variables and, at once, the loaded BLAS/OpenMP pools.

    PyTorch and TensorFlow read the variables when they are imported (the
    command line sets them before that); NumPy's BLAS is already loaded by
    then, so threadpoolctl caps it.  Returns threadpoolctl's context, which
    restores the pools on exit (``nullcontext`` when ``threads`` is ``None``).
    """
    if threads is None:
        return contextlib.nullcontext()
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    return threadpool_limits(limits=threads)


@functools.lru_cache(maxsize=1)
def environment() -> dict:
    """Hardware, ganlib version and git commit (``None`` outside a git checkout)."""
    root = Path(__file__).resolve().parents[2]

    def git(*args):
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD") or None
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "ganlib")
    return {
        "ganlib_version": __version__,
        "git_commit": commit,
        "git_dirty": bool(changed) if commit else None,
    }


def make_detector(job: Job, profile: Profile, contamination, verbose: bool = False):
    """The detector of ``job`` with the profile's hyper-parameters (not yet fitted)."""
    spec, suite = DETECTORS[job.detector], SUITES[job.suite]
    cls = spec.load()
    kwargs = {
        "seed": job.seed,
        "verbose": verbose,
        **profile.detector_hyperparameters(spec.name, suite.kind, suite.name),
    }
    if contamination is not None:
        kwargs["contamination"] = contamination
    if spec.kind != "baseline":
        # "auto" keeps the labelled rule's weights when the validation split holds
        # anomalies (every suite's does) and lets a model that selects no epoch
        # (OGNet) train its fixed budget; fit tracks both rules either way
        kwargs.update(framework=job.framework, selection="auto")
        if profile.epochs is not None:  # a hyper-parameter, so get_params() shows it
            kwargs["epochs"] = profile.epochs
    # the spec gives every neural detector `threads`; a baseline only if it names it
    takes_threads = (
        spec.kind != "baseline" or "threads" in inspect.signature(cls).parameters
    )
    if profile.threads is not None and takes_threads:
        kwargs["threads"] = profile.threads
    return cls(**kwargs)


def run_job(
    job: Job, profile: Profile, *, verbose: bool = False, note: str | None = None
) -> list[dict]:
    """Train ``job`` once and return its records, one per rule in :data:`RULES`."""
    neural = DETECTORS[job.detector].kind != "baseline"
    suite = SUITES[job.suite]
    profile = profile.for_suite(suite.kind, suite.name)  # the suite's caps and epochs
    split = suite.load(job.cls, job.seed)
    data = profile.apply(split, job.seed)
    detector = make_detector(job, profile, split.contamination, verbose)
    fit_kwargs = {"validation_data": (data["x_val"], data["y_val"])}
    if len(np.unique(data["y_val"])) != 2:
        raise ValueError(f"{job}: the validation split needs normal and anomalous rows")
    status, error = "ok", None
    start = time.perf_counter()
    try:
        detector.fit(data["x_train"], **fit_kwargs)
    except FloatingPointError as failure:  # a diverged GAN is a result, not a crash
        status, error = "diverged", str(failure)
    common = _common_fields(job, profile, detector, split, data, note)
    common["train_seconds"] = time.perf_counter() - start

    records, scored = [], {}  # scores by the rule whose weights made them
    for rule in RULES:
        fields = {
            "rule": rule,
            "weights": None,
            "status": status,
            "error": error,
            "selected_epoch": None,
            "score_seconds": None,
            **dict.fromkeys(METRICS.values()),
        }
        if status == "ok":
            if neural:
                fields["weights"] = _weights_rule(detector, rule)
                detector.use_selection(fields["weights"])
                fields["selected_epoch"] = detector.selected_epochs_[fields["weights"]]
            if fields["weights"] not in scored:  # a baseline's scores serve both rules
                scored[fields["weights"]] = _score(detector, data["x_test"])
            scores, seconds = scored[fields["weights"]]
            fields.update(
                _evaluate(data["y_test"], scores, seconds, split.contamination)
            )
        now = datetime.datetime.now(datetime.timezone.utc)
        records.append(
            {**common, **fields, "timestamp": now.isoformat(timespec="seconds")}
        )
    return records


def _weights_rule(detector, rule: str) -> str:
    """The rule whose weights stand for ``rule``: itself, or ``"last"``.

    A model that selects no epoch by a rule trains for a fixed budget under it
    (OGNet under both; a model without a label-free criterion under
    "normal-only"), so the last epoch's weights are the ones that rule gets.
    """
    return rule if rule in detector.selected_epochs_ else "last"


METRICS = {
    "auroc": "test_auroc",
    "auprc": "test_auprc",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
}  # metrics.evaluate's names -> record fields


def _common_fields(job: Job, profile: Profile, detector, split, data, note) -> dict:
    """The fields both rules' records share."""
    neural = DETECTORS[job.detector].kind != "baseline"
    params = detector.get_params()
    return {
        "suite": job.suite,
        "class": job.cls,
        "detector": job.detector,
        "framework": job.framework,
        "framework_role": job.framework_role,
        "seed": job.seed,
        "profile": profile.name,
        "params": params,
        "epochs": params.get("epochs") if neural else None,
        "history": getattr(detector, "history_", None) or {},
        "n_train": len(data["x_train"]),
        "n_val": len(data["y_val"]),
        "n_val_anomalies": int(np.sum(data["y_val"])),
        "n_test": len(data["y_test"]),
        "contamination": split.contamination,
        "threads": profile.threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "hardware": runmode.hardware(),
        "device": _device(detector),
        "note": note,
        **environment(),
    }


def _device(detector) -> str:
    """Where the networks ran: "cpu" or a GPU (hardware() sees one only in PyTorch)."""
    try:
        return str(detector.backend.device_name)
    except (AttributeError, RuntimeError):  # a baseline, or a fit that failed early
        return "cpu"


def _score(detector, x_test) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    scores = np.asarray(detector.decision_function(x_test), dtype=np.float64)
    return scores, time.perf_counter() - start


def _evaluate(y_test, scores, seconds: float, contamination) -> dict:
    """The metric fields of a record, or a ``nonfinite-scores`` status."""
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.isfinite(scores)))
        return {
            "status": "nonfinite-scores",
            "error": f"{bad} test scores are NaN or inf",
        }
    result = metrics.evaluate(y_test, scores, contamination)
    return {"score_seconds": seconds, **{METRICS[k]: v for k, v in result.items()}}


def run(
    suites=None,
    detectors=None,
    profile: str | Profile = "cpu",
    seeds=DEFAULT_SEEDS,
    classes=None,
    framework: str = "plan",
    shard: str = "1/1",
    store=None,
    *,
    verbose: bool = False,
    note: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run this shard's jobs that the store lacks; return the records written (a frame).

    Each record is appended to the store as soon as it exists, so an
    interrupted run keeps every finished record and the next call resumes.
    """
    profile = get_profile(profile)
    index, count = parse_shard(shard)
    environment()  # the commit the code was loaded from, not a later one
    store = store if isinstance(store, Store) else Store(store)
    mine = jobs(suites, detectors, seeds, classes, framework)[index - 1 :: count]
    stored = {
        suite: store.keys(profile.name, suite) for suite in {j.suite for j in mine}
    }
    pending = [
        j
        for j in mine
        if any(j.key(rule, profile.name) not in stored[j.suite] for rule in RULES)
    ]
    written = []
    bar = tqdm(
        pending,
        desc=f"benchmark {profile.name} shard {index}/{count}",
        unit="job",
        disable=not progress,
    )
    with limit_threads(profile.threads):
        for job in bar:
            for record in run_job(job, profile, verbose=verbose, note=note):
                if store.append(record):
                    written.append(record)
                    bar.write(_log_line(record))
    bar.close()
    skipped = len(mine) - len(pending)
    if progress and skipped:
        print(f"skipped {skipped} of {len(mine)} jobs already in {store.root}")
    return pd.DataFrame(written, columns=None if written else list(KEY_FIELDS))


def _log_line(record: dict) -> str:
    job = Job(
        record["suite"],
        record["class"],
        record["seed"],
        record["detector"],
        record["framework"],
        record["framework_role"],
    )
    if record["status"] != "ok":
        return f"{job} {record['rule']}: {record['status']} ({record['error']})"
    epoch = record["selected_epoch"]
    return (
        f"{job} {record['rule']}: AUROC {record['test_auroc']:.4f}"
        f"{'' if epoch is None else f', epoch {epoch}'}, "
        f"train {record['train_seconds']:.1f} s, score {record['score_seconds']:.1f} s"
    )


__all__ = [
    "Job",
    "jobs",
    "parse_shard",
    "run",
    "run_job",
    "make_detector",
    "record_key",
]
