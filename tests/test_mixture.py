"""science.mixture: the EM of scikit-learn's GaussianMixture (full covariances, given start),
checked against scikit-learn itself and against the parameters the data were drawn from."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as Reference

from science.mixture import fit_mixture


def _draw(rng: np.random.Generator, means: list[list[float]], sds: list[float], counts: list[int]) -> np.ndarray:
    return np.vstack([rng.normal(m, s, size=(n, len(m))) for m, s, n in zip(means, sds, counts)])


def _start(x: np.ndarray, centres: list[list[float]], sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k, d = len(centres), x.shape[1]
    return np.full(k, 1.0 / k), np.array(centres, dtype=float), np.array([np.eye(d) / sd ** 2] * k)


@pytest.mark.parametrize("d", [1, 3])
def test_same_fit_as_scikit_learn(d: int) -> None:
    rng = np.random.default_rng(7)
    x = _draw(rng, [[0.5] * d, [1.4] * d, [2.0] * d, [3.1] * d], [0.08, 0.1, 0.12, 0.07], [900, 400, 2500, 600])
    weights, means, precisions = _start(x, [[0.3] * d, [1.2] * d, [2.3] * d, [3.0] * d], 0.3)
    ours = fit_mixture(x, weights, means, precisions, tol=1e-4, max_iter=200, reg_covar=1e-6)
    ref = Reference(n_components=4, covariance_type="full", weights_init=weights, means_init=means,
                    precisions_init=precisions, tol=1e-4, max_iter=200, reg_covar=1e-6, random_state=0).fit(x)
    assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-8, atol=1e-14)
    assert ours.bic(x) == pytest.approx(ref.bic(x), rel=1e-10)
    assert ours.score(x) == pytest.approx(ref.score(x), rel=1e-10)
    np.testing.assert_array_equal(ours.predict(x), ref.predict(x))


def test_recovers_the_populations_drawn() -> None:
    rng = np.random.default_rng(11)
    truth_means, truth_sds, counts = [[1.0, 2.0], [2.5, 1.0]], [0.1, 0.2], [3000, 1000]
    x = _draw(rng, truth_means, truth_sds, counts)
    fit = fit_mixture(x, *_start(x, [[0.8, 1.8], [2.7, 1.3]], 0.5))
    assert fit.converged_
    np.testing.assert_allclose(fit.means_, truth_means, atol=0.02)
    np.testing.assert_allclose(np.sqrt(np.diagonal(fit.covariances_, axis1=1, axis2=2)),
                               [[0.1, 0.1], [0.2, 0.2]], rtol=0.08)
    np.testing.assert_allclose(fit.weights_, [0.75, 0.25], atol=0.02)
    assert (fit.predict(x[:3000]) == 0).mean() > 0.99


def test_one_population_is_better_by_bic_than_two() -> None:
    x = np.random.default_rng(3).normal(2.0, 0.1, size=(4000, 1))
    one = fit_mixture(x, np.array([1.0]), np.array([[1.9]]), np.array([[[100.0]]]))
    two = fit_mixture(x, np.array([0.5, 0.5]), np.array([[1.94], [2.06]]), np.array([[[400.0]], [[400.0]]]))
    assert one.bic(x) < two.bic(x)


def test_a_collapsed_component_is_a_clear_error() -> None:
    x = np.array([[0.0, 0.0]] * 50 + [[1.0, 1.0]] * 50)
    with pytest.raises(ValueError, match="not positive definite"):
        fit_mixture(x, np.array([0.5, 0.5]), np.array([[0.0, 0.0], [1.0, 1.0]]),
                    np.array([np.eye(2)] * 2), reg_covar=0.0)
