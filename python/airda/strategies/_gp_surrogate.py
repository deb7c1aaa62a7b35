"""The exact Gaussian-process posterior of the surrogate strategies.

:class:`~airda.strategies.predictor.PredictorGuided` (a Laplacian kernel on a feature encoding,
hyperparameters chosen over a small grid) and :class:`~airda.strategies.gp.GaussianProcessSearch`
(a Matérn-5/2 ARD kernel, hyperparameters fitted by L-BFGS-B) differ in their kernels and in how
they choose hyperparameters; both condition the GP on the data here. NumPy only, so the
predictor-guided search (NAS) does not need SciPy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Posterior"]


class Posterior:
    """A zero-mean GP conditioned on outputs `y`, given their covariance matrix `k` (noise on
    its diagonal). ``jitter_tries`` retries a failed Cholesky factorisation with a diagonal
    jitter growing from 1e-8 tenfold; without retries the ``LinAlgError`` is raised."""

    def __init__(self, k: np.ndarray, y: np.ndarray, *, jitter_tries: int = 0):
        jitter = 0.0
        for attempt in range(jitter_tries + 1):
            try:
                self.chol = np.linalg.cholesky(k + jitter * np.eye(len(k)) if jitter else k)
                break
            except np.linalg.LinAlgError:
                if attempt == jitter_tries:
                    raise
                jitter = max(jitter * 10, 1e-8)
        self.y = y
        self.alpha = np.linalg.solve(self.chol.T, np.linalg.solve(self.chol, y))
        self._chol_inv: np.ndarray | None = None

    def log_marginal_likelihood(self) -> float:
        """log p(y), up to the constant ``-n/2 log(2 pi)``."""
        return float(-0.5 * self.y @ self.alpha - np.log(np.diag(self.chol)).sum())

    @property
    def chol_inv(self) -> np.ndarray:
        """``L^-1``: one O(n^3) inverse, after which every prediction is matrix products (a
        hyperparameter search that only compares likelihoods never pays for it)."""
        if self._chol_inv is None:
            self._chol_inv = np.linalg.inv(self.chol)
        return self._chol_inv

    def predict(
        self, ks: np.ndarray, prior_var: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior mean and variance (floored at 1e-12) at points whose covariances with
        the training points are the rows of `ks`, and ``v = L^-1 ks^T`` (so that
        ``v.T @ chol_inv`` is ``ks K^-1``, for gradients)."""
        mean = ks @ self.alpha
        v = self.chol_inv @ ks.T
        var = np.maximum(prior_var - (v * v).sum(0), 1e-12)
        return mean, var, v
