"""The profiler's statistics against known inputs, and the compiled core on real code."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from airda._native import native_error
from airda.codeopt import (
    Arg,
    compile_variant,
    median_ci_rank,
    profile_address,
    summarize,
    time_callable,
)

needs_native = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")


def _binom_cdf(k: int, n: int) -> float:
    from math import comb

    return sum(comb(n, i) for i in range(k + 1)) / 2**n


@pytest.mark.parametrize("n", [1, 5, 6, 7, 10, 20, 51, 100, 333])
@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_median_ci_rank_is_the_exact_binomial_rank(n, conf):
    k = median_ci_rank(n, conf)
    tail = (1 - conf) / 2
    if k > 0:
        assert _binom_cdf(k - 1, n) <= tail + 1e-12
    assert _binom_cdf(k, n) > tail - 1e-12  # k is the largest such rank


@needs_native
@pytest.mark.parametrize("n", [1, 6, 10, 100, 1000, 5000])
def test_compiled_rank_matches_python(n):
    from airda._native import native

    for conf in (0.9, 0.95, 0.99):
        assert native().median_ci_rank(n, conf) == median_ci_rank(n, conf)


def test_median_ci_rank_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        median_ci_rank(10, 1.0)


def test_summarize_known_values():
    p = summarize(np.arange(1.0, 101.0), rel_ci=0.5)
    assert p.median == 50.5
    assert (p.ci_low, p.ci_high) == (40.0, 61.0)
    assert p.cv == pytest.approx(np.std(np.arange(1.0, 101.0)) / 50.5)
    assert p.converged  # width 21 / 50.5 < 0.5
    assert p.noisy
    assert "noisy" in p.warning


def test_summarize_constant_and_small_samples():
    p = summarize([2.0] * 20, rel_ci=0.01)
    assert p.median == p.ci_low == p.ci_high == 2.0
    assert p.cv == 0.0
    assert not p.noisy
    assert p.converged
    assert p.warning is None
    q = summarize([3.0, 1.0, 2.0])  # too few for a 95% interval: the range
    assert (q.ci_low, q.median, q.ci_high) == (1.0, 2.0, 3.0)
    assert not q.converged


def test_summarize_rejects_bad_samples():
    with pytest.raises(ValueError, match="no samples"):
        summarize([])
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_interval_coverage_on_known_distribution():
    # Exponential samples: the interval must cover the true median ln 2 about 95% of the time.
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(400):
        p = summarize(rng.exponential(size=41))
        hits += p.ci_low <= np.log(2) <= p.ci_high
    assert 0.93 <= hits / 400 <= 0.995


# The repetition count is a run-time argument, so every k runs the same machine code.
LOOP = """
void work(float* x, int n, int reps) {
    for (int r = 0; r < reps; ++r)
        for (int i = 0; i < n; ++i) x[i] = x[i] * 0.999f + 0.5f;
}
"""


def _load(k: int):
    args = [
        Arg("float32", (256,), "ones", out=True),
        Arg("int32", value=256),
        Arg("int32", value=1),
    ]
    lib = ctypes.CDLL(str(compile_variant(LOOP, "work", args, flags="-O1")))
    x = np.ones(256, np.float32)
    n = np.array(256, np.int32)
    reps = np.array(64 * k, np.int32)
    ptrs = (ctypes.c_void_p * 3)(x.ctypes.data, n.ctypes.data, reps.ctypes.data)
    fn = ctypes.cast(lib.airda_call, ctypes.c_void_p).value
    return lib, fn, ptrs, (x, n, reps)


@needs_native
def test_profile_address_orders_known_costs():
    loaded = {k: _load(k) for k in (1, 4)}
    ratios = []
    for _ in range(5):  # paired rounds, so a drift of the machine's speed hits both of a pair
        medians = {}
        for k, (_lib, fn, ptrs, _arrays) in loaded.items():
            p = profile_address(fn, ctypes.addressof(ptrs), max_time_s=0.02, rel_ci=0.02)
            assert p.n_samples >= 10
            assert p.inner >= 1
            assert p.measured_s > 0
            assert p.ci_low <= p.median <= p.ci_high
            medians[k] = p.median
        ratios.append(medians[4] / medians[1])
    # 4x the work: the ratio is near 4 (loose bounds: the test machine is shared, and one of
    # three unpaired rounds once measured 7x there).
    assert 2.5 < float(np.median(ratios)) < 6.0


@needs_native
def test_profile_address_fixed_inner_and_flush():
    _lib, fn, ptrs, _arrays = _load(1)
    p = profile_address(
        fn, ctypes.addressof(ptrs), inner=3, flush=True, flush_bytes=1 << 20, max_time_s=0.02
    )
    assert p.inner == 3
    assert p.n_samples >= 10


@needs_native
def test_profile_variant_racing_bounds_stop_early():
    from airda._native import native

    _lib, fn, ptrs, _arrays = _load(1)
    opts = dict(
        warmup=1,
        inner=0,
        min_sample_s=5e-5,
        min_samples=10,
        max_samples=100_000,
        rel_ci=0.0,  # never narrow enough: only the bounds or the cap stop it
        confidence=0.95,
        max_time_s=0.2,
        flush=False,
        flush_bytes=0,
    )
    addr = ctypes.addressof(ptrs)
    behind = native().profile_variant(fn, addr, **opts, stop_above=1e-12)
    assert behind["stopped"] == 1
    assert len(behind["samples"]) == 10  # at the first check
    ahead = native().profile_variant(fn, addr, **opts, stop_below=1.0)
    assert ahead["stopped"] == -1
    assert len(ahead["samples"]) == 10
    neither = native().profile_variant(fn, addr, **{**opts, "max_time_s": 0.005})
    assert neither["stopped"] == 0
    assert neither["measured_s"] >= 0.005
    assert isinstance(neither["samples"], list)  # no NumPy needed in the worker


@needs_native
def test_profile_address_rejects_null_and_bad_options():
    with pytest.raises(ValueError, match="null"):
        profile_address(0, 0)
    _lib, fn, ptrs, _arrays = _load(1)
    with pytest.raises(ValueError, match="confidence"):
        profile_address(fn, ctypes.addressof(ptrs), confidence=1.5)


def test_time_callable_subtracts_the_call_overhead():
    def noop(a):
        return None

    # A no-op costs the overhead alone: what remains is a small fraction of it. Best of three
    # runs, so that a load spike on a shared machine does not decide.
    runs = [time_callable(noop, 1, max_time_s=0.05, rel_ci=0.5) for _ in range(3)]
    assert all(p.overhead > 0 for p in runs)
    assert min(p.median / p.overhead for p in runs) < 0.5
    raw = time_callable(noop, 1, max_time_s=0.05, subtract_overhead=False)
    assert raw.overhead == 0.0
    assert raw.median > 0


def test_time_callable_ranks_work():
    small = np.ones(1_000)
    big = np.ones(100_000)
    a = time_callable(np.sort, small, max_time_s=0.05)
    b = time_callable(np.sort, big, max_time_s=0.05)
    assert b.median > 5 * a.median


def test_time_callable_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        time_callable(3)
