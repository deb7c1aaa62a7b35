"""Final re-evaluation: a study's best candidates and a baseline, on held-out data, over seeds.

The candidate that wins a search is, on average, the one whose validation score was luckiest;
scored again on data the search never saw, it drops. :func:`reevaluate` measures that drop (the
optimism, or winner's curse) for the top-k candidates, gives each a confidence interval over
seeds, and compares each with the baseline on the same seeds (paired), correcting for the k
comparisons. The result is recorded on the study for ``airda eval report``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from airda.eval._bootstrap import bootstrap_ci
from airda.eval._compare import Comparison, compare_many, json_ready
from airda.eval._protocol import SeedPlan, record_test_read

__all__ = ["CandidateResult", "Reevaluation", "reevaluate"]

STUDY_ATTR = "airda.eval.reevaluation"


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    """One re-evaluated candidate (or the baseline).

    Attributes:
        name: "trial 17" or "baseline". trial: the trial number (None for the baseline).
        params: the candidate's parameters. search_value: its value in the search (None for a
            baseline given as scores or params that never ran in the study).
        scores: held-out score per seed (NaN where the evaluation failed).
        mean, low, high: mean held-out score and its confidence interval (bootstrap over seeds).
        optimism: search value minus held-out mean, signed so that positive means the search
            was optimistic (for a minimised objective: held-out minus search value).
        comparison: this candidate against the baseline (None for the baseline itself).
        failures: {"seed", "error", "traceback"} for each evaluation that raised.
        notes: why something is missing (e.g. too few usable runs for a comparison).
    """

    name: str
    trial: int | None
    params: dict[str, Any]
    search_value: float | None
    scores: tuple[float, ...]
    mean: float
    low: float
    high: float
    optimism: float | None
    comparison: Comparison | None = None
    failures: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("comparison", "scores", "failures", "notes")
        }
        out["notes"] = list(self.notes)
        out["scores"] = list(self.scores)
        out["failures"] = [dict(f) for f in self.failures]
        out["comparison"] = self.comparison.to_dict() if self.comparison else None
        return json_ready(out)


@dataclasses.dataclass(frozen=True)
class Reevaluation:
    """The outcome of :func:`reevaluate`: the candidates, the baseline and the protocol."""

    study: str
    direction: str
    split: str
    seeds: tuple[int, ...]
    candidates: tuple[CandidateResult, ...]
    baseline: CandidateResult | None
    created: float

    @property
    def mean_optimism(self) -> float | None:
        """Mean optimism over the candidates (the winner's curse of this search, in its units)."""
        values = [c.optimism for c in self.candidates if c.optimism is not None]
        return float(np.mean(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "direction": self.direction,
            "split": self.split,
            "seeds": list(self.seeds),
            "candidates": [c.to_dict() for c in self.candidates],
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "created": self.created,
            "mean_optimism": json_ready(self.mean_optimism),
        }

    def table(self) -> str:
        """A plain-text table of the candidates and the baseline."""
        head = [
            "candidate",
            "search",
            f"held-out mean ({self.split})",
            "interval",
            "optimism",
            "vs baseline",
        ]
        rows = []
        for c in (*self.candidates, *([self.baseline] if self.baseline else [])):
            rows.append(
                [
                    c.name,
                    "-" if c.search_value is None else f"{c.search_value:.6g}",
                    f"{c.mean:.6g}",
                    f"[{c.low:.6g}, {c.high:.6g}]",
                    "-" if c.optimism is None else f"{c.optimism:+.4g}",
                    "-"
                    if c.comparison is None
                    else (f"{c.comparison.verdict} (p={c.comparison.p_adjusted:.3g})"),
                ]
            )
        from airda._text import table

        return table(head, rows)

    def __str__(self) -> str:
        text = self.table()
        if self.mean_optimism is not None:
            text += (
                f"\nmean optimism {self.mean_optimism:+.4g} ({optimism_definition(self.direction)})"
            )
        return text


def optimism_definition(direction: str) -> str:
    """What the optimism of a study in `direction` is, in words: the sign convention is the
    same for both directions (positive: the search was optimistic), the subtraction is not."""
    if direction == "minimize":
        return (
            "held-out mean minus search value: positive means the candidates scored worse "
            "(higher) on held-out data than in the search, i.e. the search was optimistic"
        )
    return (
        "search value minus held-out mean: positive means the candidates scored worse "
        "(lower) on held-out data than in the search, i.e. the search was optimistic"
    )


def _evaluate_all(
    evaluate: Callable[[dict[str, Any], int], float], params: dict[str, Any], seeds: Sequence[int]
) -> tuple[list[float], list[dict[str, Any]]]:
    scores, failures = [], []
    for seed in seeds:
        try:
            value = float(evaluate(dict(params), int(seed)))
        except Exception as exc:  # one failed evaluation is recorded, the rest go on
            scores.append(math.nan)
            failures.append(
                {
                    "seed": int(seed),
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            )
            continue
        if not math.isfinite(value):
            failures.append(
                {"seed": int(seed), "error": f"non-finite score {value!r}", "traceback": ""}
            )
            value = math.nan
        scores.append(value)
    return scores, failures


def _summary(scores: Sequence[float], confidence: float, n_resamples: int, seed: int):
    finite = np.asarray([s for s in scores if math.isfinite(s)], dtype=np.float64)
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    if finite.size == 1:
        return float(finite[0]), math.nan, math.nan
    ci = bootstrap_ci(finite, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return ci.estimate, ci.low, ci.high


def _top_trials(study: Any, k: int, objective: int) -> list[Any]:
    direction = study.directions[objective]
    done = [t for t in study.trials if t.state.value == "complete" and t.values is not None]
    sign = -1.0 if direction == "maximize" else 1.0
    done.sort(key=lambda t: (sign * t.values[objective], t.number))
    picked, seen = [], set()
    for t in done:
        key = json.dumps(t.params, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        picked.append(t)
        if len(picked) == k:
            break
    return picked


def reevaluate(
    study: Any,
    evaluate: Callable[[dict[str, Any], int], float],
    *,
    top_k: int = 3,
    seeds: int | Sequence[int] = 5,
    baseline: Mapping[str, Any] | Sequence[float] | None = None,
    split: str = "test",
    objective: int = 0,
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    record: bool = True,
    correction: str = "holm",
) -> Reevaluation:
    """Re-evaluate a study's best candidates and a baseline on held-out data over seeds.

    Args:
        study: a finished search (``split="test"`` requires :func:`finish_search` first).
        evaluate: ``evaluate(params, seed) -> score`` on the held-out split, in the same units
            and direction as the study's objective. An exception or NaN fails that evaluation
            (recorded with its traceback); the others go on.
        top_k: how many of the best distinct candidates to re-evaluate.
        seeds: how many seeds (derived from a :class:`SeedPlan`) or the seeds themselves; every
            candidate and the baseline use the same seeds, so comparisons are paired.
        baseline: the baseline's params (evaluated like the candidates) or its scores, one per
            seed, in the same order.
        split: the name of the held-out split; "test" is locked until the search is finished,
            and this re-evaluation is recorded as a read of it.
        objective: which objective of a multi-objective study to rank by.
        confidence, alpha, n_resamples, correction: as in :func:`compare_many`.
        record: store the result on the study (for ``airda eval report``).

    Example:
        >>> import airda
        >>> from airda.eval import finish_search, reevaluate
        >>> from airda.space import Float
        >>> study = airda.create_study(space={"x": Float(0, 1)}, direction="maximize", seed=0)
        >>> study.optimize(lambda t: 1 - (t["x"] - 0.3) ** 2, n_trials=20)
        >>> _ = finish_search(study)
        >>> held_out = lambda p, seed: 1 - (p["x"] - 0.3) ** 2 - 0.01  # a bit worse off-search
        >>> r = reevaluate(study, held_out, top_k=2, seeds=8, baseline={"x": 0.9}, n_resamples=500)
        >>> round(r.candidates[0].optimism, 3), r.candidates[0].comparison.verdict
        (0.01, 'better')
    """
    if not callable(evaluate):
        raise TypeError("evaluate must be a function evaluate(params, seed) -> score")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if not 0 <= objective < len(study.directions):
        raise ValueError(
            f"objective {objective} out of range for {len(study.directions)} objective(s)"
        )
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seed_list = [run["reevaluation"] for run in SeedPlan(seeds, sources=("reevaluation",))]
    else:
        seed_list = [int(s) for s in seeds]  # type: ignore[union-attr]
    if not seed_list:
        raise ValueError("seeds is empty")
    direction = study.directions[objective]
    top = _top_trials(study, top_k, objective)
    if not top:
        raise ValueError(f"study {study.name!r} has no complete trial to re-evaluate")
    if split == "test":
        record_test_read(study, f"reevaluate top-{len(top)} x {len(seed_list)} seeds", len(top))

    base_scores: list[float] | None = None
    base_failures: list[dict[str, Any]] = []
    base_params: dict[str, Any] = {}
    if isinstance(baseline, Mapping):
        base_params = dict(baseline)
        base_scores, base_failures = _evaluate_all(evaluate, base_params, seed_list)
    elif baseline is not None:
        base_scores = [float(s) for s in baseline]
        if len(base_scores) != len(seed_list):
            raise ValueError(
                f"baseline has {len(base_scores)} scores but there are {len(seed_list)} seeds: "
                "give one score per seed, in the same order"
            )

    evaluated = []
    for t in top:
        scores, failures = _evaluate_all(evaluate, t.params, seed_list)
        evaluated.append((t, scores, failures))

    comparisons: dict[str, Comparison] = {}
    notes: dict[str, list[str]] = {f"trial {t.number}": [] for t, _, _ in evaluated}
    if base_scores is not None:
        runs = {}
        for t, scores, _ in evaluated:
            usable = sum(
                math.isfinite(a) and math.isfinite(b)
                for a, b in zip(scores, base_scores, strict=True)
            )
            if usable >= 3:
                runs[f"trial {t.number}"] = scores
            else:
                notes[f"trial {t.number}"].append(
                    f"not compared with the baseline: {usable} seed(s) where both evaluations "
                    "succeeded; a paired comparison needs at least 3"
                )
        if runs:
            comparisons = compare_many(
                runs,
                base_scores,
                correction=correction,
                higher_is_better=direction == "maximize",
                alpha=alpha,
                confidence=confidence,
                n_resamples=n_resamples,
                nan_policy="omit",
            )

    candidates = []
    for t, scores, failures in evaluated:
        mean, low, high = _summary(scores, confidence, n_resamples, 0)
        value = float(t.values[objective])
        optimism = None
        if math.isfinite(mean):
            optimism = value - mean if direction == "maximize" else mean - value
        name = f"trial {t.number}"
        candidates.append(
            CandidateResult(
                name,
                t.number,
                dict(t.params),
                value,
                tuple(scores),
                mean,
                low,
                high,
                optimism,
                comparisons.get(name),
                tuple(failures),
                tuple(notes[name]),
            )
        )
    base = None
    if base_scores is not None:
        mean, low, high = _summary(base_scores, confidence, n_resamples, 0)
        base = CandidateResult(
            "baseline",
            None,
            base_params,
            None,
            tuple(base_scores),
            mean,
            low,
            high,
            None,
            None,
            tuple(base_failures),
        )
    result = Reevaluation(
        study.name, direction, split, tuple(seed_list), tuple(candidates), base, time.time()
    )
    if record:
        study.set_user_attr(STUDY_ATTR, result.to_dict())
    return result
