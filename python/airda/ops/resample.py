"""resample: the former home of the paired bootstrap, now :mod:`airda.ops.bootstrap_means` (one
module per op; :func:`bootstrap_indices`, the same resamples for NumPy code, lives beside it).
This alias is kept for one release: import the functions from :mod:`airda.ops`.
"""

from __future__ import annotations

import warnings

from airda.ops.bootstrap_means import bootstrap_indices, bootstrap_means, bootstrap_means_reference

__all__ = ["bootstrap_indices", "bootstrap_means", "bootstrap_means_reference"]

warnings.warn(
    "airda.ops.resample is deprecated: import from airda.ops (or airda.ops.bootstrap_means)",
    DeprecationWarning,
    stacklevel=2,
)
