"""Plain frozen records the store returns (no ORM objects leak out). Calibrations and
measurements are the science's own shapes, wrapped with their row identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from calibration.result import Calibration
from pipeline.measurement import Measurement
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
class StoredCalibration:
    """A calibration as the store keeps it: its row id and the whole calibration."""

    id: int
    created: datetime
    calibration: Calibration


@dataclass(frozen=True)
class StoredMeasurement:
    """A measurement as the store keeps it: row id, the calibration row it was converted with,
    the latest technician decision (approve / reject / None) and the whole measurement (its
    ``file`` is where the file is now)."""

    id: int
    created: datetime
    calibration_id: int | None
    review: str | None
    measurement: Measurement
    version: int = 1                  # 1 = as first stored; a gate correction makes the next one
    version_id: int | None = None     # the measurement_versions row of a later version (what its signature signs)

    # The fields the rules, lists and exports read most.
    @property
    def patient_id(self) -> str:
        return self.measurement.patient_id or ""

    @property
    def collection_date(self) -> date:
        return self.measurement.collection_date or date.min

    @property
    def file_sha256(self) -> str:
        return self.measurement.sha256

    @property
    def abc(self) -> float | None:
        return self.measurement.abc

    @property
    def qc(self) -> QC:
        return self.measurement.qc


@dataclass(frozen=True)
class ReviewRecord:
    id: int
    measurement_id: int
    decision: str
    reason: str
    actor: str
    decided_at: datetime
    supersedes: int | None = None       # the earlier decision this one replaces


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
    measurement_id: int
    version: int                   # the result's version (1, 2, ...; the same in every sink)


@dataclass(frozen=True)
class ImportSummary:
    """What a registry import changed (``unchanged`` rows write nothing)."""

    added: tuple[str, ...] = field(default_factory=tuple)
    changed: tuple[str, ...] = field(default_factory=tuple)
    unchanged: tuple[str, ...] = field(default_factory=tuple)
