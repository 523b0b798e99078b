"""What a calibration is valid for: the acquisition conditions it was measured under."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from calibration.scale import ChannelScale


@dataclass(frozen=True)
class CalibrationKey:
    """Plain values the caller passes in; a sample may use a calibration only when they match
    (same cytometer, channel, detector voltage and gain, and the same scale: ``scale`` is
    compared with :func:`calibration.scale.scale_findings`; cytoflow refuses to calibrate
    across voltages for the same reason)."""

    instrument: str | None = None
    serial: str | None = None
    channel: str | None = None
    voltage: float | None = None
    gain: float | None = None
    acquired: datetime | None = None
    lot: str | None = None
    sha256: str | None = None
    scale: ChannelScale | None = None   # the measured channel's scale keywords (calibration.scale)
    compensation: str | None = None     # the beads' compensation state, e.g. 'compensated ($SPILLOVER)'
