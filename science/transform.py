"""The one arcsinh transform of the project, and the two ways the science wings scale it.

asinh(x / c) is linear near zero (keeps compensated negatives) and logarithmic above a few c
(Bagwell 2005, Cytometry A 64:34; Parks et al. 2006, Cytometry A 69:541 for the logicle
family it belongs to). Gating scales it by a cofactor read off the data (:func:`asinh_cofactor`);
bead calibration uses it as a log10 that stays defined at and below zero (:func:`log_transform`).
"""

from __future__ import annotations

import numpy as np

DECADES_BELOW_TOP = 3.0
TOP_PERCENTILE = 99.9
LN10 = float(np.log(10.0))


def asinh(values: np.ndarray, cofactor: float) -> np.ndarray:
    """asinh(values / cofactor)."""
    return np.arcsinh(np.asarray(values, dtype=float) / cofactor)


def asinh_cofactor(values: np.ndarray) -> float:
    """A cofactor from the data's own scale: max(99.9th percentile / 10^3, -1st percentile).

    Three decades below the channel's robust top, so the same rule fits linear 262,144-scale
    floats (c ~ 10^2) and decoded 4-decade log data (c ~ 1-10), and never narrower than the
    spread of the compensated negatives, which keeps a negative cluster compact instead of
    smeared over the curved part of asinh. Raises ``ValueError`` when no value is finite.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("no finite values to scale")
    top = float(np.percentile(finite, TOP_PERCENTILE))
    if top <= 0:
        top = float(np.max(np.abs(finite))) or 1.0
    spread = -float(np.percentile(finite, 1.0))
    return max(top / 10.0 ** DECADES_BELOW_TOP, spread)


def log_transform(values: np.ndarray, width: float) -> np.ndarray:
    """log10(x) for x >> width, linear through 0: log10(width) + asinh(x / 2 width) / ln 10."""
    return np.log10(width) + asinh(values, 2.0 * width) / LN10


def transform_width(channel_range: tuple[float, float]) -> float:
    """The ``width`` of :func:`log_transform` for a channel's linear (low, high) range: a tenth of
    the low end of a log-amplified range (so decoded values are on a plain log scale), else 2e-4
    of the top of a linear range (about the electronic noise of 18-bit digital channels, so
    values near 0 stay together)."""
    low, high = channel_range
    return low / 10.0 if low > 0 else high * 2e-4
