"""``compare``: is a candidate better than a baseline? The effect, its interval, a corrected
p-value and a verdict in one line, with the assumptions that make them valid written out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from airda.eval._bootstrap import bootstrap_ci
from airda.eval._checks import paired_scores, two_samples
from airda.eval._effects import (
    benjamini_hochberg,
    bonferroni,
    cohens_d,
    holm,
    probability_of_improvement,
)
from airda.eval._tests import permutation_test, sign_test, wilcoxon

__all__ = ["Comparison", "compare", "compare_many"]

TESTS = ("permutation", "wilcoxon", "sign")
CORRECTIONS = {"holm": holm, "bonferroni": bonferroni, "bh": benjamini_hochberg, "none": None}
VERDICTS = ("better", "no detectable difference", "worse")
STUDY_ATTR = "airda.eval.comparisons"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
        verdict: "better", "no detectable difference" or "worse" (for the candidate).
        effect: mean(candidate) - mean(baseline) (mean paired difference when paired), in
            the scores' own units.
        low, high: the effect's confidence interval (bootstrap, BCa by default).
        p_value: the test's p-value; p_adjusted: after the multiple-comparison correction
            (equal to p_value for a single comparison).
        candidate_mean, baseline_mean: the two means.
        effect_size: Cohen's d (d_z for paired scores).
        probability_of_improvement: P(candidate > baseline) + P(equal)/2 over all pairs of runs.
        n_candidate, n_baseline: scores used; n_excluded: scores dropped (NaN under "omit").
        paired, higher_is_better, test, correction, n_comparisons, confidence, alpha.
        assumptions: the conditions under which the interval and p-value mean what they say.
        notes: anything that limits the verdict (e.g. too few runs to ever reach alpha).
    """

    verdict: str
    effect: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    candidate_mean: float
    baseline_mean: float
    effect_size: float
    probability_of_improvement: float
    n_candidate: int
    n_baseline: int
    n_excluded: int
    paired: bool
    higher_is_better: bool
    test: str
    correction: str
    n_comparisons: int
    confidence: float
    alpha: float
    assumptions: str
    notes: tuple[str, ...] = ()
    name: str = "candidate"

    def __str__(self) -> str:
        n = (
            f"n = {self.n_candidate} pairs"
            if self.paired
            else (f"n = {self.n_candidate} vs {self.n_baseline}")
        )
        corrected = (
            f", {self.correction}-adjusted over {self.n_comparisons}"
            if self.n_comparisons > 1 and self.correction != "none"
            else ""
        )
        return (
            f"{self.name}: {self.verdict}: {self.effect:+.4g} "
            f"({self.confidence:.0%} CI {self.low:+.4g} to {self.high:+.4g}), "
            f"p = {self.p_adjusted:.3g} ({self.test}{corrected}), {n}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinite values, e.g. open interval ends, become None)."""
        out = dataclasses.asdict(self)
        out["notes"] = list(self.notes)
        return json_ready(out)

    def attach(self, study: Any, key: str | None = None) -> None:
        """Record this comparison on a study (user attribute ``airda.eval.comparisons``)."""
        records = dict(study.user_attrs.get(STUDY_ATTR, {}))
        records[key or self.name] = self.to_dict()
        study.set_user_attr(STUDY_ATTR, records)


def json_ready(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (strict JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def _min_attainable_p(n: int, paired: bool, n_b: int, n_resamples: int) -> float:
    """The smallest two-sided p-value the permutation test can reach with these sizes: exact
    enumeration when every arrangement fits in n_resamples, else (1 + 1) / (n_resamples + 1)."""
    log2_arrangements = n if paired else math.log2(math.comb(n + n_b, n))
    if log2_arrangements <= math.log2(max(n_resamples, 1)):
        return min(1.0, 2.0 / 2.0**log2_arrangements)
    return min(1.0, 2.0 / (n_resamples + 1))


def _one(
    candidate: Any,
    baseline: Any,
    *,
    name: str,
    paired: bool,
    higher_is_better: bool,
    confidence: float,
    alpha: float,
    test: str,
    n_resamples: int,
    seed: int,
    nan_policy: str,
) -> tuple[dict[str, Any], float]:
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    names = (name, "baseline")
    notes: list[str] = []
    if paired:
        x, y, excluded = paired_scores(
            candidate, baseline, names, nan_policy=nan_policy, min_size=3
        )
        ci = bootstrap_ci(
            (x, y), "mean_difference", n_resamples=n_resamples, confidence=confidence, seed=seed
        )
        if test == "permutation":
            result = permutation_test(x, y, paired=True, n_resamples=n_resamples, seed=seed)
        elif test == "wilcoxon":
            result = wilcoxon(x, y)
        else:
            result = sign_test(x, y)
        d = cohens_d(x, y, paired=True)
        assumptions = (
            "pairs share everything but the method (seed, fold or task) and are independent of "
            "each other; under the null the two scores of a pair are exchangeable"
        )
    else:
        if test != "permutation":
            raise ValueError(f"test={test!r} needs paired scores; use test='permutation'")
        x, y, excluded = two_samples(candidate, baseline, names, nan_policy=nan_policy, min_size=2)
        if x.size + y.size < 5:
            raise ValueError(
                f"{x.size} + {y.size} scores are too few to compare independent samples "
                "(need at least 5 in all)"
            )
        ci = _independent_ci(x, y, n_resamples, confidence, seed)
        result = permutation_test(x, y, paired=False, n_resamples=n_resamples, seed=seed)
        d = cohens_d(x, y)
        assumptions = (
            "all runs are independent; under the null the candidate and baseline scores come "
            "from one distribution (exchangeable labels)"
        )
    floor = _min_attainable_p(x.size, paired, y.size, n_resamples)
    if test == "permutation" and floor > alpha:
        notes.append(
            f"with {x.size} {'pairs' if paired else 'and ' + str(y.size) + ' runs'} the smallest "
            f"attainable p-value is {floor:.3g} > alpha = {alpha}: no difference can be detected; "
            + ("add runs" if "exact" in result.test else "raise n_resamples")
        )
    if excluded:
        notes.append(f"{excluded} score(s) with NaN/inf excluded (nan_policy='omit')")
    assumptions += (
        f"; {ci.method} bootstrap interval ({n_resamples} resamples, not adjusted for "
        f"multiplicity); {result.test}, two-sided at alpha = {alpha}"
    )
    fields = {
        "name": name,
        "effect": float(x.mean() - y.mean()),
        "low": ci.low,
        "high": ci.high,
        "p_value": result.p_value,
        "candidate_mean": float(x.mean()),
        "baseline_mean": float(y.mean()),
        "effect_size": d,
        "probability_of_improvement": probability_of_improvement(x, y)
        if higher_is_better
        else probability_of_improvement(-x, -y),
        "n_candidate": int(x.size),
        "n_baseline": int(y.size),
        "n_excluded": excluded,
        "paired": paired,
        "higher_is_better": higher_is_better,
        "test": result.test,
        "confidence": confidence,
        "alpha": alpha,
        "assumptions": assumptions,
        "notes": tuple(notes),
    }
    return fields, result.p_value


def _independent_ci(x: np.ndarray, y: np.ndarray, n_resamples: int, confidence: float, seed: int):
    """Bootstrap each sample within itself: one stratified resample of the pooled scores."""
    pooled = np.concatenate([x, y])
    labels = np.r_[np.zeros(x.size, dtype=np.int64), np.ones(y.size, dtype=np.int64)]
    na = x.size

    def diff(v: np.ndarray, axis: int = -1) -> np.ndarray:
        v = np.moveaxis(v, axis, -1)
        return v[..., :na].mean(axis=-1) - v[..., na:].mean(axis=-1)

    return bootstrap_ci(
        pooled, diff, n_resamples=n_resamples, confidence=confidence, seed=seed, strata=labels
    )


def _verdict(
    effect: float, low: float, high: float, p: float, alpha: float, higher: bool, notes: list[str]
) -> str:
    if p >= alpha:
        return "no detectable difference"
    if low > 0.0 or high < 0.0:
        up = low > 0.0
        return "better" if up == higher else "worse"
    notes.append(
        "the test is significant but the interval contains 0; they disagree, so no verdict"
    )
    return "no detectable difference"


def compare(
    candidate: Any,
    baseline: Any,
    *,
    paired: bool = True,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    alpha: float = 0.05,
    test: str = "permutation",
    n_resamples: int = 10_000,
    seed: int = 0,
    nan_policy: str = "raise",
    name: str = "candidate",
) -> Comparison:
    """Compare a candidate's scores with a baseline's and say, with reasons, which is better.

    The effect is the mean difference (candidate minus baseline). Its interval is a BCa
    bootstrap interval (paired: of the mean paired difference; independent: each sample
    resampled within itself). The p-value is a two-sided paired permutation test by default
    (``test="wilcoxon"`` or ``"sign"`` for paired rank or sign tests; independent samples use a
    permutation test of the labels). The verdict is "better" or "worse" only when the p-value
    is below ``alpha`` and the interval excludes zero in the same direction.

    Args:
        candidate, baseline: scores, one per run (seed, fold, task...). Paired scores must be
            in the same order (run i of both used the same seed/fold/task).
        paired: scores are paired by index (default True); False for independent runs.
        higher_is_better: direction of the scores (False for losses, error rates, latency).
        confidence: level of the interval. alpha: significance level of the test.
        test: "permutation" (default), "wilcoxon" or "sign".
        n_resamples: bootstrap and permutation resamples. seed: their seed.
        nan_policy: "raise" (default) or "omit" (NaN/inf pairs dropped, counted in the result).
        name: how the candidate is called in the verdict line.

    Example:
        >>> from airda.eval import compare
        >>> new = [0.842, 0.851, 0.838, 0.849, 0.845, 0.853, 0.840, 0.847]
        >>> old = [0.831, 0.836, 0.829, 0.841, 0.833, 0.842, 0.830, 0.835]
        >>> c = compare(new, old, n_resamples=2000)
        >>> c.verdict, round(c.effect, 4), round(c.p_value, 4)
        ('better', 0.011, 0.0078)
    """
    fields, p = _one(
        candidate,
        baseline,
        name=name,
        paired=paired,
        higher_is_better=higher_is_better,
        confidence=confidence,
        alpha=alpha,
        test=test,
        n_resamples=n_resamples,
        seed=seed,
        nan_policy=nan_policy,
    )
    notes = list(fields.pop("notes"))
    verdict = _verdict(
        fields["effect"], fields["low"], fields["high"], p, alpha, higher_is_better, notes
    )
    return Comparison(
        verdict=verdict,
        p_adjusted=p,
        correction="none",
        n_comparisons=1,
        notes=tuple(notes),
        **fields,
    )


def compare_many(
    candidates: Mapping[str, Any],
    baseline: Any,
    *,
    correction: str = "holm",
    **options: Any,
) -> dict[str, Comparison]:
    """:func:`compare` every candidate with one baseline, correcting for the number of them.

    The p-values are adjusted together (Holm by default; "bonferroni", "bh" for
    Benjamini-Hochberg's false discovery rate, or "none"), and each verdict uses its adjusted
    p-value. Options are those of :func:`compare`.

    Example:
        >>> from airda.eval import compare_many
        >>> base = [0.80, 0.81, 0.79, 0.80, 0.82, 0.81, 0.80, 0.79]
        >>> runs = {"a": [x + 0.02 for x in base], "b": [x + 0.001 * (-1) ** i for i, x in enumerate(base)]}
        >>> {k: c.verdict for k, c in compare_many(runs, base, n_resamples=2000).items()}
        {'a': 'better', 'b': 'no detectable difference'}
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {tuple(CORRECTIONS)}, got {correction!r}")
    if not candidates:
        raise ValueError("no candidates to compare")
    unknown = set(options) - {
        "paired",
        "higher_is_better",
        "confidence",
        "alpha",
        "test",
        "n_resamples",
        "seed",
        "nan_policy",
    }
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    defaults = {
        "paired": True,
        "higher_is_better": True,
        "confidence": 0.95,
        "alpha": 0.05,
        "test": "permutation",
        "n_resamples": 10_000,
        "seed": 0,
        "nan_policy": "raise",
    }
    settings = defaults | options
    results = {
        name: _one(scores, baseline, name=str(name), **settings)
        for name, scores in candidates.items()
    }
    raw = np.array([p for _, p in results.values()])
    adjust = CORRECTIONS[correction]
    adjusted = adjust(raw) if adjust is not None and raw.size > 1 else raw
    out = {}
    for (name, (fields, _)), p_adj in zip(results.items(), adjusted, strict=False):
        notes = list(fields.pop("notes"))
        verdict = _verdict(
            fields["effect"],
            fields["low"],
            fields["high"],
            float(p_adj),
            settings["alpha"],
            settings["higher_is_better"],
            notes,
        )
        out[name] = Comparison(
            verdict=verdict,
            p_adjusted=float(p_adj),
            correction=correction,
            n_comparisons=len(results),
            notes=tuple(notes),
            **fields,
        )
    return out
