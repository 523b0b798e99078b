"""The one seeded event subsample that bead peak searches, cell gates and figures share."""

from __future__ import annotations

import numpy as np


def subsample_index(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded subsample of at most ``size`` of ``n`` events (all when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
