"""Tabular benchmarks: reading and validating tables, queries and their counters, objectives."""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

import airda
from airda.nas import TabularBenchmark, is_degenerate, nb201_space
from airda.nas.nb201 import NUM_ARCHS, Arch, params_to_arch
from airda.space import Categorical
from tests.nas.shared_data import shared_data_file

A0 = Arch.from_index(0)
A1 = Arch.from_index(1)
A2 = Arch.from_index(2)


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def score(a: Arch) -> float:
    """A synthetic accuracy: convolutions help, pools a little, plus a fixed pattern."""
    weights = {"none": 0, "skip_connect": 1, "nor_conv_1x1": 3, "nor_conv_3x3": 4}
    weights["avg_pool_3x3"] = 2
    return float(sum(weights[op] for op in a.ops)) + (a.index % 7) / 10


@pytest.fixture(scope="module")
def full_synthetic(tmp_path_factory) -> Path:
    """A table of all 15,625 cells, shuffled like the benchmark's own order."""
    order = np.random.default_rng(0).permutation(NUM_ARCHS)
    rows = []
    for table_index, i in enumerate(order):
        a = Arch.from_index(int(i))
        rows.append([table_index, a.to_string(), score(a), 100.0 + a.index % 13])
    path = tmp_path_factory.mktemp("tables") / "synthetic.csv"
    return write_csv(path, ["index", "arch", "acc", "train_seconds"], rows)


@pytest.fixture
def small(tmp_path) -> Path:
    rows = [[10, A0, 1.5, 7.0], [11, A1, 2.5, 8.0], [12, A2, 0.5, 9.0]]
    return write_csv(tmp_path / "small.csv", ["index", "arch", "acc", "cost"], rows)


# ---- reading ----------------------------------------------------------------------------------


def test_reads_a_table(small):
    bench = TabularBenchmark.from_csv(small)
    assert bench.metrics == ("acc", "cost")
    assert len(bench) == 3
    assert bench.archs == (A0, A1, A2)
    assert bench.arch_at(11) == A1
    assert bench.index_of(A2.to_string()) == 12
    assert A1 in bench
    assert "garbage" not in bench
    assert Arch.from_index(99) not in bench
    assert str(small) in repr(bench)
    only = TabularBenchmark.from_csv(small, metrics=["cost"])
    assert only.metrics == ("cost",)
    assert TabularBenchmark.from_csv(small, metrics="acc").metrics == ("acc",)


def test_without_an_index_column_rows_are_the_index(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["arch", "acc"], [[A2, 1], [A0, 2]])
    bench = TabularBenchmark.from_csv(path)
    assert bench.arch_at(0) == A2
    assert bench.index_of(A0) == 1
    with pytest.raises(KeyError, match="no architecture with index 5"):
        bench.arch_at(5)
    # With index_column=None an "index" column is an ordinary metric.
    path = write_csv(tmp_path / "u.csv", ["index", "arch", "acc"], [[7, A0, 1]])
    assert TabularBenchmark.from_csv(path, index_column=None).metrics == ("index", "acc")


def test_queries_are_counted(small):
    bench = TabularBenchmark.from_csv(small)
    assert bench.query(A1, "acc") == 2.5
    assert bench.query(A1.to_string(), "acc") == 2.5
    assert bench.query(A1.to_params(), "cost") == 8.0
    assert bench.query(A0, "acc") == 1.5
    assert (bench.n_queries, bench.n_unique_queries) == (4, 2)
    assert bench.lookup(A2, "acc") == 0.5  # not counted
    assert bench.n_queries == 4
    assert bench.simulated_time == 0.0
    bench.reset_counters()
    assert (bench.n_queries, bench.n_unique_queries, bench.simulated_time) == (0, 0, 0.0)


def test_simulated_training_cost(small):
    bench = TabularBenchmark.from_csv(small, metrics=["acc"], cost_column="cost")
    assert bench.metrics == ("acc", "cost")
    bench.query(A0, "acc")
    bench.query(A0, "acc")  # a repeated query trains again
    bench.query(A2, "acc")
    assert bench.simulated_time == 7.0 + 7.0 + 9.0
    fixed = TabularBenchmark.from_csv(small, cost_per_query=30)
    fixed.query(A1, "acc")
    assert fixed.simulated_time == 30.0
    both = TabularBenchmark.from_csv(small, cost_column="cost", cost_per_query=1)
    both.query(A1, "acc")
    assert both.simulated_time == 9.0
    for bad in (-1, math.inf, "3"):
        with pytest.raises(ValueError, match="cost_per_query"):
            TabularBenchmark.from_csv(small, cost_per_query=bad)


def test_unknown_arch_metric_and_bad_arch(small):
    bench = TabularBenchmark.from_csv(small)
    missing = Arch.from_index(12345)
    with pytest.raises(KeyError, match=r"architecture \|.* is not in the table") as info:
        bench.query(missing, "acc")
    assert missing.to_string() in str(info.value)
    assert str(small) in str(info.value)
    with pytest.raises(KeyError, match="unknown metric 'loss'; the metrics are"):
        bench.query(A0, "loss")
    with pytest.raises(ValueError, match="malformed NB201 arch string"):
        bench.query("|conv~0|", "acc")
    assert bench.n_queries == 0


# ---- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "rows", "kwargs", "message"),
    [
        (["index", "acc"], [[0, 1.0]], {}, r"missing column 'arch' \(the arch column\)"),
        (["arch", "acc"], [[A0, 1.0]], {"metrics": ["acc", "x"]}, r"missing metric .*\['x'\]"),
        (["arch", "acc"], [[A0, 1.0]], {"index_column": "id"}, "missing column 'id'"),
        (["arch", "acc"], [[A0, 1.0]], {"cost_column": "t"}, "missing column 't'"),
        (["arch", "acc", "acc"], [[A0, 1, 2]], {}, "column 'acc' appears twice"),
        (["arch"], [[A0]], {}, "no metric column"),
        (["arch", "acc"], [], {}, "no data row"),
        (
            ["arch", "acc"],
            [[A0, 1.0], [A1, 2.0], [A0, 3.0]],
            {},
            r"column 'arch': architecture .* appears twice \(rows 1 and 3\)",
        ),
        (
            ["arch", "acc"],
            [[A0, 1.0], ["|none~0|+|none~0|", 2.0]],
            {},
            r"column 'arch', row 2: malformed NB201 arch string '\|none~0\|\+\|none~0\|'",
        ),
        (
            ["arch", "acc"],
            [[A0, 1.0], [A1, "n/a"]],
            {},
            r"column 'acc', row 2: 'n/a' is not a number",
        ),
        (["arch", "acc"], [[A0, ""]], {}, r"column 'acc', row 1: '' is not a number"),
        (["index", "arch", "acc"], [["x", A0, 1]], {}, r"column 'index', row 1: 'x' is not an"),
        (["arch", "acc"], [[A0, 1.0, 5]], {}, "row 1 has 3 fields, the header 2"),
        (["index", "arch", "acc"], [[1, A0, 1], [1, A1, 2]], {}, "index 1 appears twice"),
    ],
)
def test_bad_tables_name_the_file_column_and_row(tmp_path, header, rows, kwargs, message):
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(ValueError, match=message) as info:
        TabularBenchmark.from_csv(path, **kwargs)
    assert str(path) in str(info.value)


def test_empty_and_absent_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        TabularBenchmark.from_csv(empty)
    with pytest.raises(FileNotFoundError):
        TabularBenchmark.from_csv(tmp_path / "absent.csv")


def test_nan_values_are_kept_and_skipped_by_reports(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["arch", "acc"], [[A0, "nan"], [A1, 3.0], [A2, 1.0]])
    bench = TabularBenchmark.from_csv(path)
    assert math.isnan(bench.query(A0, "acc"))
    assert bench.best("acc") == (A1, 3.0)
    assert bench.best("acc", direction="minimize") == (A2, 1.0)
    assert bench.percentile_of(1.0, "acc") == 50.0
    with pytest.raises(ValueError, match="direction"):
        bench.best("acc", direction="max")


def test_constructor_checks():
    with pytest.raises(ValueError, match="appears twice"):
        TabularBenchmark([A0, A0], {"acc": [1, 2]})
    with pytest.raises(ValueError, match="has 1 values for 2"):
        TabularBenchmark([A0, A1], {"acc": [1]})
    with pytest.raises(ValueError, match="no metric"):
        TabularBenchmark([A0], {})
    with pytest.raises(ValueError, match="cost column 'c' is not a metric"):
        TabularBenchmark([A0], {"acc": [1]}, cost_column="c")
    bench = TabularBenchmark([A0.to_string(), A1.to_params()], {"acc": [1, 2]})
    assert bench.archs == (A0, A1)
    values = bench.values("acc")
    with pytest.raises(ValueError, match="read-only"):
        values[0] = 5


# ---- reports ---------------------------------------------------------------------------------


def test_best_and_percentile(full_synthetic):
    bench = TabularBenchmark.from_csv(full_synthetic)
    best_arch, best_value = bench.best("acc")
    assert best_value == max(score(Arch.from_index(i)) for i in range(NUM_ARCHS))
    assert score(best_arch) == best_value
    assert bench.percentile_of(best_value, "acc") == 100.0
    assert bench.percentile_of(-1, "acc") == 0.0
    median = float(np.median(bench.values("acc")))
    assert 49 <= bench.percentile_of(median, "acc") <= 51
    assert bench.n_queries == 0
    # The table's own index is its shuffled order, not Arch.index.
    assert bench.arch_at(0) == Arch.from_index(
        int(np.random.default_rng(0).permutation(NUM_ARCHS)[0])
    )


# ---- objectives -------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["rea", "random", "local", "grid"])
def test_study_on_the_space_with_a_table_objective(full_synthetic, strategy):
    bench = TabularBenchmark.from_csv(full_synthetic, cost_column="train_seconds")
    study = airda.create_study(space=nb201_space(), strategy=strategy, direction="maximize", seed=3)
    study.optimize(bench.objective("acc"), n_trials=50)
    trials = study.trials
    assert len(trials) == 50
    assert all(t.state.value == "complete" for t in trials)
    evaluated = [t for t in trials if "cached_from" not in t.system_attrs]
    assert bench.n_queries == len(evaluated)
    assert bench.n_unique_queries == len(evaluated)  # the study never re-evaluates a candidate
    for t in evaluated:
        a = params_to_arch(t.params)
        assert t.value == bench.lookup(a, "acc")
        assert t.user_attrs["arch"] == a.to_string()
    expected = sum(bench.lookup(params_to_arch(t.params), "train_seconds") for t in evaluated)
    assert bench.simulated_time == pytest.approx(expected)


def test_objective_on_arch_strings(small):
    bench = TabularBenchmark.from_csv(small)
    space = {"arch": Categorical([a.to_string() for a in bench.archs])}
    study = airda.create_study(space=space, strategy="grid", direction="maximize")
    study.optimize(bench.objective("acc", space_params=False), n_trials=3)
    assert study.best_value == 2.5
    assert bench.n_queries == 3
    fn = bench.objective("cost")
    assert fn(A2) == 9.0
    assert fn(A2.to_string()) == 9.0
    assert (
        fn(
            {"0->1": "none", "0->2": "none", "1->2": "none", "0->3": "none"}
            | {"1->3": "none", "2->3": "none"}
        )
        == 7.0
    )
    with pytest.raises(ValueError, match=r"params\['arch'\]"):
        bench.objective("acc", space_params=False)({"x": 1})
    with pytest.raises(KeyError, match="unknown metric"):
        bench.objective("nope")


def test_objectives_pickle_for_worker_processes(small):
    bench = TabularBenchmark.from_csv(small, cost_column="cost")
    fn = pickle.loads(pickle.dumps(bench.objective("acc")))
    assert "acc" in repr(fn)
    assert fn(A1) == 2.5
    assert fn.benchmark.n_queries == 1  # the copy counts its own queries
    assert fn.benchmark.simulated_time == 8.0
    assert bench.n_queries == 0
    fn.benchmark.query(A0, "acc")  # its lock works after unpickling


def test_failed_lookups_fail_the_trial_not_the_study(small):
    bench = TabularBenchmark.from_csv(small)  # three architectures out of 15,625
    study = airda.create_study(space=nb201_space(), seed=0)
    study.optimize(bench.objective("acc"), n_trials=5)
    assert [t.state.value for t in study.trials] == ["fail"] * 5
    assert "is not in the table" in study.trials[0].error


# ---- the real NAS-Bench-201 table -------------------------------------------------------------


@pytest.fixture(scope="module")
def nb201_table() -> TabularBenchmark:
    return TabularBenchmark.from_csv(shared_data_file("nasbench201", "nb201_12epoch.csv"))


def test_the_nb201_table(nb201_table):
    bench = nb201_table
    assert len(bench) == NUM_ARCHS
    assert bench.metrics == (
        "cifar10-test",
        "cifar10-val",
        "cifar100-test",
        "cifar100-val",
        "imagenet-test",
        "imagenet-val",
    )
    assert bench.arch_at(0).to_string() == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
        "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    assert bench.lookup(bench.arch_at(1), "cifar10-test") == 88.22
    assert set(bench.archs) == {Arch.from_index(i) for i in range(NUM_ARCHS)}
    _, best = bench.best("cifar10-test")
    assert 85 < best < 94.37  # 12 epochs: below the 200-epoch best
    # Exactly the degenerate cells (no input-output path) score chance: 10% on CIFAR-10.
    degenerate = np.array([is_degenerate(a) for a in bench.archs])
    assert degenerate.sum() == 341
    accuracy = bench.values("cifar10-test")
    assert np.all(accuracy[degenerate] == 10.0)
    assert accuracy[~degenerate].min() > 25


@pytest.mark.parametrize("strategy", ["rea", "random"])
def test_search_on_the_nb201_table(nb201_table, strategy):
    nb201_table.reset_counters()
    study = airda.create_study(space=nb201_space(), strategy=strategy, direction="maximize", seed=0)
    study.optimize(nb201_table.objective("cifar10-val"), n_trials=50)
    assert len(study.trials) == 50
    assert 0 < nb201_table.n_queries <= 50
    found = nb201_table.lookup(params_to_arch(study.best_params), "cifar10-test")
    # 50 random draws already land in the top few percent of the space with high probability.
    assert nb201_table.percentile_of(found, "cifar10-test") > 80
