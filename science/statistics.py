"""Population statistics shared by bead peaks and cell populations.

Beads and cells must be summarised with the same statistic (DESIGN.md, Calibration): the
median (defined for values <= 0) by default, or the geometric mean (BD QuantiBRITE
instructions), which is computed over the positive values only. The standard error of
log10 of either statistic (:func:`log_statistic_se`) is the one the cell measurement and the
bead curve share.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Statistic = Literal["median", "geometric_mean"]
STATISTICS: tuple[str, ...] = ("median", "geometric_mean")
DEFAULT_STATISTIC: Statistic = "median"

# Normal quantiles bounding the central 68.27 % (FlowJo's robust CV uses these percentiles).
_P_LOW, _P_HIGH = 15.865525, 84.134475
# 1 / Phi^-1(3/4): scales the median absolute deviation to the SD of normal data (Hampel 1974).
MAD_TO_SD = 1.4826


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def population_statistic(values: np.ndarray, statistic: Statistic = "median") -> float:
    """Central fluorescence of a population: its median or its geometric mean.

    The geometric mean ignores values <= 0 (it is undefined there); the median uses all.
    Raises ``ValueError`` for an empty population or an unknown statistic.
    """
    v = _finite(values)
    if statistic == "median":
        if v.size == 0:
            raise ValueError("median of an empty population")
        return float(np.median(v))
    if statistic == "geometric_mean":
        pos = v[v > 0]
        if pos.size == 0:
            raise ValueError("geometric mean of a population without positive values")
        return float(10.0 ** np.mean(np.log10(pos)))
    raise ValueError(f"unknown statistic {statistic!r} (expected one of {STATISTICS})")


def mad_sd(values: np.ndarray, center: float | None = None) -> float:
    """Robust SD: 1.4826 * the median absolute deviation from ``center`` (default the median)."""
    v = np.asarray(values, dtype=float).ravel()
    c = float(np.median(v)) if center is None else center
    return MAD_TO_SD * float(np.median(np.abs(v - c)))


def percentile_sd(values: np.ndarray) -> float:
    """Robust SD: half the 15.87-84.13 percentile spread (the SD for normal data)."""
    low, high = np.percentile(np.asarray(values, dtype=float), [_P_LOW, _P_HIGH])
    return float(0.5 * (high - low))


def robust_cv(values: np.ndarray) -> float:
    """Robust CV: half the 15.87-84.13 percentile spread divided by the median (FlowJo rCV).

    Equals the ordinary CV for normal data and is insensitive to outliers. NaN when the
    median is not positive.
    """
    v = _finite(values)
    if v.size == 0:
        return float("nan")
    med = float(np.percentile(v, 50.0))
    return percentile_sd(v) / med if med > 0 else float("nan")


def median_se(values: np.ndarray) -> float:
    """Maritz-Jarrett standard error of the sample median (NaN for fewer than 3 values).

    Maritz & Jarrett 1978, JASA 73:194; Wilcox 2012, Introduction to Robust Estimation,
    3rd ed., section 4.3: the variance of the Beta(m-1, n-m)-weighted order statistics,
    m = n//2 + 1. Distribution-free, so it holds for bimodal populations; deterministic.
    """
    from scipy.special import betainc   # scipy only where a standard error is computed

    x = np.sort(_finite(values))
    n = x.size
    if n < 3:
        return float("nan")
    m = n // 2 + 1
    cdf = betainc(m - 1, n - m, np.arange(n + 1) / n)
    weights = np.diff(cdf)
    centred = x - np.median(x)                      # centring avoids cancellation in C2 - C1^2
    c1 = float(weights @ centred)
    c2 = float(weights @ centred ** 2)
    return float(np.sqrt(max(c2 - c1 * c1, 0.0)))


def log_statistic_se(values: np.ndarray, statistic: Statistic = "median") -> float:
    """Standard error of log10 of the population statistic (decades).

    Median: the Maritz-Jarrett standard error (:func:`median_se`, over all finite values as
    the median is) carried to log10 by the delta method, se(m) / (m ln 10); NaN when the
    median is not positive. Geometric mean: the standard error of the mean of log10(values > 0),
    with the robust (15.87-84.13 percentile) spread as sigma, sigma / sqrt(n). This is the
    ``f_se_log`` that :meth:`Curve.abc_interval` combines with the bead-fit uncertainty.
    """
    v = _finite(values)
    if statistic == "median":
        if v.size == 0:
            return float("nan")
        med = float(np.median(v))
        return median_se(v) / (med * np.log(10.0)) if med > 0 else float("nan")
    pos = v[v > 0]
    if pos.size < 2:
        return float("nan")
    return float(percentile_sd(np.log10(pos)) / np.sqrt(pos.size))
