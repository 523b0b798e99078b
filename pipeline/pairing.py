"""Pairing a patient tube with its bead calibration: the same cytometer, PE channel, voltage, gain,
scale and day (DESIGN.md, "Calibration pairing")."""

from __future__ import annotations

from datetime import date

from pipeline.acquisition import Header
from pipeline.channel_scale import channel_scale
from pipeline.errors import BAD_INPUT, InputError
from pipeline.store import Store, StoredCalibration, StoredMeasurement


def bead_sha256(stored: StoredCalibration | StoredMeasurement) -> str:
    """The SHA-256 of the bead file a stored result is (beads) or was converted with (a patient
    tube); "" when unknown."""
    cal = stored.calibration if isinstance(stored, StoredCalibration) else stored.measurement.calibration
    return (cal.key.sha256 or "") if cal is not None else ""


def calibration_for(store: Store, header: Header, known: dict[tuple, StoredCalibration | None] | None = None
                    ) -> StoredCalibration | None:
    """The calibration a patient tube is converted with (``known``: what this stage found
    already, by setting)."""
    pe = header.channel(header.roles.pe)  # type: ignore[arg-type]
    setting = (header.instrument or "", header.serial or "", pe.name, pe.voltage, pe.gain,
               pairing_day(header), channel_scale(header, pe.name))
    known = {} if known is None else known
    if setting not in known:
        known[setting] = store.calibrations.find(*setting)
    return known[setting]


def pairing_day(header: Header) -> date:
    """The day a tube pairs on: its acquisition date ($DATE), else its collection date."""
    day = header.acquired.date() if header.acquired else header.collection_date
    if day is None:
        raise InputError(header.path, BAD_INPUT, "no acquisition date ($DATE) to pair the tube with its beads")
    return day


def pending_reason(store: Store, header: Header) -> str:
    """Why a patient tube waits: no bead tube of its setting that day, or beads at other voltages."""
    pe = header.channel(header.roles.pe)  # type: ignore[arg-type]
    day = pairing_day(header)
    others = [c.calibration.key for c in store.calibrations.on_day(
        header.instrument or "", header.serial or "", pe.name, day) if c.calibration.qc.status != "fail"]
    where = f"{header.instrument} {header.serial or ''}".strip()
    if others:
        have = ", ".join(sorted({f"{k.voltage:g} V" for k in others if k.voltage is not None}))
        return (f"no calibration of {where} {pe.name} at {pe.voltage:g} V on {day.isoformat()}: "
                f"beads that day were acquired at {have}")
    return f"no bead calibration of {where} {pe.name} on {day.isoformat()} yet"
