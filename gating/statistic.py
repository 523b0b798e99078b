"""The gated monocytes' PE statistic and the standard error of its log10.

Both come from the shared science base, so cells and beads share one statistic and one
uncertainty: ``population_statistic`` and ``log_statistic_se`` (for the median the
Maritz-Jarrett standard error, distribution-free and so valid for a bimodal HLA-DR, carried
to log10 by the delta method). Deterministic: no resampling.
"""

from __future__ import annotations

import numpy as np

from science.statistics import log_statistic_se, population_statistic


def monocyte_pe_statistic(pe_values: np.ndarray, statistic: str = "median") -> tuple[float, float]:
    """(statistic of the monocytes' compensated PE, standard error of its log10)."""
    return population_statistic(pe_values, statistic), log_statistic_se(pe_values, statistic)
