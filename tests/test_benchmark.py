"""Tests of the benchmark engine: jobs, shards, the store, resuming, report, errors.

Most tests drive the engine with a stand-in detector on a toy suite, so they
check the engine itself in milliseconds; ``test_real_detector_writes_a_record``
runs one tiny real job per detector kind (an image GAN, a tabular GAN, a
baseline) under the ``tiny`` profile.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganlib import benchmark, protocols
from ganlib.benchmark import __main__ as cli
from ganlib.benchmark import suites as suites_module
from ganlib.benchmark import tables
from ganlib.benchmark.store import REQUIRED_FIELDS, Store, StoreError

# ------------------------------------------------------------ a stand-in detector


class FakeDetector:
    """The spec's detector API: a distance-to-mean score and a scripted history."""

    default_framework = "torch"
    fail_on_seed = None  # raise RuntimeError when fitting this seed (interrupted)
    diverge = False  # raise FloatingPointError, as a GAN whose loss became NaN
    fixed_budget = False  # select no epoch by any rule, as OGNet
    scored = 0  # decision_function calls on the test set

    def __init__(
        self,
        framework=None,
        seed=0,
        verbose=True,
        contamination=0.1,
        selection="auto",
        threads=None,
        epochs=3,
    ):
        self.params = {
            "framework": framework or self.default_framework,
            "seed": seed,
            "verbose": verbose,
            "contamination": contamination,
            "selection": selection,
            "threads": threads,
            "epochs": epochs,
        }

    def get_params(self, deep=True):
        return dict(self.params)

    def fit(self, X, y=None, *, epochs=None, validation_data=None, batch_size=None):
        if self.params["seed"] == self.fail_on_seed:
            raise RuntimeError("interrupted")
        if self.diverge:
            raise FloatingPointError("loss 'g' became nan at epoch 1, batch 1")
        epochs = epochs or self.params["epochs"]
        self.center_ = X.mean(axis=0)
        self.history_ = {
            "epoch": list(range(1, epochs + 1)),
            "val_auroc": [0.5 + 0.1 * e for e in range(epochs)],
            "val_mean_score": [1.0 / (e + 1) for e in range(epochs)],
        }
        for epoch in self.history_["epoch"]:
            self.on_epoch_end(epoch, X, *validation_data)
        self.selected_epochs_ = {"labelled": epochs, "normal-only": 1, "last": epochs}
        if self.fixed_budget:
            self.selected_epochs_ = {"last": epochs}
        self.rule = "labelled"
        return self

    def on_epoch_end(self, epoch, x, x_val, y_val):
        pass

    def use_selection(self, rule):
        self.rule = rule
        return self

    def decision_function(self, X):
        FakeDetector.scored += len(X) == 30  # the toy test set's size
        distance = np.abs(X - self.center_).reshape(len(X), -1).mean(axis=1)
        return distance if self.rule == "labelled" else -distance


def toy_protocol(seed=0):
    """A tabular split with a known answer: anomalies are shifted by +3."""
    rng = np.random.default_rng(seed)
    normal, shifted = rng.normal(size=(80, 4)), rng.normal(3.0, 1.0, size=(20, 4))
    x_val = np.concatenate([normal[:20], shifted[:10]])
    y_val = np.r_[np.zeros(20), np.ones(10)].astype(np.int64)
    x_test = np.concatenate([normal[20:40], shifted[10:]])
    y_test = np.r_[np.zeros(20), np.ones(10)].astype(np.int64)
    train = normal[40:]
    return protocols.Split(
        "toy",
        train,
        np.zeros(len(train), np.int64),
        x_val,
        y_val,
        x_test,
        y_test,
        contamination=0.3,
    )


@pytest.fixture
def toy(monkeypatch):
    """Register the toy suite and the fake detector (and undo it afterwards)."""
    monkeypatch.setattr(protocols, "toy", toy_protocol, raising=False)
    monkeypatch.setitem(
        benchmark.SUITES,
        "toy",
        suites_module.Suite("toy", "tabular", "toy", approx_test_rows=30),
    )
    monkeypatch.setitem(
        benchmark.DETECTORS,
        "fake",
        suites_module.DetectorSpec(
            "fake", f"{__name__}:FakeDetector", "gan", ("tabular",)
        ),
    )
    monkeypatch.setattr(FakeDetector, "fail_on_seed", None)
    monkeypatch.setattr(FakeDetector, "diverge", False)
    monkeypatch.setattr(FakeDetector, "fixed_budget", False)
    monkeypatch.setattr(FakeDetector, "scored", 0)
    suites_module._load.cache_clear()
    yield
    suites_module._load.cache_clear()


def toy_run(store, **kwargs):
    options = {
        "suites": ["toy"],
        "detectors": ["fake"],
        "profile": "tiny",
        "seeds": [0, 1],
        "framework": "default",
        "store": store,
        "progress": False,
    }
    return benchmark.run(**{**options, **kwargs})


# ------------------------------------------------------------ jobs, shards, errors


def test_the_plan_covers_the_design():
    listed = benchmark.jobs()
    frame = pd.DataFrame([vars(job) for job in listed])
    assert len(frame) == 750 and not frame.duplicated().any()
    other = frame[frame["framework_role"] == "other"]
    assert set(other["suite"]) == {"mnist-normal", "mnist-anomalous", "kdd99"}
    assert set(other["cls"].dropna()) == {0, 1, 2}
    assert set(other["detector"]) == {
        "alocc",
        "ognet",
        "ganomaly",
        "egbad",
        "alad",
        "autoencoder",
    }
    tabular = frame[frame["suite"].isin(["kdd99", "arrhythmia"])]
    assert set(tabular["detector"]) == {
        "egbad",
        "alad",
        "pca",
        "iforest",
        "ocsvm",
        "knn",
    }
    assert (
        frame.groupby(["suite", "cls", "detector", "framework"], dropna=False).size()
        == 3
    ).all()


def test_shards_partition_the_jobs():
    listed = benchmark.jobs(suites=["kdd99", "arrhythmia"])
    shards = [
        benchmark.runner.jobs(suites=["kdd99", "arrhythmia"])[i - 1 :: 3]
        for i in (1, 2, 3)
    ]
    assert sorted(map(str, sum(shards, []))) == sorted(map(str, listed))
    assert benchmark.parse_shard("2/3") == (2, 3)


@pytest.mark.parametrize("shard", ["3/2", "0/2", "a/b", "1", "1/2/3", "-1/2", ""])
def test_malformed_shard_is_refused(shard):
    with pytest.raises(ValueError, match=r"'i/n' with integers 1 <= i <= n"):
        benchmark.parse_shard(shard)


@pytest.mark.parametrize(
    "call, names",
    [
        (
            lambda: benchmark.jobs(suites=["mnist"]),
            "mnist-normal, mnist-anomalous, kdd99, arrhythmia",
        ),
        (lambda: benchmark.jobs(detectors=["dagmm"]), "alocc, ognet, ganomaly"),
        (lambda: benchmark.get_profile("gpu"), "cpu, paper, tiny"),
        (lambda: benchmark.jobs(framework="tf"), "plan, default, other, both"),
        (lambda: tables.load(rule="labeled"), "labelled, normal-only"),
    ],
)
def test_unknown_names_are_refused_with_the_valid_ones(call, names):
    with pytest.raises(ValueError, match=names):
        call()


def test_bad_selections_are_refused():
    with pytest.raises(ValueError, match="no jobs"):
        benchmark.jobs(suites=["kdd99"], detectors=["alocc"])
    with pytest.raises(ValueError, match="classes must be integers from 0 to 9"):
        benchmark.jobs(classes=[10])
    with pytest.raises(ValueError, match="seeds must be integers >= 0"):
        benchmark.jobs(seeds=[-1])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--suite", "cifar"], "valid suites are: mnist-normal"),
        (["run", "--detector", "dagmm"], "valid detectors are: alocc"),
        (["run", "--profile", "gpu"], "valid profiles are: cpu, paper, tiny"),
        (["run", "--shard", "3/2"], "1 <= i <= n"),
        (["report", "--rule", "any"], "valid rules are: labelled, normal-only"),
        (["run", "--seeds", "-1"], "seeds must be integers >= 0"),
        (["plan", "--classes", "10"], "classes must be integers from 0 to 9"),
        (["run", "--suite", "kdd99", "--detector", "alocc"], "no jobs"),
        (["plan", "--processes", "0"], "must be a positive integer"),
    ],
)
def test_command_line_errors_name_the_valid_values(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert message in capsys.readouterr().err


# ------------------------------------------------------------ the store


def record(**fields):
    """A minimal valid record."""
    base = {
        "suite": "toy",
        "class": None,
        "detector": "fake",
        "framework": "torch",
        "framework_role": "default",
        "seed": 0,
        "rule": "labelled",
        "profile": "tiny",
        "status": "ok",
        "test_auroc": 0.9,
        "test_auprc": 0.8,
        "train_seconds": 1.0,
        "score_seconds": 0.1,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "hardware": "test",
        "git_commit": None,
    }
    return {**base, **fields}


def test_store_appends_whole_lines_and_refuses_a_stored_key(tmp_path):
    store = Store(tmp_path)
    assert store.append(record(history={"val_auroc": [np.float32(0.5), float("nan")]}))
    assert not store.append(record(test_auroc=0.1))  # same key: kept as it was
    assert store.append(record(seed=1))
    lines = store.path("tiny", "toy").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["history"]["val_auroc"] == [
        0.5,
        None,
    ]
    assert [r["test_auroc"] for r in store.records()] == [0.9, 0.9]


@pytest.mark.parametrize(
    "bad_line", ["{not json", "[1, 2]", json.dumps({"suite": "toy"})]
)
def test_a_corrupt_line_is_reported_with_its_number_and_kept(
    tmp_path, bad_line, toy, capsys
):
    store = Store(tmp_path)
    store.append(record())
    path = store.path("tiny", "toy")
    with open(path, "a") as handle:
        handle.write(bad_line + "\n")
    before = path.read_text()
    with pytest.raises(StoreError, match=rf"{path.name}, line 2"):
        store.records()
    with pytest.raises(StoreError, match="line 2"):
        toy_run(tmp_path)
    with pytest.raises(StoreError, match="line 2"):
        benchmark.report(tmp_path, "tiny")
    assert cli.main(["report", "--store", str(tmp_path), "--profile", "tiny"]) == 1
    assert "line 2" in capsys.readouterr().err
    assert path.read_text() == before


# ------------------------------------------------------------ running


def test_a_run_writes_one_record_per_rule_and_a_second_run_skips(tmp_path, toy):
    written = toy_run(tmp_path)
    assert len(written) == 4 and set(written["rule"]) == set(benchmark.RULES)
    stored = Store(tmp_path).records()
    assert all(set(REQUIRED_FIELDS) <= set(r) for r in stored)
    first = stored[0]
    assert first["params"]["threads"] == 1 and first["params"]["selection"] == "auto"
    assert first["epochs"] == 1 and first["history"]["epoch"] == [1]
    assert first["n_train"] == 40 and first["contamination"] == 0.3
    assert [r["weights"] for r in stored[:2]] == list(benchmark.RULES)
    assert {r["rule"]: r["selected_epoch"] for r in stored[:2]} == {
        "labelled": 1,
        "normal-only": 1,
    }
    assert {r["rule"]: r["test_auroc"] > 0.5 for r in stored[:2]} == {
        "labelled": True,
        "normal-only": False,
    }
    assert first["f1"] is not None and first["git_commit"] != ""
    assert len(toy_run(tmp_path)) == 0
    assert len(Store(tmp_path).records()) == 4


def test_a_fixed_budget_model_is_scored_once_with_its_last_weights(
    tmp_path, toy, monkeypatch
):
    monkeypatch.setattr(FakeDetector, "fixed_budget", True)
    written = toy_run(tmp_path, seeds=[0])
    assert list(written["weights"]) == ["last", "last"]
    assert list(written["selected_epoch"]) == [1, 1] and FakeDetector.scored == 1
    assert written["test_auroc"].nunique() == 1


def test_an_interrupted_run_keeps_finished_records_and_resumes(
    tmp_path, toy, monkeypatch
):
    monkeypatch.setattr(FakeDetector, "fail_on_seed", 1)  # the second job raises
    with pytest.raises(RuntimeError, match="interrupted"):
        toy_run(tmp_path)
    assert [r["seed"] for r in Store(tmp_path).records()] == [0, 0]
    monkeypatch.setattr(FakeDetector, "fail_on_seed", None)
    assert list(toy_run(tmp_path)["seed"]) == [1, 1]


def test_shards_share_one_store(tmp_path, toy):
    toy_run(tmp_path, shard="2/2", seeds=[0, 1, 2])
    toy_run(tmp_path, shard="1/2", seeds=[0, 1, 2])
    seeds = sorted(r["seed"] for r in Store(tmp_path).records())
    assert seeds == [0, 0, 1, 1, 2, 2]


def test_a_diverged_run_is_recorded_not_dropped(tmp_path, toy, monkeypatch):
    monkeypatch.setattr(FakeDetector, "diverge", True)
    written = toy_run(tmp_path, seeds=[0])
    assert list(written["status"]) == ["diverged", "diverged"]
    assert written["test_auroc"].isna().all()
    assert benchmark.report(tmp_path, "tiny")["summary"]["failed"].sum() == 2


# ------------------------------------------------------------ the report


def grid_store(path, classes, rows) -> Store:
    """mnist-normal records for seeds 0-2, ``classes``, both rules: one per dict of
    ``rows(seed, rule)``, which holds the record's other fields."""
    store = Store(path)
    for seed in range(3):
        for cls in classes:
            for rule in ("labelled", "normal-only"):
                for fields in rows(seed, rule):
                    store.append(
                        record(
                            suite="mnist-normal",
                            **{"class": cls},
                            seed=seed,
                            rule=rule,
                            **fields,
                        )
                    )
    return store


def synthetic_store(path) -> Store:
    """Two detectors, two classes, three seeds, both rules; one in both frameworks."""

    def rows(seed, rule):
        shift = 0.0 if rule == "labelled" else -0.1
        return [
            {
                "detector": detector,
                "framework": framework,
                "framework_role": role,
                "test_auroc": auroc + shift,
            }
            for detector, framework, role, auroc in (
                ("gan", "keras", "default", 0.7 + 0.01 * seed),
                ("gan", "torch", "other", 0.72 + 0.01 * seed),
                ("pca", "sklearn", "default", 0.9),
            )
        ]

    return grid_store(path, (0, 1), rows)


def test_report_tables(tmp_path, capsys):
    shown = benchmark.report(synthetic_store(tmp_path), "tiny")
    summary = shown["summary"].loc["mnist-normal"]
    assert summary.loc[("gan", "labelled"), "mean"] == pytest.approx(0.71)
    assert summary.loc[("gan", "labelled"), "std"] == pytest.approx(0.01)
    assert summary.loc[("pca", "normal-only"), "mean"] == pytest.approx(0.8)
    assert (summary["seeds"] == 3).all() and (summary["cells"] == 6).all()
    assert list(shown["per_class"].columns) == [0, 1]
    ranks = shown["ranks"].loc[("mnist-normal", "labelled")]
    assert ranks.loc["pca", "mean_rank"] == 1 and ranks.loc["gan", "mean_rank"] == 2
    twins = shown["twins"].loc[("mnist-normal", "gan")]
    assert twins["pairs"] == 12 and twins["mean_diff"] == pytest.approx(0.02)
    assert twins["seed_std"] == pytest.approx(0.01)
    assert shown["cost"].loc[("mnist-normal", "pca", "sklearn"), "jobs"] == 6
    only = benchmark.report(tmp_path, "tiny", rule="normal-only")["summary"]
    assert set(only.index.get_level_values("rule")) == {"normal-only"}
    assert cli.main(["report", "--store", str(tmp_path), "--profile", "tiny"]) == 0
    printed = capsys.readouterr().out
    assert "0.710 ± 0.010" in printed and "Average rank" in printed


def test_curves_come_from_the_histories(tmp_path, toy):
    toy_run(tmp_path, seeds=[0, 1], profile="tiny")
    table = tables.curves(tmp_path, "tiny")
    assert list(table["seed"]) == [0, 1] and list(table["epoch"]) == [1, 1]
    assert list(table["val_auroc"]) == [0.5, 0.5]


def test_report_of_an_empty_store(tmp_path, capsys):
    assert cli.main(["report", "--store", str(tmp_path)]) == 0
    assert "no records" in capsys.readouterr().out


# ------------------------------------------------------------ profiles and the plan


def test_profiles_are_declarative_and_complete():
    cpu = benchmark.PROFILES["cpu"]
    assert cpu.threads == 1 and cpu.epochs and cpu.train_rows
    assert cpu.detector_hyperparameters("alad", "image")["patience"] == cpu.epochs
    assert cpu.detector_hyperparameters("egbad", "tabular") == {}
    arrhythmia = cpu.detector_hyperparameters("alad", "tabular", "arrhythmia")
    assert (
        arrhythmia["tabular_widths"] == "arrhythmia" and arrhythmia["latent_dim"] == 64
    )
    assert "tabular_widths" not in cpu.detector_hyperparameters(
        "alad", "tabular", "kdd99"
    )
    for name in ("alocc", "ognet", "ganomaly", "alad"):
        assert cpu.detector_hyperparameters(name, "image")["base_filters"] == 16


def test_a_profile_caps_rows_per_suite_kind():
    cpu = benchmark.PROFILES["cpu"]
    image, tabular = cpu.for_suite("image"), cpu.for_suite("tabular", "kdd99")
    assert (image.train_rows, image.val_rows, image.test_rows) == (1000, 500, 5000)
    assert (tabular.train_rows, tabular.test_rows) == (20_000, 50_000)
    assert tabular.epochs == cpu.epochs and tabular.name == "cpu"
    arrhythmia = cpu.for_suite("tabular", "arrhythmia")  # its own epochs, kind's caps
    assert arrhythmia.epochs == 300 and arrhythmia.train_rows == 20_000
    split = protocols.Split(
        name="toy",
        x_train=np.zeros((30_000, 3)),
        y_train=np.zeros(30_000, int),
        x_val=np.zeros((100, 3)),
        y_val=np.r_[np.zeros(80, int), np.ones(20, int)],
        x_test=np.zeros((100, 3)),
        y_test=np.r_[np.zeros(80, int), np.ones(20, int)],
        contamination=0.2,
    )
    assert len(tabular.apply(split, seed=0)["x_train"]) == 20_000
    assert len(image.apply(split, seed=0)["x_train"]) == 1000


def test_the_plan_estimates_from_measured_timings(tmp_path, toy, monkeypatch):
    monkeypatch.setattr(FakeDetector, "fixed_budget", True)  # one scoring pass
    timings = benchmark.measure(
        "tiny", suites=["toy"], detectors=["fake"], store=tmp_path
    )
    assert list(timings["epochs_measured"]) == [3, 3]  # both frameworks
    assert list(timings["scoring_passes"]) == [1, 1]
    row = json.loads((tmp_path / "timings-tiny.json").read_text())["rows"][0]
    assert row["epoch_cpu_seconds"] >= 0 and row["hardware"]
    table, totals = benchmark.plan(
        "tiny", suites=["toy"], detectors=["fake"], framework="default", store=tmp_path
    )
    assert table["jobs"].sum() == 3 and totals["records"] == 6
    expected = (
        row["setup_cpu_seconds"] + row["epoch_cpu_seconds"] + row["score_cpu_seconds"]
    )
    assert table["seconds_per_job"].iloc[0] == pytest.approx(expected)
    assert np.isfinite(totals["wall_hours"]) and np.isfinite(
        totals["measured_wall_hours"]
    )
    benchmark.measure("tiny", suites=["toy"], detectors=["fake"], store=tmp_path)
    rows = json.loads((tmp_path / "timings-tiny.json").read_text())["rows"]
    assert len(rows) == 2  # measuring again replaces the rows


def test_the_cpu_plan_fits_four_hours(capsys):
    table, totals = benchmark.plan("cpu")
    assert totals["jobs"] == 750 and table["jobs"].sum() == 750
    assert totals["wall_hours"] <= 4.0, table.sort_values("seconds_per_job").tail()
    assert cli.main(["plan", "--profile", "cpu"]) == 0
    assert "h wall on 2 processes" in capsys.readouterr().out


# ------------------------------------------------------------ real detectors

new_api = pytest.mark.skipif(
    not hasattr(
        __import__("ganlib.detector", fromlist=["Detector"]).Detector, "use_selection"
    ),
    reason="needs the detector API with use_selection (issue 12)",
)


@new_api
def test_profiles_set_only_real_hyper_parameters():
    for name in benchmark.PROFILES:
        for spec in benchmark.DETECTORS.values():
            for kind in spec.inputs:
                job = benchmark.runner.Job(
                    "kdd99" if kind == "tabular" else "mnist-normal",
                    None,
                    0,
                    spec.name,
                    spec.frameworks()[0],
                    "default",
                )
                benchmark.runner.make_detector(job, benchmark.get_profile(name), None)


@new_api
@pytest.mark.parametrize(
    "suite, detector, weights",
    [
        ("mnist-normal", "ognet", ["last", "last"]),  # an image GAN, a fixed budget
        ("arrhythmia", "alad", list(benchmark.RULES)),  # a tabular GAN, both rules
        ("arrhythmia", "knn", [None, None]),  # a classical baseline
    ],
)
def test_real_detector_writes_a_record(tmp_path, suite, detector, weights):
    options = {
        "suites": [suite],
        "detectors": [detector],
        "profile": "tiny",
        "seeds": [0],
        "classes": [3],
        "store": tmp_path,
        "progress": False,
    }
    written = benchmark.run(**options)
    assert list(written["rule"]) == list(benchmark.RULES)
    assert list(written["weights"]) == weights
    assert (written["status"] == "ok").all()
    assert written["test_auroc"].between(0, 1).all()
    for item in Store(tmp_path).records():
        assert item["params"]["seed"] == 0 and item["hardware"] and item["device"]
        if detector != "knn":
            assert item["params"]["threads"] == 1 and item["epochs"] == 1
            assert item["selected_epoch"] == 1 and item["history"]["val_auroc"]
        assert (item["f1"] is not None) == (suite == "arrhythmia")
    assert len(benchmark.run(**options)) == 0


# ------------------------------------------------------------ the verdict's tables


def verdict_store(path) -> Store:
    """mnist-normal, digits 0-3, seeds 0-2: ganomaly, the autoencoder and PCA.

    GANomaly's labelled weights score 0.1 higher than its normal-only ones on
    every run and its two rules pick different epochs; PCA is best on every
    digit, the autoencoder last.
    """

    def rows(seed, rule):
        return [
            {
                "detector": detector,
                "framework": framework,
                "test_auroc": auroc
                - 0.1
                + (0.1 if detector == "ganomaly" and rule == "labelled" else 0),
                "selected_epoch": None
                if epoch is None
                else epoch + (rule == "labelled"),
            }
            for detector, framework, auroc, epoch in (
                ("ganomaly", "keras", 0.80 + 0.01 * seed, 5),
                ("autoencoder", "torch", 0.70, 3),
                ("pca", "sklearn", 0.95, None),
            )
        ]

    return grid_store(path, range(4), rows)


@pytest.fixture
def four_digits(monkeypatch):
    """The design shrunk to the four digits of verdict_store."""
    planned = pd.Series(
        {("mnist-normal", d): 12 for d in ("ganomaly", "autoencoder", "pca")},
        name="planned",
    ).rename_axis(["suite", "detector"])
    monkeypatch.setattr(tables, "planned_cells", lambda framework="default": planned)


def test_ranks_use_digits_as_blocks_and_give_a_critical_difference(tmp_path):
    frame = tables.load(verdict_store(tmp_path), "tiny")
    part = tables.ranks(frame).loc[("mnist-normal", "normal-only")]
    assert list(part.index) == ["pca", "ganomaly", "autoencoder"]
    assert (part["blocks"] == 4).all()  # digits, not digit x seed cells
    # Nemenyi: q(0.05, k=3) = 2.343, CD = q sqrt(k(k+1) / 6N)
    assert part["critical_difference"].iloc[0] == pytest.approx(
        2.343 * np.sqrt(3 * 4 / (6 * 4)), abs=1e-3
    )


def test_rule_gap_measures_what_the_labels_buy(tmp_path):
    gap = tables.rule_gap(tables.load(verdict_store(tmp_path), "tiny"))
    assert gap.loc[("mnist-normal", "ganomaly"), "mean_gap"] == pytest.approx(0.1)
    assert gap.loc[("mnist-normal", "ganomaly"), "same_epoch"] == 0
    assert gap.loc[("mnist-normal", "autoencoder"), "mean_gap"] == pytest.approx(0)
    assert "pca" not in gap.index.get_level_values("detector")  # no epochs to pick
    assert gap.loc[("mnist-normal", "ganomaly"), "pairs"] == 12


def test_the_verdict_weighs_the_margin_against_the_seed_spread(tmp_path, four_digits):
    frame = tables.load(verdict_store(tmp_path), "tiny")
    call = tables.verdict(frame).loc["mnist-normal"]
    assert call["best_gan"] == "ganomaly" and call["best_other"] == "pca"
    assert call["margin"] == pytest.approx(0.71 - 0.85)
    assert call["call"] == "baseline ahead"
    labelled = tables.verdict(frame, rule="labelled").loc["mnist-normal"]
    assert labelled["margin"] == pytest.approx(0.81 - 0.85)
    assert labelled["call"] == "baseline ahead"  # 0.04 > the seed spread 0.01


def test_a_partial_suite_is_marked_and_left_out_of_the_verdict(tmp_path, four_digits):
    store = verdict_store(tmp_path)
    kept = [r for r in store.records() if not (r["detector"] == "pca" and r["seed"])]
    path = store.path("tiny", "mnist-normal")
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    frame = tables.load(store, "tiny")
    shown = tables.headline(frame)
    assert shown.loc["pca", ("mnist-normal", "labelled")] == "0.850 (4 of 12 runs)"
    assert shown.loc["ganomaly", ("mnist-normal", "labelled")] == "0.810 ± 0.010"
    assert tables.verdict(frame).loc["mnist-normal", "best_other"] == "autoencoder"


def test_the_yardstick_puts_a_model_beside_the_autoencoder_and_best_baseline(
    tmp_path, four_digits
):
    frame = tables.load(verdict_store(tmp_path), "tiny")
    table = tables.yardstick(frame, "ganomaly", "mnist-normal")
    assert list(table.index) == ["ganomaly", "autoencoder", "pca"]
    assert table.loc["ganomaly", "normal-only"] == "0.710 ± 0.010"
    with pytest.raises(ValueError, match="detector"):
        tables.yardstick(frame, "gan", "mnist-normal")
    assert tables.yardstick(frame, "egbad", "kdd99").empty
    missing = tables.yardstick(frame, "alad", "mnist-normal")
    assert missing.loc["alad", "labelled"] == "no run yet"  # not in four_digits


def test_progress_counts_the_store_against_the_design(tmp_path):
    Store(tmp_path).append(
        record(suite="kdd99", detector="pca", framework="sklearn", profile="cpu")
    )
    done = tables.progress(tmp_path, "cpu")
    assert done.loc[("kdd99", "pca"), "planned"] == 6  # 3 seeds x 2 rules
    assert done.loc[("kdd99", "pca"), "stored"] == 1
    assert done.loc[("mnist-normal", "alad"), "stored"] == 0


def test_the_figures_draw_from_the_tables(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from ganlib.benchmark import figures

    store = verdict_store(tmp_path)
    frame = tables.load(store, "tiny")
    shown = benchmark.report(store, "tiny")
    fig = figures.heatmap(shown["per_class"], "mnist-normal", "normal-only")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0] == "pca"
    fig = figures.rank_diagram(tables.ranks(frame), "mnist-normal", "labelled")
    assert "critical difference" in fig.axes[0].get_title()
    fig = figures.cost_chart(shown["cost"], "mnist-normal")
    assert len(fig.axes[0].patches) == 6  # training and scoring bars, 3 detectors


def test_the_store_directory_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLIB_BENCHMARK_STORE", str(tmp_path))
    Store().append(record())
    assert Store(tmp_path).keys("tiny", "toy") and Store().root == tmp_path
    monkeypatch.delenv("GANLIB_BENCHMARK_STORE")
    assert Store().root.parts[-2:] == ("results", "benchmark")
