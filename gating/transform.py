"""Arcsinh display/gating transform with a cofactor chosen from the data's own scale.

asinh(x / c) is linear near zero (keeps compensated negatives) and logarithmic above a few c
(Bagwell 2005, Cytometry A 64:34; the usual cytometry choice in place of a pure log).
The cofactor is set three decades below the channel's robust top (99.9th percentile), so the
same rule fits linear 262,144-scale floats (c ~ 10^2) and decoded 4-decade log data (c ~ 1-10),
and is never narrower than the spread of the compensated negatives (minus the 1st percentile),
which keeps a CD14-negative cluster compact and Gaussian-like instead of smeared over the
curved part of asinh.
"""

from __future__ import annotations

import numpy as np

DECADES_BELOW_TOP = 3.0
TOP_PERCENTILE = 99.9


def asinh_cofactor(values: np.ndarray) -> float:
    """The cofactor for ``values``: max(99.9th percentile / 10^3, -1st percentile), positive."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("no finite values to scale")
    top = float(np.percentile(finite, TOP_PERCENTILE))
    if top <= 0:
        top = float(np.max(np.abs(finite))) or 1.0
    spread = -float(np.percentile(finite, 1.0))   # width of the compensated negatives
    return max(top / 10.0 ** DECADES_BELOW_TOP, spread)


def asinh(values: np.ndarray, cofactor: float) -> np.ndarray:
    """asinh(values / cofactor)."""
    return np.arcsinh(np.asarray(values, dtype=float) / cofactor)

