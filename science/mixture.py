"""Gaussian mixtures with full covariances, fitted by expectation-maximisation from given
starting parameters (Dempster, Laird & Rubin, J. R. Stat. Soc. B 1977; Bishop, Pattern
Recognition and Machine Learning, 2006, section 9.2.2).

The same iteration as scikit-learn's ``GaussianMixture(covariance_type="full")`` started from
``weights_init``/``means_init``/``precisions_init`` (one start, ``reg_covar`` added to every
covariance's diagonal, stop when the mean log-likelihood changes by less than ``tol``), with
its fitted attributes, ``predict`` and ``bic``; a test holds the two together. Written out
because loading scikit-learn costs every worker process about 1.4 s of CPU and 190 MiB of
memory, for these few lines of numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """A fitted mixture: ``weights_`` (k,), ``means_`` (k, d), ``covariances_`` (k, d, d)."""

    weights_: np.ndarray
    means_: np.ndarray
    covariances_: np.ndarray
    converged_: bool
    n_iter_: int

    @property
    def n_components(self) -> int:
        return int(self.weights_.size)

    def _weighted_log_prob(self, x: np.ndarray) -> np.ndarray:
        return _log_gaussian(x, self.means_, _precision_cholesky(self.covariances_)) + np.log(self.weights_)

    def score(self, x: np.ndarray) -> float:
        """Mean log-likelihood of the rows of ``x``."""
        return float(np.mean(_logsumexp(self._weighted_log_prob(x))))

    def bic(self, x: np.ndarray) -> float:
        """Bayesian information criterion (Schwarz, Ann. Stat. 1978): -2 log L + p log n."""
        k, d = self.means_.shape
        parameters = k * d * (d + 1) / 2 + k * d + k - 1
        return -2.0 * self.score(x) * x.shape[0] + parameters * np.log(x.shape[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable component of each row of ``x``."""
        return self._weighted_log_prob(x).argmax(axis=1)


def fit_mixture(x: np.ndarray, weights: np.ndarray, means: np.ndarray, precisions: np.ndarray, *,
                tol: float = 1e-3, max_iter: int = 100, reg_covar: float = 1e-6) -> GaussianMixture:
    """EM from the given start on the rows of ``x`` (n, d); ``precisions`` are the inverse
    covariances (k, d, d). Raises ValueError when a component's covariance is not positive
    definite (a component that collapsed on too few events)."""
    x = np.asarray(x, dtype=float)
    weights = np.asarray(weights, dtype=float)
    means = np.asarray(means, dtype=float)
    prec_chol = np.linalg.cholesky(np.asarray(precisions, dtype=float))
    covariances = np.linalg.inv(np.asarray(precisions, dtype=float))
    lower_bound, converged, n_iter = -np.inf, False, 0
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        weighted = _log_gaussian(x, means, prec_chol) + np.log(weights)
        log_norm = _logsumexp(weighted)
        resp = np.exp(weighted - log_norm[:, None])
        weights, means, covariances = _m_step(x, resp, reg_covar)
        prec_chol = _precision_cholesky(covariances)
        lower_bound = float(np.mean(log_norm))
        if abs(lower_bound - previous) < tol:
            converged = True
            break
    return GaussianMixture(weights, means, covariances, converged, n_iter)


def _m_step(x: np.ndarray, resp: np.ndarray, reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = resp.T @ x / nk[:, None]
    d = x.shape[1]
    covariances = np.empty((nk.size, d, d))
    for k in range(nk.size):
        diff = x - means[k]
        covariances[k] = (resp[:, k] * diff.T) @ diff / nk[k]
        covariances[k].flat[::d + 1] += reg_covar
    return nk / nk.sum(), means, covariances


def _precision_cholesky(covariances: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L^T = inverse covariance, per component."""
    try:
        cov_chol = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ValueError("a mixture component's covariance is not positive definite (it collapsed on "
                         "too few events); increase reg_covar or start from fewer components") from None
    eye = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
    return np.swapaxes(np.linalg.solve(cov_chol, eye), -1, -2)


def _log_gaussian(x: np.ndarray, means: np.ndarray, prec_chol: np.ndarray) -> np.ndarray:
    """log N(x | mean_k, cov_k) for every row and component, (n, k)."""
    d = x.shape[1]
    out = np.empty((x.shape[0], means.shape[0]))
    for k in range(means.shape[0]):
        y = x @ prec_chol[k] - means[k] @ prec_chol[k]
        out[:, k] = np.sum(np.square(y), axis=1)
    log_det = np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    return -0.5 * (d * LOG_2PI + out) + log_det


def _logsumexp(a: np.ndarray) -> np.ndarray:
    top = np.max(a, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.sum(np.exp(a - top), axis=1)) + top[:, 0]
