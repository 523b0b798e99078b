"""How sure a value is to lie below a cut-off, from its 95 % interval and an inter-assay CV.

The tube's own 95 % interval (bead curve and cell statistic, on the log scale) is widened by
the assay's between-run variation, taken as lognormal: sd_ln = sqrt(ln(1 + CV^2)) (the
lognormal CV relation, Limpert et al. 2001, BioScience 51:341). The two add in quadrature on
the log scale (GUM, JCGM 100:2008, 5.1.2, uncorrelated inputs).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054          # Phi^-1(0.975)


def log_sd(value: float, interval: tuple[float, float] | None, inter_assay_cv: float) -> float:
    """Total SD of ln(value): the interval's own (half-width / 1.96) and the inter-assay CV's."""
    own = 0.0
    if interval is not None and interval[0] > 0 and interval[1] > 0:
        own = math.log(interval[1] / interval[0]) / (2 * Z95)
    return math.hypot(own, math.sqrt(math.log1p(inter_assay_cv ** 2)))


def p_below(value: float | None, interval: tuple[float, float] | None, threshold: float,
            inter_assay_cv: float) -> float | None:
    """P(true value < threshold) for a lognormal measurement centred on ``value``."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    sd = log_sd(value, interval, inter_assay_cv)
    if sd == 0:
        return 1.0 if value < threshold else 0.0
    z = (math.log(threshold) - math.log(value)) / sd
    return 0.5 * math.erfc(-z / math.sqrt(2))
