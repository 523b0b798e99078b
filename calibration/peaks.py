"""Finding bead populations in one fluorescence channel.

Two steps, as in histogram-initialised mixture modelling (McLachlan & Peel, Finite Mixture
Models, 2000, ch. 2): prominent peaks of a Gaussian-smoothed log10 histogram seed a 1-D
Gaussian mixture (scikit-learn), so unequal population sizes do not move the start. When
fewer peaks than bead levels are seen, the widest component is split once at a time and the
split is kept only when it lowers the BIC and every pair of neighbouring components stays
separated (Ashman's D >= 1.2 by default, :mod:`science.separation`) -- overlapping dim
peaks are resolved, while a genuinely missing population is not invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from calibration.config import PeakSearchConfig
from science.sampling import subsample_index
from science.separation import ashman_d

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture


@dataclass(frozen=True)
class Peak:
    """One population in log10 space (the transform of :func:`science.transform.log_transform`)."""

    log_center: float
    log_sd: float
    events: int


@dataclass(frozen=True, eq=False)
class PeakSearch:
    """Populations found, ascending, with the population index of every event."""

    peaks: tuple[Peak, ...]
    labels: np.ndarray


def _smoothed_histogram(t: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    step = bandwidth / 4.0
    pad = 4.0 * bandwidth
    lo, hi = float(t.min()) - pad, float(t.max()) + pad
    n_bins = int(np.ceil((hi - lo) / step)) + 1
    counts, edges = np.histogram(t, bins=n_bins, range=(lo, lo + n_bins * step))
    k = np.arange(-16, 17, dtype=float)
    kernel = np.exp(-0.5 * (k / 4.0) ** 2)
    return np.convolve(counts, kernel / kernel.sum(), mode="same"), (edges[:-1] + edges[1:]) / 2.0


def _prominent_maxima(dens: np.ndarray, min_prominence: float) -> list[int]:
    inner = dens[1:-1]
    maxima = np.flatnonzero((inner > dens[:-2]) & (inner >= dens[2:]) & (inner > 0)) + 1
    kept = []
    for i in maxima:
        h = dens[i]
        higher_left = np.flatnonzero(dens[:i] > h)
        higher_right = np.flatnonzero(dens[i + 1:] > h)
        left_base = dens[higher_left[-1]:i].min() if higher_left.size else dens[:i].min()
        right_base = dens[i + 1:i + 1 + higher_right[0]].min() if higher_right.size else dens[i + 1:].min()
        if h - max(left_base, right_base) >= min_prominence * h:
            kept.append(int(i))
    return kept


def _basins(dens: np.ndarray, centres: np.ndarray, maxima: list[int]) -> np.ndarray:
    """Boundaries (in t) between neighbouring maxima: the lowest density between them."""
    cuts = [centres[a + int(np.argmin(dens[a:b + 1]))] for a, b in zip(maxima[:-1], maxima[1:])]
    return np.asarray(cuts, dtype=float)


def _histogram_seeds(t: np.ndarray, cfg: PeakSearchConfig, min_count: int) -> list[tuple[float, float, float]]:
    """(centre, sd, weight) of each prominent histogram peak holding >= min_count events."""
    dens, centres = _smoothed_histogram(t, cfg.bandwidth)
    maxima = _prominent_maxima(dens, cfg.min_prominence)
    while maxima:
        cuts = _basins(dens, centres, maxima)
        which = np.searchsorted(cuts, t)
        counts = np.bincount(which, minlength=len(maxima))
        small = int(np.argmin(counts))
        if counts[small] >= min_count:
            break
        maxima.pop(small)
    if not maxima:
        return []
    seeds = []
    for k, i in enumerate(maxima):
        part = t[which == k]
        q16, q84 = np.percentile(part, [15.87, 84.13])
        seeds.append((float(centres[i]), max(0.5 * (q84 - q16), cfg.bandwidth / 2.0), part.size / t.size))
    return seeds


# One channel, a few components: threaded BLAS only adds hand-offs (see joint_peaks).
@threadpool_limits.wrap(limits=1, user_api="blas")
def _fit(sample: np.ndarray, seeds: list[tuple[float, float, float]], seed: int) -> "GaussianMixture":
    from sklearn.mixture import GaussianMixture   # loaded by bead tubes only (patient tubes' workers stay light)

    means = np.array([[m] for m, _, _ in seeds])
    precisions = np.array([[[1.0 / s ** 2]] for _, s, _ in seeds])
    weights = np.array([w for _, _, w in seeds])
    gmm = GaussianMixture(n_components=len(seeds), covariance_type="full", means_init=means,
                          precisions_init=precisions, weights_init=weights / weights.sum(),
                          tol=1e-4, max_iter=200, reg_covar=1e-6, init_params="random_from_data",
                          random_state=seed)
    return gmm.fit(sample[:, None])


def _components(gmm: "GaussianMixture") -> list[tuple[float, float, float]]:
    means = gmm.means_[:, 0]
    sds = np.sqrt(gmm.covariances_[:, 0, 0])
    order = np.argsort(means)
    return [(float(means[i]), float(sds[i]), float(gmm.weights_[i])) for i in order]


def _distinct(components: list[tuple[float, float, float]], n: int, min_d: float, min_count: int) -> bool:
    for (m1, s1, _), (m2, s2, _) in zip(components[:-1], components[1:]):
        if ashman_d(m1, s1 ** 2, m2, s2 ** 2) < min_d:
            return False
    return all(w * n >= min_count for _, _, w in components)


def find_peaks(t: np.ndarray, max_peaks: int, config: PeakSearchConfig = PeakSearchConfig(),
               seed: int = 0) -> PeakSearch:
    """Bead populations in transformed values ``t`` (see :func:`science.transform.log_transform`).

    At most ``max_peaks + 3`` histogram peaks are kept (the most populated); splits stop at
    ``max_peaks`` components. Every event gets the label of its most probable component.
    """
    t = np.asarray(t, dtype=float)
    min_count = max(config.min_events, int(np.ceil(config.min_fraction * t.size)))
    seeds = _histogram_seeds(t, config, min_count)
    if not seeds:
        return PeakSearch(peaks=(), labels=np.full(t.size, -1))
    if len(seeds) > max_peaks + 3:
        keep = sorted(sorted(range(len(seeds)), key=lambda k: -seeds[k][2])[:max_peaks + 3])
        seeds = [seeds[k] for k in keep]
    sample = t[subsample_index(t.size, config.max_fit_events, seed)]
    gmm = _fit(sample, seeds, seed)
    while gmm.n_components < max_peaks:
        comps = _components(gmm)
        widest = int(np.argmax([s for _, s, _ in comps]))
        m, s, w = comps[widest]
        split = comps[:widest] + [(m - 0.6 * s, 0.6 * s, w / 2), (m + 0.6 * s, 0.6 * s, w / 2)] + comps[widest + 1:]
        candidate = _fit(sample, split, seed)
        if not (candidate.bic(sample[:, None]) < gmm.bic(sample[:, None])
                and _distinct(_components(candidate), sample.size, config.min_separation_d,
                              int(min_count * sample.size / t.size))):
            break
        gmm = candidate
    order = np.argsort(gmm.means_[:, 0])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    labels = rank[gmm.predict(t[:, None])]
    counts = np.bincount(labels, minlength=order.size)
    peaks = tuple(Peak(log_center=m, log_sd=s, events=int(c))
                  for (m, s, _), c in zip(_components(gmm), counts))
    return PeakSearch(peaks=peaks, labels=labels)
