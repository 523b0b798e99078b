"""Acquisition faults along the Time axis: a fading signal and an interrupted run.

Events are acquired in the order they are written (the generator shuffles the particles, then
gives each one an arrival time), so a fault is a function of the event's position in the
acquisition. These are the problems QC tools such as PeacoQC (Emmaneel et al., Cytometry A
2022), flowAI (Monaco et al., Bioinformatics 2016) and flowClean (Fletez-Brant et al.,
Cytometry A 2016) look for along Time: signal drift and flow-rate gaps or bursts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Drift:
    """Fluorescence that fades towards the end of the run (a failing laser, a partial clog):
    the signals of ``roles`` fall linearly from 100 % at event fraction ``start`` to
    ``1 - drop`` at the last event."""

    start: float = 0.6
    drop: float = 0.4
    roles: tuple[str, ...] = ("pe", "cd14")

    def __post_init__(self) -> None:
        if not (0.0 <= self.start < 1.0 and 0.0 <= self.drop < 1.0):
            raise ValueError("drift needs 0 <= start < 1 and 0 <= drop < 1")

    def factor(self, n: int) -> np.ndarray:
        """Signal factor of each of ``n`` events in acquisition order."""
        position = np.arange(n) / max(n - 1, 1)
        ramp = np.clip((position - self.start) / (1.0 - self.start), 0.0, 1.0)
        return 1.0 - self.drop * ramp

    def as_dict(self) -> dict[str, object]:
        return {"kind": "drift", **asdict(self), "roles": list(self.roles)}


@dataclass(frozen=True)
class Interruption:
    """The run stops for ``gap_seconds`` at event fraction ``at`` (the tube ran dry, the operator
    paused), then resumes with a burst: the next ``burst_fraction`` of the events arrive
    ``burst_rate`` times faster than the rest. The signals themselves are unchanged."""

    at: float = 0.5
    gap_seconds: float = 20.0
    burst_fraction: float = 0.03
    burst_rate: float = 5.0

    def __post_init__(self) -> None:
        if not (0.0 < self.at < 1.0 and self.gap_seconds >= 0 and 0.0 <= self.burst_fraction < 1.0
                and self.burst_rate >= 1.0):
            raise ValueError("interruption needs 0 < at < 1, gap >= 0, 0 <= burst < 1, rate >= 1")

    def intervals(self, intervals: np.ndarray) -> np.ndarray:
        """Inter-arrival times (seconds, acquisition order) with the gap and the burst."""
        out = intervals.copy()
        n = out.size
        first = int(self.at * n)
        last = min(n, first + int(self.burst_fraction * n))
        out[first:last] /= self.burst_rate
        if first < n:
            out[first] += self.gap_seconds
        return out

    def as_dict(self) -> dict[str, object]:
        return {"kind": "interruption", **asdict(self)}
