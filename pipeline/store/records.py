"""Plain frozen records the store accepts and returns (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from science.qc import QC


@dataclass(frozen=True)
class FileRecord:
    id: int
    sha256: str
    path: str
    size: int
    kind: str
    status: str
    reasons: tuple[str, ...]
    patient_id: str | None
    collection_date: date | None
    first_seen: datetime
    updated: datetime


@dataclass(frozen=True)
class CalibrationInput:
    """A fitted bead curve: log10(bead value) = slope * log10(fluorescence) + intercept."""

    instrument: str
    serial: str
    channel: str
    voltage: float | None
    gain: float | None
    acquisition_date: date
    lot: str
    bead_values: tuple[float, ...]
    file_sha256: str
    slope: float
    intercept: float
    r2: float
    covariance: tuple[tuple[float, ...], ...] | None
    peaks: tuple[dict[str, Any], ...]
    qc: QC
    statistic: str
    software_version: str


@dataclass(frozen=True)
class CalibrationRecord(CalibrationInput):
    id: int = 0
    created: datetime | None = None


@dataclass(frozen=True)
class MeasurementInput:
    """One patient tube converted to AB/C (the ``analyze`` fields)."""

    file_sha256: str
    patient_id: str
    collection_date: date
    icu_day: int | None
    in_window: bool | None
    monocytes: int
    statistic: str
    pe_statistic: float | None
    abc: float | None
    abc_low: float | None
    abc_high: float | None
    below_threshold: bool | None
    category: str | None
    qc: QC
    calibration_id: int | None
    gates: dict[str, Any]
    software_version: str


@dataclass(frozen=True)
class MeasurementRecord(MeasurementInput):
    id: int = 0
    created: datetime | None = None
    review: str | None = None           # latest technician decision: approve / reject / None


@dataclass(frozen=True)
class ReviewRecord:
    id: int
    measurement_id: int
    decision: str
    reason: str
    actor: str
    decided_at: datetime


@dataclass(frozen=True)
class ScreeningRecord:
    """A patient's stored screening status (the screening log's current row)."""

    patient_id: str
    status: str
    reasons: tuple[str, ...]
    measurement_id: int | None
    abc: float | None
    icu_day: int | None
    file_sha256: str | None
    file: str | None
    evaluated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id, "status": self.status, "reasons": list(self.reasons),
            "abc": self.abc, "icu_day": self.icu_day, "file": self.file,
            "file_sha256": self.file_sha256, "measurement_id": self.measurement_id,
            "evaluated_at": self.evaluated_at.isoformat(),
        }


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    sink: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    next_attempt: datetime
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ImportSummary:
    """What a registry import changed (``unchanged`` rows write nothing)."""

    added: tuple[str, ...] = field(default_factory=tuple)
    changed: tuple[str, ...] = field(default_factory=tuple)
    unchanged: tuple[str, ...] = field(default_factory=tuple)
