"""Result records of a bead calibration: one entry per bead level, and the whole calibration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from calibration.bead_gate import GateCounts
from calibration.curve import Curve
from calibration.key import CalibrationKey
from science.qc import QC
from science.statistics import Statistic

LevelStatus = Literal["fitted", "blank", "saturated", "below_range", "missing"]


@dataclass(frozen=True)
class Population:
    """One bead level of the kit and what was measured for it (None when missing)."""

    level: int                      # 0-based, ascending bead value
    bead_value: float
    status: LevelStatus
    fluorescence: float | None      # the statistic (median or geometric mean), linear units
    events: int
    cv: float | None                # robust CV
    residual: float | None          # log10(bead value) - curve prediction (fitted levels)
    reason: str | None = None       # why a level is not fitted


@dataclass(frozen=True)
class LogHistogram:
    """Distribution of the gated beads' positive fluorescence: ``counts`` in equal bins of
    log10(F) from ``start`` in steps of ``step`` (what the bead figure draws)."""

    start: float
    step: float
    counts: tuple[int, ...]

    @staticmethod
    def of(values: np.ndarray, bins: int = 256) -> "LogHistogram":
        positive = np.log10(values[values > 0])
        if positive.size == 0:
            return LogHistogram(0.0, 1.0, ())
        low, high = float(positive.min()), float(positive.max())
        step = (high - low) / bins if high > low else 1.0
        counts, _ = np.histogram(positive, bins=bins, range=(low, low + bins * step))
        return LogHistogram(low, step, tuple(int(c) for c in counts))


@dataclass(frozen=True)
class Calibration:
    """A bead calibration with its full record (FlowCal-style: every intermediate kept), plain
    values only, so it is stored whole and loads back exactly."""

    key: CalibrationKey
    statistic: Statistic
    bead_values: tuple[float, ...]
    populations: tuple[Population, ...]
    extra_populations: tuple[Population, ...]
    curve: Curve | None
    qc: QC
    gate: GateCounts | None
    histogram: LogHistogram
    clustering_channels: tuple[str, ...] = ()   # names of the extra channels populations were found in

    @property
    def fitted(self) -> tuple[Population, ...]:
        return tuple(p for p in self.populations if p.status == "fitted")

    @property
    def missing_levels(self) -> tuple[float, ...]:
        return tuple(p.bead_value for p in self.populations if p.status == "missing")

    def _curve(self) -> Curve:
        if self.curve is None:
            raise ValueError("this calibration has no standard curve (too few fitted bead levels)")
        return self.curve

    def to_abc(self, f: float | np.ndarray) -> float | np.ndarray:
        """AB/C (bead units) of a fluorescence statistic."""
        return self._curve().to_abc(f)

    def abc_interval(self, f: float, f_se_log: float = 0.0, level: float = 0.95) -> tuple[float, float]:
        """Interval for AB/C at ``f`` (see :meth:`Curve.abc_interval`)."""
        return self._curve().abc_interval(f, f_se_log=f_se_log, level=level)

    def in_range(self, f: float) -> bool:
        """Whether ``f`` lies within the fitted bead range."""
        return self._curve().in_range(f)
