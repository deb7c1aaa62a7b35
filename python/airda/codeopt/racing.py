"""Racing: profile a set of variants together in rounds and drop those whose median's interval
lies clearly behind the best one's (successive elimination), so the measurement time goes to
the variants still in contention.

Every variant gets the same samples per round while it is alive; the intervals use a
Bonferroni-corrected confidence so that, over all variants, the true best is kept with at least
the requested confidence (when sample medians are representative).

Example:
    >>> import numpy as np
    >>> from airda.codeopt import race
    >>> rng = np.random.default_rng(0)
    >>> costs = {"a": 1.0, "b": 1.5, "c": 3.0}
    >>> samplers = {k: (lambda n, c=c: c * (1 + 0.01 * rng.random(n))) for k, c in costs.items()}
    >>> result = race(samplers, round_samples=5)
    >>> result.winner, sorted(result.eliminated)
    ('a', ['b', 'c'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airda.codeopt.profiler import Profile, clock_id, median_ci_rank, summarize

__all__ = ["RaceResult", "callable_sampler", "fixed_protocol", "race", "sandbox_sampler"]

Sampler = Callable[[int], Any]


@dataclass
class RaceResult:
    """The outcome of a race.

    Attributes:
        winner: the key of the fastest variant (smallest median among those left).
        profiles: each variant's statistics over all its samples.
        eliminated: key -> round in which it was dropped.
        failed: key -> why a variant's sampler failed (it raised, or crashed or hung in a
            sandbox); such a variant is out of the race, the others go on.
        measured_s: time spent in timed calls, summed over variants.
        rounds: rounds run.
    """

    winner: Hashable
    profiles: dict[Hashable, Profile]
    eliminated: dict[Hashable, int] = field(default_factory=dict)
    measured_s: float = 0.0
    rounds: int = 0
    failed: dict[Hashable, str] = field(default_factory=dict)


def _draw(sampler: Sampler, n: int) -> tuple[np.ndarray, float]:
    out = sampler(n)
    if isinstance(out, tuple):
        samples, spent = out
        return np.asarray(samples, dtype=np.float64), float(spent)
    arr = np.asarray(out, dtype=np.float64)
    return arr, float(arr.sum())


def race(
    samplers: Mapping[Hashable, Sampler],
    *,
    round_samples: int = 5,
    confidence: float = 0.95,
    rel_ci: float = 0.01,
    margin: float = 0.0,
    max_rounds: int = 100,
    max_time_s: float | None = None,
    draw_round: Callable[[list[Hashable], int], Mapping[Hashable, Any]] | None = None,
    paired: bool | None = None,
    interleaved: bool = False,
) -> RaceResult:
    """Race variants by successive elimination.

    Args:
        samplers: key -> ``sampler(n)`` returning n per-call times (seconds), or a tuple
            ``(times, seconds_spent)`` when a sample covers several calls.
        round_samples: samples per alive variant per round.
        confidence: overall confidence that the best is not eliminated.
        rel_ci: stop when every variant still in the race has a median interval this narrow
            (relative): they cannot be told apart at this precision.
        margin: eliminate only when the lower end is more than ``(1 + margin)`` times the best's
            upper end.
        max_rounds / max_time_s: caps on rounds and measured time.
        paired: also compare each variant with the current best pair by pair: the median
            of the ratios of their per-round medians cancels what a round shares (a load
            burst, a frequency change). From the second round on (the first, when the rounds
            are `interleaved`), a
            variant whose ratio's interval lies above ``1 + margin`` is dropped, and the race
            stops once no variant left can be faster than the best by more than
            `rel_ci` (the lower end of every ratio's interval, at `confidence`, is at least
            ``1 / (1 + rel_ci)``): the best is then within the precision asked for. None (the
            default): paired when `interleaved`. A pair of per-round medians assumes that what
            disturbs a round disturbs both variants alike, which holds for samples taken
            microseconds apart, not for blocks of samples taken tens of milliseconds apart on
            a loaded machine (``bench/tune_table.py --only racing`` measures both).
        interleaved: the samples of a round were taken variant by variant in turn (1, 2, 3,
            1, 2, 3, ...; a sandbox's ``rounds`` request does that), so the i-th samples of two
            variants are a pair of their own: the paired comparison uses every sample pair, not
            one pair per round. Leave it False for samplers that take a variant's samples of a
            round one after the other (a burst of load then hits several samples of one
            variant, and such pairs are not independent).
        draw_round: ``draw_round(alive_keys, n)`` returning key -> what a sampler returns,
            for every alive key: one call per round (e.g. one request to a sandbox worker)
            instead of one sampler call per variant; the samplers' values are then unused.
    """
    if not samplers:
        raise ValueError("race needs at least one variant")
    if round_samples < 1:
        raise ValueError(f"round_samples must be >= 1, got {round_samples}")
    if paired is None:
        paired = interleaved
    keys = list(samplers)
    each = 1.0 - (1.0 - confidence) / len(keys)
    n_first = 1
    while median_ci_rank(n_first, each) < 1:
        n_first += 1
    data: dict[Hashable, list[np.ndarray]] = {k: [] for k in keys}
    alive = list(keys)
    eliminated: dict[Hashable, int] = {}
    failed: dict[Hashable, str] = {}
    spent = 0.0
    rounds = 0
    stats: dict[Hashable, Profile] = {}
    while rounds < max_rounds:
        rounds += 1
        # The first round takes enough samples for an interval at the corrected confidence.
        n_round = max(round_samples, n_first) if rounds == 1 else round_samples
        if draw_round is not None:
            drawn = draw_round(list(alive), n_round)
        else:
            drawn = {}
            for k in list(alive):
                try:
                    drawn[k] = samplers[k](n_round)
                except Exception as exc:  # the variant failed (or crashed in a sandbox)
                    failed[k] = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
                    alive.remove(k)
            if not alive:
                raise ValueError(f"every variant failed: {failed}")
        for k in alive:
            x, s = _draw(lambda _n, out=drawn[k]: out, n_round)
            data[k].append(x)
            spent += s
        stats.update({k: summarize(np.concatenate(data[k]), confidence=each) for k in alive})
        best = min(alive, key=lambda k: stats[k].median)
        bound = stats[best].ci_high * (1.0 + margin)
        for k in list(alive):
            if k != best and stats[k].ci_low > bound:
                alive.remove(k)
                eliminated[k] = rounds
        if len(alive) == 1:
            break
        if paired and (rounds >= 2 or interleaved):
            # Every variant alive now was sampled in every round so far, as was the best: the
            # i-th samples of both were taken in the same round (side by side, when the
            # sampler interleaves them).
            indifferent = True
            pairs = _pairs(data[best], interleaved)
            for k in list(alive):
                if k == best:
                    continue
                ratios = _pairs(data[k], interleaved)
                lo, _ = _ratio_ci(ratios, pairs, each)
                if lo > 1.0 + margin:
                    alive.remove(k)
                    eliminated[k] = rounds
                    continue
                # Stopping for indifference only decides which of near-equal variants is
                # reported (dropping the best is what the corrected `each` guards against):
                # the plain confidence.
                lo, _ = _ratio_ci(ratios, pairs, confidence)
                if not lo >= 1.0 / (1.0 + rel_ci):
                    indifferent = False
            if len(alive) == 1 or indifferent:
                break
        if all(stats[k].rel_width <= rel_ci for k in alive):
            break
        if max_time_s is not None and spent >= max_time_s:
            break
    profiles = {
        k: summarize(np.concatenate(data[k]), confidence=confidence)
        for k in keys
        if k not in failed
    }
    winner = min(alive, key=lambda k: profiles[k].median)
    return RaceResult(winner, profiles, eliminated, spent, rounds, failed)


def _pairs(rounds: list[np.ndarray], interleaved: bool) -> np.ndarray:
    """A variant's side of the paired comparison: every sample when the rounds were
    interleaved sample by sample, else each round's median."""
    if interleaved:
        return np.concatenate(rounds)
    return np.array([float(np.median(x)) if x.size else math.nan for x in rounds])


def _ratio_ci(a: Any, b: Any, confidence: float) -> tuple[float, float]:
    """The distribution-free interval of the median of the paired ratios ``a[i] / b[i]``
    (NaN ends when there are too few pairs for the confidence)."""
    r = np.sort(np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64))
    r = r[np.isfinite(r)]
    k = median_ci_rank(r.size, confidence)
    if k < 1:
        return math.nan, math.nan
    return float(r[k - 1]), float(r[r.size - k])


def fixed_protocol(
    samplers: Mapping[Hashable, Sampler], n_samples: int = 7, *, rounds: int = 1
) -> RaceResult:
    """The baseline: the same number of samples for every variant (Kernel Tuner's default is 7
    iterations), the winner by median.

    With ``rounds > 1`` the samples are taken in that many interleaved rounds (every variant
    once per round), so a drift of the machine's speed affects all variants alike.
    """
    if not samplers:
        raise ValueError("fixed_protocol needs at least one variant")
    if n_samples < 1 or rounds < 1:
        raise ValueError("n_samples and rounds must be >= 1")
    per = [n_samples // rounds + (1 if r < n_samples % rounds else 0) for r in range(rounds)]
    data: dict[Hashable, list[np.ndarray]] = {k: [] for k in samplers}
    spent = 0.0
    for n in per:
        if n == 0:
            continue
        for k, sampler in samplers.items():
            x, s = _draw(sampler, n)
            spent += s
            data[k].append(x)
    profiles = {k: summarize(np.concatenate(v)) for k, v in data.items()}
    winner = min(profiles, key=lambda k: profiles[k].median)
    return RaceResult(winner, profiles, {}, spent, rounds)


def callable_sampler(
    fn: Callable[..., Any],
    *args: Any,
    box: Any = None,
    key: str | None = None,
    min_sample_s: float = 2e-3,
) -> Sampler:
    """A sampler timing a Python callable ``fn(*args)``: the calls per sample are calibrated
    on the first round (after one warm-up call) and kept, and the cost of the same loop around
    a no-op is subtracted from every sample.

    With `box` (a :class:`~airda.codeopt.Sandbox` built with ``py_args=args``; `args` here are
    then unused) the calls run in the worker process: `fn` must pickle by reference (a
    module-level function of an importable module), and a crash, hang or exception fails this
    variant only (:attr:`RaceResult.failed`). `key` names it there (default: its qualified
    name).

    >>> import numpy as np
    >>> from airda.codeopt import callable_sampler, race
    >>> x = np.random.default_rng(0).random(20_000)
    >>> samplers = {"np.sort": callable_sampler(np.sort, x), "sorted": callable_sampler(sorted, x)}
    >>> race(samplers, max_time_s=0.2).winner  # sorting NumPy scalars in Python: far slower
    'np.sort'
    """
    from airda.codeopt.profiler import calibrate_callable, sample_callable

    inner = [0]
    name = key or f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"

    def sampler(n: int) -> tuple[np.ndarray, float]:
        if box is not None:
            raw = box.sample_callable(name, fn, n, inner[0], min_sample_s)
            inner[0] = int(raw["inner"])
            return np.asarray(raw["samples"]), float(raw["measured_s"])
        if not inner[0]:
            fn(*args)
            inner[0], _ = calibrate_callable(fn, args, min_sample_s)
        samples, spent = sample_callable(fn, args, n, inner[0])
        return np.asarray(samples), spent

    return sampler


def sandbox_sampler(
    box: Any,
    key: str,
    path: Any,
    *,
    flush: bool = False,
    min_sample_s: float = 5e-5,
    clock: str = "wall",
) -> Sampler:
    """A sampler running a compiled variant in a :class:`~airda.codeopt.Sandbox`: the calls per
    sample are calibrated on the first round and kept, so every round is comparable."""
    inner = [0]

    def sampler(n: int) -> tuple[np.ndarray, float]:
        raw = box.sample(
            key,
            path,
            {
                "n_samples": n,
                "inner": inner[0],
                "flush": flush,
                "min_sample_s": min_sample_s,
                "clock": clock_id(clock),
            },
        )
        inner[0] = int(raw["inner"])
        return np.asarray(raw["samples"]), float(raw["measured_s"])

    return sampler
