"""Tunable parameters of bead calibration: the QC thresholds and the peak search.

QC defaults follow DESIGN.md (QC proposals from the literature): every bead level found,
fit R^2 >= 0.99, slope near 1 (0.8..1.2), peaks increasing, peak CV review above 15 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from science.qc import QCStatus


@dataclass(frozen=True)
class CalibrationQCConfig:
    """Thresholds that turn a bead fit into ``pass`` / ``review`` / ``fail``."""

    r2_min: float = 0.99
    slope_min: float = 0.8
    slope_max: float = 1.2
    cv_review_above: float = 0.15
    events_review_below: int = 200
    events_fail_below: int = 50
    min_fitted_levels: int = 3
    missing_level_status: QCStatus = "review"
    excluded_level_status: QCStatus = "review"
    extra_population_status: QCStatus = "review"
    # A runner-up peak-to-level assignment scoring within this margin (decades^2) is ambiguous.
    ambiguity_margin: float = 0.002


@dataclass(frozen=True)
class PeakSearchConfig:
    """How bead populations are found in one or several fluorescence channels (log10 space)."""

    bandwidth: float = 0.02            # Gaussian smoothing of the log histogram, decades
    min_prominence: float = 0.25       # a peak must rise this fraction of its height above its valley
    min_events: int = 30               # smallest population worth calling a peak
    min_fraction: float = 0.01         # ... and at least this fraction of the gated beads
    min_separation_d: float = 1.2      # Ashman's D between neighbouring mixture components
    max_fit_events: int = 6_000        # events used to fit the mixture (all events are labelled)
    saturation_margin: float = 0.015   # fraction of the channel's log span treated as its edge
    saturation_sd: float = 2.5         # population edge = log median +- this many robust SDs
    slope_prior_weight: float = 0.1    # pull of the assignment slope towards 1 (decades^2)
    blank_margin: float = 0.1          # a blank sits this far (decades) below the lowest level
    joint_reg_covar: float = 1e-5      # added to joint (multi-channel) covariances, decades^2
