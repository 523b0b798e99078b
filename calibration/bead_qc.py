"""QC of a bead calibration: every check yields a status and a human-readable reason.

Checks (DESIGN.md QC proposals, thresholds in :class:`CalibrationQCConfig`): all levels
found, enough fitted levels, fit R^2, slope near 1, peaks increasing with bead value,
peak CV, events per peak, unassigned populations, ambiguous level assignment.
"""

from __future__ import annotations

from calibration.config import CalibrationQCConfig
from calibration.curve import Curve
from science.qc import QC, QCStatus
from calibration.result import Population


def _v(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:g}"


def evaluate_qc(populations: tuple[Population, ...], extras: tuple[Population, ...], curve: Curve | None,
                ambiguity: float, cfg: CalibrationQCConfig) -> QC:
    """The QC record of one calibration (``ambiguity`` = runner-up minus best assignment score)."""
    findings: list[tuple[QCStatus, str]] = []
    n = len(populations)
    missing = [p for p in populations if p.status == "missing"]
    if missing:
        found = n - len(missing)
        for p in missing:
            findings.append((cfg.missing_level_status,
                             f"bead level {_v(p.bead_value)} not found ({found} of {n} levels found)"))
    for p in populations:
        if p.status in ("saturated", "below_range"):
            findings.append((cfg.excluded_level_status, f"bead level {_v(p.bead_value)} excluded: {p.reason}"))
    for p in extras:
        findings.append((cfg.extra_population_status,
                         f"a population at {_v(p.fluorescence or 0.0)} ({p.events} events) matches no bead level"))
    fitted = [p for p in populations if p.status == "fitted"]
    if len(fitted) < cfg.min_fitted_levels:
        findings.append(("fail", f"only {len(fitted)} bead levels can be fitted "
                                 f"(at least {cfg.min_fitted_levels} needed)"))
    if curve is not None:
        if not curve.r2 >= cfg.r2_min:
            findings.append(("fail", f"fit R^2 {curve.r2:.4f} below {cfg.r2_min}"))
        if not cfg.slope_min <= curve.slope <= cfg.slope_max:
            findings.append(("fail", f"slope {curve.slope:.3f} outside {cfg.slope_min}..{cfg.slope_max}"))
    found = [p for p in populations if p.fluorescence is not None]
    for lower, upper in zip(found[:-1], found[1:]):
        if not upper.fluorescence > lower.fluorescence:  # type: ignore[operator]
            findings.append(("fail", f"peaks not increasing: level {_v(upper.bead_value)} at "
                                     f"{_v(upper.fluorescence)} <= level {_v(lower.bead_value)} at "  # type: ignore[arg-type]
                                     f"{_v(lower.fluorescence)}"))  # type: ignore[arg-type]
    for p in found:
        if p.status == "fitted" and p.cv is not None and p.cv > cfg.cv_review_above:
            findings.append(("review", f"bead level {_v(p.bead_value)}: robust CV {p.cv:.1%} above "
                                       f"{cfg.cv_review_above:.0%}"))
        if p.events < cfg.events_fail_below:
            findings.append(("fail", f"bead level {_v(p.bead_value)}: only {p.events} events "
                                     f"(fail below {cfg.events_fail_below})"))
        elif p.events < cfg.events_review_below:
            findings.append(("review", f"bead level {_v(p.bead_value)}: only {p.events} events "
                                       f"(review below {cfg.events_review_below})"))
    if missing and ambiguity < cfg.ambiguity_margin:
        findings.append(("review", "which bead levels the found peaks belong to is ambiguous"))
    return QC.from_findings(findings)
