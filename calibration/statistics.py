"""Population statistics shared by bead peaks and cell populations.

Beads and cells must be summarised with the same statistic (DESIGN.md, Calibration): the
median (defined for values <= 0) by default, or the geometric mean (BD QuantiBRITE
instructions), which is computed over the positive values only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Statistic = Literal["median", "geometric_mean"]
STATISTICS: tuple[str, ...] = ("median", "geometric_mean")

# Normal quantiles bounding the central 68.27 % (FlowJo's robust CV uses these percentiles).
_P_LOW, _P_HIGH = 15.865525, 84.134475
# Asymptotic efficiency of the median relative to the mean for normal data: sqrt(pi / 2).
_MEDIAN_SE_FACTOR = float(np.sqrt(np.pi / 2.0))


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


def robust_cv(values: np.ndarray) -> float:
    """Robust CV: half the 15.87-84.13 percentile spread divided by the median (FlowJo rCV).

    Equals the ordinary CV for normal data and is insensitive to outliers. NaN when the
    median is not positive.
    """
    v = _finite(values)
    if v.size == 0:
        return float("nan")
    low, med, high = np.percentile(v, [_P_LOW, 50.0, _P_HIGH])
    return float(0.5 * (high - low) / med) if med > 0 else float("nan")


def log_statistic_se(values: np.ndarray, statistic: Statistic = "median") -> float:
    """Standard error of log10 of the population statistic (decades).

    Uses the robust spread of log10(values > 0): sigma / sqrt(n) for the geometric mean and
    sqrt(pi/2) * sigma / sqrt(n) for the median (asymptotic median efficiency, lognormal
    populations). This is the ``f_se_log`` that :meth:`Curve.abc_interval` combines with the
    bead-fit uncertainty.
    """
    v = _finite(values)
    pos = v[v > 0]
    if pos.size < 2:
        return float("nan")
    lg = np.log10(pos)
    low, high = np.percentile(lg, [_P_LOW, _P_HIGH])
    sigma = 0.5 * (high - low)
    factor = _MEDIAN_SE_FACTOR if statistic == "median" else 1.0
    return float(factor * sigma / np.sqrt(pos.size))
