"""Finding bead populations jointly in several fluorescence channels.

Rainbow beads carry every dye, so their levels line up across channels: levels that overlap
in one channel are often far apart in another (e.g. the blank and dimmest levels of
Spherotech rainbow beads in FL1 versus FL3). As in FlowCal's multi-channel clustering
(Castillo-Hair et al., ACS Synth. Biol. 2016, 5:774), populations are found in the joint
log space, here by a full-covariance Gaussian mixture (McLachlan & Peel, Finite Mixture
Models, 2000) seeded by the 1-D search of :mod:`calibration.peaks` on the sum of the log
channels: because the levels line up, neighbours' log differences share one sign in every
channel and add up there, so a pair resolved in any one channel stays at least that far
apart. When fewer components than bead levels are found (a noisy channel can still blur a
pair in the sum), the widest component is split along each of its principal axes and the
best split is kept only when the BIC drops and every pair of components stays separated
(Ashman's D, :mod:`science.separation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from calibration.config import PeakSearchConfig
from calibration.peaks import Peak, PeakSearch, find_peaks
from science.sampling import subsample_index
from science.separation import ashman_d

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture

Range = tuple[float, float]


@dataclass(frozen=True, eq=False)
class ClusteringChannels:
    """Extra fluorescence channels to find bead populations in, beside the measured one.

    ``values``: linear values, shape (events, channels), rows aligned with the measured
    channel's events; ``ranges``: each channel's linear (low, high); ``names`` for the record.
    """

    values: np.ndarray
    ranges: tuple[Range, ...]
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(self.ranges):
            raise ValueError("clustering values must be (events, channels), one range per channel")
        if self.names and len(self.names) != len(self.ranges):
            raise ValueError("one name per clustering channel")
        object.__setattr__(self, "values", values)


Component = tuple[np.ndarray, np.ndarray, float]     # mean, covariance, weight


def _fit(sample: np.ndarray, seeds: list[Component], cfg: PeakSearchConfig, seed: int) -> "GaussianMixture":
    from sklearn.mixture import GaussianMixture   # loaded by bead tubes only (patient tubes' workers stay light)

    d = sample.shape[1]
    precisions = np.array([np.linalg.inv(c + np.eye(d) * cfg.joint_reg_covar) for _, c, _ in seeds])
    weights = np.array([w for _, _, w in seeds])
    gmm = GaussianMixture(n_components=len(seeds), covariance_type="full",
                          means_init=np.array([m for m, _, _ in seeds]), precisions_init=precisions,
                          weights_init=weights / weights.sum(), tol=1e-4, max_iter=200,
                          reg_covar=cfg.joint_reg_covar, random_state=seed)
    return gmm.fit(sample)


def _components(gmm: "GaussianMixture") -> list[Component]:
    order = np.argsort(gmm.means_.mean(axis=1))
    return [(gmm.means_[i], gmm.covariances_[i], float(gmm.weights_[i])) for i in order]


def _distinct(components: list[Component], n: int, min_d: float, min_count: int) -> bool:
    for i, a in enumerate(components):
        for b in components[i + 1:]:
            if ashman_d(a[0], a[1], b[0], b[1]) < min_d:
                return False
    return all(w * n >= min_count for _, _, w in components)


def _splits(components: list[Component]) -> list[list[Component]]:
    """The widest component (largest covariance eigenvalue) split in two, once along each of
    its principal axes (the merged pair need not lie along the widest one)."""
    widest = int(np.argmax([np.linalg.eigvalsh(c)[-1] for _, c, _ in components]))
    m, c, w = components[widest]
    eigval, eigvec = np.linalg.eigh(c)
    out = []
    for lam, u in zip(eigval, eigvec.T):
        step = 0.6 * np.sqrt(lam) * u
        shrunk = c - 0.64 * lam * np.outer(u, u)
        out.append(components[:widest] + [(m - step, shrunk, w / 2), (m + step, shrunk, w / 2)]
                   + components[widest + 1:])
    return out


# Covariances are a few channels wide: threaded BLAS only adds hand-offs (4x slower on a busy 2-core host).
@threadpool_limits.wrap(limits=1, user_api="blas")
def find_joint_peaks(t: np.ndarray, max_peaks: int, config: PeakSearchConfig = PeakSearchConfig(),
                     seed: int = 0) -> PeakSearch:
    """Bead populations in transformed values ``t`` of shape (events, channels).

    Column 0 is the measured channel: the returned peaks hold its log centre and SD and are
    ascending in it; every event gets the label of its most probable joint component.
    """
    t = np.asarray(t, dtype=float)
    n, d = t.shape
    projected = find_peaks(t.sum(axis=1), max_peaks=max_peaks, config=config, seed=seed)
    if not projected.peaks:
        return projected
    min_count = max(config.min_events, int(np.ceil(config.min_fraction * n)))
    seeds = []
    for k in range(len(projected.peaks)):
        part = t[projected.labels == k]
        cov = np.cov(part.T).reshape(d, d) if part.shape[0] > 1 else np.eye(d) * config.bandwidth ** 2
        seeds.append((part.mean(axis=0), cov, part.shape[0] / n))
    sample = t[subsample_index(n, config.max_fit_events, seed)]
    gmm = _fit(sample, seeds, config, seed)
    sample_min = int(min_count * sample.shape[0] / n)
    while gmm.n_components < max_peaks:
        fits = [_fit(sample, split, config, seed) for split in _splits(_components(gmm))]
        kept = [f for f in fits if f.bic(sample) < gmm.bic(sample)
                and _distinct(_components(f), sample.shape[0], config.min_separation_d, sample_min)]
        if not kept:
            break
        gmm = min(kept, key=lambda f: f.bic(sample))
    order = np.argsort(gmm.means_[:, 0])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    labels = rank[gmm.predict(t)]
    counts = np.bincount(labels, minlength=order.size)
    peaks = tuple(Peak(log_center=float(gmm.means_[i, 0]), log_sd=float(np.sqrt(gmm.covariances_[i, 0, 0])),
                       events=int(counts[r])) for r, i in enumerate(order))
    return PeakSearch(peaks=peaks, labels=labels)
