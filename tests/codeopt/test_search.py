"""The one search loop of code optimisation (``search_variants``) and the spec of ``tune_c``."""

from __future__ import annotations

import dataclasses
import doctest

import pytest

import airda
from airda._native import native_error
from airda.codeopt import Arg, CVariantSpec, VariantFailed, search_variants, tune_c
from airda.codeopt import search as search_module
from airda.codeopt.search import stored_variants
from airda.space import Categorical, Float, Int
from airda.trial import TrialState


def _study(n=12, strategy="random", storage=None, name=None, seed=0):
    return airda.create_study(
        name,
        storage=storage,
        space={"v": Int(0, n - 1)},
        strategy=strategy,
        seed=seed,
        load_if_exists=True,
    )


def test_search_module_examples():
    result = doctest.testmod(search_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_one_trial_per_variant_and_failures_recorded_once():
    calls = []

    def evaluate(trial, prepared):
        calls.append(trial.params["v"])
        if trial.params["v"] % 3 == 0:
            raise VariantFailed("wrong output", "wrong")
        return float(trial.params["v"])

    study = _study(n=6)  # random: it proposes repeats, which are skipped
    rows = []
    assert search_variants(study, evaluate, progress=rows.append) == 6
    assert sorted(calls) == list(range(6))
    assert len(study.trials) == 6
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert sorted(t.params["v"] for t in failed) == [0, 3]
    assert {t.user_attrs["failure"] for t in failed} == {"wrong"}
    assert failed[0].error == "wrong output"
    assert [t.number for t in rows] == [t.number for t in study.trials]
    assert search_variants(study, evaluate) == 0  # answered from the study
    assert len(study.trials) == 6


def test_batches_are_prepared_before_their_trials_start():
    seen = []

    def prepare(batch):
        seen.append((len(batch), len(study.trials)))
        return [p["v"] * 10 for p in batch]

    study = _study(n=7, strategy="grid")
    got = {}

    def evaluate(trial, prepared):
        got[trial.params["v"]] = prepared
        return 1.0

    assert search_variants(study, evaluate, batch=3, prepare=prepare) == 7
    assert seen == [(3, 0), (3, 3), (1, 6)]
    assert got == {v: v * 10 for v in range(7)}


def test_an_error_in_prepare_stores_nothing():
    def prepare(batch):
        raise ValueError("the reference does not compile")

    study = _study()
    with pytest.raises(ValueError, match="reference"):
        search_variants(study, lambda t, p: 1.0, batch=4, prepare=prepare)
    assert study.trials == []


def test_an_interrupted_evaluation_is_measured_again():
    def interrupted(trial, prepared):
        raise KeyboardInterrupt

    study = _study(n=3)  # (a grid never proposes a candidate twice, even one interrupted)
    with pytest.raises(KeyboardInterrupt):
        search_variants(study, interrupted)
    (first,) = study.trials
    assert first.state is TrialState.FAIL
    assert first.user_attrs["interrupted"] is True
    assert stored_variants(study) == {}
    assert search_variants(study, lambda t, p: 1.0) == 3
    assert sorted(t.params["v"] for t in stored_variants(study).values()) == [0, 1, 2]


def _counting_asks(study, asked):
    ask = study.ask_candidates

    def counted(n):
        out = ask(n)
        asked.extend(i for i, _ in out)
        return out

    study.ask_candidates = counted
    return study


def test_a_resumed_search_goes_on_from_where_it_stopped(tmp_path):
    # Every trial records the strategy's ask it stands for: a resumed random search does not
    # replay the proposals of the first run (they would all be skipped as evaluated).
    db = str(tmp_path / "s.db")
    first, second = [], []

    def evaluate(trial, prepared):
        return float(trial.params["v"])

    study = _counting_asks(_study(n=40, storage=db, name="r", seed=5), first)
    assert search_variants(study, evaluate, budget=5) == 5
    again = _counting_asks(_study(n=40, storage=db, name="r", seed=5), second)
    assert search_variants(again, evaluate, budget=8) == 3
    assert min(second) == max(first) + 1  # no earlier ask asked again
    indices = [t.system_attrs["ask_index"] for t in again.trials]
    assert indices == sorted(indices)
    assert len(set(indices)) == 8


def test_budget_timeout_and_a_strategy_that_only_repeats():
    study = _study()
    with pytest.raises(ValueError, match="budget"):
        search_variants(study, lambda t, p: 1.0, budget=0)
    with pytest.raises(ValueError, match="batch"):
        search_variants(study, lambda t, p: 1.0, batch=0)
    continuous = airda.create_study(space={"x": Float(0, 1)})
    with pytest.raises(ValueError, match="give a budget"):
        search_variants(continuous, lambda t, p: 1.0)
    assert search_variants(study, lambda t, p: 1.0, timeout=0.0) == 0
    # one candidate that is evaluated, proposed again and again: the search stops
    same = airda.create_study(space={"v": Categorical([1, 2])}, strategy="random", seed=0)
    same.strategy._ask_one = lambda rng: {"v": 1}
    assert search_variants(same, lambda t, p: 1.0) == 1
    assert len(same.trials) == 1


# ---- the spec of tune_c ------------------------------------------------------------------------

SRC = "void f(float* y, int n) { for (int i = 0; i < n; ++i) y[i] = i * U; }"
ARGS = [Arg("float32", (16,), "zeros", out=True), Arg("int32", value=16)]
EXPECTED = [[float(i) for i in range(16)]]


def test_spec_is_checked_and_normalised(tmp_path):
    spec = CVariantSpec(SRC, "f", ARGS, params={"U": [1, 2]}, flags="-O1 -g")
    assert spec.flags == ("-O1 -g",)  # one flag set, not one per character
    assert spec.params == {"U": (1, 2)}
    assert spec.args == tuple(ARGS)
    assert sorted(spec.space().names) == ["U", "flags"]
    with pytest.raises(ValueError, match="clock"):
        CVariantSpec(SRC, "f", ARGS, params={"U": [1]}, clock="tsc")
    with pytest.raises(ValueError, match="output"):
        CVariantSpec(SRC, "f", [Arg("int32", value=1)])
    with pytest.raises(ValueError, match="reserved"):
        CVariantSpec(SRC, "f", ARGS, params={"U": [1], "flags": ["-O1"]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.entry = "g"
    kernel = tmp_path / "k.cpp"
    kernel.write_text(SRC)
    cpp = CVariantSpec(kernel, "f", ARGS, params={"U": [1]}, reference=SRC)
    assert cpp.tuning_key() != CVariantSpec(SRC, "f", ARGS, params={"U": [1]}).tuning_key()


@pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")
def test_tune_c_of_a_spec_is_the_older_form(tmp_path):
    db = str(tmp_path / "s.db")
    options = dict(params={"U": [1, 2]}, expected=EXPECTED, max_time_s=0.01, final_race=0)
    spec = CVariantSpec(SRC, "f", ARGS, **options)
    res = tune_c(spec, strategy="grid", storage=db)
    assert res.evaluated == 2
    assert res.best_params == {"U": 1, "flags": "-O2"}
    assert res.n_failed == 1
    # the older form makes the same spec: the same study, answered from storage
    again = tune_c(SRC, "f", ARGS, strategy="grid", storage=db, **options)
    assert again.study.name == res.study.name
    assert again.evaluated == 0
    with pytest.raises(TypeError, match="search options only"):
        tune_c(spec, "f")
    with pytest.raises(TypeError, match="search options only"):
        tune_c(spec, max_time_s=0.1)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['unroll'\\]"):
        tune_c(SRC, "f", ARGS, unroll=[1])
    with pytest.raises(TypeError, match="needs entry and args"):
        tune_c(SRC)


@pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")
def test_a_reference_that_does_not_compile_stores_no_trial(tmp_path):
    db = str(tmp_path / "s.db")
    with pytest.raises(ValueError, match="the reference does not compile"):
        tune_c(SRC, "f", ARGS, params={"U": [1, 2]}, reference="void f( {", storage=db,
               study_name="bad", jobs=2)  # fmt: skip
    assert airda.load_study("bad", storage=db).trials == []
