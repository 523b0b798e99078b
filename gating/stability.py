"""Acquisition stability along Time: signal drift of the monocytes and flow-rate anomalies.

As in PeacoQC (Emmaneel et al. 2022, Cytometry A 101:325), flowAI (Monaco et al. 2016,
Bioinformatics 32:2473) and flowClean (Fletez-Brant et al. 2016, Cytometry A 89:461), the run
is cut into consecutive bins along the acquisition and each bin is compared with the run's
robust level; anomalous bins are removed and the rest is kept.

- Flow rate (Time channel only): bins of equal event count; rate = events / time the bin
  spans, including any pause before the next bin. A bin is anomalous when its rate is off the
  median rate by more than ``rate_tolerance`` (a clog, a burst after a restart). A pause longer
  than ``gap_seconds`` is reported.
- Signal: the gated monocytes, in acquisition order, in bins of equal monocyte count; the
  mean log10 PE and CD14 of each bin (winsorised at the run's 2nd and 98th percentiles: a
  mean moves smoothly with a bimodal HLA-DR, where a median jumps between the modes) is
  compared with the median over the bins. A bin is anomalous when it is off by more than
  ``drift_tolerance`` and by more than ``drift_z`` standard errors (SD / sqrt(n)).
- Kept = every event outside anomalous bins, written as intervals along the axis so a
  GatingML Time gate reproduces it. What remains is checked once more for a slow drift: the
  medians of its first and last thirds of monocytes may differ by ``drift_tolerance`` at most.

Without a usable Time channel (absent, or not non-decreasing) the signal check runs along the
event order and the flow rate is not checked; the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_WINSOR = (2.0, 98.0)          # percentiles the log signal is clipped to before averaging


@dataclass(frozen=True)
class StabilityConfig:
    """Thresholds of the stability check (see the module docstring)."""

    events_per_rate_bin: int = 500
    monocytes_per_bin: int = 200
    max_bins: int = 25
    min_signal_bins: int = 4
    rate_tolerance: float = 0.35
    gap_seconds: float = 1.0
    drift_tolerance: float = 0.05
    drift_z: float = 4.0
    note_below: float = 0.10          # excluding less than this share is routine: a note
    fail_above: float = 0.5           # keeping less than half the run: fail


@dataclass(frozen=True)
class Series:
    """Per-bin values along the acquisition axis, for the 'signal over time' figure."""

    position: tuple[float, ...]        # bin centres (seconds, or event index)
    value: tuple[float, ...]           # bin value / the run's robust level (1 = on level)
    flagged: tuple[bool, ...]

    def as_dict(self) -> dict[str, object]:
        return {"position": list(self.position), "value": list(self.value), "flagged": list(self.flagged)}


@dataclass(frozen=True)
class Stability:
    """Outcome of the stability check: what was kept, why the rest was not, the series."""

    axis: str                                       # 'time' (seconds) or 'event' (event order)
    channel: str | None                             # the Time channel read (None on the event axis)
    kept: tuple[tuple[float, float], ...]           # [start, end) intervals along the axis
    excluded_share: float
    status: str                                     # pass | review | fail
    findings: tuple[str, ...]
    rate: Series | None
    pe: Series | None
    cd14: Series | None

    def as_dict(self) -> dict[str, object]:
        return {"axis": self.axis, "channel": self.channel,
                "kept": [[v if np.isfinite(v) else None for v in k] for k in self.kept],   # None = open end
                "excluded_share": self.excluded_share, "status": self.status,
                "findings": list(self.findings),
                "rate": None if self.rate is None else self.rate.as_dict(),
                "pe": None if self.pe is None else self.pe.as_dict(),
                "cd14": None if self.cd14 is None else self.cd14.as_dict()}

    def mask(self, axis_values: np.ndarray) -> np.ndarray:
        """Events inside the kept intervals."""
        keep = np.zeros(axis_values.shape[0], dtype=bool)
        for start, end in self.kept:
            keep |= (axis_values >= start) & (axis_values < end)
        return keep


def _bounds(n: int, per_bin: int, max_bins: int) -> np.ndarray:
    bins = int(np.clip(n // per_bin, 1, max_bins))
    return np.linspace(0, n, bins + 1).round().astype(int)


def _log_levels(values: np.ndarray) -> np.ndarray:
    """log10 of the values, winsorised at the run's 2nd and 98th percentiles."""
    logs = np.log10(np.clip(values, 1e-3, None))
    low, high = np.percentile(logs, _WINSOR)
    return np.clip(logs, low, high)


def _signal(levels: np.ndarray, index: np.ndarray, bounds: np.ndarray, axis: np.ndarray,
            config: StabilityConfig) -> tuple[Series, np.ndarray, float]:
    """Per-bin mean of the winsorised log10 ``levels`` (monocytes in acquisition order, at
    event ``index``): the series, the flag of each bin and the largest relative deviation."""
    means = np.add.reduceat(levels, bounds[:-1]) / np.diff(bounds)
    reference = float(np.median(means))
    se = float(np.std(levels)) / np.sqrt(np.diff(bounds))
    deviation = means - reference
    limit = np.maximum(np.log10(1.0 + config.drift_tolerance), config.drift_z * se)
    flagged = np.abs(deviation) > limit
    centres = [float(np.median(axis[index[a:b]])) for a, b in zip(bounds[:-1], bounds[1:])]
    series = Series(position=tuple(centres), value=tuple(float(v) for v in 10.0 ** deviation),
                    flagged=tuple(bool(f) for f in flagged))
    return series, flagged, float(np.max(np.abs(10.0 ** deviation - 1.0)))


def check_stability(time: np.ndarray | None, pe: np.ndarray | None, cd14: np.ndarray,
                    monocytes: np.ndarray, config: StabilityConfig = StabilityConfig(),
                    time_channel: str | None = None) -> Stability:
    """Stability of one acquisition from its Time channel (seconds; None: event order; named
    ``time_channel`` in the record) and the gated monocytes' PE and CD14 (linear, all events;
    ``monocytes`` a mask over all events)."""
    n = monocytes.shape[0]
    findings: list[str] = []
    use_time = time is not None and bool(np.all(np.isfinite(time))) and bool(np.all(np.diff(time) >= 0))
    if time is None:
        findings.append("no Time channel: stability checked along the event order (flow rate not checked)")
    elif not use_time:
        findings.append("Time channel not non-decreasing (reset or rollover): stability checked along the "
                        "event order (flow rate not checked)")
    axis = time.astype(float) if use_time else np.arange(n, dtype=float)
    bad = np.zeros(n, dtype=bool)
    reasons: list[str] = []
    rate_series = None
    if use_time and n >= 2 * config.events_per_rate_bin:
        bounds = _bounds(n, config.events_per_rate_bin, 4 * config.max_bins)
        ends = np.append(axis[bounds[1:-1]], axis[-1])
        span = np.maximum(ends - axis[bounds[:-1]], 1e-9)
        rate = np.diff(bounds) / span
        level = float(np.median(rate))
        relative = rate / level
        flagged = np.abs(relative - 1.0) > config.rate_tolerance
        rate_series = Series(position=tuple(float(v) for v in 0.5 * (axis[bounds[:-1]] + ends)),
                             value=tuple(float(v) for v in relative), flagged=tuple(bool(f) for f in flagged))
        for k in np.flatnonzero(flagged):
            bad[bounds[k]:bounds[k + 1]] = True
        if flagged.any():
            reasons.append(f"flow rate {relative[flagged].min():.2g}-{relative[flagged].max():.2g} x the "
                           f"median in {int(flagged.sum())} of {flagged.size} bins")
        gaps = np.flatnonzero(np.diff(axis) > config.gap_seconds)
        for g in gaps[:3]:
            findings.append(f"acquisition paused {axis[g + 1] - axis[g]:.1f} s at {axis[g]:.1f} s")
    mono_index = np.flatnonzero(monocytes)
    pe_series = cd14_series = None
    per_bin = max(config.monocytes_per_bin, -(-mono_index.size // config.max_bins))
    if mono_index.size // per_bin >= config.min_signal_bins:
        bounds = _bounds(mono_index.size, per_bin, config.max_bins)
        for name, values in (("PE", pe), ("CD14", cd14)):
            if values is None:
                continue
            series, flagged, worst = _signal(_log_levels(values[mono_index]), mono_index, bounds, axis, config)
            if name == "PE":
                pe_series = series
            else:
                cd14_series = series
            for k in np.flatnonzero(flagged):
                start = mono_index[bounds[k]]
                end = mono_index[bounds[k + 1]] if bounds[k + 1] < mono_index.size else n
                bad[start:end] = True
            if flagged.any():
                reasons.append(f"monocyte {name} drifts (up to {worst:.0%} off its level, "
                               f"{int(flagged.sum())} of {flagged.size} bins)")
    else:
        findings.append(f"{mono_index.size} monocytes: too few to check their signal over time")
    kept = _intervals(axis, ~bad)
    keep = np.zeros(n, dtype=bool)
    for start, end in kept:
        keep |= (axis >= start) & (axis < end)
    excluded = 1.0 - float(keep.mean()) if n else 0.0
    status = "pass"
    if reasons:
        where = "; ".join(reasons)
        share = f"{excluded:.0%} of the events excluded"
        if excluded > config.fail_above:
            status = "fail"
            findings.append(f"unstable acquisition ({where}): {share}, less than half the run is stable")
        elif excluded >= config.note_below:
            status = "review"
            findings.append(f"unstable acquisition ({where}): {share}, the result is from the stable part")
        else:
            findings.append(f"{share} ({where}); the result is from the stable part")
    drift = _residual_drift(pe, monocytes & keep, config)
    if drift is not None:
        status = "fail" if status == "fail" else "review"
        findings.append(f"monocyte PE drifts {drift:+.0%} from the first to the last third of the kept "
                        f"acquisition (tolerance {config.drift_tolerance:.0%})")
    return Stability(axis="time" if use_time else "event", channel=time_channel if use_time else None,
                     kept=kept, excluded_share=excluded,
                     status=status, findings=tuple(findings), rate=rate_series, pe=pe_series,
                     cd14=cd14_series)


def _intervals(axis: np.ndarray, good: np.ndarray) -> tuple[tuple[float, float], ...]:
    """[start, end) intervals along ``axis`` covering the runs of ``good`` events; an end is
    half-way to the next event (+inf after the last one)."""
    if not good.any():
        return ()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], good.view(np.int8), [0]])))
    out = []
    for a, b in zip(edges[::2], edges[1::2]):
        start = float("-inf") if a == 0 else float(0.5 * (axis[a - 1] + axis[a]))
        end = float("inf") if b == axis.size else float(0.5 * (axis[b - 1] + axis[b]))
        if end > start:
            out.append((start, end))
    return tuple(out)


def _residual_drift(pe: np.ndarray | None, monocytes: np.ndarray, config: StabilityConfig) -> float | None:
    """Relative PE change (winsorised log means) from the first to the last third of the kept
    monocytes when it is larger than the tolerance and than ``drift_z`` standard errors; else None."""
    index = np.flatnonzero(monocytes)
    if pe is None or index.size < config.min_signal_bins * config.monocytes_per_bin:
        return None
    levels = _log_levels(pe[index])
    third = index.size // 3
    first, last = levels[:third], levels[-third:]
    se = float(np.std(levels)) * np.sqrt(2.0 / third)
    delta = float(np.mean(last) - np.mean(first))
    if abs(delta) > max(np.log10(1.0 + config.drift_tolerance), config.drift_z * se):
        return float(10.0 ** delta - 1.0)
    return None
