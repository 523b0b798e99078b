"""Levey-Jennings control of bead-curve slope and intercept per detector over time.

Levey S, Jennings ER (1950), Am J Clin Pathol 20:1059; Westgard JO et al. (1981), Clin Chem
27:493 (rule 1-2s as a warning): each day's curve is compared with the mean +/- 2 SD of the
earlier curves of the same detector (instrument, serial, PE channel). Failed curves (QC
``fail``) are not part of the reference. Arithmetic on stored numbers only.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from pipeline.store import StoredCalibration

MIN_REFERENCE = 3          # fewer earlier curves than this: no limits (reported, not flagged)
LIMIT_SD = 2.0


@dataclass(frozen=True)
class ControlPoint:
    """One curve of the day against the earlier curves of its detector."""

    instrument: str
    serial: str
    channel: str
    day: date
    calibration_id: int
    slope: float
    intercept: float
    reference_n: int
    slope_mean: float | None
    slope_sd: float | None
    intercept_mean: float | None
    intercept_sd: float | None
    flags: tuple[str, ...]                 # limits exceeded (empty when in control)
    note: str = ""                         # why there are no limits (too little history)

    def as_row(self) -> dict:
        def f(x: float | None, digits: int = 4) -> str:
            return "" if x is None else f"{x:.{digits}f}"
        return {"instrument": self.instrument, "serial": self.serial, "channel": self.channel,
                "day": self.day.isoformat(), "calibration_id": self.calibration_id,
                "slope": f(self.slope), "slope_limits": _limits(self.slope_mean, self.slope_sd),
                "intercept": f(self.intercept),
                "intercept_limits": _limits(self.intercept_mean, self.intercept_sd),
                "reference_curves": self.reference_n, "flags": "; ".join(self.flags), "note": self.note}


def _limits(mean: float | None, sd: float | None) -> str:
    if mean is None or sd is None:
        return ""
    return f"{mean - LIMIT_SD * sd:.4f} .. {mean + LIMIT_SD * sd:.4f}"


def _check(name: str, value: float, mean: float, sd: float) -> str | None:
    if abs(value - mean) > LIMIT_SD * sd:
        return f"{name} {value:.4f} outside mean ± 2 SD ({mean:.4f} ± {LIMIT_SD * sd:.4f})"
    return None


@dataclass(frozen=True)
class Curve:
    """What the control chart needs of a stored calibration."""

    id: int
    day: date
    slope: float
    intercept: float
    qc_status: str

    @staticmethod
    def of(stored: StoredCalibration) -> "Curve | None":
        cal = stored.calibration
        if cal.curve is None or cal.key.acquired is None:
            return None
        return Curve(stored.id, cal.key.acquired.date(), cal.curve.slope, cal.curve.intercept, cal.qc.status)


def control_points(calibrations: Iterable[StoredCalibration], day: date) -> list[ControlPoint]:
    """Every curve acquired on ``day``, each against its detector's earlier non-failed curves."""
    by_detector: dict[tuple[str, str, str], list[Curve]] = defaultdict(list)
    for stored in calibrations:
        curve = Curve.of(stored)
        key = stored.calibration.key
        if curve is not None:
            by_detector[(key.instrument or "", key.serial or "", key.channel or "")].append(curve)
    points = []
    for (instrument, serial, channel), curves in sorted(by_detector.items()):
        reference = [c for c in curves if c.day < day and c.qc_status != "fail"]
        for curve in sorted((c for c in curves if c.day == day), key=lambda c: c.id):
            points.append(_point(instrument, serial, channel, day, curve, reference))
    return points


def _point(instrument: str, serial: str, channel: str, day: date, cal: Curve,
           reference: list[Curve]) -> ControlPoint:
    n = len(reference)
    if n < MIN_REFERENCE:
        return ControlPoint(instrument, serial, channel, day, cal.id, cal.slope, cal.intercept, n,
                            None, None, None, None, (),
                            f"only {n} earlier curve(s); limits need {MIN_REFERENCE}")
    slopes = [c.slope for c in reference]
    intercepts = [c.intercept for c in reference]
    s_mean, s_sd = statistics.fmean(slopes), statistics.stdev(slopes)
    i_mean, i_sd = statistics.fmean(intercepts), statistics.stdev(intercepts)
    flags = tuple(f for f in (_check("slope", cal.slope, s_mean, s_sd),
                              _check("intercept", cal.intercept, i_mean, i_sd)) if f)
    return ControlPoint(instrument, serial, channel, day, cal.id, cal.slope, cal.intercept, n,
                        s_mean, s_sd, i_mean, i_sd, flags)


def out_of_control(points: Iterable[ControlPoint]) -> list[ControlPoint]:
    """Points beyond 2 SD (not the ones that merely lack enough history)."""
    return [p for p in points if p.flags]
