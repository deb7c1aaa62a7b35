"""TPE and MOTPE: better than random over many seeds, conditional spaces, determinism, replay
from SQLite, constant liar, failures and pruning, bad options."""

from __future__ import annotations

import math

import numpy as np
import pytest

import airda
from airda.space import Categorical, Float, Int, Space
from airda.strategies import STRATEGIES, get_strategy
from airda.strategies.tpe import MOTPE, TPE
from airda.trial import FrozenTrial, TrialPruned, TrialState

SEEDS = range(20)


def sphere(t):
    return sum((t[f"x{i}"] - 0.3) ** 2 for i in range(3))


def branin(t):
    x, y = t["x"], t["y"]
    b, c, r, s, tt = 5.1 / (4 * math.pi**2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - r) ** 2 + s * (1 - tt) * math.cos(x) + s - 0.397887


def mixed(t):
    value = math.log10(t["lr"] / 1e-3) ** 2 + abs(t["units"] - 48) / 16 + (t["act"] != "gelu")
    return value + (t["drop"] - 0.25) ** 2


PROBLEMS = {
    "sphere": ({f"x{i}": Float(-2.0, 2.0) for i in range(3)}, sphere),
    "branin": ({"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)}, branin),
    "mixed": (
        {
            "lr": Float(1e-5, 1e-1, log=True),
            "units": Int(8, 128, step=8),
            "act": Categorical(["relu", "gelu", "tanh", "silu"]),
            "drop": Float(0.0, 0.5, step=0.05),
        },
        mixed,
    ),
}


def best(space, objective, strategy, n_trials=80):
    study = airda.create_study(space=space, strategy=strategy)
    study.optimize(objective, n_trials=n_trials)
    return study.best_value


@pytest.mark.parametrize("options", [{}, {"multivariate": False}])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_beats_random_over_seeds(problem, options):
    space, objective = PROBLEMS[problem]
    tpe = [best(space, objective, TPE(seed=s, **options)) for s in SEEDS]
    rnd = [best(space, objective, get_strategy("random", seed=s)) for s in SEEDS]
    wins = sum(a < b for a, b in zip(tpe, rnd, strict=True))
    # A sign test: 15 or more wins of 20 happen by chance with probability 0.021.
    assert wins >= 15, (wins, tpe, rnd)
    assert np.median(tpe) < 0.5 * np.median(rnd)


def conditional_space() -> Space:
    return Space(
        {
            "model": Categorical(["linear", "tree", "net"]),
            "l2": Float(1e-6, 1.0, log=True, when={"model": "linear"}),
            "depth": Int(1, 12, when={"model": "tree"}),
            "leaves": Int(2, 256, log=True, when={"model": "tree"}),
            "layers": Int(1, 4, when={"model": "net"}),
            "opt": Categorical(["sgd", "adam"], when={"model": "net"}),
            "momentum": Float(0.0, 0.99, when={"opt": "sgd"}),
            "beta": Float(0.8, 0.999, when={"opt": "adam"}),
        }
    )


def conditional_objective(t):
    p = t.params
    if p["model"] == "linear":
        return 1.0 + abs(math.log10(p["l2"]) + 3)
    if p["model"] == "tree":
        return 0.5 + abs(p["depth"] - 6) / 6 + abs(math.log2(p["leaves"]) - 5) / 5
    extra = (p["momentum"] - 0.9) ** 2 if p["opt"] == "sgd" else (p["beta"] - 0.9) ** 2
    return 0.2 * p["layers"] + extra


@pytest.mark.parametrize(
    "options", [{}, {"multivariate": False}, {"group": True}, {"bandwidth": "scott"}]
)
def test_conditional_space_never_samples_inactive(options):
    space = conditional_space()
    study = airda.create_study(space=space, strategy=TPE(seed=3, **options))
    study.optimize(conditional_objective, n_trials=80)
    for t in study.trials:
        assert space.validate(t.params) == t.params
        for name in t.params:
            assert space.is_active(name, t.params)
    assert study.best_value < 0.6


def test_group_decomposition_follows_the_branches():
    strategy = TPE(multivariate=True, group=True, seed=0)
    study = airda.create_study(space=conditional_space(), strategy=strategy)
    study.optimize(conditional_objective, n_trials=30)
    rows = np.arange(strategy._n)
    groups = {tuple(strategy.space.names[j] for j in b.cols) for b in strategy._blocks(rows)}
    assert ("model",) in groups
    assert ("depth", "leaves") in groups
    assert ("layers", "opt") in groups
    assert ("momentum",) in groups
    assert ("beta",) in groups


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"multivariate": False},
        {"group": True},
        {"bandwidth": "scott"},
        {"consider_endpoints": True},
    ],
)
def test_deterministic_for_a_seed(options):
    space, objective = PROBLEMS["mixed"]
    runs = []
    for seed in (5, 5, 6):
        study = airda.create_study(space=space, strategy=TPE(seed=seed, **options))
        study.optimize(objective, n_trials=30)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def _pruning_objective(t):
    value = conditional_objective(t)
    t.report(0, value + 1.0)
    if t.number % 5 == 4:
        raise TrialPruned
    if t.number % 7 == 6:
        return float("nan")
    return value


@pytest.mark.parametrize(
    "options", [{}, {"multivariate": True, "group": True}, {"constant_liar": False}]
)
def test_replay_after_restart_from_sqlite(tmp_path, options):
    def study(path, n_trials):
        s = airda.create_study(
            "s", storage=path, space=conditional_space(), strategy=TPE(seed=11, **options)
        )
        s.optimize(_pruning_objective, n_trials=n_trials)

    study(tmp_path / "whole.db", 40)
    whole = airda.load_study("s", storage=tmp_path / "whole.db")
    study(tmp_path / "part.db", 25)  # the process "stops" here
    study(tmp_path / "peek.db", 25)  # the same, to look at the very next candidate alone
    peek = airda.load_study("s", storage=tmp_path / "peek.db")
    assert peek.strategy.options() == TPE(**options).options()
    assert peek.ask().params == whole.trials[25].params  # the very next candidate
    resumed = airda.load_study("s", storage=tmp_path / "part.db")
    resumed.optimize(_pruning_objective, n_trials=15)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    states = {t.state for t in whole.trials}
    assert {TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE} <= states


def test_constant_liar_spreads_parallel_asks():
    space = Space({"x": Float(0.0, 1.0)})
    study = airda.create_study(space=space, strategy=TPE(seed=0, n_startup_trials=5))
    study.optimize(lambda t: (t["x"] - 0.7) ** 2, n_trials=20)
    running = [study.ask() for _ in range(6)]  # six workers, none finished
    xs = [t["x"] for t in running]
    assert len(set(xs)) == 6
    strategy = study.strategy
    assert int((strategy._tier[: strategy._n] == 2).sum()) == 6  # counted as running
    for t in running:
        study.tell(t, (t["x"] - 0.7) ** 2)
    assert len(study.trials) == 26  # syncs: the strategy is told every result
    assert int((strategy._tier[: strategy._n] == 2).sum()) == 0


def test_batch_ask_gives_distinct_candidates_and_forgets_them():
    strategy = TPE(seed=1, n_startup_trials=3)
    space = Space({"a": Int(0, 50), "b": Categorical(list("abcdef"))})
    strategy.setup(space, ("minimize",))
    for i, c in enumerate(strategy.ask(10)):
        value = abs(c["a"] - 20) + (c["b"] != "c")
        strategy.tell(FrozenTrial(i, TrialState.COMPLETE, c, values=(value,)))
    n_rows = strategy._n
    batch = strategy.ask(8)
    assert len({(c["a"], c["b"]) for c in batch}) == 8
    assert strategy._n == n_rows  # the batch's own lies are dropped; the study notes trials


def test_parallel_workers_with_threads():
    space, objective = PROBLEMS["sphere"]
    study = airda.create_study(space=space, strategy=TPE(seed=2))
    study.optimize(objective, n_trials=40, n_workers=3, executor="thread")
    assert len(study.trials) == 40
    assert study.best_value < 1.0


def test_failures_after_startup_do_not_stop_the_search():
    space, objective = PROBLEMS["sphere"]

    def flaky(t):
        if t.number % 4 == 1:
            raise RuntimeError("boom")
        if t.number % 4 == 2:
            return float("nan")
        return objective(t)

    study = airda.create_study(space=space, strategy=TPE(seed=4, n_startup_trials=4))
    study.optimize(flaky, n_trials=60)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 30
    assert study.best_value < 0.5


def test_discrete_and_log_params_stay_on_their_grids():
    space = Space(
        {
            "a": Int(1, 1000, log=True),
            "b": Float(0.0, 1.0, step=0.1),
            "c": Int(-5, 5, step=5),
            "d": Float(1e-3, 10.0, log=True),
            "e": Categorical([1, 2.5, "x", None, True]),
        }
    )

    def f(t):
        return abs(math.log(t["a"]) - 3) + t["b"] + abs(t["c"]) + (t["e"] != "x")

    for options in ({}, {"multivariate": False}):
        study = airda.create_study(space=space, strategy=TPE(seed=0, **options))
        study.optimize(f, n_trials=50)
        for t in study.trials:
            assert space.validate(t.params) == t.params


def test_motpe_beats_random_hypervolume():
    from airda.ops import hypervolume

    space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "z": Float(0.0, 1.0)}

    def zdt1(t):
        g = 1 + 9 * (t["y"] + t["z"]) / 2
        return t["x"], g * (1 - math.sqrt(t["x"] / g))

    def volume(strategy):
        study = airda.create_study(
            space=space, directions=["minimize", "minimize"], strategy=strategy
        )
        study.optimize(zdt1, n_trials=60)
        points = np.array([t.values for t in study.trials if t.values is not None])
        return hypervolume(points, np.array([1.1, 11.0]))

    wins = sum(volume(MOTPE(seed=s)) > volume(get_strategy("random", seed=s)) for s in range(8))
    assert wins >= 7  # 7 or more of 8 by chance: probability 0.035


def test_registered_names_and_config_round_trip():
    assert STRATEGIES["tpe"] is TPE
    assert STRATEGIES["motpe"] is MOTPE
    strategy = get_strategy("tpe", seed=3, multivariate=True, gamma=0.2)
    rebuilt = get_strategy(strategy.config())
    assert rebuilt.options() == strategy.options()
    assert rebuilt.seed == 3


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_startup_trials": -1}, "n_startup_trials"),
        ({"n_ei_candidates": 0}, "n_ei_candidates"),
        ({"n_ei_candidates": 2.5}, "n_ei_candidates"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": "0.1"}, "gamma"),
        ({"max_below": 0}, "max_below"),
        ({"prior_weight": 0.0}, "prior_weight"),
        ({"prior_weight": float("nan")}, "prior_weight"),
        ({"multivariate": 1}, "multivariate"),
        ({"group": True, "multivariate": False}, "group=True needs multivariate"),
        ({"bandwidth": "silverman"}, "bandwidth"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_options_are_clear_errors(options, match):
    with pytest.raises(ValueError, match=match):
        TPE(**options)
    with pytest.raises(ValueError, match=match):
        get_strategy("tpe", **options)


def test_unknown_option_names_it():
    with pytest.raises(ValueError, match="n_ei"):
        get_strategy("tpe", n_ei=3)


def test_import_airda_hpo_is_light():
    import subprocess
    import sys

    probe = "import sys, airda.hpo; print(sorted(m for m in ('torch', 'scipy', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_process_workers_share_a_sqlite_study(tmp_path):
    from tests import objectives

    study = airda.create_study(
        storage=tmp_path / "s.db",
        space={"x": Float(-3.0, 3.0)},
        strategy=TPE(seed=0, n_startup_trials=5),
    )
    study.optimize(objectives.quadratic, n_trials=30, n_workers=2)
    trials = study.trials
    assert len(trials) == 30
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.params["x"] for t in trials}) == 30  # distinct streams, liars for the rest
    assert study.best_value < 0.1


def _told_strategy(values: np.ndarray, **options) -> TPE:
    """A TPE over [0, 1]^p told one complete trial per row of `values`."""
    p = values.shape[1]
    strategy = TPE(seed=0, **options)
    strategy.setup(Space({f"x{j}": Float(0.0, 1.0) for j in range(p)}), ("minimize",))
    for i, row in enumerate(values):
        params = {f"x{j}": float(row[j]) for j in range(p)}
        strategy.tell(FrozenTrial(i, TrialState.COMPLETE, params, values=(float(i),)))
    return strategy


@pytest.mark.parametrize("consider_endpoints", [False, True])
@pytest.mark.parametrize("n_rows", [1, 2, 3, 37, 300])
def test_compiled_bandwidths_match_the_reference(n_rows, consider_endpoints):
    """airda._C.tpe_bandwidths (g's widths, means, component order and stale marks) against the
    NumPy reference `_neighbour_bandwidths`, with ties (a coarse grid), members that are a
    subset of the rows, and the small-mixture path that sorts instead."""
    pytest.importorskip("airda._C")
    rng = np.random.default_rng(n_rows)
    values = np.round(rng.random((n_rows, 4)) * 7) / 7  # many ties
    values[:, 3] = rng.random(n_rows)
    s = _told_strategy(values, consider_endpoints=consider_endpoints)
    num = s._modelled
    for members in (np.arange(n_rows), np.sort(rng.permutation(n_rows)[: max(1, n_rows // 3)])):
        want = s._neighbour_bandwidths(members, num, 0.01)  # (n, p) in `members` order
        for by_first in (False, True):
            n = len(members)
            sigma_t, mu_t = np.empty((len(num), n)), np.empty((len(num), n))
            rows, perm, stale, filled = s._bandwidths(
                members, num, 0.01, sigma_t, mu_t, by_first, cache=True
            )
            assert filled
            np.testing.assert_array_equal(rows, members[perm])
            np.testing.assert_array_equal(sigma_t.T, want[perm])
            np.testing.assert_array_equal(mu_t.T, s._x[rows][:, num])
            if by_first and n > 1:
                assert (np.diff(mu_t[0]) >= 0).all()
            assert stale is not None
            # asked again with nothing changed: no widths are stale
            _, _, again, _ = s._bandwidths(members, num, 0.01, sigma_t, mu_t, by_first, True)
            assert not again.any()
            # the sorting paths (l's mixtures: NumPy and compiled) give the same widths
            values = s._xt[np.ix_(num, members)]
            np.testing.assert_array_equal(s._sorted_bandwidths(values, 0.01), want.T)
            from airda._native import native

            compiled = np.empty_like(values)
            native().sorted_bandwidths(values, consider_endpoints, 0.01, 1.0, compiled)
            np.testing.assert_array_equal(compiled, want.T)
        s._widths_cache.clear()


def test_cached_normalisers_equal_fresh_ones_across_results():
    """g's normalisers come from a per-row cache keyed by the widths; after more results (which
    move some widths) they equal the ones computed from scratch."""
    from airda.ops import parzen_log_norm_reference

    rng = np.random.default_rng(0)
    s = _told_strategy(rng.random((200, 3)))
    for extra in range(3):
        s.ask(1)
        rows = np.arange(s._n)
        num = s._modelled
        sigma_t, mu_t = np.empty((3, len(rows))), np.empty((3, len(rows)))
        rows, _, stale, _ = s._bandwidths(rows, num, 0.01, sigma_t, mu_t, True, True)
        got = s._widths_norm(rows, num, mu_t, sigma_t, stale)
        want = parzen_log_norm_reference(mu_t.T, sigma_t.T, np.zeros(3), np.ones(3))
        np.testing.assert_allclose(got, want, rtol=1e-12)
        params = {f"x{j}": float(rng.random()) for j in range(3)}
        s.tell(FrozenTrial(200 + extra, TrialState.COMPLETE, params, values=(0.5,)))


def _check_g_states(s: TPE) -> int:
    """Every kept g state equals a full compiled pass and the NumPy reference, bit for bit;
    returns how many incremental updates the states made so far."""
    from airda._native import native
    from airda.ops import parzen_log_norm

    updates = 0
    for key, state in s._g_widths.items():
        if state is None or state.size < 2:
            continue
        updates += state.incremental_updates
        num = np.array(key, dtype=np.int64)
        members = np.sort(state.rows)
        n = len(members)
        minimum = 1.0 / min(100.0, n + 2) if s.consider_magic_clip else 1e-12
        sorted_rows = [s._sorted_rows[j] for j in key]
        sorted_vals = [s._sorted_vals[j] for j in key]
        assert state.by_row == (len(key) >= 3)
        fresh = native().NeighbourWidths(len(key), s.consider_endpoints, state.by_row)
        assert fresh.update(sorted_rows, sorted_vals, s._xt, num, members, s._n, minimum, 0) == 0
        for name in ("rows", "perm", "mu", "sigma", "log_norm"):
            np.testing.assert_array_equal(getattr(state, name), getattr(fresh, name), name)
        # the NumPy reference: component order by row (from three parameters) or by the first
        # parameter, hyperopt's widths
        if state.by_row:
            rows, perm = members, np.arange(n)
        else:
            rows, perm = s._ordered(members, int(num[0]))
        np.testing.assert_array_equal(state.rows, rows)
        np.testing.assert_array_equal(state.perm, perm)
        want = s._neighbour_bandwidths(members, num, minimum)[perm]
        np.testing.assert_array_equal(state.sigma.T, want)
        np.testing.assert_array_equal(state.mu.T, s._x[np.ix_(rows, num)])
        norm = parzen_log_norm(
            np.ascontiguousarray(state.mu.T),
            np.ascontiguousarray(state.sigma.T),
            np.zeros(len(key)),
            np.ones(len(key)),
            backend="cpu",
        )
        np.testing.assert_array_equal(state.log_norm, norm)
    return updates


INCREMENTAL_CASES = {
    "floats_ties_liar": (
        {"a": Float(0.0, 1.0), "k": Int(0, 6), "st": Float(0.0, 1.0, step=0.25)},
        {"consider_magic_clip": False},
    ),
    "floats_ends": (
        {"a": Float(0.0, 1.0), "b": Float(-1.0, 1.0), "k": Int(0, 3)},
        {"consider_endpoints": True},
    ),
    "conditional_group": (None, {"group": True, "consider_magic_clip": False}),
    "univariate": (
        {"a": Float(0.0, 1.0), "k": Int(0, 4)},
        {"multivariate": False, "consider_magic_clip": False},
    ),
}


@pytest.mark.parametrize("case", sorted(INCREMENTAL_CASES))
def test_incremental_bandwidths_equal_a_full_pass(case):
    """g's widths, means, component order and normalisers kept between asks (compiled
    NeighbourWidths) equal a full pass and the NumPy reference after every ask of a long study
    with running (constant liar), pruned and failed trials, ties, batch asks (whose temporary
    rows are rolled back) and results told out of order."""
    pytest.importorskip("airda._C")
    space, options = INCREMENTAL_CASES[case]
    space = conditional_space() if space is None else Space(space)
    s = TPE(seed=3, n_startup_trials=5, **options)
    s.setup(space, ("minimize",))
    rng = np.random.default_rng(7)
    running: list[tuple[int, dict]] = []
    number = 0
    for step in range(260):
        batch = 3 if step % 17 == 5 else 1
        for c in s.ask(batch):
            s.note(FrozenTrial(number, TrialState.RUNNING, c))
            running.append((number, c))
            number += 1
        if batch == 1 and s._g_widths:
            _check_g_states(s)
        while len(running) > 3 or (running and rng.random() < 0.6):
            i, c = running.pop(int(rng.integers(len(running))))
            u = rng.random()
            if u < 0.08:
                s.tell(FrozenTrial(i, TrialState.FAIL, c))
            elif u < 0.18:
                s.tell(FrozenTrial(i, TrialState.PRUNED, c, intermediate={0: float(u)}))
            else:
                value = float(sum(abs(v) for v in c.values() if isinstance(v, (int, float))))
                s.tell(FrozenTrial(i, TrialState.COMPLETE, c, values=(value,)))
    assert _check_g_states(s) > 100  # the incremental path ran


def test_neighbour_widths_bad_input_is_a_clear_error():
    """The compiled state names what is wrong: members not ascending, a member row missing
    from the sorted rows, lists of the wrong length; the next good update is a full pass."""
    pytest.importorskip("airda._C")
    from airda._native import native

    s = _told_strategy(np.random.default_rng(0).random((40, 2)))
    num = s._modelled
    rows = [s._sorted_rows[j] for j in num.tolist()]
    vals = [s._sorted_vals[j] for j in num.tolist()]
    state = native().NeighbourWidths(2, False)
    members = np.arange(40)
    with pytest.raises(ValueError, match="ascending"):
        state.update(rows, vals, s._xt, num, members[::-1].copy(), 40, 0.01, 8)
    short = [r[r != 7].copy() for r in rows]
    short_vals = [v[r != 7].copy() for v, r in zip(vals, rows, strict=True)]
    with pytest.raises(ValueError, match="missing"):
        state.update(short, short_vals, s._xt, num, members, 40, 0.01, 8)
    with pytest.raises(ValueError, match="one array per parameter"):
        state.update(rows[:1], vals[:1], s._xt, num, members, 40, 0.01, 8)
    assert state.update(rows, vals, s._xt, num, members, 40, 0.01, 8) == 0
    assert state.update(rows, vals, s._xt, num, members[1:], 40, 0.01, 8) == 1
    assert state.update(rows, vals, s._xt, num, members[1:], 40, 0.01, 8) == 2


@pytest.mark.parametrize(
    ("n_rows", "p", "n_cand", "n_cat"),
    [(2, 1, 1, 0), (37, 3, 5, 0), (300, 10, 24, 0), (130, 4, 7, 2)],
)
def test_neighbour_widths_logpdf_matches_the_reference(n_rows, p, n_cand, n_cat):
    """g's compiled state scores candidates itself (its kept inverse widths, weights given in
    member order, the components in row order): the NumPy reference over the state's means,
    widths and normalisers, with and without the extra (prior) term and categorical tables."""
    pytest.importorskip("airda._C")
    from airda._native import native
    from airda.ops.parzen import parzen_logpdf_reference

    rng = np.random.default_rng(n_rows)
    s = _told_strategy(np.round(rng.random((n_rows, p)), 2))  # ties too
    num = s._modelled
    rows = [s._sorted_rows[j] for j in num.tolist()]
    vals = [s._sorted_vals[j] for j in num.tolist()]
    members = (
        np.sort(rng.choice(n_rows, size=max(2, n_rows - 3), replace=False))
        if n_rows > 2
        else np.arange(n_rows)
    )
    state = native().NeighbourWidths(p, False)
    state.update(rows, vals, s._xt, num, members, n_rows, 0.01, 8)
    n = state.size
    log_w = np.log(rng.dirichlet(np.ones(n + 1)))  # member order, then the prior's
    x = rng.random((n_cand, p))
    if n_cand > 1:
        x[1] = state.mu[:, 0]  # on a mean
    cat_x = cat_logp = None
    if n_cat:
        cat_x = rng.integers(0, 3, (n_cand, n_cat))
        cat_logp = np.log(rng.dirichlet(np.ones(3), size=(n, n_cat)))
    mu, sigma = np.ascontiguousarray(state.mu.T), np.ascontiguousarray(state.sigma.T)
    weights = log_w[state.perm]
    for extra in (None, rng.normal(0.0, 5.0, n_cand)):
        out = np.empty(n_cand)
        state.logpdf(x, log_w, cat_x, cat_logp, extra, 0, out)
        want = parzen_logpdf_reference(
            x,
            mu,
            sigma,
            weights,
            np.zeros(p),
            np.ones(p),
            log_norm=np.array(state.log_norm),
            cat_x=cat_x,
            cat_logp=cat_logp,
            log_extra=extra,
        )
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="fewer entries"):
        state.logpdf(x, log_w[: n - 1], None, None, None, 0, np.empty(n_cand))
    with pytest.raises(ValueError, match="x"):
        state.logpdf(np.ascontiguousarray(x[:, :0]), log_w, None, None, None, 0, np.empty(n_cand))


def test_compiled_default_log_weights_match_numpy():
    """The compiled default log-weights (a vectorised log) against NumPy's: within 4 ulp for
    every count up to and across the 25-trial ramp, and large ones."""
    pytest.importorskip("airda._C")
    from airda._native import native
    from airda.strategies.tpe import _default_weights

    for n in [*range(60), 100, 1001, 4875, 100_000]:
        for prior_weight in (1.0, 0.3, 7.0):
            w = np.append(_default_weights(n), prior_weight)
            want = np.log(w / w.sum())
            got = np.empty(n + 1)
            native().tpe_default_log_weights(n, prior_weight, got)
            np.testing.assert_array_max_ulp(got, want, maxulp=4)
    with pytest.raises(ValueError, match="n \\+ 1"):
        native().tpe_default_log_weights(5, 1.0, np.empty(5))


def test_draws_ahead_give_the_same_candidates():
    """When no draw follows in the ask, the normals are drawn ahead in one call and the
    rejection into [0, 1] runs compiled: the same candidates as round-by-round draws (numpy's
    consecutive draws are one stream), also where many coordinates are rejected (the prior
    component, wide components at the bounds) and when the normals drawn ahead run out."""
    pytest.importorskip("airda._C")
    s = _told_strategy(np.random.default_rng(1).random((40, 6)))
    k, p = 24, 6
    rng = np.random.default_rng(5)
    mix = {
        "n_obs": 3,
        "mu_t": rng.choice([0.0, 0.5, 1.0], size=(p, 3)),
        "sigma_t": rng.choice([0.01, 0.3, 2.0], size=(p, 3)),
    }
    num = np.arange(p)
    for seed in range(30):
        comp = np.random.default_rng(seed).integers(0, 4, k)  # 3: the prior
        ahead = s._draw_numeric(mix, comp, num, np.random.default_rng(seed), last=True)
        rounds = s._draw_numeric(mix, comp, num, np.random.default_rng(seed), last=False)
        np.testing.assert_array_equal(ahead, rounds)
        assert ahead.min() >= 0.0
        assert ahead.max() <= 1.0
    # Too few normals ahead: the compiled step says so and leaves the fallback to the caller.
    from airda._native import native

    mu, sigma = np.full((2, 2), 0.0), np.full((2, 2), 5.0)
    x = np.empty((2, 2))
    assert native().tpe_truncated_draws(x, mu, sigma, np.full(4, -1.0)) == -1


@pytest.mark.parametrize("constant_liar", [True, False])
def test_compiled_proposal_matches_the_python_path(constant_liar):
    """The common case's proposal in one compiled call (tpe_propose_numeric) against the Python
    path it replaces: the same trials, value for value, over studies with stepped floats,
    log-scaled and plain integers (snapped candidates, ties among them) and parallel asks
    (pending rows under the constant liar)."""
    pytest.importorskip("airda._C")
    space = Space(
        {
            "a": Float(-2.0, 3.0),
            "b": Float(1e-4, 1.0, log=True),
            "c": Float(0.0, 1.0, step=0.125),
            "n": Int(1, 1000, log=True),
            "m": Int(-3, 4),
        }
    )

    def objective(p):
        return (
            (p["a"] - 0.7) ** 2
            + math.log(p["b"]) ** 2 / 40
            + p["c"]
            + abs(p["m"] - 1)
            + (math.log(p["n"]) - 3.0) ** 2
        )

    runs = []
    for compiled in (True, False):
        strategy = TPE(seed=3, n_startup_trials=5, constant_liar=constant_liar)
        strategy.setup(space, ("minimize",))
        if not compiled:
            strategy._propose_native = None
        used = []
        if compiled:  # count the compiled calls: the fast path must be the one taken
            inner = strategy._propose_native

            def counted(*args, _inner=inner, _used=used):
                _used.append(1)
                return _inner(*args)

            strategy._propose_native = counted
        values, number = [], 0
        for _ in range(40):
            batch = strategy.ask(3)  # three at once: later ones see the earlier as running
            for params in batch:
                strategy.note(FrozenTrial(number, TrialState.RUNNING, params))
                number += 1
            for i, params in enumerate(batch):
                value = objective(params)
                values.append(value)
                strategy.tell(
                    FrozenTrial(
                        number - len(batch) + i, TrialState.COMPLETE, params, values=(value,)
                    )
                )
        if compiled:
            assert len(used) > 60
        runs.append(values)
    assert runs[0] == runs[1]


def test_compiled_proposal_bad_input():
    """tpe_propose_numeric refuses arguments of the wrong shape or type with a clear error, and
    says when the normals drawn ahead ran out (the caller then draws more)."""
    pytest.importorskip("airda._C")
    from airda._native import native

    s = _told_strategy(np.random.default_rng(2).random((30, 3)))
    s.ask()
    num = s._modelled
    state = s._g_state(num)
    above = np.arange(3, 30)
    s._update_g(state, num, above, 0.01)
    k, p = 6, 3
    wa = np.full(len(above) + 1, -np.log(len(above) + 1))
    wb = np.full(4, -np.log(4))
    below = np.arange(3)
    plan = (np.zeros(p), np.zeros(p, np.uint8), np.zeros(p), np.ones(p), np.zeros(p), np.zeros(p))
    x, score = np.empty((k, p)), np.empty(k)
    fn = native().tpe_propose_numeric
    best = fn(
        state,
        wa,
        s._xt,
        num,
        below,
        wb,
        False,
        0.2,
        np.full(k, 0.5),
        np.zeros(2 * k * p),
        *plan,
        -1.0,
        x,
        score,
    )
    assert 0 <= best < k
    assert score[best] == score.max()
    np.testing.assert_array_equal(x, np.broadcast_to(x[0], (k, p)))  # z = 0: at the means
    # Too few normals: -1, and the caller draws more.
    assert (
        fn(
            state,
            wa,
            s._xt,
            num,
            below,
            wb,
            False,
            0.2,
            np.full(k, 0.5),
            np.zeros(k * p - 1),
            *plan,
            -1.0,
            x,
            score,
        )
        == -1
    )
    with pytest.raises(ValueError, match="g_log_w"):
        fn(
            state,
            wa[:-1],
            s._xt,
            num,
            below,
            wb,
            False,
            0.2,
            np.full(k, 0.5),
            np.zeros(2 * k * p),
            *plan,
            -1.0,
            x,
            score,
        )
    with pytest.raises(ValueError, match="below"):
        fn(
            state,
            wa,
            s._xt,
            num,
            np.array([10**6]),
            np.zeros(2),
            False,
            0.2,
            np.full(k, 0.5),
            np.zeros(2 * k * p),
            *plan,
            -1.0,
            x,
            score,
        )
    with pytest.raises(ValueError, match="x"):
        fn(
            state,
            wa,
            s._xt,
            num,
            below,
            wb,
            False,
            0.2,
            np.full(k, 0.5),
            np.zeros(2 * k * p),
            *plan,
            -1.0,
            np.empty((k, p + 1)),
            score,
        )


@pytest.mark.parametrize(
    ("n_rows", "p", "n_cand", "minimum", "threads"),
    [
        (9, 3, 3, 0.01, 0),  # fewer components than one step of the screen
        (500, 2, 24, 0.01, 0),  # two dimensions: the dense kernel
        (260, 5, 70, 0.01, 0),  # a padded last chunk; candidates in several passes
        (1500, 10, 24, 0.01, 0),  # clustered observations, candidates among them
        (4000, 10, 220, 0.01, 2),  # enough work for two threads
        (300, 3, 24, 1e-5, 0),  # widths too narrow for the screen: the dense kernel
    ],
)
def test_neighbour_widths_screened_logpdf_matches_the_reference(
    n_rows, p, n_cand, minimum, threads
):
    """Without categorical dimensions g's state scores through a single-precision screen and an
    exact pass over the components it keeps: the NumPy reference and the generic compiled op
    agree, with candidates on means, near clusters, outside [0, 1] or NaN, and an extra term
    that dwarfs every component (so that none is within reach of the largest)."""
    pytest.importorskip("airda._C")
    from airda._native import native
    from airda.ops.parzen import _logpdf_cpu, parzen_logpdf_reference

    rng = np.random.default_rng(n_rows + p)
    centres = rng.random((4, p))
    values = np.clip(centres[rng.integers(0, 4, n_rows)] + rng.normal(0, 0.05, (n_rows, p)), 0, 1)
    s = _told_strategy(values)
    num = s._modelled
    rows = [s._sorted_rows[j] for j in num.tolist()]
    vals = [s._sorted_vals[j] for j in num.tolist()]
    members = np.sort(rng.choice(n_rows, size=n_rows - 2, replace=False))
    state = native().NeighbourWidths(p, False)
    state.update(rows, vals, s._xt, num, members, n_rows, minimum, 8)
    n = state.size
    log_w = np.log(rng.dirichlet(np.ones(n + 1)))
    x = np.clip(centres[rng.integers(0, 4, n_cand)] + rng.normal(0, 0.03, (n_cand, p)), 0, 1)
    x[0] = state.mu[:, n // 2]
    if n_cand > 2:
        x[1, 0] = 1.5  # outside
        x[2, -1] = np.nan
    mu, sigma = np.ascontiguousarray(state.mu.T), np.ascontiguousarray(state.sigma.T)
    weights = np.ascontiguousarray(log_w[state.perm])
    norm = np.array(state.log_norm)
    lo, hi = np.zeros(p), np.ones(p)
    ok = np.flatnonzero(~np.isnan(x).any(axis=1))  # the reference refuses NaN
    for extra in (None, rng.normal(0.0, 5.0, n_cand), np.full(n_cand, 1e4)):
        out = np.empty(n_cand)
        state.logpdf(x, log_w, None, None, extra, threads, out)
        e = None if extra is None else extra[ok]
        want = parzen_logpdf_reference(
            x[ok], mu, sigma, weights, lo, hi, log_norm=norm, log_extra=e
        )
        np.testing.assert_allclose(out[ok], want, rtol=1e-12, atol=1e-12)
        dense = _logpdf_cpu(x, mu, sigma, weights, norm, lo, hi, None, None, extra)
        np.testing.assert_allclose(out, dense, rtol=1e-13, atol=1e-13)
        if n_cand > 2:
            assert out[1] == -np.inf
            assert out[2] == -np.inf


def _full_greedy_hssp(values: np.ndarray, k: int) -> np.ndarray:
    """The greedy hypervolume subset by a full scan of the gains at every step."""
    from airda.strategies.tpe import _hypervolume, _reference_point

    ref = _reference_point(values)
    chosen: list[int] = []
    left = list(range(len(values)))
    current = 0.0
    for _ in range(k):
        gains = [_hypervolume(values[[*chosen, i]], ref) - current for i in left]
        best = int(np.argmax(gains))
        current += gains[best]
        chosen.append(left.pop(best))
    return np.sort(np.array(chosen, dtype=np.int64))


@pytest.mark.parametrize("m", [2, 3])
def test_lazy_greedy_hssp_matches_the_full_scan(m):
    from airda.ops import non_dominated_rank
    from airda.strategies.tpe import _greedy_hssp

    rng = np.random.default_rng(m)
    for case in range(60):
        n = int(rng.integers(2, 40))
        if case % 2:
            x = rng.random(n)
            pts = np.stack([x, 1 - np.sqrt(x), rng.random(n)][:m], axis=1)
        else:
            pts = rng.random((n, m))
        if case % 3 == 0:
            pts = np.round(pts, 1)  # ties among the gains
        front = pts[np.asarray(non_dominated_rank(pts)) == 0]
        k = int(rng.integers(1, len(front) + 1))
        np.testing.assert_array_equal(_greedy_hssp(front, k), _full_greedy_hssp(front, k))


def test_motpe_good_set_is_uncapped_and_tpe_keeps_its_cap():
    assert MOTPE().max_below is None
    assert TPE().max_below == 25
    assert MOTPE(max_below=25).options()["max_below"] == 25
    rebuilt = get_strategy(MOTPE(seed=1).config())
    assert isinstance(rebuilt, MOTPE)
    assert rebuilt.options() == MOTPE(seed=1).options()
    with pytest.raises(ValueError, match="max_below"):
        TPE(max_below=0)
    # no cap with one objective: the good set is ceil(0.1 n)
    space = {"x": Float(-3.0, 3.0)}
    study = airda.create_study(space=space, strategy=TPE(seed=0, max_below=None))
    study.optimize(lambda t: t["x"] ** 2, n_trials=300)
    assert study.best_value < 0.01
    strategy = study.strategy
    rows = np.flatnonzero(strategy._tier[: strategy._n] == 0)
    assert strategy._split(rows).sum() == 30
