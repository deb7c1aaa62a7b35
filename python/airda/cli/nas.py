"""``airda nas search|score``: multi-trial NAS on a tabular benchmark; zero-cost proxy scores."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from airda._logging import Progress
from airda._text import table
from airda.cli.studies import check_storage

SPACES = ("nb201",)


def _require_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; available: {', '.join(SPACES)}")


def _seed_progress(bar: Any, metric: str):
    """``benchmark_search``'s per-seed callback, feeding a progress bar."""

    def tick(seed: int, result: Any) -> None:
        bar.update(1, **{metric: result.search_values[-1]})

    return tick


def run_search(
    *,
    space: str,
    benchmark: str | None,
    metric: str,
    strategy: str,
    budget: int,
    seeds: int,
    report: list[str],
    checkpoints: list[int] | None,
    warm_start: str | None,
    warm_pool: int,
    warm_n: int,
    as_json: bool,
    storage: str | None = None,
    name: str | None = None,
) -> int:
    from airda.nas.benchmark import TabularBenchmark
    from airda.nas.search import benchmark_search

    _require_space(space)
    if storage is not None:
        check_storage(storage)
    from airda.cli.nas_download import default_benchmark, missing_table_hint

    if benchmark is None:
        benchmark = default_benchmark()
        if benchmark is None:
            raise ValueError(f"no benchmark table: {missing_table_hint()}")
    elif not Path(benchmark).is_file():
        raise FileNotFoundError(f"{benchmark}: no such file; {missing_table_hint()}")
    bench = TabularBenchmark.from_csv(benchmark)
    for m in [metric, *report]:
        if m not in bench.metrics:
            raise ValueError(f"{benchmark}: no metric {m!r}; metrics: {', '.join(bench.metrics)}")
    if not report:
        test = metric.replace("-val", "-test")
        report = [test] if test != metric and test in bench.metrics else []
    factory: Any = strategy
    if warm_start:
        factory = _warm_factory(strategy, warm_start, warm_pool, warm_n)
    with Progress(seeds, desc=f"{strategy} on {metric}", unit="seed") as bar:
        results = benchmark_search(
            bench,
            metric=metric,
            strategy=factory,
            budget=budget,
            seeds=seeds,
            checkpoints=checkpoints,
            report=report,
            progress=_seed_progress(bar, metric),
            storage=storage,
            study_prefix=name,
        )
    label = strategy + (f"+warm({warm_start})" if warm_start else "")
    if as_json:
        out = results.to_dict()
        out["strategy"] = label
        out["summary"] = {m: results.summary(m) for m in [metric, *report]}
        print(json.dumps(out, indent=2, default=_json_float))
        return 0
    print(f"{label} on {benchmark}, searching {metric}, {budget} queries, {seeds} seeds")
    if storage:
        print(f"studies: {name or f'nas-{strategy}-{metric}'}-seed0.. in {storage}")
    rows = [
        [
            s.seed,
            s.archs[-1],
            s.search_values[-1],
            *(s.report[m][-1] for m in report),
            s.n_queries,
            s.n_trials,
        ]
        for s in results.seeds
    ]
    print(table(["seed", "returned architecture", metric, *report, "queries", "trials"], rows))
    print(f"\nmean and 95% bootstrap interval over {seeds} seeds, by queries:")
    summary_rows = []
    for m in [metric, *report]:
        for row in results.summary(m):
            summary_rows.append(
                [m, row["checkpoint"], row["mean"], f"[{row['low']:.4g}, {row['high']:.4g}]"]
            )
    print(table(["metric", "queries", "mean", "95% interval"], summary_rows))
    return 0


def _json_float(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _warm_factory(strategy: str, proxy: str, pool: int, n_warm: int):
    from airda.strategies import WarmStart

    scorer = nb201_proxy_scorer(proxy)

    def make(seed: int) -> Any:
        return WarmStart(strategy, scorer, pool=pool, n_warm=n_warm, seed=seed)

    make.__name__ = f"{strategy}+warm({proxy})"
    return make


_SCORE_CACHES: dict[tuple[str, int], dict[str, float]] = {}


def nb201_proxy_scorer(proxy: str, *, seed: int = 0):
    """A batch scorer ``params_list -> scores`` of NB201 cells by one zero-cost proxy, cached
    per cell for the process (the proxy of an untrained network depends on its init: every
    network is initialised from `seed`)."""
    from airda.nas import as_arch, build_model
    from airda.nas.proxies import ZeroCostEvaluator

    evaluator = ZeroCostEvaluator(proxies=(proxy,), seed=seed)
    cache = _SCORE_CACHES.setdefault((proxy, seed), {})

    def score(pool: list[dict[str, Any]]) -> list[float]:
        out = []
        for params in pool:
            arch = as_arch(params)
            key = str(arch)
            if key not in cache:
                scores = evaluator.score(lambda a=arch: build_model(a), name=key)
                cache[key] = float(scores[proxy])
            out.append(cache[key])
        return out

    return score


def run_score(
    *,
    space: str,
    proxies: list[str],
    n: int,
    seed: int,
    benchmark: str | None,
    metric: str | None,
    batch_size: int,
    as_json: bool,
) -> int:
    import numpy as np

    from airda.eval import spearman
    from airda.nas.nb201 import nb201_space, params_to_arch
    from airda.nas.proxies import ZeroCostEvaluator

    _require_space(space)
    bench = None
    if benchmark:
        from airda.nas.benchmark import TabularBenchmark

        bench = TabularBenchmark.from_csv(benchmark)
        metric = metric or bench.metrics[0]
        if metric not in bench.metrics:
            raise ValueError(
                f"{benchmark}: no metric {metric!r}; metrics: {', '.join(bench.metrics)}"
            )
    rng = np.random.default_rng(seed)
    space_ = nb201_space()
    evaluator = ZeroCostEvaluator(proxies=tuple(proxies), seed=seed, batch_size=batch_size)
    from airda.nas import build_model

    rows = []
    with Progress(n, desc=f"scoring with {', '.join(proxies)}", unit="arch") as bar:
        for _ in range(n):
            arch = params_to_arch(space_.sample(rng))
            scores = evaluator.score(lambda a=arch: build_model(a), name=str(arch))
            truth = float(bench.lookup(arch, metric)) if bench is not None else None
            rows.append((str(arch), scores, truth))
            bar.update(1)
    corr = {}
    if bench is not None:
        truth = np.array([r[2] for r in rows])
        for p in proxies:
            corr[p] = spearman(np.array([r[1][p] for r in rows]), truth)
    if as_json:
        print(
            json.dumps(
                {
                    "archs": [{"arch": a, "scores": s, metric or "truth": t} for a, s, t in rows],
                    "spearman": corr,
                    "metric": metric,
                },
                indent=2,
                default=_json_float,
            )
        )
        return 0
    head = ["architecture", *proxies] + ([metric] if bench is not None else [])
    print(
        table(
            head,
            [
                [a, *(s[p] for p in proxies), *([t] if bench is not None else [])]
                for a, s, t in rows[:20]
            ],
        )
    )
    if n > 20:
        print(f"... ({n - 20} more; --json for all)")
    if corr:
        print(f"\nSpearman rank correlation with {metric} over {n} architectures:")
        print(table(["proxy", "spearman"], [[p, c] for p, c in corr.items()]))
    return 0
