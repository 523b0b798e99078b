"""Pairing a patient tube with its bead calibration: the same cytometer, PE channel, voltage, gain,
scale and day (DESIGN.md, "Calibration pairing")."""

from __future__ import annotations

from pipeline.store import StoredCalibration, StoredMeasurement


def bead_sha256(stored: StoredCalibration | StoredMeasurement) -> str:
    """The SHA-256 of the bead file a stored result is (beads) or was converted with (a patient
    tube); "" when unknown."""
    cal = stored.calibration if isinstance(stored, StoredCalibration) else stored.measurement.calibration
    return (cal.key.sha256 or "") if cal is not None else ""
