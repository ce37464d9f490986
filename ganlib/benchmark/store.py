"""The results store: JSON Lines, one file per profile and suite, one record per line.

Layout: ``<store>/<profile>/<suite>.jsonl``, one record (a JSON object) per
line.  A record's **key** is its suite, class, detector, framework, seed,
selection rule and profile; a run skips every key the store already holds.

Appending is atomic per record, so several processes (shards) can write into
one store and a run can be killed at any moment without losing or tearing a
finished record: the whole line is written with one unbuffered ``write`` to a
file opened for appending, while holding an exclusive ``fcntl.flock`` on it,
then ``fsync``-ed.  Under the lock the file is re-read, so a key written
meanwhile by another process is not written twice.

A line that is not a JSON object or lacks a key field is never skipped or
rewritten: reading the store raises :class:`StoreError` naming the file and
line, and a person decides what to do with it.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path

KEY_FIELDS = ("suite", "class", "detector", "framework", "seed", "rule", "profile")
REQUIRED_FIELDS = KEY_FIELDS + (
    "status",
    "test_auroc",
    "test_auprc",
    "train_seconds",
    "score_seconds",
    "timestamp",
)
DEFAULT_STORE = Path(__file__).resolve().parents[2] / "results" / "benchmark"


class StoreError(ValueError):
    """A store file holds a line that is not a valid record."""


def record_key(record: dict) -> tuple:
    """The fields that identify a record, as a tuple in ``KEY_FIELDS`` order."""
    return tuple(record[name] for name in KEY_FIELDS)


def to_json(value):
    """``value`` with NumPy values made plain, NaN/inf made ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return to_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)  # e.g. a class or callable among hyper-parameters


class Store:
    """A results directory (created on first write).

    ``root=None`` means ``$GANLIB_BENCHMARK_STORE`` if set, else the
    repository's ``results/benchmark``.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        # GANLIB_BENCHMARK_STORE points every reader and writer at another store,
        # e.g. a snapshot that the chapters are executed against
        root = root if root is not None else os.environ.get("GANLIB_BENCHMARK_STORE")
        self.root = Path(root) if root else DEFAULT_STORE

    def path(self, profile: str, suite: str) -> Path:
        return self.root / profile / f"{suite}.jsonl"

    def files(self) -> list[Path]:
        """Every ``.jsonl`` file of the store, sorted."""
        return sorted(self.root.glob("*/*.jsonl")) if self.root.is_dir() else []

    def records(
        self, profile: str | None = None, suite: str | None = None
    ) -> list[dict]:
        """All records, validated (optionally of one profile and/or suite)."""
        paths = self.files()
        if profile is not None:
            paths = [p for p in paths if p.parent.name == profile]
        if suite is not None:
            paths = [p for p in paths if p.stem == suite]
        return [record for path in paths for record in read_records(path)]

    def keys(self, profile: str, suite: str) -> set[tuple]:
        """The keys the store holds for ``profile`` and ``suite``."""
        return {record_key(r) for r in read_records(self.path(profile, suite))}

    def append(self, record: dict) -> bool:
        """Append ``record`` atomically; ``False`` if its key is already stored."""
        record = to_json(record)
        missing = [name for name in REQUIRED_FIELDS if name not in record]
        if missing:
            raise ValueError(f"record lacks the fields {missing}")
        path = self.path(record["profile"], record["suite"])
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        line = text.encode("utf-8")
        # unbuffered, opened for appending: one write() puts the whole line at the end
        with open(path, "ab", buffering=0) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if record_key(record) in {record_key(r) for r in read_records(path)}:
                    return False
                written = handle.write(line)
                if written != len(line):
                    raise OSError(f"{path}: wrote {written} of {len(line)} bytes")
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of one store file; :class:`StoreError` names a corrupt line."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise StoreError(
                    f"{path}, line {number}: not valid JSON ({error.msg}); "
                    "fix or remove the line by hand"
                ) from None
            if not isinstance(record, dict):
                raise StoreError(
                    f"{path}, line {number}: a record must be a JSON object, "
                    f"got {type(record).__name__}"
                )
            missing = [name for name in REQUIRED_FIELDS if name not in record]
            if missing:
                raise StoreError(
                    f"{path}, line {number}: the record lacks the fields {missing}"
                )
            records.append(record)
    return records
