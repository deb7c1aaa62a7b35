"""resample: the former home of the paired bootstrap, now :mod:`airda.ops.bootstrap_means` (one
module per op; :func:`bootstrap_indices`, the same resamples for NumPy code, lives beside it).
This alias is kept for one release: import the functions from :mod:`airda.ops`.

Example:
    >>> import numpy as np
    >>> from airda.ops.resample import bootstrap_indices, bootstrap_means
    >>> scores = np.array([0.9, 0.7, 0.8, 0.6])
    >>> means = bootstrap_means(scores, 3, seed=1)
    >>> bool(np.allclose(means, scores[bootstrap_indices(4, 3, seed=1)].mean(axis=1)))
    True
"""

from __future__ import annotations

from airda.ops.bootstrap_means import bootstrap_indices, bootstrap_means, bootstrap_means_reference

__all__ = ["bootstrap_indices", "bootstrap_means", "bootstrap_means_reference"]
