"""The results store: every write is one transaction that also appends its audit entry.

Writers are serialised (SQLite ``BEGIN IMMEDIATE`` / PostgreSQL advisory lock, see ``engine``),
which keeps the audit hash chain linear across processes. Screening decisions are re-evaluated
inside the same transaction as the change that triggers them (measurement, review, registry row).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import Session

from science.qc import QC
from pipeline import audit as chain
from pipeline.acquisition import same_setting
from pipeline.eligibility import PatientFacts, ResultFacts, Rules, evaluate, is_blinded
from pipeline.registry import parse_date_or_datetime
from pipeline.store import models as m
from pipeline.store.engine import lock_for_write, writer
from pipeline.store.records import (CalibrationInput, CalibrationRecord, FileRecord, ImportSummary,
                                    MeasurementInput, MeasurementRecord, OutboxRecord, ReviewRecord,
                                    ScreeningRecord)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: date | datetime | None) -> str | None:
    """ISO text of a registry date or date-time (``None`` stays ``None``)."""
    return None if value is None else value.isoformat()


def patient_facts(row: m.Patient) -> PatientFacts:
    return PatientFacts(
        patient_id=row.patient_id, icu_admission=parse_date_or_datetime(row.icu_admission), sofa_24h=row.sofa_24h,
        mechanical_ventilation=row.mechanical_ventilation, exclusion=row.exclusion,
        randomized_at=parse_date_or_datetime(row.randomized_at) if row.randomized_at else None,
    )


def _patient_dict(facts: PatientFacts) -> dict[str, Any]:
    return {"patient_id": facts.patient_id, "icu_admission": iso(facts.icu_admission),
            "sofa_24h": facts.sofa_24h, "mechanical_ventilation": facts.mechanical_ventilation,
            "exclusion": facts.exclusion, "randomized_at": iso(facts.randomized_at)}


def _file_record(row: m.File) -> FileRecord:
    return FileRecord(row.id, row.sha256, row.path, row.size, row.kind, row.status,
                      tuple(row.reasons), row.patient_id, row.collection_date, row.first_seen, row.updated)


def _file_dict(row: m.File) -> dict[str, Any]:
    return {"sha256": row.sha256, "path": row.path, "size": row.size, "kind": row.kind,
            "status": row.status, "reasons": list(row.reasons), "patient_id": row.patient_id,
            "collection_date": iso(row.collection_date)}


def _calibration_record(row: m.Calibration) -> CalibrationRecord:
    return CalibrationRecord(
        instrument=row.instrument, serial=row.serial, channel=row.channel, voltage=row.voltage,
        gain=row.gain, acquisition_date=row.acquisition_date, lot=row.lot,
        bead_values=tuple(row.bead_values), file_sha256=row.file_sha256, slope=row.slope,
        intercept=row.intercept, r2=row.r2,
        covariance=tuple(tuple(r) for r in row.covariance) if row.covariance is not None else None,
        peaks=tuple(row.peaks), qc=QC(row.qc_status, tuple(row.qc_reasons)), statistic=row.statistic,
        software_version=row.software_version, id=row.id, created=row.created,
    )


def _measurement_record(row: m.Measurement, review: str | None) -> MeasurementRecord:
    return MeasurementRecord(
        file_sha256=row.file_sha256, patient_id=row.patient_id, collection_date=row.collection_date,
        icu_day=row.icu_day, in_window=row.in_window, monocytes=row.monocytes, statistic=row.statistic,
        pe_statistic=row.pe_statistic, abc=row.abc, abc_low=row.abc_low, abc_high=row.abc_high,
        below_threshold=row.below_threshold, category=row.category,
        qc=QC(row.qc_status, tuple(row.qc_reasons)), calibration_id=row.calibration_id,
        gates=dict(row.gates), software_version=row.software_version, id=row.id, created=row.created,
        review=review,
    )


def _review_record(row: m.ReviewDecision) -> ReviewRecord:
    return ReviewRecord(row.id, row.measurement_id, row.decision, row.reason, row.actor, row.decided_at)


# The latest technician decision on the selected measurement (correlated scalar subquery), so a
# list of results and their reviews is one query.
LATEST_REVIEW = (select(m.ReviewDecision.decision)
                 .where(m.ReviewDecision.measurement_id == m.Measurement.id)
                 .order_by(m.ReviewDecision.id.desc()).limit(1)
                 .correlate(m.Measurement).scalar_subquery())


def _measurement_dict(row: m.Measurement) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in m.Measurement.__table__.columns
            if c.name not in {"id", "created"}}


class Store:
    """Repository over one database. Create with :func:`pipeline.store.open_store`."""

    def __init__(self, engine: Engine, rules: Rules, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.rules = rules
        self.clock = clock
        self._writer = writer(engine)

    def close(self) -> None:
        self.engine.dispose()

    def today(self) -> date:
        """The local calendar date now (the clinical day for the window)."""
        return self.clock().astimezone().date()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._writer, expire_on_commit=False) as session:
            with session.begin():
                lock_for_write(session.connection())
                yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def _audit(self, s: Session, actor: str, action: str, entity: str, entity_id: object,
               before: Any, after: Any) -> None:
        last = s.scalars(select(m.AuditLog).order_by(m.AuditLog.seq.desc()).limit(1)).first()
        prev = _audit_entry(last) if last is not None else None
        entry = chain.make_entry(prev, self.clock(), actor, action, entity, str(entity_id), before, after)
        s.add(m.AuditLog(seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
                         entity=entry.entity, entity_id=entry.entity_id, before=entry.before,
                         after=entry.after, prev_hash=entry.prev_hash, hash=entry.hash))
        s.flush()

    # -- files --------------------------------------------------------------------------------
    def record_file(self, sha256: str, path: str, size: int, kind: str, status: str,
                    reasons: Sequence[str] = (), *, patient_id: str | None = None,
                    collection_date: date | None = None, actor: str = "pipeline") -> FileRecord:
        """Record a file sighting; idempotent per (content, path).

        Content already known under another path is recorded as a ``duplicate`` sighting (the
        earlier file keeps its status); the returned record says which.
        """
        with self._write() as s:
            same = s.scalars(select(m.File).where(m.File.sha256 == sha256, m.File.path == path)).first()
            if same is not None:
                return _file_record(same)
            original = self._original_file(s, sha256)
            if original is not None:
                status, reasons = "duplicate", (f"same content as {original.path}",)
            now = self.clock()
            row = m.File(sha256=sha256, path=path, size=size, kind=kind, status=status,
                         reasons=list(reasons), patient_id=patient_id, collection_date=collection_date,
                         first_seen=now, updated=now)
            s.add(row)
            s.flush()
            self._audit(s, actor, "record_file", "file", sha256, None, _file_dict(row))
            if row.patient_id and row.status != "duplicate":
                self._evaluate(s, row.patient_id, self.today(), actor)
            return _file_record(row)

    def update_file(self, sha256: str, status: str, reasons: Sequence[str] = (), *,
                    actor: str = "pipeline", **fields: Any) -> FileRecord:
        """Change the original file's status/reasons (and ``kind``, ``patient_id``,
        ``collection_date``, ``path``); audited; a no-op when nothing changes."""
        allowed = {"kind", "patient_id", "collection_date", "path"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update file fields {sorted(set(fields) - allowed)}")
        with self._write() as s:
            row = self._original_file(s, sha256)
            if row is None:
                raise KeyError(f"no file with sha256 {sha256}")
            if self._set_file_status(s, row, status, reasons, actor, **fields) and row.patient_id:
                self._evaluate(s, row.patient_id, self.today(), actor)
            return _file_record(row)

    def relocate(self, sha256: str, new_path: str | Path, *, actor: str = "watcher") -> FileRecord | None:
        """Record that the original file of this content now lives at ``new_path`` (audited);
        nothing is re-evaluated since only the path changes. None when the content is unknown."""
        with self._write() as s:
            row = self._original_file(s, sha256)
            if row is None:
                return None
            self._set_file_status(s, row, row.status, row.reasons, actor, action="relocate_file", path=str(new_path))
            return _file_record(row)

    def _set_file_status(self, s: Session, row: m.File, status: str, reasons: Sequence[str],
                         actor: str, action: str = "update_file", **fields: Any) -> bool:
        """Apply and audit a change; True when it can change a screening decision (status,
        patient or collection date changed)."""
        before = _file_dict(row)
        row.status, row.reasons = status, list(reasons)
        for name, value in fields.items():
            setattr(row, name, value)
        after = _file_dict(row)
        if after == before:
            return False
        row.updated = self.clock()
        s.flush()
        self._audit(s, actor, action, "file", row.sha256, before, after)
        return any(before[k] != after[k] for k in ("status", "patient_id", "collection_date"))

    @staticmethod
    def _original_file(s: Session, sha256: str) -> m.File | None:
        return s.scalars(select(m.File).where(m.File.sha256 == sha256,
                                              m.File.status != "duplicate")).first()

    def get_file_by_sha(self, sha256: str) -> FileRecord | None:
        """The original (first) sighting of this content, if any."""
        with self._read() as s:
            row = self._original_file(s, sha256)
            return _file_record(row) if row is not None else None

    def files(self, status: str | None = None) -> list[FileRecord]:
        with self._read() as s:
            query = select(m.File).order_by(m.File.id)
            if status is not None:
                query = query.where(m.File.status == status)
            return [_file_record(r) for r in s.scalars(query)]

    # -- calibrations -------------------------------------------------------------------------
    def store_calibration(self, cal: CalibrationInput, *, actor: str = "pipeline") -> CalibrationRecord:
        """Store a bead curve (idempotent per file and channel); the bead file's status becomes
        ``calibrated`` (or ``qc_fail``) in the same transaction."""
        with self._write() as s:
            existing = s.scalars(select(m.Calibration).where(
                m.Calibration.file_sha256 == cal.file_sha256, m.Calibration.channel == cal.channel)).first()
            if existing is not None:
                return _calibration_record(existing)
            row = m.Calibration(
                instrument=cal.instrument, serial=cal.serial, channel=cal.channel, voltage=cal.voltage,
                gain=cal.gain, acquisition_date=cal.acquisition_date, lot=cal.lot,
                bead_values=[float(v) for v in cal.bead_values], file_sha256=cal.file_sha256,
                slope=cal.slope, intercept=cal.intercept, r2=cal.r2,
                covariance=[list(r) for r in cal.covariance] if cal.covariance is not None else None,
                peaks=chain.jsonable(list(cal.peaks)), qc_status=cal.qc.status,
                qc_reasons=list(cal.qc.reasons), statistic=cal.statistic,
                software_version=cal.software_version, created=self.clock(),
            )
            s.add(row)
            s.flush()
            record = _calibration_record(row)
            after = {c.name: getattr(row, c.name) for c in m.Calibration.__table__.columns if c.name != "created"}
            self._audit(s, actor, "store_calibration", "calibration", row.id, None, after)
            file_row = self._original_file(s, cal.file_sha256)
            if file_row is not None:
                status = "qc_fail" if cal.qc.status == "fail" else "calibrated"
                self._set_file_status(s, file_row, status, cal.qc.reasons, actor)
            return record

    def find_calibration(self, instrument: str, serial: str, channel: str, voltage: float | None,
                         gain: float | None, day: date) -> CalibrationRecord | None:
        """The calibration valid for a tube: same instrument, serial, channel, PE voltage and gain,
        same acquisition day, QC not ``fail``; a ``pass`` beats a ``review``, then the latest."""
        candidates = [c for c in self.calibrations_on(instrument, serial, channel, day)
                      if c.qc.status != "fail" and same_setting(c.voltage, voltage)
                      and same_setting(c.gain, gain)]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c.qc.status != "pass", -c.id))

    def calibrations_on(self, instrument: str, serial: str, channel: str, day: date) -> list[CalibrationRecord]:
        """All calibrations of one detector on one day (e.g. to name the voltages that exist)."""
        with self._read() as s:
            rows = s.scalars(select(m.Calibration).where(
                m.Calibration.instrument == instrument, m.Calibration.serial == serial,
                m.Calibration.channel == channel, m.Calibration.acquisition_date == day,
            ).order_by(m.Calibration.id))
            return [_calibration_record(r) for r in rows]

    def calibrations_of_file(self, sha256: str) -> list[CalibrationRecord]:
        """The calibrations fitted from one bead file (one per channel)."""
        with self._read() as s:
            rows = s.scalars(select(m.Calibration).where(m.Calibration.file_sha256 == sha256)
                             .order_by(m.Calibration.id))
            return [_calibration_record(r) for r in rows]

    def calibrations(self) -> list[CalibrationRecord]:
        """Every stored bead curve, by id."""
        with self._read() as s:
            return [_calibration_record(r) for r in s.scalars(select(m.Calibration).order_by(m.Calibration.id))]

    def get_calibration(self, calibration_id: int) -> CalibrationRecord | None:
        with self._read() as s:
            row = s.get(m.Calibration, calibration_id)
            return _calibration_record(row) if row is not None else None

    # -- measurements -------------------------------------------------------------------------
    def store_measurement(self, meas: MeasurementInput, *, actor: str = "pipeline",
                          today: date | None = None) -> MeasurementRecord:
        """Store a patient result (idempotent per file), set the file's status (``measured`` /
        ``qc_fail``) and re-evaluate the patient, all in one transaction."""
        with self._write() as s:
            existing = self._measurement_rows(s, m.Measurement.file_sha256 == meas.file_sha256)
            if existing:
                return _measurement_record(*existing[0])
            row = m.Measurement(
                file_sha256=meas.file_sha256, patient_id=meas.patient_id,
                collection_date=meas.collection_date, icu_day=meas.icu_day, in_window=meas.in_window,
                monocytes=int(meas.monocytes), statistic=meas.statistic, pe_statistic=meas.pe_statistic,
                abc=meas.abc, abc_low=meas.abc_low, abc_high=meas.abc_high,
                below_threshold=meas.below_threshold, category=meas.category,
                qc_status=meas.qc.status, qc_reasons=list(meas.qc.reasons),
                calibration_id=meas.calibration_id, gates=chain.jsonable(meas.gates),
                software_version=meas.software_version, created=self.clock(),
            )
            s.add(row)
            s.flush()
            self._audit(s, actor, "store_measurement", "measurement", row.id, None, _measurement_dict(row))
            file_row = self._original_file(s, meas.file_sha256)
            if file_row is not None:
                status = "qc_fail" if meas.qc.status == "fail" else "measured"
                self._set_file_status(s, file_row, status, meas.qc.reasons, actor,
                                      patient_id=meas.patient_id, collection_date=meas.collection_date)
            self._evaluate(s, meas.patient_id, today or self.today(), actor)
            return _measurement_record(row, None)

    def get_measurement(self, measurement_id: int) -> MeasurementRecord | None:
        return self._one_measurement(m.Measurement.id == measurement_id)

    def measurement_of_file(self, sha256: str) -> MeasurementRecord | None:
        """The result measured from this file's content, if any."""
        return self._one_measurement(m.Measurement.file_sha256 == sha256)

    def _one_measurement(self, where: Any) -> MeasurementRecord | None:
        with self._read() as s:
            rows = self._measurement_rows(s, where)
            return _measurement_record(*rows[0]) if rows else None

    @staticmethod
    def _measurement_rows(s: Session, *where: Any) -> list[tuple[m.Measurement, str | None]]:
        """(measurement, latest review) pairs matching ``where``, by id, in one query."""
        query = select(m.Measurement, LATEST_REVIEW).where(*where).order_by(m.Measurement.id)
        return [(row, review) for row, review in s.execute(query)]

    def measurements(self, patient_id: str | None = None, *, include_blinded: bool = False) -> list[MeasurementRecord]:
        """Stored results (by id); results collected after the patient's randomization are left
        out unless ``include_blinded`` (callers audit such reads with :meth:`log_unblinded_read`)."""
        with self._read() as s:
            where = [] if patient_id is None else [m.Measurement.patient_id == patient_id]
            rows = self._measurement_rows(s, *where)
            randomized = self._randomizations(s)
            return [_measurement_record(r, review) for r, review in rows
                    if include_blinded or not is_blinded(r.collection_date, randomized.get(r.patient_id))]

    def blinded_measurements(self) -> list[MeasurementRecord]:
        """The results collected after their patient's randomization (by id)."""
        with self._read() as s:
            randomized = self._randomizations(s)
            rows = self._measurement_rows(s, m.Measurement.patient_id.in_(randomized))
            return [_measurement_record(r, review) for r, review in rows
                    if is_blinded(r.collection_date, randomized[r.patient_id])]

    def is_blinded(self, record: MeasurementRecord) -> bool:
        """Whether a result was collected after its patient's randomization."""
        patient = self.get_patient(record.patient_id)
        return patient is not None and is_blinded(record.collection_date, patient.randomized_at)

    def pending_measurements(self) -> list[MeasurementRecord]:
        """QC ``review`` results that no technician has decided yet (oldest first)."""
        with self._read() as s:
            rows = self._measurement_rows(s, m.Measurement.qc_status == "review", LATEST_REVIEW.is_(None))
            return [_measurement_record(r, review) for r, review in rows]

    @staticmethod
    def _randomizations(s: Session) -> dict[str, date | datetime]:
        rows = s.execute(select(m.Patient.patient_id, m.Patient.randomized_at)
                         .where(m.Patient.randomized_at.is_not(None)))
        return {pid: parse_date_or_datetime(at) for pid, at in rows}

    # -- reviews ------------------------------------------------------------------------------
    def record_review(self, measurement_id: int, decision: str, reason: str, actor: str,
                      *, today: date | None = None) -> ReviewRecord:
        """A technician's approve/reject of a QC ``review`` result; re-evaluates the patient."""
        if decision not in m.REVIEW_DECISIONS:
            raise ValueError(f"decision must be one of {m.REVIEW_DECISIONS}, not {decision!r}")
        if not reason.strip() or not actor.strip():
            raise ValueError("a review needs a reason and an actor")
        with self._write() as s:
            found = self._measurement_rows(s, m.Measurement.id == measurement_id)
            if not found:
                raise KeyError(f"no measurement {measurement_id}")
            meas, before = found[0]
            if meas.qc_status != "review":
                raise ValueError(f"measurement {measurement_id} has QC {meas.qc_status}; only QC review results are reviewed")
            row = m.ReviewDecision(measurement_id=measurement_id, decision=decision, reason=reason.strip(),
                                   actor=actor, decided_at=self.clock())
            s.add(row)
            s.flush()
            self._audit(s, actor, f"review_{decision}", "measurement", measurement_id,
                        {"review": before}, {"review": decision, "reason": row.reason})
            self._evaluate(s, meas.patient_id, today or self.today(), actor)
            return _review_record(row)

    def reviews(self, measurement_id: int) -> list[ReviewRecord]:
        with self._read() as s:
            rows = s.scalars(select(m.ReviewDecision).where(m.ReviewDecision.measurement_id == measurement_id)
                             .order_by(m.ReviewDecision.id))
            return [_review_record(r) for r in rows]

    # -- patients -----------------------------------------------------------------------------
    def upsert_patients(self, patients: Sequence[PatientFacts], *, actor: str = "registry",
                        today: date | None = None) -> ImportSummary:
        """Add or update registry rows in one transaction; unchanged rows write nothing.
        Every added or changed patient is re-evaluated."""
        added: list[str] = []
        changed: list[str] = []
        unchanged: list[str] = []
        with self._write() as s:
            for facts in patients:
                row = s.get(m.Patient, facts.patient_id)
                after = _patient_dict(facts)
                before = _patient_dict(patient_facts(row)) if row is not None else None
                if before == after:
                    unchanged.append(facts.patient_id)
                    continue
                if row is None:
                    row = m.Patient(patient_id=facts.patient_id)
                    s.add(row)
                    added.append(facts.patient_id)
                else:
                    changed.append(facts.patient_id)
                row.icu_admission = iso(facts.icu_admission) or ""
                row.sofa_24h = facts.sofa_24h
                row.mechanical_ventilation = facts.mechanical_ventilation
                row.exclusion = facts.exclusion
                row.randomized_at = iso(facts.randomized_at)
                row.updated = self.clock()
                s.flush()
                self._audit(s, actor, "upsert_patient", "patient", facts.patient_id, before, after)
                self._evaluate(s, facts.patient_id, today or self.today(), actor)
        return ImportSummary(tuple(added), tuple(changed), tuple(unchanged))

    def get_patient(self, patient_id: str) -> PatientFacts | None:
        with self._read() as s:
            row = s.get(m.Patient, patient_id)
            return patient_facts(row) if row is not None else None

    def patients(self) -> list[PatientFacts]:
        """Every registry row, by patient ID."""
        with self._read() as s:
            return [patient_facts(r) for r in s.scalars(select(m.Patient).order_by(m.Patient.patient_id))]

    def patient_ids(self) -> list[str]:
        """Every patient the store knows: registry rows, results, files awaiting calibration."""
        with self._read() as s:
            return self._patient_ids(s)

    @staticmethod
    def _patient_ids(s: Session) -> list[str]:
        ids = set(s.scalars(select(m.Patient.patient_id)))
        ids |= set(s.scalars(select(m.Measurement.patient_id).distinct()))
        ids |= {p for p in s.scalars(select(m.File.patient_id).where(m.File.status == "pending_calibration")) if p}
        return sorted(ids)

    # -- screening ----------------------------------------------------------------------------
    def evaluate_patient(self, patient_id: str, today: date | None = None, *,
                         actor: str = "pipeline") -> ScreeningRecord:
        """Evaluate one patient and store the decision when it changed (audited)."""
        with self._write() as s:
            return self._evaluate(s, patient_id, today or self.today(), actor)

    def evaluate_all(self, today: date | None = None, *, actor: str = "pipeline") -> list[ScreeningRecord]:
        """Evaluate every known patient (the window closes with time) in one transaction."""
        with self._write() as s:
            day = today or self.today()
            return [self._evaluate(s, pid, day, actor) for pid in self._patient_ids(s)]

    def screening(self) -> list[ScreeningRecord]:
        """The screening log: each patient's latest stored decision."""
        with self._read() as s:
            latest = (select(m.ScreeningDecision.patient_id, func.max(m.ScreeningDecision.id).label("id"))
                      .group_by(m.ScreeningDecision.patient_id).subquery())
            query = (_SCREENING_WITH_PATH.join(latest, m.ScreeningDecision.id == latest.c.id)
                     .order_by(m.ScreeningDecision.patient_id))
            return [_screening_record(r, path) for r, path in s.execute(query)]

    def screening_history(self, patient_id: str) -> list[ScreeningRecord]:
        with self._read() as s:
            query = (_SCREENING_WITH_PATH.where(m.ScreeningDecision.patient_id == patient_id)
                     .order_by(m.ScreeningDecision.id))
            return [_screening_record(r, path) for r, path in s.execute(query)]

    def _stored_screening(self, s: Session, row: m.ScreeningDecision) -> ScreeningRecord:
        original = self._original_file(s, row.file_sha256) if row.file_sha256 else None
        return _screening_record(row, original.path if original is not None else None)

    def _evaluate(self, s: Session, patient_id: str, today: date, actor: str) -> ScreeningRecord:
        patient_row = s.get(m.Patient, patient_id)
        patient = patient_facts(patient_row) if patient_row is not None else None
        results = [ResultFacts(r.collection_date, r.abc, r.qc_status, review, r.id, r.file_sha256)  # type: ignore[arg-type]
                   for r, review in self._measurement_rows(s, m.Measurement.patient_id == patient_id)]
        waiting = s.scalars(select(m.File).where(m.File.patient_id == patient_id,
                                                 m.File.status == "pending_calibration"))
        results += [ResultFacts(f.collection_date, None, "pending_calibration", None, None, f.sha256)
                    for f in waiting if f.collection_date is not None]
        decision = evaluate(patient_id, patient, results, today, self.rules)
        last = s.scalars(select(m.ScreeningDecision).where(m.ScreeningDecision.patient_id == patient_id)
                         .order_by(m.ScreeningDecision.id.desc()).limit(1)).first()
        after = {"status": decision.status, "reasons": list(decision.reasons),
                 "measurement_id": decision.measurement_id, "abc": decision.abc,
                 "icu_day": decision.icu_day, "file_sha256": decision.file}
        before = None if last is None else {
            "status": last.status, "reasons": list(last.reasons), "measurement_id": last.measurement_id,
            "abc": last.abc, "icu_day": last.icu_day, "file_sha256": last.file_sha256}
        if before == after and last is not None:
            return self._stored_screening(s, last)
        row = m.ScreeningDecision(patient_id=patient_id, status=decision.status, reasons=list(decision.reasons),
                                  measurement_id=decision.measurement_id, abc=decision.abc,
                                  icu_day=decision.icu_day, file_sha256=decision.file, evaluated_at=self.clock())
        s.add(row)
        s.flush()
        self._audit(s, actor, "screening_decision", "patient", patient_id, before, after)
        return self._stored_screening(s, row)

    # -- outbox -------------------------------------------------------------------------------
    def enqueue(self, sink: str, key: str, payload: dict[str, Any], *, actor: str = "pipeline") -> bool:
        """Queue a payload for a sink; False when this (sink, key) is already queued."""
        return self.enqueue_many([(sink, key, payload)], actor=actor) == 1

    def enqueue_many(self, items: Sequence[tuple[str, str, dict[str, Any]]], *, actor: str = "pipeline") -> int:
        """Queue (sink, key, payload) items in one transaction, each (sink, key) once; returns
        how many were added."""
        if not items:
            return 0
        with self._write() as s:
            keys = {key for _, key, _ in items}
            queued = set(s.execute(select(m.OutboxItem.sink, m.OutboxItem.idempotency_key)
                                   .where(m.OutboxItem.idempotency_key.in_(keys))).tuples())
            now = self.clock()
            added = 0
            for sink, key, payload in items:
                if (sink, key) in queued:
                    continue
                queued.add((sink, key))
                row = m.OutboxItem(sink=sink, idempotency_key=key, payload=chain.jsonable(payload), attempts=0,
                                   next_attempt=now, delivered_at=None, last_error=None, created=now)
                s.add(row)
                s.flush()
                self._audit(s, actor, "enqueue", "outbox", row.id, None, {"sink": sink, "key": key})
                added += 1
            return added

    def undelivered_count(self, sinks: Sequence[str]) -> int:
        """How many items of these sinks still wait for delivery (due or not)."""
        with self._read() as s:
            return s.scalar(select(func.count()).select_from(m.OutboxItem).where(
                m.OutboxItem.delivered_at.is_(None), m.OutboxItem.sink.in_(sinks))) or 0

    def due_outbox(self, now: datetime, sink: str | None = None) -> list[OutboxRecord]:
        """Undelivered items whose next attempt is due (oldest first)."""
        with self._read() as s:
            query = select(m.OutboxItem).where(m.OutboxItem.delivered_at.is_(None),
                                               m.OutboxItem.next_attempt <= now).order_by(m.OutboxItem.id)
            if sink is not None:
                query = query.where(m.OutboxItem.sink == sink)
            return [_outbox_record(r) for r in s.scalars(query)]

    def outbox(self, sink: str | None = None) -> list[OutboxRecord]:
        with self._read() as s:
            query = select(m.OutboxItem).order_by(m.OutboxItem.id)
            if sink is not None:
                query = query.where(m.OutboxItem.sink == sink)
            return [_outbox_record(r) for r in s.scalars(query)]

    def mark_delivered(self, item_id: int, now: datetime, *, attempts: int = 1, actor: str = "pipeline") -> None:
        with self._write() as s:
            row = s.get(m.OutboxItem, item_id)
            if row is None or row.delivered_at is not None:
                return
            row.attempts += attempts
            row.delivered_at, row.last_error = now, None
            s.flush()
            self._audit(s, actor, "delivered", "outbox", item_id, None,
                        {"sink": row.sink, "key": row.idempotency_key, "attempts": row.attempts})

    def mark_failed(self, item_id: int, error: str, next_attempt: datetime, *, attempts: int = 1,
                    actor: str = "pipeline") -> None:
        with self._write() as s:
            row = s.get(m.OutboxItem, item_id)
            if row is None or row.delivered_at is not None:
                return
            row.attempts += attempts
            row.last_error, row.next_attempt = error[:2000], next_attempt
            s.flush()
            self._audit(s, actor, "delivery_failed", "outbox", item_id, None,
                        {"sink": row.sink, "key": row.idempotency_key, "attempts": row.attempts,
                         "error": row.last_error, "next_attempt": next_attempt})

    # -- audit --------------------------------------------------------------------------------
    def log_unblinded_read(self, actor: str, action: str, patient_ids: Sequence[str], detail: dict[str, Any]) -> None:
        """Record that ``actor`` read post-randomization results (blinding is broken knowingly)."""
        if not actor.strip():
            raise ValueError("an unblinded read needs a named actor")
        with self._write() as s:
            self._audit(s, actor, action, "screening", ",".join(sorted(patient_ids)) or "-", None, detail)

    def audit_entries(self) -> list[chain.AuditEntry]:
        with self._read() as s:
            return [_audit_entry(r) for r in s.scalars(select(m.AuditLog).order_by(m.AuditLog.seq))]

    def verify_audit_chain(self) -> chain.ChainCheck:
        """Recompute the hash chain over the stored trail: detects edits, insertions, deletions."""
        return chain.verify_chain(self.audit_entries())


def _audit_entry(row: m.AuditLog) -> chain.AuditEntry:
    return chain.AuditEntry(row.seq, row.at, row.actor, row.action, row.entity, row.entity_id,
                            row.before, row.after, row.prev_hash, row.hash)


# A screening decision with the path of the original file it rests on (if any).
_SCREENING_WITH_PATH = select(m.ScreeningDecision, m.File.path).outerjoin(
    m.File, and_(m.File.sha256 == m.ScreeningDecision.file_sha256, m.File.status != "duplicate"))


def _screening_record(row: m.ScreeningDecision, path: str | None) -> ScreeningRecord:
    return ScreeningRecord(row.patient_id, row.status, tuple(row.reasons), row.measurement_id,
                           row.abc, row.icu_day, row.file_sha256, path, row.evaluated_at)


def _outbox_record(row: m.OutboxItem) -> OutboxRecord:
    return OutboxRecord(row.id, row.sink, row.idempotency_key, dict(row.payload), row.attempts,
                        row.next_attempt, row.delivered_at, row.last_error)
