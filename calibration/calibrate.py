"""Bead tube -> standard curve: gate, find populations, assign levels, fit, QC.

The steps follow FlowCal's MEF calibration (Castillo-Hair et al., ACS Synth. Biol. 2016,
5:774) -- gate, cluster, per-population statistic, discard populations at the channel
edges, fit -- with a straight log-log line as in the BD QuantiBRITE PE procedure.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from calibration.assignment import assign_levels
from calibration.bead_gate import BeadGate, Scatter, gate_beads
from calibration.bead_qc import evaluate_qc
from calibration.config import CalibrationQCConfig, PeakSearchConfig
from calibration.curve import fit_curve
from calibration.joint_peaks import ClusteringChannels, find_joint_peaks
from calibration.key import CalibrationKey
from calibration.peaks import find_peaks
from calibration.result import Calibration, LogHistogram, Population
from science.qc import QC
from science.statistics import Statistic, population_statistic, robust_cv
from science.transform import log_transform, transform_width


class NoBeadsError(ValueError):
    """No events are left to look for bead populations in."""


class BadBeadValuesError(ValueError):
    """The kit's bead values are unusable (empty, negative, not finite or not increasing)."""


def validate_bead_values(bead_values: Sequence[float]) -> tuple[float, ...]:
    """Bead values as floats: finite, >= 0, strictly increasing (0 = blank, first only).

    The one check of bead values, run at :func:`calibrate_beads` entry; raises
    :class:`BadBeadValuesError`."""
    try:
        values = tuple(float(v) for v in bead_values)
    except (TypeError, ValueError):
        raise BadBeadValuesError("bead values must be numbers") from None
    if not values:
        raise BadBeadValuesError("no bead values")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise BadBeadValuesError("bead values must be finite and >= 0")
    if any(b <= a for a, b in zip(values[:-1], values[1:])):
        raise BadBeadValuesError("bead values must be strictly increasing (one blank of 0 at most)")
    return values


def _edge_reason(t_median: float, t_sd: float, t_low: float | None, t_high: float,
                 margin: float, n_sd: float, high: float) -> tuple[str, str] | None:
    if t_median + n_sd * t_sd >= t_high - margin:
        return "saturated", f"saturated (population reaches the top {margin:.2f} decades of the channel range, {high:,.0f})"
    if t_low is not None and t_median - n_sd * t_sd <= t_low + margin:
        return "below_range", "below range (population reaches the bottom of the channel range)"
    return None


def calibrate_beads(
    fluorescence: np.ndarray,
    bead_values: Sequence[float],
    *,
    channel_range: tuple[float, float],
    scatter: Scatter | None = None,
    clustering: ClusteringChannels | None = None,
    statistic: Statistic = "median",
    key: CalibrationKey = CalibrationKey(),
    qc_config: CalibrationQCConfig = CalibrationQCConfig(),
    peak_config: PeakSearchConfig = PeakSearchConfig(),
    seed: int = 0,
) -> Calibration:
    """Calibrate one bead tube.

    ``fluorescence``: linear values of the calibration channel, one per event;
    ``channel_range``: that channel's linear (low, high), used to spot saturated levels;
    ``scatter``: FSC/SSC for the singlet bead gate (no gate when None);
    ``clustering``: further channels to find the populations in jointly with this one (in
    log space; the statistic is still taken in this channel only). Events not finite in
    every channel used are left out.
    Raises :class:`BadBeadValuesError` for unusable bead values (checked first, once),
    :class:`NoBeadsError` when no event survives the gate, ``ValueError`` when the clustering
    channels do not match the events.
    """
    values = validate_bead_values(bead_values)
    f_all = np.asarray(fluorescence, dtype=float)
    gate: BeadGate | None = gate_beads(scatter) if scatter is not None else None
    finite = np.isfinite(f_all)
    if clustering is not None:
        if clustering.values.shape[0] != f_all.size:
            raise ValueError("clustering channels must have one row per event")
        finite &= np.isfinite(clustering.values).all(axis=1)
    mask = finite if gate is None else gate.mask & finite
    f = f_all[mask]
    if f.size == 0:
        raise NoBeadsError("no bead events left after the scatter gate")
    range_problem = None
    if not (np.all(np.isfinite(channel_range)) and channel_range[1] > max(channel_range[0], 0.0)):
        range_problem = (f"the channel's range {channel_range[0]:g}..{channel_range[1]:g} is not usable "
                         "($PnR/$PnE): saturation cannot be judged")
        channel_range = (0.0, float(np.max(np.abs(f))) or 1.0)
    width = transform_width(channel_range)
    t = log_transform(f, width)
    if clustering is None:
        search = find_peaks(t, max_peaks=len(values), config=peak_config, seed=seed)
    else:
        extra = [log_transform(clustering.values[mask, j], transform_width(r))
                 for j, r in enumerate(clustering.ranges)]
        search = find_joint_peaks(np.column_stack([t, *extra]), max_peaks=len(values), config=peak_config,
                                  seed=seed)
    assignment = assign_levels([p.log_center for p in search.peaks], values,
                               slope_weight=peak_config.slope_prior_weight,
                               blank_margin=peak_config.blank_margin)

    low, high = channel_range
    t_high = float(log_transform(np.array([high]), width)[0])
    t_low = float(log_transform(np.array([low]), width)[0]) if low > 0 else None
    t_floor = t_low if t_low is not None else float(np.log10(width))
    margin = peak_config.saturation_margin * (t_high - t_floor)

    measured: dict[int, tuple[float, int, float, str, str | None]] = {}
    extras: list[Population] = []
    for k, (peak, level) in enumerate(zip(search.peaks, assignment.levels)):
        members = f[search.labels == k]
        stat = population_statistic(members, statistic)
        cv = robust_cv(members)
        if level is None:
            extras.append(Population(level=-1, bead_value=float("nan"), status="missing", fluorescence=stat,
                                     events=int(members.size), cv=cv, residual=None,
                                     reason="matches no bead level"))
            continue
        t_members = t[search.labels == k]
        q16, q50, q84 = np.percentile(t_members, [15.87, 50.0, 84.13])
        edge = _edge_reason(q50, 0.5 * (q84 - q16), t_low, t_high, margin, peak_config.saturation_sd, high)
        if values[level] == 0:
            status, reason = "blank", "blank bead (value 0): found, not fitted"
        elif edge is not None:
            status, reason = edge
        else:
            status, reason = "fitted", None
        measured[level] = (stat, int(members.size), cv, status, reason)

    fit_levels = [lv for lv, m in sorted(measured.items()) if m[3] == "fitted" and m[0] > 0]
    curve = (fit_curve(np.array([measured[lv][0] for lv in fit_levels]),
                       np.array([values[lv] for lv in fit_levels]))
             if len(fit_levels) >= 2 else None)

    populations = []
    for level, value in enumerate(values):
        if level not in measured:
            populations.append(Population(level=level, bead_value=value, status="missing", fluorescence=None,
                                          events=0, cv=None, residual=None, reason="population not found"))
            continue
        stat, events, cv, status, reason = measured[level]
        residual = (float(np.log10(value) - curve.log_abc(stat))
                    if curve is not None and status == "fitted" else None)
        populations.append(Population(level=level, bead_value=value, status=status, fluorescence=stat,
                                      events=events, cv=None if not np.isfinite(cv) else cv,
                                      residual=residual, reason=reason))
    pops = tuple(populations)
    qc = evaluate_qc(pops, tuple(extras), curve, assignment.runner_up - assignment.score, qc_config)
    if range_problem is not None:
        qc = qc.merged(QC("fail", (range_problem,)))
    return Calibration(key=key, statistic=statistic, bead_values=values, populations=pops,
                       extra_populations=tuple(extras), curve=curve, qc=qc,
                       gate=gate.counts if gate is not None else None, histogram=LogHistogram.of(f),
                       clustering_channels=clustering.names if clustering is not None else ())
