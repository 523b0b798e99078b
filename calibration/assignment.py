"""Matching found peaks to the kit's bead levels by their spacing pattern.

Peak positions in log space follow log10(F) ~ a + b * log10(bead value) with b near 1. Every
order-preserving pairing of peaks with levels is scored by a least-squares line with a ridge
pull of b towards 1, so a missing level leaves a gap where the pattern says it should be
instead of shifting the others onto wrong values. A blank level (value 0) can only take the
lowest peak and must sit below the line's prediction for the lowest non-blank level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence


@dataclass(frozen=True)
class Assignment:
    """Level index for each peak (None: a population matching no level) and the fit score."""

    levels: tuple[int | None, ...]
    score: float
    runner_up: float          # best score of any other pairing (inf when there is none)


def _score(pairs: list[tuple[float, float]], blank_y: float | None, x_lowest: float | None,
           weight: float, margin: float) -> float:
    """Ridge-penalised residual sum of squares of y = a + b x, plus the blank's penalty."""
    if len(pairs) >= 2:
        xs = [p[0] for p in pairs]
        ys = [p[1] for p in pairs]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
        b = (sxy + weight) / (sxx + weight)
        if b <= 0:
            return math.inf
        a = my - b * mx
        score = sum((y - a - b * x) ** 2 for x, y in pairs) + weight * (b - 1.0) ** 2
    elif len(pairs) == 1:
        b, a, score = 1.0, pairs[0][1] - pairs[0][0], 0.0
    else:
        return 0.0
    if blank_y is not None and x_lowest is not None:
        score += max(0.0, blank_y - (a + b * x_lowest - margin)) ** 2
    return score


def assign_levels(peak_logs: Sequence[float], bead_values: Sequence[float], *,
                  slope_weight: float = 0.1, blank_margin: float = 0.1) -> Assignment:
    """Best order-preserving pairing of ascending ``peak_logs`` with ascending ``bead_values``
    (values as :func:`calibration.calibrate.validate_bead_values` returns them)."""
    values = list(bead_values)
    peaks = list(peak_logs)
    has_blank = values[0] == 0
    x_lowest = math.log10(values[1]) if has_blank and len(values) > 1 else None
    m = min(len(peaks), len(values))
    ranked: list[tuple[float, tuple[int | None, ...]]] = []
    for peak_set in combinations(range(len(peaks)), m):
        for level_set in combinations(range(len(values)), m):
            pairs = [(math.log10(values[lv]), peaks[pk]) for pk, lv in zip(peak_set, level_set) if values[lv] > 0]
            blank_y = peaks[peak_set[0]] if has_blank and level_set and level_set[0] == 0 else None
            score = _score(pairs, blank_y, x_lowest, slope_weight, blank_margin)
            levels: list[int | None] = [None] * len(peaks)
            for pk, lv in zip(peak_set, level_set):
                levels[pk] = lv
            ranked.append((score, tuple(levels)))
    ranked.sort(key=lambda r: r[0])
    if not ranked or not math.isfinite(ranked[0][0]):
        return Assignment(levels=(None,) * len(peaks), score=math.inf, runner_up=math.inf)
    runner_up = ranked[1][0] if len(ranked) > 1 else math.inf
    return Assignment(levels=ranked[0][1], score=ranked[0][0], runner_up=runner_up)
