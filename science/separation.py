"""How far apart two populations are: Ashman's D.

Ashman, Bird & Zepf (1994), "Detecting bimodality in astronomical datasets", Astron. J.
108:2348: D = |mu1 - mu2| / sqrt((sigma1^2 + sigma2^2) / 2); D > 2 is needed for a clean
separation of two Gaussians. For populations in several dimensions the D used here is that of
their projections on the line through the two means (the direction in which they are told
apart), so it reduces to the published formula in one dimension.
"""

from __future__ import annotations

import numpy as np


def ashman_d(mean1: np.ndarray | float, cov1: np.ndarray | float,
             mean2: np.ndarray | float, cov2: np.ndarray | float) -> float:
    """Ashman's D of two populations given their means and covariances (variances in 1-D)."""
    m1, m2 = np.atleast_1d(np.asarray(mean1, dtype=float)), np.atleast_1d(np.asarray(mean2, dtype=float))
    c1 = np.atleast_2d(np.asarray(cov1, dtype=float))
    c2 = np.atleast_2d(np.asarray(cov2, dtype=float))
    delta = m2 - m1
    dist = float(np.linalg.norm(delta))
    if dist == 0.0:
        return 0.0
    u = delta / dist
    spread = float(u @ c1 @ u + u @ c2 @ u) / 2.0
    return dist / float(np.sqrt(spread)) if spread > 0 else float("inf")
