"""The tables the benchmark chapter shows, as pandas DataFrames read from the store.

Every table uses the records whose ``status`` is ``"ok"``; :func:`summary`
counts the others (diverged runs, non-finite scores) in a ``failed`` column
so that a detector cannot look good by failing quietly.  Image suites are
averaged over their classes *within* a seed first, so "± std" is the spread
over seeds of the suite's mean, the quantity a reader who re-runs the
benchmark with another seed would see move.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .profiles import get_profile
from .store import KEY_FIELDS, Store, record_key
from .suites import DETECTORS, RULES, check_name

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
    "weights",
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
    numeric = ["test_auroc", "test_auprc", "precision", "recall", "f1"]
    numeric += ["train_seconds", "score_seconds"]
    return frame.astype(dict.fromkeys(numeric, float))


def _ok_default(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "ok") & (frame["framework_role"] == "default")]


def summary(frame: pd.DataFrame, metric: str = "test_auroc") -> pd.DataFrame:
    """Per suite, detector and rule: mean and std over seeds of ``metric``.

    Default framework only.  ``metric`` is a record field: ``test_auroc``,
    ``test_auprc`` or, on the protocols that flag a known share, ``f1``.

    Columns: ``mean``, ``std``, ``seeds``, ``cells`` (class × seed runs) and
    ``failed`` (runs without a score).
    """
    keys = ["suite", "detector", "rule"]
    ok = _ok_default(frame)
    ok = ok.dropna(subset=[metric])
    per_seed = ok.groupby([*keys, "seed"])[metric].mean().groupby(keys)
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


def ranks(frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Average rank (1 = best AUROC) per suite, rule and detector, with Friedman's test.

    Demšar's procedure (JMLR 2006) treats data sets as independent blocks: on
    an image suite a block is a class, its AUROC the mean over the seeds; on
    a tabular suite (one data set) the blocks are the seeds, which only says
    how stable the order is.  Only (class, seed) cells in which every
    detector of the suite has a record count, so every detector is ranked on
    the same blocks.  ``friedman_p`` is the p-value that all detectors rank
    alike (``NaN`` with fewer than three detectors or two blocks);
    ``critical_difference`` is the Nemenyi distance two mean ranks must
    exceed to differ at level ``alpha``.
    """
    rows = []
    ok = _ok_default(frame)
    for (suite, rule), group in ok.groupby(["suite", "rule"]):
        tabular = group["class"].isna().all()
        cells = group.assign(block=group["class"] if not tabular else group["seed"])
        wide = cells.pivot_table(
            index=["block", "seed"], columns="detector", values="test_auroc"
        ).dropna()  # complete cells only
        wide = wide.groupby(level="block").mean()  # a class: its mean over seeds
        if wide.empty:
            continue
        ranked = wide.rank(axis=1, ascending=False)
        p_value = float("nan")
        if wide.shape[1] >= 3 and wide.shape[0] >= 2:
            p_value = stats.friedmanchisquare(*(wide[c] for c in wide.columns)).pvalue
        k, n = wide.shape[1], wide.shape[0]
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
        cd = q * np.sqrt(k * (k + 1) / (6 * n)) if k >= 2 else float("nan")
        for detector, mean_rank in ranked.mean().items():
            rows.append(
                {
                    "suite": suite,
                    "rule": rule,
                    "detector": detector,
                    "mean_rank": mean_rank,
                    "blocks": n,
                    "friedman_p": p_value,
                    "critical_difference": cd,
                }
            )
    columns = ["suite", "rule", "detector", "mean_rank", "blocks", "friedman_p"]
    table = pd.DataFrame(rows, columns=columns + ["critical_difference"])
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


def planned_cells(framework: str = "default") -> pd.Series:
    """How many (class, seed) runs the design plans per suite and detector."""
    from .runner import jobs  # the job list; imports no framework

    listed = pd.DataFrame(
        [(j.suite, j.detector) for j in jobs(framework=framework)],
        columns=["suite", "detector"],
    )
    return listed.groupby(["suite", "detector"]).size().rename("planned")


def complete(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a :func:`summary` whose every planned cell has a record."""
    planned = planned_cells()
    keys = zip(
        table.index.get_level_values("suite"), table.index.get_level_values("detector")
    )
    wanted = [planned.get(key, -1) for key in keys]
    return table[table["cells"].to_numpy() == wanted]


def annotated(table: pd.DataFrame) -> pd.Series:
    """A :func:`summary` as "mean ± std" text; "mean (k of n runs)" where partial."""
    text = mean_std(table).stack()  # (suite, detector, rule) -> text
    planned = planned_cells()
    for key, cells in table["cells"].items():
        wanted = planned.get((key[0], key[1]))
        if wanted is not None and cells < wanted:
            text.loc[key] = f"{table.loc[key, 'mean']:.3f} ({cells} of {wanted} runs)"
    return text


def headline(frame: pd.DataFrame, metric: str = "test_auroc") -> pd.DataFrame:
    """Suites × rules as columns, detectors as rows, "mean ± std" text.

    A row that rests on fewer runs than the design plans says so, e.g.
    ``"0.912 (4 of 30 runs)"``: a mean over the digits done so far is not a
    suite's mean.
    """
    table = summary(frame, metric)
    if table.empty:
        return pd.DataFrame()
    wide = annotated(table).unstack(["suite", "rule"])
    order = [s for s in SUITE_ORDER if s in wide.columns.get_level_values(0)]
    return wide.reindex(columns=order, level=0).fillna("—")


SUITE_ORDER = ("mnist-normal", "mnist-anomalous", "kdd99", "arrhythmia")


def rule_gap(frame: pd.DataFrame) -> pd.DataFrame:
    """What labelled validation adds: labelled minus normal-only test AUROC.

    Per suite and neural detector (default framework), over the (class, seed)
    cells holding both rules' records: ``pairs``, ``mean_gap`` (the
    optimism of choosing the epoch on anomaly labels a practitioner lacks)
    and ``same_epoch``, the share of jobs in which both rules kept the same
    weights.
    """
    ok = _ok_default(frame)
    ok = ok[ok["detector"].map(lambda d: DETECTORS[d].kind != "baseline")]
    index = ["suite", "detector", "class", "seed"]
    auroc = ok.pivot_table(
        index=index, columns="rule", values="test_auroc", dropna=False
    )
    epoch = ok.pivot_table(
        index=index, columns="rule", values="selected_epoch", dropna=False
    )
    columns = ["pairs", "mean_gap", "std_gap", "same_epoch"]
    if not set(RULES) <= set(auroc.columns):
        return pd.DataFrame(columns=columns)
    paired = auroc[list(RULES)].dropna()
    gap = (paired["labelled"] - paired["normal-only"]).rename("gap")
    same = (epoch["labelled"] == epoch["normal-only"]).reindex(paired.index)
    grouped = gap.groupby(level=["suite", "detector"])
    return pd.DataFrame(
        {
            "pairs": grouped.size(),
            "mean_gap": grouped.mean(),
            "std_gap": grouped.std(ddof=1),
            "same_epoch": same.groupby(level=["suite", "detector"]).mean(),
        }
    )[columns]


def yardstick(
    frame: pd.DataFrame, detector: str, suite: str, metric: str = "test_auroc"
) -> pd.DataFrame:
    """A paper chapter's model beside the autoencoder and the best classical baseline.

    Rows of :func:`summary` (mean ± std over seeds, all classes) for
    ``detector``, the convolutional autoencoder (image suites) and the
    baseline with the highest mean on ``suite``; text cells, rules as columns.
    A model without a record on ``suite`` gets a "no run yet" row.
    """
    check_name(detector, DETECTORS, "detector")
    table = summary(frame[frame["suite"] == suite], metric)
    if table.empty:
        return pd.DataFrame()
    table = table.droplevel("suite")
    means = table["mean"].groupby(level="detector").mean()
    baselines = [d for d in means.index if DETECTORS[d].kind == "baseline"]
    chosen = [detector, "autoencoder"]
    if baselines:
        chosen.append(means[baselines].idxmax())
    rows = table[table.index.get_level_values("detector").isin(chosen)]
    text = annotated(pd.concat({suite: rows}, names=["suite"])).droplevel("suite")
    text = text.unstack("rule")
    if detector not in text.index:  # say so rather than leave the model out
        wanted = planned_cells().get((suite, detector))
        text.loc[detector] = "no run yet" + (f" (0 of {wanted})" if wanted else "")
    order = [d for d in chosen if d in text.index]
    return text.loc[order].rename_axis(f"{suite}: {metric}")


def verdict(frame: pd.DataFrame, rule: str = "normal-only") -> pd.DataFrame:
    """Per suite: the best GAN against the best of the rest, with the seed spread.

    Columns: ``best_gan`` and its ``gan_mean``/``gan_std``, ``best_other``
    (autoencoder or classical baseline) and its ``other_mean``/``other_std``,
    ``margin`` (GAN minus other) and ``call``: ``"GAN ahead"`` when the margin
    exceeds both seed spreads, ``"baseline ahead"`` for the mirror case, and
    ``"tie"`` otherwise.  Only detectors with every planned run take part.
    """
    check_name(rule, RULES, "rule")
    table = complete(summary(frame))  # a partial suite mean is no verdict
    rows = []
    for suite, part in table.groupby(level="suite"):
        part = part.xs(rule, level="rule").droplevel("suite")
        kinds = part.index.map(lambda d: DETECTORS[d].kind)
        gans, others = part[kinds == "gan"], part[kinds != "gan"]
        if gans.empty or others.empty:
            continue
        gan, other = gans["mean"].idxmax(), others["mean"].idxmax()
        g, o = gans.loc[gan], others.loc[other]
        margin = g["mean"] - o["mean"]
        spread = max(g["std"], o["std"])
        call = "tie"
        if margin > spread:
            call = "GAN ahead"
        elif -margin > spread:
            call = "baseline ahead"
        rows.append(
            {
                "suite": suite,
                "best_gan": gan,
                "gan_mean": g["mean"],
                "gan_std": g["std"],
                "best_other": other,
                "other_mean": o["mean"],
                "other_std": o["std"],
                "margin": margin,
                "call": call,
            }
        )
    return pd.DataFrame(rows).set_index("suite") if rows else pd.DataFrame()


def progress(store=None, profile: str = "cpu", framework: str = "plan") -> pd.DataFrame:
    """Records the store holds against the benchmark's design, per suite and detector.

    Columns ``planned`` and ``stored`` (records: one per job and rule) and
    ``complete`` (their ratio), so a reader sees which cells a table rests on.
    """
    from .runner import jobs  # the job list; imports no framework

    profile = get_profile(profile).name
    store = store if isinstance(store, Store) else Store(store)
    held = {record_key(r) for r in store.records(profile=profile)}
    rows = [
        {
            "suite": job.suite,
            "detector": job.detector,
            "planned": 1,
            "stored": int(job.key(rule, profile) in held),
        }
        for job in jobs(framework=framework)
        for rule in RULES
    ]
    table = pd.DataFrame(rows).groupby(["suite", "detector"]).sum()
    return table.assign(complete=table["stored"] / table["planned"])


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
