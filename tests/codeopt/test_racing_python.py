"""Racing keeps the best and drops clearly slower variants; Python callables as variants."""

from __future__ import annotations

import numpy as np
import pytest

from airda._native import native_error
from airda.codeopt import (
    Arg,
    Sandbox,
    compile_variant,
    fixed_protocol,
    race,
    sandbox_sampler,
    tune_python,
)


def _synthetic(costs, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    return {
        k: (lambda n, c=c: c * (1.0 + noise * rng.standard_normal(n) ** 2))
        for k, c in costs.items()
    }


def test_race_keeps_the_best_and_eliminates_clearly_slower():
    costs = {f"v{i}": 1.0 + 0.1 * i for i in range(30)}
    res = race(_synthetic(costs), round_samples=5)
    assert res.winner == "v0"
    assert "v0" not in res.eliminated
    assert set(res.eliminated) >= {f"v{i}" for i in range(5, 30)}
    # The clearly slower ones go within a few rounds, while the best stays measured.
    assert res.rounds <= 4
    assert max(res.eliminated.values()) <= res.rounds


def test_race_spends_less_than_a_fixed_protocol_with_the_same_winner():
    # Two close contenders among 40: the fixed protocol gives every variant the samples needed
    # to separate them; racing spends them on the two only.
    costs = {"v0": 1.0, "v1": 1.01, **{f"v{i}": 1.2 + 0.05 * i for i in range(2, 40)}}
    raced = race(_synthetic(costs, seed=1), round_samples=5)
    fixed = fixed_protocol(
        _synthetic(costs, seed=2), n_samples=raced.profiles[raced.winner].n_samples
    )
    assert raced.winner == fixed.winner == "v0"
    assert raced.measured_s < fixed.measured_s / 4
    assert all(raced.eliminated[f"v{i}"] == 1 for i in range(2, 40))


def test_fixed_protocol_interleaves_rounds():
    calls = []

    def sampler(name):
        def draw(n):
            calls.append((name, n))
            return np.full(n, 1.0 if name == "a" else 2.0)

        return draw

    res = fixed_protocol({"a": sampler("a"), "b": sampler("b")}, n_samples=7, rounds=3)
    assert calls == [("a", 3), ("b", 3), ("a", 2), ("b", 2), ("a", 2), ("b", 2)]
    assert res.winner == "a"
    assert res.profiles["b"].n_samples == 7
    with pytest.raises(ValueError, match=">= 1"):
        fixed_protocol({"a": sampler("a")}, rounds=0)


def test_race_stops_on_ties_and_validates():
    res = race(_synthetic({"a": 1.0, "b": 1.0}, noise=0.0), round_samples=3)
    assert res.winner in ("a", "b")
    assert res.eliminated == {}
    assert res.rounds <= 3
    with pytest.raises(ValueError, match="at least one"):
        race({})
    with pytest.raises(ValueError, match="round_samples"):
        race({"a": lambda n: np.ones(n)}, round_samples=0)


def test_race_accepts_samples_with_time_spent():
    res = race(
        {"a": lambda n: (np.full(n, 1.0), 10.0), "b": lambda n: (np.full(n, 2.0), 10.0)},
        round_samples=6,
    )
    assert res.winner == "a"
    assert res.rounds == 1
    assert res.measured_s == 20.0  # the samplers' own account of their time


@pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")
def test_race_compiled_variants_in_the_sandbox():
    src = """void spin(float* y, int n) {
        for (int r = 0; r < WORK; ++r) for (int i = 0; i < n; ++i) y[i] = y[i] * 0.5f + 1.0f; }"""
    args = [Arg("float32", (64,), "zeros", out=True), Arg("int32", value=64)]
    libs = {
        w: compile_variant(src, "spin", args, defines={"WORK": w}, flags="-O1") for w in (1, 8, 64)
    }
    with Sandbox(args) as box:
        res = race({w: sandbox_sampler(box, f"w{w}", p) for w, p in libs.items()}, round_samples=6)
    assert res.winner == 1
    assert 64 in res.eliminated


def test_tune_python_gate_failure_and_timing(tmp_path):
    x = np.linspace(0.0, 1.0, 5000)

    def boom(v):
        raise RuntimeError("kaboom")

    variants = {
        "numpy": lambda v: np.cumsum(v),
        "python": lambda v: np.array([float(s) for s in np.cumsum(v).tolist()]),
        "wrong": lambda v: np.cumsum(v) + 1e-3,
        "boom": boom,
    }
    db = str(tmp_path / "py.db")
    res = tune_python(variants, (x,), reference=np.cumsum, max_time_s=0.02, storage=db)
    assert res.best_params == {"variant": "numpy"}
    rows = {r["params"]["variant"]: r for r in res.rows}
    assert rows["wrong"]["failure"] == "wrong"
    assert "max abs error 0.001" in rows["wrong"]["error"]
    assert rows["boom"]["error"] == "RuntimeError: kaboom"
    assert rows["python"]["state"] == "complete"
    assert res.speedup is not None
    again = tune_python(variants, (x,), reference=np.cumsum, max_time_s=0.02, storage=db)
    assert again.evaluated == 0
    assert again.best_params == res.best_params


def test_tune_python_validates():
    with pytest.raises(ValueError, match="empty"):
        tune_python({})
    with pytest.raises(TypeError, match="not callable"):
        tune_python({"a": 3})


def test_tune_python_in_the_sandbox_records_crash_hang_and_raise():
    from tests.codeopt import _pyvariants as pv

    x = np.linspace(0.0, 1.0, 2000)
    variants = {
        "segfault": pv.segfault,
        "fast": pv.fast,
        "hang": pv.hang,
        "raises": pv.raises,
        "wrong": pv.wrong,
        "slow": pv.slow,
        "lambda": lambda v: np.cumsum(v),  # does not pickle: recorded, not sent
    }
    res = tune_python(
        variants,
        (x,),
        reference=pv.reference,
        sandbox=True,
        variant_timeout=0.5,
        max_time_s=0.01,
    )
    assert res.best_params == {"variant": "fast"}
    rows = {r["params"]["variant"]: r for r in res.rows}
    assert rows["segfault"]["failure"] == "crash"
    assert "SIGSEGV" in rows["segfault"]["error"]
    assert rows["hang"]["failure"] == "timeout"
    assert "timeout" in rows["hang"]["error"]
    assert rows["raises"]["failure"] == "error"
    assert "RuntimeError: kaboom" in rows["raises"]["error"]
    assert rows["wrong"]["failure"] == "wrong"
    assert "cannot send 'lambda' to the sandbox" in rows["lambda"]["error"]
    assert rows["slow"]["state"] == "complete"
    assert rows["fast"]["median_s"] < rows["slow"]["median_s"]
    assert res.n_complete == 2
    assert res.speedup is not None


def test_tune_python_sandbox_bad_input():
    from tests.codeopt import _pyvariants as pv

    with pytest.raises(ValueError, match="reference failed in the sandbox"):
        tune_python({"fast": pv.fast}, (np.ones(3),), reference=pv.raises, sandbox=True)
    with pytest.raises(ValueError, match="args cannot be sent"):
        tune_python({"fast": pv.fast}, (lambda: 0,), sandbox=True)
    with pytest.raises(ValueError, match="variant_timeout"):
        tune_python({"fast": pv.fast}, (np.ones(3),), sandbox=True, variant_timeout=0)


def test_tune_python_sandboxes_by_default_when_it_can():
    from tests.codeopt import _pyvariants as pv

    x = np.linspace(0.0, 1.0, 1000)
    res = tune_python(
        {"fast": pv.fast, "slow": pv.slow}, (x,), reference=pv.reference, max_time_s=0.01
    )
    assert res.study.user_attrs["sandboxed"] is True
    assert res.best_params == {"variant": "fast"}
    # a lambda cannot be sent: everything runs in this process
    res = tune_python(
        {"fast": pv.fast, "l": lambda v: np.cumsum(v)},
        (x,),
        reference=pv.reference,
        max_time_s=0.01,
    )
    assert res.study.user_attrs["sandboxed"] is False
    assert res.n_complete == 2
    res = tune_python({"fast": pv.fast}, (x,), sandbox=False, max_time_s=0.01)
    assert res.study.user_attrs["sandboxed"] is False


def test_race_python_callables_in_the_sandbox_drops_failures():
    from airda.codeopt import callable_sampler
    from tests.codeopt import _pyvariants as pv

    x = np.linspace(0.0, 1.0, 2000)
    with Sandbox(py_args=(x,), timeout=0.5) as box:
        samplers = {
            name: callable_sampler(fn, box=box, key=name, min_sample_s=2e-4)
            for name, fn in [
                ("fast", pv.fast),
                ("segfault", pv.segfault),
                ("slow", pv.slow),
                ("hang", pv.hang),
                ("raises", pv.raises),
            ]
        }
        res = race(samplers, round_samples=3, max_time_s=0.2)
    assert res.winner == "fast"
    assert "SIGSEGV" in res.failed["segfault"]
    assert "timeout" in res.failed["hang"]
    assert "kaboom" in res.failed["raises"]
    assert set(res.profiles) == {"fast", "slow"}
    # in process, the same sampler
    inproc = race(
        {
            "fast": callable_sampler(pv.fast, x, min_sample_s=2e-4),
            "raises": callable_sampler(pv.raises, x),
        },
        round_samples=3,
    )
    assert inproc.winner == "fast"
    assert "kaboom" in inproc.failed["raises"]


def _drifting(costs, seed=0):
    # every round's i-th samples share a factor (a load burst, a frequency change) of up to 3x
    rng = np.random.default_rng(seed)

    def draw_round(alive, n):
        drift = rng.uniform(1.0, 3.0, n)
        return {k: costs[k] * drift * (1.0 + 0.002 * rng.standard_normal(n)) for k in alive}

    return draw_round


def test_paired_race_cancels_a_shared_drift():
    costs = {"a": 1.0, "b": 1.03, "c": 1.5}
    paired = race(dict.fromkeys(costs), draw_round=_drifting(costs), rel_ci=0.01, interleaved=True)
    assert paired.winner == "a"
    assert set(paired.eliminated) == {"b", "c"}
    unpaired = race(
        dict.fromkeys(costs),
        draw_round=_drifting(costs),
        rel_ci=0.01,
        paired=False,
        max_rounds=10,
    )
    assert "b" not in unpaired.eliminated  # the drift hides 3% from unpaired intervals
    assert paired.measured_s < unpaired.measured_s
    # equal variants: the race stops once neither can be 1% faster than the other
    tie = race(
        dict.fromkeys(["x", "y"]),
        draw_round=_drifting({"x": 1.0, "y": 1.0}),
        rel_ci=0.01,
        interleaved=True,
    )
    assert tie.eliminated == {}
    assert tie.rounds <= 3
    # one pair per round when the rounds are not interleaved: the same verdict, later
    by_round = race(dict.fromkeys(costs), draw_round=_drifting(costs), rel_ci=0.01, paired=True)
    assert by_round.winner == "a"
    assert by_round.rounds > paired.rounds
