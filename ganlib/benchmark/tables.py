"""The tables the benchmark chapter shows, as pandas DataFrames read from the store.

Every table uses the records whose ``status`` is ``"ok"``; :func:`summary`
counts the others (diverged runs, non-finite scores) in a ``failed`` column
so that a detector cannot look good by failing quietly.  Image suites are
averaged over their classes *within* a seed first, so "± std" is the spread
over seeds of the suite's mean, the quantity a reader who re-runs the
benchmark with another seed would see move.
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

from .profiles import get_profile
from .store import KEY_FIELDS, Store
from .suites import RULES, check_name

SCALARS = KEY_FIELDS + (
    "framework_role",
    "status",
    "epochs",
    "selected_epoch",
    "test_auroc",
    "test_auprc",
    "precision",
    "recall",
    "f1",
    "train_seconds",
    "score_seconds",
    "n_train",
    "n_test",
    "hardware",
    "git_commit",
)


def load(store=None, profile: str = "cpu", rule: str | None = None) -> pd.DataFrame:
    """One row per record of ``profile`` (its scalar fields), from a store directory.

    Profiles are never mixed: their budgets differ.  ``rule`` keeps one
    selection rule's records.
    """
    profile = get_profile(profile).name
    if rule is not None:
        check_name(rule, RULES, "rule")
    store = store if isinstance(store, Store) else Store(store)
    records = store.records(profile=profile)
    frame = pd.DataFrame(
        [{name: r.get(name) for name in SCALARS} for r in records],
        columns=list(SCALARS),
    )
    if rule is not None:
        frame = frame[frame["rule"] == rule]
    return frame.astype(
        {"test_auroc": float, "train_seconds": float, "score_seconds": float}
    )


def _ok_default(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "ok") & (frame["framework_role"] == "default")]


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per suite, detector and rule: mean and std over seeds of the test AUROC.

    Default framework only.

    Columns: ``mean``, ``std``, ``seeds``, ``cells`` (class × seed runs) and
    ``failed`` (runs without a score).
    """
    keys = ["suite", "detector", "rule"]
    ok = _ok_default(frame)
    per_seed = ok.groupby([*keys, "seed"])["test_auroc"].mean().groupby(keys)
    failed = frame[(frame["status"] != "ok") & (frame["framework_role"] == "default")]
    table = pd.DataFrame(
        {
            "mean": per_seed.mean(),
            "std": per_seed.std(ddof=1),
            "seeds": per_seed.size(),
            "cells": ok.groupby(keys).size(),
            "failed": failed.groupby(keys).size(),
        }
    )
    # a detector whose every run failed still gets its row, with failed > 0
    return table.fillna({"seeds": 0, "cells": 0, "failed": 0}).astype(
        {"seeds": int, "cells": int, "failed": int}
    )


def per_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean test AUROC over seeds: (suite, detector, rule) rows by class columns."""
    ok = _ok_default(frame).dropna(subset=["class"])
    table = ok.pivot_table(
        index=["suite", "detector", "rule"],
        columns="class",
        values="test_auroc",
        aggfunc="mean",
    )
    table.columns = [int(c) for c in table.columns]
    return table


def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """Average rank (1 = best AUROC) per suite, rule and detector, with Friedman's test.

    A block is one (class, seed) cell; only blocks in which every detector of
    the suite has a record count, so that every detector is ranked on the same
    blocks.  ``friedman_p`` is the p-value that all detectors rank alike
    (``NaN`` with fewer than three detectors or two blocks).
    """
    rows = []
    ok = _ok_default(frame).assign(block=lambda f: list(zip(f["class"], f["seed"])))
    for (suite, rule), group in ok.groupby(["suite", "rule"]):
        wide = group.pivot_table(
            index="block", columns="detector", values="test_auroc"
        ).dropna()
        if wide.empty:
            continue
        ranked = wide.rank(axis=1, ascending=False)
        p_value = float("nan")
        if wide.shape[1] >= 3 and wide.shape[0] >= 2:
            p_value = stats.friedmanchisquare(*(wide[c] for c in wide.columns)).pvalue
        for detector, mean_rank in ranked.mean().items():
            rows.append(
                {
                    "suite": suite,
                    "rule": rule,
                    "detector": detector,
                    "mean_rank": mean_rank,
                    "blocks": len(wide),
                    "friedman_p": p_value,
                }
            )
    columns = ["suite", "rule", "detector", "mean_rank", "blocks", "friedman_p"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["suite", "rule", "mean_rank"]).set_index(
        ["suite", "rule", "detector"]
    )


def twins(frame: pd.DataFrame) -> pd.DataFrame:
    """Torch minus Keras test AUROC on the cells run in both, beside the seed spread.

    Per suite and detector: ``mean_diff`` and ``mean_abs_diff`` over the paired
    (class, seed, rule) cells, and ``seed_std``, the std over seeds of the
    default framework's AUROC on the same classes and rule, averaged: a twin
    gap well inside ``seed_std`` is noise.
    """
    ok = frame[frame["status"] == "ok"]
    index = ["suite", "detector", "class", "seed", "rule"]
    wide = ok.pivot_table(index=index, columns="framework", values="test_auroc")
    columns = ["pairs", "mean_diff", "mean_abs_diff", "seed_std"]
    if not {"torch", "keras"} <= set(wide.columns):
        return pd.DataFrame(columns=columns)
    paired = wide[["torch", "keras"]].dropna()
    diff = (paired["torch"] - paired["keras"]).rename("diff").reset_index()
    spread = (
        _ok_default(frame)
        .groupby(["suite", "detector", "class", "rule"], dropna=False)["test_auroc"]
        .std(ddof=1)
        .rename("seed_std")
        .reset_index()
    )
    cells = diff[["suite", "detector", "class", "rule"]].drop_duplicates()
    spread = cells.merge(spread, on=["suite", "detector", "class", "rule"], how="left")
    grouped = diff.groupby(["suite", "detector"])["diff"]
    return pd.DataFrame(
        {
            "pairs": grouped.size(),
            "mean_diff": grouped.mean(),
            "mean_abs_diff": grouped.apply(lambda d: d.abs().mean()),
            "seed_std": spread.groupby(["suite", "detector"])["seed_std"].mean(),
        }
    )[columns]


def cost(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean training and scoring seconds per suite, detector, framework; the hardware.

    Training is counted once per job (from its ``labelled`` record); scoring is
    one pass over the test set.
    """
    runs = frame[(frame["rule"] == "labelled") & (frame["status"] == "ok")]
    grouped = runs.groupby(["suite", "detector", "framework"])
    return pd.DataFrame(
        {
            "jobs": grouped.size(),
            "train_seconds": grouped["train_seconds"].mean(),
            "score_seconds": grouped["score_seconds"].mean(),
            "hardware": grouped["hardware"].agg(lambda h: "; ".join(sorted(set(h)))),
        }
    )


def curves(store=None, profile: str = "cpu", key: str = "val_auroc") -> pd.DataFrame:
    """Per-epoch validation values from the records' histories, one row per epoch.

    Columns: suite, class, detector, framework, seed, epoch, ``key``.  A job's
    two records share one history, so only the ``labelled`` records are read;
    jobs whose history lacks ``key`` are left out.
    """
    store = store if isinstance(store, Store) else Store(store)
    rows = []
    for record in store.records(profile=get_profile(profile).name):
        history = record.get("history") or {}
        if record["rule"] != "labelled" or not isinstance(history.get(key), list):
            continue  # one history per job; a scalar (OGNet's final value) is no curve
        cell = {name: record[name] for name in ("suite", "class", "detector")}
        cell.update(framework=record["framework"], seed=record["seed"])
        for epoch, value in zip(history.get("epoch", []), history[key]):
            rows.append({**cell, "epoch": epoch, key: value})
    columns = ["suite", "class", "detector", "framework", "seed", "epoch", key]
    return pd.DataFrame(rows, columns=columns)


def report(
    store=None, profile: str = "cpu", rule: str | None = None
) -> dict[str, pd.DataFrame]:
    """Every table of ``profile`` by name: summary, per_class, ranks, twins and cost."""
    frame = load(store, profile, rule)
    return {
        "summary": summary(frame),
        "per_class": per_class(frame),
        "ranks": ranks(frame),
        "twins": twins(frame),
        "cost": cost(frame),
    }


def mean_std(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`summary` as text, detectors × rules, each cell "mean ± std"."""
    text = table.apply(
        lambda r: (
            f"{r['mean']:.{digits}f} ± {r['std']:.{digits}f}"
            if pd.notna(r["std"])
            else f"{r['mean']:.{digits}f}"
        ),
        axis=1,
    )
    return text.unstack("rule") if len(text) else pd.DataFrame()
