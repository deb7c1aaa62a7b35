"""Protocols: splits with a locked, recorded test split; k-fold; seed plans."""

from __future__ import annotations

import numpy as np
import pytest

import airda
from airda.eval import (
    KFold,
    LockedSplitError,
    RepeatedKFold,
    SeedPlan,
    Splits,
    finish_search,
    test_reads,
)
from airda.space import Float


def _study(tmp_path, name="s"):
    return airda.create_study(
        name, storage=str(tmp_path / "s.db"), space={"x": Float(0, 1)}, seed=0,
        load_if_exists=True,
    )  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 3, 10, 997])
def test_splits_partition_every_item_once(n):
    s = Splits(n, (0.5, 0.25, 0.25), seed=3)
    s.finish_search()
    parts = [s.search, s.validation, s.test]
    joined = np.sort(np.concatenate(parts))
    assert (joined == np.arange(n)).all()
    assert abs(parts[0].size - n * 0.5) <= 1
    again = Splits(n, (0.5, 0.25, 0.25), seed=3)
    assert (again.search == s.search).all()


def test_stratified_splits_keep_proportions():
    labels = np.repeat([0, 1, 2], [300, 100, 600])
    s = Splits(1000, (0.6, 0.2, 0.2), seed=0, stratify=labels)
    for idx in (s.search, s.validation):
        counts = np.bincount(labels[idx], minlength=3) / idx.size
        assert counts == pytest.approx([0.3, 0.1, 0.6], abs=0.01)


def test_test_split_locked_until_finished_and_reads_recorded(tmp_path):
    study = _study(tmp_path)
    s = Splits(40, study=study)
    with pytest.raises(LockedSplitError, match="finish_search"):
        _ = s.test
    assert test_reads(study) == []
    study.optimize(lambda t: t["x"], n_trials=3)
    finish_search(study, note="done")
    assert len(s.test) == 8
    reads = test_reads(study)
    assert len(reads) == 1
    assert reads[0]["n"] == 8
    assert reads[0]["n_trials"] == 3
    # the record is on the study: a new session sees it, and its splits must match
    again = airda.load_study("s", storage=str(tmp_path / "s.db"))
    assert len(test_reads(again)) == 1
    assert Splits(40, study=again).test.size == 8
    assert len(test_reads(again)) == 2
    with pytest.raises(ValueError, match="must not change"):
        Splits(40, seed=1, study=again)
    first = finish_search(again)
    assert first["note"] == "done"
    assert first["n_trials"] == 3


def test_split_bad_input():
    with pytest.raises(ValueError, match="positive integer"):
        Splits(0)
    with pytest.raises(ValueError, match="summing to 1"):
        Splits(10, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="one label per item"):
        Splits(10, stratify=[0, 1])


@pytest.mark.parametrize(("n", "k"), [(2, 2), (10, 3), (101, 5)])
def test_kfold_covers_each_item_once(n, k):
    folds = list(KFold(k, seed=1).split(n))
    assert len(folds) == k
    val = np.sort(np.concatenate([v for _, v in folds]))
    assert (val == np.arange(n)).all()
    for train, v in folds:
        assert np.intersect1d(train, v).size == 0
        assert train.size + v.size == n
    sizes = [v.size for _, v in folds]
    assert max(sizes) - min(sizes) <= 1


def test_stratified_kfold_and_repeats():
    labels = np.repeat([0, 1], [80, 20])
    for _, v in KFold(5, seed=0).split(100, stratify=labels):
        assert np.bincount(labels[v], minlength=2).tolist() == [16, 4]
    rep = list(RepeatedKFold(4, n_repeats=3, seed=2).split(20))
    assert len(rep) == 12
    firsts = [tuple(rep[r * 4][1]) for r in range(3)]
    assert len(set(firsts)) == 3  # each repeat shuffles differently
    with pytest.raises(ValueError, match="cannot make 5 folds of 3"):
        list(KFold(5).split(3))
    with pytest.raises(ValueError, match=">= 2"):
        KFold(1)


def test_seed_plan_names_and_varies_sources():
    plan = SeedPlan(4, base_seed=7, sources=("data_order", "init", "dropout"), vary=("init",))
    runs = list(plan)
    assert len(runs) == len(plan) == 4
    assert len({r["init"] for r in runs}) == 4
    assert len({r["data_order"] for r in runs}) == 1
    assert plan.to_dict()["runs"] == runs
    assert SeedPlan(4, base_seed=7, sources=("data_order", "init", "dropout"))[0] != runs[1]
    assert all(0 <= v < 2**63 for r in runs for v in r.values())
    with pytest.raises(ValueError, match="unknown sources"):
        SeedPlan(2, vary=("weather",))
