"""Mode-specific normalisation of numerical columns (CTGAN/TVAE's), with a fast variational GMM.

Each numerical column gets a one-dimensional variational Bayesian Gaussian mixture with a
Dirichlet-process (stick-breaking) prior on the weights, fitted by closed-form mean-field
updates in numpy on a subsample of at most ``max_rows`` rows. The updates are those of
scikit-learn's ``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")``
in one dimension (Bishop, PRML 10.2; Blei and Jordan 2006 for the stick-breaking weights), so
components that the data do not support get weights near zero and are dropped; the difference
is speed: a deterministic quantile initialisation in place of k-means, all components updated as
arrays, and a subsample, which is enough for a one-dimensional density with ten components.

A value ``x`` is then represented by a mode ``k`` (sampled from its posterior responsibilities
over the kept components, as CTGAN does) and a scalar ``alpha = (x - mu_k) / (4 sigma_k)``
clipped to ``[-0.99, 0.99]``; :meth:`ModeNormalizer.inverse` maps ``(alpha, k)`` back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, logsumexp

__all__ = ["ModeNormalizer", "VariationalGMM1D"]


@dataclass
class VariationalGMM1D:
    """A one-dimensional variational Bayesian Gaussian mixture with a Dirichlet-process prior.

    Args:
        n_components: Upper bound on the number of mixture components.
        weight_concentration: Concentration of the stick-breaking prior; small values favour
            few components (CTGAN uses 0.001).
        max_iter: Most variational updates.
        tol: Stop when no mean, standard deviation (in units of the data's standard
            deviation) or weight moves by more than this in one update. Weights are part of
            the test on purpose: stopping when the likelihood settles takes 4-29 updates
            instead of ~100 on diamonds' columns, but leaves the stick-breaking prior no time
            to starve unneeded components (288 modes instead of 140 over breast cancer's 30
            columns), and TVAE trained on those sampled worse (TSTR 0.912/0.942 against
            0.924/0.953 on two splits).
        reg_covar: Added to each component's variance (on the standardised scale) so that a
            component on a single repeated value keeps a positive width.

    Attributes (after :meth:`fit`): ``means_``, ``stds_``, ``weights_`` (arrays of
    ``n_components``, in the data's units), ``n_iter_``, ``converged_``.
    """

    n_components: int = 10
    weight_concentration: float = 1e-3
    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-6

    def fit(self, x: np.ndarray) -> VariationalGMM1D:
        """Fit the mixture to the finite values ``x`` (1-D)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            raise ValueError("VariationalGMM1D.fit: no values to fit")
        if not np.all(np.isfinite(x)):
            raise ValueError("VariationalGMM1D.fit: values must be finite (no NaN or inf)")
        if self.n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        loc = float(x.mean())
        scale = float(x.std())
        if not scale > 0:
            scale = 1.0
        self._loc, self._scale = loc, scale
        z = (x - loc) / scale
        n, k = z.size, self.n_components
        # Priors as scikit-learn sets them from the data (standardised: mean 0, variance 1).
        self._m0 = 0.0
        self._beta0 = 1.0
        self._nu0 = 1.0
        self._w0inv = max(float(z.var()), self.reg_covar)
        # Quantile initialisation: component j starts on the j-th equal-mass slice.
        order = np.argsort(z, kind="stable")
        resp = np.zeros((n, k))
        resp[order, np.minimum(np.arange(n) * k // n, k - 1)] = 1.0
        self._m_step(z, resp)
        prev = self._summary()
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            self._m_step(z, self._resp(z))
            cur = self._summary()
            self.n_iter_ = it
            if np.max(np.abs(cur - prev)) < self.tol:
                self.converged_ = True
                break
            prev = cur
        self.means_ = loc + scale * self._m
        self.stds_ = scale * np.sqrt(self._cov)
        self.weights_ = self._weights()
        return self

    def _m_step(self, z: np.ndarray, resp: np.ndarray) -> None:
        nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
        xbar = resp.T @ z / nk
        sk = (resp * (z[:, None] - xbar) ** 2).sum(axis=0) / nk + self.reg_covar
        # Stick-breaking Beta(a_k, b_k) posteriors.
        self._a = 1.0 + nk
        tail = np.concatenate([np.cumsum(nk[::-1])[::-1][1:], [0.0]])
        self._b = self.weight_concentration + tail
        self._beta = self._beta0 + nk
        self._m = (self._beta0 * self._m0 + nk * xbar) / self._beta
        self._nu = self._nu0 + nk
        winv = self._w0inv + nk * sk + self._beta0 * nk / self._beta * (xbar - self._m0) ** 2
        # Expected precision nu / winv; scikit-learn's covariances_ is winv / nu.
        self._winv = winv
        self._cov = winv / self._nu

    def _log_weights(self) -> np.ndarray:
        dab = digamma(self._a + self._b)
        e_log_v = digamma(self._a) - dab
        e_log_1mv = digamma(self._b) - dab
        return e_log_v + np.concatenate([[0.0], np.cumsum(e_log_1mv)[:-1]])

    def _weights(self) -> np.ndarray:
        v = self._a / (self._a + self._b)
        w = v * np.concatenate([[1.0], np.cumprod(1.0 - v)[:-1]])
        return w / w.sum()

    def _summary(self) -> np.ndarray:
        return np.concatenate([self._m, np.sqrt(self._cov), self._weights()])

    def _log_rho(self, z: np.ndarray) -> np.ndarray:
        # E[log N(z | mu_k, 1/lambda_k)] under the Normal-Gamma posterior, plus E[log pi_k].
        e_log_lambda = digamma(0.5 * self._nu) + np.log(2.0 / self._winv)
        e_lambda = self._nu / self._winv
        const = (
            self._log_weights() + 0.5 * e_log_lambda - 0.5 * np.log(2 * np.pi) - 0.5 / self._beta
        )
        log_rho = (z[:, None] - self._m) ** 2
        log_rho *= -0.5 * e_lambda
        log_rho += const
        return log_rho

    def _resp(self, z: np.ndarray) -> np.ndarray:
        r = self._log_rho(z)
        r -= r.max(axis=1, keepdims=True)
        np.exp(r, out=r)
        r /= r.sum(axis=1, keepdims=True)
        return r

    def _estimate_log_resp(self, z: np.ndarray) -> np.ndarray:
        log_rho = self._log_rho(z)
        return log_rho - logsumexp(log_rho, axis=1, keepdims=True)

    def predict_log_proba(self, x: np.ndarray) -> np.ndarray:
        """Log posterior responsibilities ``(n, n_components)`` of the values ``x``."""
        z = (np.asarray(x, dtype=np.float64).ravel() - self._loc) / self._scale
        return self._estimate_log_resp(z)

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """Log density of ``x`` under the point estimate (weights, means, stds) of the mixture."""
        x = np.asarray(x, dtype=np.float64).ravel()[:, None]
        var = self.stds_**2
        logp = (
            np.log(self.weights_)
            - 0.5 * np.log(2 * np.pi * var)
            - 0.5 * (x - self.means_) ** 2 / var
        )
        return logsumexp(logp, axis=1)


class ModeNormalizer:
    """Mode-specific normalisation of the columns of a float matrix.

    Args:
        n_components: Most modes per column.
        weight_threshold: Modes whose mixture weight is at most this are dropped (CTGAN: 0.005).
        max_rows: The mixture of a column is fitted on a random subsample of at most this many
            rows (the transform then covers every row).
        weight_concentration: Stick-breaking concentration of the mixture's weight prior.

    Attributes (after :meth:`fit`): ``means_`` and ``stds_`` (lists of arrays, the kept modes of
    each column), ``n_modes`` (list of ints).
    """

    def __init__(
        self,
        n_components: int = 10,
        weight_threshold: float = 0.005,
        max_rows: int = 10_000,
        weight_concentration: float = 1e-3,
    ) -> None:
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.n_components = n_components
        self.weight_threshold = weight_threshold
        self.max_rows = max_rows
        self.weight_concentration = weight_concentration

    def fit(self, num: np.ndarray, rng: np.random.Generator) -> ModeNormalizer:
        """Fit one mixture per column of ``num`` (float, ``(n, d)``, finite)."""
        num = np.asarray(num, dtype=np.float64)
        n, d = num.shape
        self.gmms_: list[VariationalGMM1D] = []
        self.keep_: list[np.ndarray] = []
        self.means_: list[np.ndarray] = []
        self.stds_: list[np.ndarray] = []
        for j in range(d):
            col = num[:, j]
            if n > self.max_rows:
                col = col[rng.choice(n, self.max_rows, replace=False)]
            gmm = VariationalGMM1D(
                n_components=min(self.n_components, max(1, np.unique(col).size)),
                weight_concentration=self.weight_concentration,
            ).fit(col)
            keep = np.flatnonzero(gmm.weights_ > self.weight_threshold)
            if keep.size == 0:
                keep = np.array([int(np.argmax(gmm.weights_))])
            self.gmms_.append(gmm)
            self.keep_.append(keep)
            self.means_.append(gmm.means_[keep])
            # A component on one repeated value still needs a positive width to divide by.
            self.stds_.append(np.maximum(gmm.stds_[keep], 1e-12 * max(1.0, gmm._scale)))
        return self

    @property
    def n_modes(self) -> list[int]:
        """Number of kept modes of each column."""
        return [m.size for m in self.means_]

    def transform(self, num: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha (n, d) float64, modes (n, d) int64)``; each mode drawn from its posterior."""
        num = np.asarray(num, dtype=np.float64)
        n, d = num.shape
        alpha = np.empty((n, d))
        modes = np.empty((n, d), dtype=np.int64)
        for j in range(d):
            keep = self.keep_[j]
            logp = self.gmms_[j].predict_log_proba(num[:, j])[:, keep]
            p = np.exp(logp - logp.max(axis=1, keepdims=True)) + 1e-6
            cdf = np.cumsum(p, axis=1)
            u = rng.random(n) * cdf[:, -1]
            k = np.minimum((cdf < u[:, None]).sum(axis=1), keep.size - 1)
            modes[:, j] = k
            a = (num[:, j] - self.means_[j][k]) / (4.0 * self.stds_[j][k])
            alpha[:, j] = np.clip(a, -0.99, 0.99)
        return alpha, modes

    def inverse(self, alpha: np.ndarray, modes: np.ndarray) -> np.ndarray:
        """Values ``(n, d)`` from ``alpha`` (clipped to [-1, 1]) and mode indices."""
        alpha = np.clip(np.asarray(alpha, dtype=np.float64), -1.0, 1.0)
        modes = np.asarray(modes, dtype=np.int64)
        out = np.empty_like(alpha)
        for j in range(alpha.shape[1]):
            k = modes[:, j]
            out[:, j] = alpha[:, j] * 4.0 * self.stds_[j][k] + self.means_[j][k]
        return out
