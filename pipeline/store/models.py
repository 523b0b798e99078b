"""SQLAlchemy 2.x table definitions of the results database.

The Alembic revisions in ``pipeline/migrations/versions`` create exactly these tables
(a test compares them); change both together.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Index,
                        Integer, MetaData, String, Text, UniqueConstraint, text)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

FILE_STATUSES = ("calibrated", "measured", "pending_calibration", "qc_fail", "rejected", "duplicate")
QC_STATUSES = ("pass", "review", "fail")
SCREENING_STATUSES = ("eligible", "not_eligible", "pending")
REVIEW_DECISIONS = ("approve", "reject")
ROLES = ("technician", "investigator", "unblinded", "admin")   # pipeline.access.ROLES

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class File(Base):
    """One sighting of an FCS file: content (SHA-256) + path; the first sighting of a content is
    the original, later ones have status ``duplicate``."""

    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint(_in("status", FILE_STATUSES), name="status"),
        UniqueConstraint("sha256", "path", name="uq_files_sha256_path"),
        # One original per content; later sightings of the same content are 'duplicate' rows.
        Index("ix_files_original", "sha256", unique=True,
              sqlite_where=text("status <> 'duplicate'"), postgresql_where=text("status <> 'duplicate'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    collection_date: Mapped[date | None] = mapped_column(Date)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Calibration(Base):
    """A bead calibration: its validity key as columns (DESIGN.md: same instrument, channel,
    voltage, gain, scale and day) and the whole :class:`calibration.result.Calibration` as
    ``record`` (``pipeline.store.calibrations`` maps one to the other)."""

    __tablename__ = "calibrations"
    __table_args__ = (
        UniqueConstraint("file_sha256", "channel", name="uq_calibrations_file_channel"),
        CheckConstraint(_in("qc_status", QC_STATUSES), name="qc_status"),
        Index("ix_calibrations_key", "instrument", "serial", "channel", "acquisition_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument: Mapped[str] = mapped_column(String(128))
    serial: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(64))
    voltage: Mapped[float | None] = mapped_column(Float)
    gain: Mapped[float | None] = mapped_column(Float)
    acquisition_date: Mapped[date] = mapped_column(Date)
    lot: Mapped[str] = mapped_column(String(64))
    file_sha256: Mapped[str] = mapped_column(String(64))
    qc_status: Mapped[str] = mapped_column(String(8))
    statistic: Mapped[str] = mapped_column(String(32))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    software_version: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class Measurement(Base):
    """One patient tube converted to AB/C, with its QC record and gates."""

    __tablename__ = "measurements"
    __table_args__ = (CheckConstraint(_in("qc_status", QC_STATUSES), name="qc_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    collection_date: Mapped[date] = mapped_column(Date)
    icu_day: Mapped[int | None] = mapped_column(Integer)
    in_window: Mapped[bool | None] = mapped_column(Boolean)
    monocytes: Mapped[int] = mapped_column(Integer)
    statistic: Mapped[str] = mapped_column(String(32))
    pe_statistic: Mapped[float | None] = mapped_column(Float)
    abc: Mapped[float | None] = mapped_column(Float)
    abc_low: Mapped[float | None] = mapped_column(Float)
    abc_high: Mapped[float | None] = mapped_column(Float)
    below_threshold: Mapped[bool | None] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(String(32))
    qc_status: Mapped[str] = mapped_column(String(8))
    qc_reasons: Mapped[list[Any]] = mapped_column(JSON)
    calibration_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("calibrations.id"))
    gates: Mapped[dict[str, Any]] = mapped_column(JSON)
    notes: Mapped[list[Any]] = mapped_column(JSON)
    analysed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class MeasurementVersion(Base):
    """A later version of a measurement (a gate correction): the values it changes, who made it
    and why. The ``measurements`` row stays version 1, unchanged; the highest version is current."""

    __tablename__ = "measurement_versions"
    __table_args__ = (UniqueConstraint("measurement_id", "version", name="uq_measurement_versions_version"),
                      CheckConstraint(_in("qc_status", QC_STATUSES), name="qc_status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    measurement_id: Mapped[int] = mapped_column(Integer, ForeignKey("measurements.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    monocytes: Mapped[int] = mapped_column(Integer)
    pe_statistic: Mapped[float | None] = mapped_column(Float)
    abc: Mapped[float | None] = mapped_column(Float)
    abc_low: Mapped[float | None] = mapped_column(Float)
    abc_high: Mapped[float | None] = mapped_column(Float)
    below_threshold: Mapped[bool | None] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(String(32))
    qc_status: Mapped[str] = mapped_column(String(8))
    qc_reasons: Mapped[list[Any]] = mapped_column(JSON)
    gates: Mapped[dict[str, Any]] = mapped_column(JSON)
    notes: Mapped[list[Any]] = mapped_column(JSON)
    analysed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class Patient(Base):
    """One registry row; ``icu_admission``/``randomized_at`` keep ISO text (date or date-time)."""

    __tablename__ = "patients"

    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    icu_admission: Mapped[str] = mapped_column(String(32))
    sofa_24h: Mapped[int] = mapped_column(Integer)
    mechanical_ventilation: Mapped[bool] = mapped_column(Boolean)
    exclusion: Mapped[str] = mapped_column(Text)
    randomized_at: Mapped[str | None] = mapped_column(String(32))
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ScreeningDecision(Base):
    """A screening status, appended whenever a patient's evaluation changes (latest = current)."""

    __tablename__ = "screening_decisions"
    __table_args__ = (CheckConstraint(_in("status", SCREENING_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    measurement_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("measurements.id"))
    abc: Mapped[float | None] = mapped_column(Float)
    icu_day: Mapped[int | None] = mapped_column(Integer)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewDecision(Base):
    """A technician's decision on a QC ``review`` measurement (latest = current); a later
    decision names the one it ``supersedes`` (both stay)."""

    __tablename__ = "review_decisions"
    __table_args__ = (CheckConstraint(_in("decision", REVIEW_DECISIONS), name="decision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    measurement_id: Mapped[int] = mapped_column(Integer, ForeignKey("measurements.id"), index=True)
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    supersedes: Mapped[int | None] = mapped_column(Integer, ForeignKey("review_decisions.id"))


class OutboxItem(Base):
    """One version of a result to push to one sink; kept until delivered (retried with backoff).
    ``version`` numbers a measurement's exported versions (1, 2, ...; shared by all sinks) and
    ``content`` is the digest of what the version says (a new content makes a new version)."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("sink", "idempotency_key", name="uq_outbox_sink_key"),
                      Index("ix_outbox_measurement", "measurement_id", "version"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sink: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    measurement_id: Mapped[int] = mapped_column(Integer, ForeignKey("measurements.id"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    """A person who may use the system, with one role; disabled, never deleted (audit trail)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    # raised by sign-out, password change, disable, enable: console cookies of an older one are refused
    session_generation: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)


class Signature(Base):
    """An electronic signature (21 CFR Part 11 §11.50/§11.70): who signed (the registered user's
    name, printed as such), when (UTC), what it means, and the record it is linked to by that
    record's digest as stored when signed (``pipeline.store.signatures``); append-only."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signer: Mapped[str] = mapped_column(String(128))
    meaning: Mapped[str] = mapped_column(String(128))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    record_table: Mapped[str] = mapped_column(String(32))
    record_key: Mapped[str] = mapped_column(String(128))
    record_digest: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_signatures_record", "record_table", "record_key"),)


class AuditLog(Base):
    """Append-only, hash-chained audit trail (see ``pipeline.audit``); triggers refuse UPDATE/DELETE.
    ``row_table``/``row_key``/``row_digest`` name the stored row an entry wrote and the digest of
    its content (``pipeline.store.integrity``); empty for events that write no row."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    row_table: Mapped[str | None] = mapped_column(String(32))
    row_key: Mapped[str | None] = mapped_column(String(128))
    row_digest: Mapped[str | None] = mapped_column(String(64))
