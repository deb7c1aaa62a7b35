"""airda.eval: is a search result genuinely better, or noise, metric artefact or winner's curse?

Statistics as plain functions of arrays, on a compiled resampling core
(:func:`airda.ops.bootstrap_means`):

- intervals: :func:`bootstrap_ci` (percentile, basic, BCa; paired; stratified);
- tests: :func:`permutation_test`, :func:`wilcoxon`, :func:`sign_test`;
- effect sizes: :func:`cohens_d`, :func:`hedges_g`, :func:`cliffs_delta`,
  :func:`probability_of_improvement`; rank correlation: :func:`spearman`;
- corrections: :func:`holm`, :func:`bonferroni`, :func:`benjamini_hochberg`;
- rliable's aggregates: :func:`iqm`, :func:`performance_profile`;
- a verdict: :func:`compare` and :func:`compare_many`.

Protocols that keep the test split honest (:class:`Splits`, :class:`KFold`,
:class:`RepeatedKFold`, :class:`SeedPlan`, :func:`finish_search`), the final re-evaluation of a
study's winners with the winner's curse measured (:func:`reevaluate`), and reports
(:func:`write_report`, ``airda eval report``).

Example:
    >>> from airda import eval as ae
    >>> new = [0.842, 0.851, 0.838, 0.849, 0.845, 0.853, 0.840, 0.847]
    >>> old = [0.831, 0.836, 0.829, 0.841, 0.833, 0.842, 0.830, 0.835]
    >>> print(ae.compare(new, old, n_resamples=2000))
    candidate: better: +0.011 (95% CI +0.00975 to +0.0125), p = 0.00781 (paired permutation test (exact, 256 arrangements)), n = 8 pairs
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BootstrapResult",
    "Comparison",
    "KFold",
    "LockedSplitError",
    "Reevaluation",
    "RepeatedKFold",
    "SeedPlan",
    "Splits",
    "TestResult",
    "benjamini_hochberg",
    "bonferroni",
    "bootstrap_ci",
    "cliffs_delta",
    "cohens_d",
    "compare",
    "compare_many",
    "finish_search",
    "hedges_g",
    "holm",
    "iqm",
    "performance_profile",
    "permutation_test",
    "probability_of_improvement",
    "reevaluate",
    "sign_test",
    "spearman",
    "test_reads",
    "wilcoxon",
    "write_report",
]

_WHERE = {
    "BootstrapResult": "_bootstrap",
    "bootstrap_ci": "_bootstrap",
    "Comparison": "_compare",
    "compare": "_compare",
    "compare_many": "_compare",
    "TestResult": "_tests",
    "permutation_test": "_tests",
    "sign_test": "_tests",
    "wilcoxon": "_tests",
    "benjamini_hochberg": "_effects",
    "bonferroni": "_effects",
    "cliffs_delta": "_effects",
    "cohens_d": "_effects",
    "hedges_g": "_effects",
    "holm": "_effects",
    "iqm": "_effects",
    "performance_profile": "_effects",
    "probability_of_improvement": "_effects",
    "spearman": "_effects",
    "KFold": "_protocol",
    "LockedSplitError": "_protocol",
    "RepeatedKFold": "_protocol",
    "SeedPlan": "_protocol",
    "Splits": "_protocol",
    "finish_search": "_protocol",
    "test_reads": "_protocol",
    "Reevaluation": "_reevaluate",
    "reevaluate": "_reevaluate",
    "write_report": "_report",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'airda.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airda.eval.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
