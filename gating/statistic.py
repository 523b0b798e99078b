"""The gated monocytes' PE statistic and the standard error of its log10.

The statistic itself is the one the beads use (``calibration.population_statistic``).
Its uncertainty: for the median, the Maritz-Jarrett estimate of the standard error of a
sample median (Maritz & Jarrett 1978, JASA 73:194; Wilcox 2012, Introduction to Robust
Estimation, 3rd ed., section 4.3), which is distribution-free and so holds for a bimodal
HLA-DR; carried to log10 by the delta method, se(log10 m) = se(m) / (m ln 10). For the
geometric mean, the standard error of the mean of log10 values (the calibration's
``log_statistic_se``). Deterministic: no resampling.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc

from calibration import log_statistic_se, population_statistic


def median_se(values: np.ndarray) -> float:
    """Maritz-Jarrett standard error of the sample median (NaN for fewer than 3 values)."""
    x = np.sort(np.asarray(values, dtype=float).ravel())
    x = x[np.isfinite(x)]
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


def monocyte_pe_statistic(pe_values: np.ndarray, statistic: str = "median") -> tuple[float, float]:
    """(statistic of the monocytes' compensated PE, standard error of its log10)."""
    value = population_statistic(pe_values, statistic)
    if statistic == "median":
        se = median_se(pe_values) / (value * np.log(10.0)) if value > 0 else float("nan")
    else:
        se = log_statistic_se(pe_values, statistic)
    return value, float(se)
