"""How long the benchmark will take: a timing probe and the plan built on it.

**The timing method.**  :func:`measure` trains one job per (suite, detector,
framework) under the profile's budget (class 0, seed 0) for ``epochs`` (3)
epochs instead of the profile's, stamping the clock at every epoch end, then
scores the test set once.  From each run it keeps

- ``epoch_seconds``: the median duration of the epochs between the first and
  the last (one epoch of training plus one validation pass; the second epoch
  when only two were measured);
- ``setup_seconds``: the rest of the fit (building the networks, tracing
  graphs, the first epoch's extra, the training-set scores, whatever ends the
  training in the last epoch's hook, such as OGNet's phase two);
- ``score_seconds`` and ``test_rows``: one scoring pass of the test set, and
  ``scoring_passes``, how many distinct weights the two rules score (2, or 1
  for a model that selects no epoch and for the baselines);

each as wall-clock seconds and as CPU seconds of the process
(``*_cpu_seconds``, all threads).  With one thread, CPU seconds are close to
what the job takes on a core of its own (a lower bound: waits are not
counted), so the plan estimates from them and also shows the estimate at the
wall-clock speed measured.

It writes each row, with the hardware, the date, the git commit and a free-text
``note``, to ``timings-<profile>.json`` in the store.  A note must say when
other programs were using the CPU ("contended"): such wall-clock timings
overestimate a quiet machine's.

:func:`plan` lists the jobs and estimates each one as ``setup + epochs ×
epoch_seconds + scoring_passes × scoring`` (scoring scaled to the suite's
capped test size).  The wall time is the sum over the jobs of the slowest
shard (shard ``i/n`` takes every n-th job of the list).  Suites not measured
borrow the timing of a measured suite of the same kind.  The probe runs at the
profile's row caps and widths: measure again after changing them.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import runmode
from .profiles import get_profile
from .runner import (
    DEFAULT_SEEDS,
    Job,
    _weights_rule,
    environment,
    jobs,
    limit_threads,
    make_detector,
)
from .store import DEFAULT_STORE
from .suites import DETECTORS, RULES, SUITES

PROBE_SUITES = ("mnist-normal", "kdd99", "arrhythmia")


def timings_path(profile: str, store=None) -> Path:
    """Where the timings of ``profile`` live: ``<store>/timings-<profile>.json``."""
    return (
        Path(store if store is not None else DEFAULT_STORE) / f"timings-{profile}.json"
    )


def measure(
    profile: str = "cpu",
    suites=PROBE_SUITES,
    detectors=None,
    epochs: int = 3,
    store=None,
    note: str = "",
) -> pd.DataFrame:
    """Time one short run per (suite, detector, framework) into the timings file.

    Each row is written as soon as it is measured and replaces an older row of
    the same suite, detector and framework, so one detector can be re-measured.
    """
    profile = get_profile(profile)
    rows = []
    with limit_threads(profile.threads):
        for job in jobs(suites, detectors, seeds=(0,), classes=(0,), framework="both"):
            now = datetime.datetime.now(datetime.timezone.utc)
            rows.append(
                {
                    **_time_job(job, profile, epochs),
                    "note": note,
                    "hardware": runmode.hardware(),
                    "timestamp": now.isoformat(timespec="seconds"),
                    **environment(),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            _save_row(timings_path(profile.name, store), profile, rows[-1])
    return pd.DataFrame(rows)


def _save_row(path: Path, profile, row: dict) -> None:
    """Write ``row`` into the timings file, replacing a row of the same job kind."""
    old = json.loads(path.read_text(encoding="utf-8"))["rows"] if path.exists() else []
    key = ("suite", "detector", "framework")
    kept = [r for r in old if [r[k] for k in key] != [row[k] for k in key]]
    content = {
        "profile": profile.name,
        "threads": profile.threads,
        "method": __doc__.split("**The timing method.**")[1].strip(),
        "rows": kept + [row],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")


def _clock() -> np.ndarray:
    """Wall-clock and CPU seconds of this process (all its threads) so far."""
    return np.array([time.perf_counter(), time.process_time()])


def _time_job(job: Job, profile, epochs: int) -> dict:
    neural = DETECTORS[job.detector].kind != "baseline"
    split = SUITES[job.suite].load(job.cls, job.seed)
    profile = profile.for_suite(SUITES[job.suite].kind, job.suite)
    data = profile.apply(split, job.seed)
    detector = make_detector(job, profile, split.contamination)
    marks = []
    if neural:
        hook = detector.on_epoch_end

        def stamped(
            *args, **kwargs
        ):  # the clocks after each epoch's own end-of-epoch work
            hook(*args, **kwargs)
            marks.append(_clock())

        detector.on_epoch_end = stamped
    fit_kwargs = {"epochs": epochs} if neural else {}
    start = _clock()
    validation = (data["x_val"], data["y_val"])
    detector.fit(data["x_train"], validation_data=validation, **fit_kwargs)
    fitted = _clock()
    detector.decision_function(data["x_test"])
    score = _clock() - fitted
    # as run_job does: one test pass per distinct set of weights the rules use
    passes = len({_weights_rule(detector, rule) for rule in RULES}) if neural else 1
    durations = np.diff([start, *marks], axis=0)
    # the first epoch builds and traces, the last may end the training (OGNet's
    # phase two runs in its end-of-epoch hook): the epochs between are typical
    middle = durations[1:-1] if len(durations) > 2 else durations[1:]
    epoch = np.median(middle, axis=0) if len(middle) else np.zeros(2)
    setup = fitted - start - len(marks) * epoch
    row = {
        "suite": job.suite,
        "detector": job.detector,
        "framework": job.framework,
        "epochs_measured": len(marks),
        "train_rows": len(data["x_train"]),
        "val_rows": len(data["y_val"]),
        "test_rows": len(data["y_test"]),
        "scoring_passes": passes,
    }
    for name, (wall, cpu) in {"setup": setup, "epoch": epoch, "score": score}.items():
        row[f"{name}_seconds"], row[f"{name}_cpu_seconds"] = (
            round(wall, 2),
            round(cpu, 2),
        )
    return row


def load_timings(profile: str, store=None) -> dict:
    """The timings file of ``profile``; the ``FileNotFoundError`` names the command."""
    path = timings_path(profile, store)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: run `python -m ganlib.benchmark time "
            f"--profile {profile}` first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def plan(
    profile: str = "cpu",
    suites=None,
    detectors=None,
    seeds=DEFAULT_SEEDS,
    classes=None,
    framework: str = "plan",
    processes: int = 2,
    store=None,
) -> tuple[pd.DataFrame, dict]:
    """The job list grouped by suite, detector and framework, with estimated seconds.

    Returns ``(table, totals)``.  The table has ``jobs``, ``seconds_per_job``
    (from CPU seconds: a core of its own) and ``measured_seconds_per_job`` (wall
    seconds as measured).  ``totals`` holds ``jobs``, ``records``, ``cpu_hours``,
    ``wall_hours`` (the slowest of ``processes`` shards) and
    ``measured_wall_hours`` (``NaN`` where a timing is missing), and the timing
    rows' distinct ``notes`` and ``hardware``.
    """
    profile = get_profile(profile)
    listed = jobs(suites, detectors, seeds, classes, framework)
    try:
        rows = load_timings(profile.name, store)["rows"]
    except FileNotFoundError:
        rows = []
    measured = {(r["suite"], r["detector"], r["framework"]): r for r in rows}
    frame = pd.DataFrame(
        [
            {
                "suite": j.suite,
                "detector": j.detector,
                "framework": j.framework,
                "seconds_per_job": _estimate(profile, j, measured, "cpu_"),
                "measured_seconds_per_job": _estimate(profile, j, measured, ""),
            }
            for j in listed
        ]
    )
    keys = ["suite", "detector", "framework"]
    table = frame.groupby(keys).agg(
        jobs=("suite", "size"),
        seconds_per_job=("seconds_per_job", "first"),
        measured_seconds_per_job=("measured_seconds_per_job", "first"),
    )

    def wall_hours(column: str) -> float:
        # shard i takes jobs i, i+n, ...: the slowest shard sets the wall time
        shards = [frame[column].iloc[i::processes] for i in range(processes)]
        return max(shard.sum(min_count=len(shard)) for shard in shards) / 3600

    totals = {
        "jobs": len(listed),
        "records": 2 * len(listed),
        "processes": processes,
        "cpu_hours": frame["seconds_per_job"].sum(min_count=len(frame)) / 3600,
        "wall_hours": wall_hours("seconds_per_job"),
        "measured_wall_hours": wall_hours("measured_seconds_per_job"),
        "notes": sorted({r["note"] for r in rows}),
        "hardware": sorted({r["hardware"] for r in rows}),
    }
    return table, totals


def _estimate(profile, job: Job, measured: dict, clock: str) -> float:
    """Seconds of ``job`` from the timing row of its detector and framework.

    ``clock="cpu_"`` uses CPU seconds, what the job takes on a core of its own;
    ``clock=""`` the wall seconds measured, slower when the CPU was shared.
    """
    suite, detector, framework = job.suite, job.detector, job.framework
    kind = SUITES[suite].kind
    stand_ins = [suite] + [s for s in PROBE_SUITES if SUITES[s].kind == kind]
    row = next(
        (
            measured[(s, detector, framework)]
            for s in stand_ins
            if (s, detector, framework) in measured
        ),
        None,
    )
    if row is None:
        return float("nan")
    profile = profile.for_suite(kind, suite)  # the suite's caps and epochs
    test_rows = SUITES[suite].approx_test_rows
    if profile.test_rows is not None:
        test_rows = min(test_rows, profile.test_rows)
    setup, epoch, score = (
        row[f"{n}_{clock}seconds"] for n in ("setup", "epoch", "score")
    )
    train_rows = SUITES[suite].approx_train_rows
    if profile.train_rows is not None:
        train_rows = min(train_rows, profile.train_rows)
    if train_rows and row.get("train_rows"):
        # an epoch costs in proportion to its rows; the probe may have had others
        epoch *= train_rows / row["train_rows"]
    scoring = score * test_rows / max(row["test_rows"], 1)
    if DETECTORS[detector].kind == "baseline":
        return setup + scoring  # fitted once, scored once for both rules
    epochs = profile.epochs or row["epochs_measured"]  # paper: unknown, a lower bound
    return setup + epochs * epoch + row.get("scoring_passes", 2) * scoring
