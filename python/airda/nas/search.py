"""Multi-trial NAS on a tabular benchmark: any strategy, many seeds, a query budget, intervals.

:func:`benchmark_search` runs one strategy for each seed on a NAS-Bench-201-style table through
airda's ask/tell loop. A *query* is one look-up of a new architecture in the table: candidates
equivalent to one already queried (same canonical cell: dead edges removed, isomorphic
relabelling) are answered from the run's own cache and cost nothing, so strategies do not spend
their budget on duplicates. After every query the run keeps the best architecture so far by
the search metric; at each checkpoint it records that architecture and its report metrics (the
test accuracy the search never saw). :class:`SearchResults` gives per-seed rows and the mean
with a 95% bootstrap interval (:func:`airda.eval.bootstrap_ci`) per checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["SearchResults", "SeedResult", "benchmark_search", "default_strategy", "path_encoding"]

_PATHS = ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))


def path_encoding(arch: Any) -> np.ndarray:
    """BANANAS' path encoding of an NB201 cell (White et al., AAAI 2021): one bit per (input to
    output path, op sequence) that the cell computes; 5 + 25 + 25 + 125 = 180 bits.

    Example:
        >>> from airda.nas.search import path_encoding
        >>> arch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
        >>> int(path_encoding(arch).sum())  # only the path 0->3 (skip) is live
        1
    """
    from airda.nas.nb201 import OPS, as_arch

    a = as_arch(arch)
    live_ops = {op: k for k, op in enumerate(OPS) if op != "none"}
    n_ops = len(OPS)
    parts = []
    for path in _PATHS:
        bits = np.zeros(n_ops ** (len(path) - 1))
        code, ok = 0, True
        for s, t in itertools.pairwise(path):
            op = a.op(s, t)
            if op not in live_ops:
                ok = False
                break
            code = code * n_ops + OPS.index(op)
        if ok:
            bits[code] = 1.0
        parts.append(bits)
    return np.concatenate(parts)


@dataclasses.dataclass(frozen=True)
class SeedResult:
    """One seed's search: the returned architecture at every checkpoint.

    Attributes:
        seed: the strategy's seed.
        checkpoints: query counts at which the incumbent was recorded.
        archs: the incumbent's arch string at each checkpoint.
        search_values: its search metric at each checkpoint.
        report: report metric -> its values at each checkpoint.
        n_trials: trials asked (duplicates included); n_queries: table look-ups made.
        seconds: wall time of the run.
    """

    seed: int
    checkpoints: tuple[int, ...]
    archs: tuple[str, ...]
    search_values: tuple[float, ...]
    report: dict[str, tuple[float, ...]]
    n_trials: int
    n_queries: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class SearchResults:
    """All seeds of one strategy; :meth:`summary` gives means with 95% bootstrap intervals."""

    strategy: str
    metric: str
    checkpoints: tuple[int, ...]
    seeds: tuple[SeedResult, ...]

    def values(self, metric: str | None = None, checkpoint: int | None = None) -> np.ndarray:
        """Per-seed values of a metric (the search metric by default) at a checkpoint (the
        last by default)."""
        k = self.checkpoints.index(checkpoint) if checkpoint is not None else -1
        if metric is None or metric == self.metric:
            return np.array([s.search_values[k] for s in self.seeds])
        return np.array([s.report[metric][k] for s in self.seeds])

    def summary(self, metric: str | None = None, *, n_resamples: int = 10_000) -> list[dict]:
        """Mean and 95% bootstrap (BCa) interval over seeds, at every checkpoint."""
        from airda.eval import bootstrap_ci

        rows = []
        for c in self.checkpoints:
            v = self.values(metric, c)
            ci = bootstrap_ci(v, n_resamples=n_resamples, seed=0) if v.size > 1 else None
            rows.append(
                {
                    "checkpoint": c,
                    "mean": float(v.mean()),
                    "low": ci.low if ci else float("nan"),
                    "high": ci.high if ci else float("nan"),
                    "n": int(v.size),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "metric": self.metric,
            "checkpoints": list(self.checkpoints),
            "seeds": [dataclasses.asdict(s) for s in self.seeds],
        }


def _incumbent_better(value: float, best: float | None, maximize: bool) -> bool:
    return best is None or (value > best if maximize else value < best)


def default_strategy(
    seed: int | None = None, *, prior: Mapping[str, float] | None = None, pool: int = 200
) -> Any:
    """The default architecture search: local search over one-edge changes and exchanges of
    two edges' operations, moves tried in the order of a parameter-count prior and every
    (re)start the best-prior cell of `pool` random ones
    (:class:`~airda.strategies.LocalSearch` with ``swaps=True`` and ``prior``; default
    :data:`airda.nas.nb201.PARAMS_PRIOR`). On NAS-Bench-201 it finds the best cell of the
    12-epoch validation accuracy within 50 queries in every one of 20 seeds, on CIFAR-10,
    CIFAR-100 and ImageNet16-120 (docs/results-nas.md).

    Any space of categorical choices works; pass your own ``prior`` (choice -> weight, higher
    more promising) for operations of other names.

    Example:
        >>> import airda
        >>> from airda.nas.nb201 import nb201_space
        >>> study = airda.create_study(space=nb201_space(), strategy=default_strategy(seed=0),
        ...                            direction="maximize")
        >>> study.ask().params["0->1"]  # the first start: the best-prior cell of the pool
        'nor_conv_3x3'
    """
    from airda.nas.nb201 import PARAMS_PRIOR
    from airda.strategies import get_strategy

    return get_strategy(
        "local",
        seed=seed,
        swaps=True,
        prior=dict(PARAMS_PRIOR if prior is None else prior),
        pool=pool,
    )


def benchmark_search(
    benchmark: Any,
    *,
    metric: str,
    strategy: str | Callable[[int], Any] = "default",
    budget: int = 300,
    seeds: int | Iterable[int] = 20,
    checkpoints: Sequence[int] | None = None,
    report: Sequence[str] = (),
    maximize: bool = True,
    strategy_options: Mapping[str, Any] | None = None,
    space: Any = None,
    dedupe: bool = True,
    max_trials_factor: int = 20,
    progress: Callable[[int, SeedResult], None] | None = None,
    storage: Any = None,
    study_prefix: str | None = None,
) -> SearchResults:
    """Run a strategy on a tabular benchmark for several seeds, each with a query budget.

    Args:
        benchmark: a table with ``query(arch, metric) -> float`` (e.g.
            :class:`airda.nas.TabularBenchmark`).
        metric: the column the search optimises (e.g. ``"cifar10-val"``).
        strategy: ``"default"`` (:func:`default_strategy`), a registered strategy name, or
            ``strategy(seed) -> Strategy``.
        budget: table queries per seed.
        seeds: how many seeds (0..n-1) or the seeds.
        checkpoints: query counts at which to record the incumbent (default: 50, 100, ...
            up to the budget, and the budget).
        report: other columns to record for the incumbent (e.g. ``["cifar10-test"]``).
        maximize: direction of ``metric``.
        strategy_options: options for a named strategy.
        space: the airda space (default: :func:`airda.nas.nb201.nb201_space`).
        dedupe: answer equivalent cells from the run's cache (no query spent).
        max_trials_factor: stop a seed after ``budget * max_trials_factor`` trials even if the
            strategy keeps proposing known cells.
        progress: called with (seed, result) after each seed.
        storage: keep every seed's study (all its trials) in this storage, named
            ``{study_prefix}-seed{seed}`` (default prefix ``nas-{strategy}-{metric}``); by
            default the studies live in memory.

    Example:
        >>> class Toy:  # a benchmark where more convolutions score higher
        ...     def query(self, arch, metric):
        ...         return float(str(arch).count("conv"))
        >>> res = benchmark_search(Toy(), metric="acc", strategy="random", budget=30, seeds=3,
        ...                        checkpoints=[10, 30])
        >>> [row["checkpoint"] for row in res.summary()], res.seeds[0].n_queries
        ([10, 30], 30)
    """
    import airda
    from airda.nas.nb201 import as_arch, canonical, nb201_space
    from airda.strategies import get_strategy
    from airda.trial import TrialState

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds")
    if checkpoints is None:
        checkpoints = sorted({*range(50, budget, 50), budget})
    checks = tuple(sorted({int(c) for c in checkpoints}))
    if not checks or checks[0] < 1 or checks[-1] > budget:
        raise ValueError(f"checkpoints must lie in [1, budget={budget}], got {list(checkpoints)}")
    space = space if space is not None else nb201_space()
    name = strategy if isinstance(strategy, str) else getattr(strategy, "__name__", "custom")
    results = []
    for seed in seed_list:
        start = time.perf_counter()
        if strategy == "default":
            strat = default_strategy(seed, **dict(strategy_options or {}))
        elif isinstance(strategy, str):
            strat = get_strategy(strategy, seed=seed, **dict(strategy_options or {}))
        else:
            strat = strategy(seed)
        prefix = study_prefix or f"nas-{name}-{metric}"
        study = airda.create_study(
            f"{prefix}-seed{seed}" if storage is not None else None,
            storage=storage,
            space=space,
            strategy=strat,
            direction="maximize" if maximize else "minimize",
        )
        cache: dict[str, float] = {}
        best_value: float | None = None
        best_arch: Any = None
        recorded: list[tuple[str, float, dict[str, float]]] = []
        n_trials = 0
        while len(cache) < budget and n_trials < budget * max_trials_factor:
            trial = study.ask()
            n_trials += 1
            arch = as_arch(trial.params)
            key = str(canonical(arch)) if dedupe else str(arch)
            if key in cache:
                study.tell(trial, cache[key])
                continue
            try:
                value = float(benchmark.query(arch, metric))
            except KeyError as exc:
                study.tell(trial, state=TrialState.FAIL, error=f"not in the benchmark: {exc}")
                cache[key] = float("nan")
                continue
            cache[key] = value
            study.tell(trial, value)
            if _incumbent_better(value, best_value, maximize):
                best_value, best_arch = value, arch
            if len(cache) in checks:
                assert best_arch is not None
                assert best_value is not None
                look = getattr(benchmark, "lookup", benchmark.query)  # uncounted if it can
                extra = {m: float(look(best_arch, m)) for m in report}
                recorded.append((str(best_arch), best_value, extra))
        if len(recorded) < len(checks):
            raise RuntimeError(
                f"seed {seed}: the strategy stopped proposing new cells after {len(cache)} "
                f"queries and {n_trials} trials (budget {budget})"
            )
        result = SeedResult(
            seed=seed,
            checkpoints=checks,
            archs=tuple(r[0] for r in recorded),
            search_values=tuple(r[1] for r in recorded),
            report={m: tuple(r[2][m] for r in recorded) for m in report},
            n_trials=n_trials,
            n_queries=len(cache),
            seconds=time.perf_counter() - start,
        )
        results.append(result)
        if progress is not None:
            progress(seed, result)
    return SearchResults(name, metric, checks, tuple(results))
