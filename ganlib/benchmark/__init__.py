"""The benchmark: every detector on the same protocols, seeds and two selection rules.

One module per job:

=============================  ========================================================
``ganlib.benchmark.suites``    the suites (protocols, classes) and the detectors
``ganlib.benchmark.profiles``  budgets: row caps, epochs, widths, threads
``ganlib.benchmark.runner``    the job list, shards, training once, scoring per rule
``ganlib.benchmark.store``     the JSON Lines results store, appended atomically
``ganlib.benchmark.tables``    the chapter's tables as pandas DataFrames
``ganlib.benchmark.timing``    the timing probe and the plan's wall-time estimate
=============================  ========================================================

From Python::

    from ganlib import benchmark
    benchmark.run(suites=["kdd99"], detectors=["pca", "alad"], profile="cpu")
    tables = benchmark.report(profile="cpu")     # dict of DataFrames
    table, totals = benchmark.plan("cpu")

and the same from the shell with ``python -m ganlib.benchmark run|report|plan|time``.
Importing this package imports neither PyTorch nor TensorFlow.
"""

from .profiles import PROFILES, Profile, get_profile
from .runner import jobs, parse_shard, run
from .store import Store, StoreError
from .suites import DETECTORS, RULES, SUITES
from .tables import report
from .timing import measure, plan

__all__ = [
    "DETECTORS",
    "PROFILES",
    "RULES",
    "SUITES",
    "Profile",
    "Store",
    "StoreError",
    "get_profile",
    "jobs",
    "measure",
    "parse_shard",
    "plan",
    "report",
    "run",
]
