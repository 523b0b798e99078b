"""Screening decisions: a patient's status is appended whenever its evaluation changes (the
latest row is the current one); the rules themselves are :func:`pipeline.eligibility.evaluate`."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from pipeline.eligibility import ResultFacts, evaluate
from pipeline.store import files
from pipeline.store import models as m
from pipeline.store import patients as registry
from pipeline.store.measurements import LATEST_REVIEW, latest_versions
from pipeline.store.records import ScreeningRecord
from pipeline.store.tx import Transactions, Tx


# A screening decision with the path of the original file it rests on (if any).
_WITH_PATH = select(m.ScreeningDecision, m.File.path).outerjoin(
    m.File, and_(m.File.sha256 == m.ScreeningDecision.file_sha256, m.File.status != "duplicate"))


def screening_record(row: m.ScreeningDecision, path: str | None) -> ScreeningRecord:
    return ScreeningRecord(row.patient_id, row.status, tuple(row.reasons), row.measurement_id,
                           row.abc, row.icu_day, row.file_sha256, path, row.evaluated_at)


def _with_path(s: Session, row: m.ScreeningDecision) -> ScreeningRecord:
    first = files.original(s, row.file_sha256) if row.file_sha256 else None
    return screening_record(row, first.path if first is not None else None)


def evaluate_in(tx: Tx, patient_id: str) -> ScreeningRecord:
    """Evaluate one patient for ``tx.today`` and append the decision when it changed (audited)."""
    s = tx.session
    patient_row = s.get(m.Patient, patient_id)
    patient = registry.patient_facts(patient_row) if patient_row is not None else None
    query = select(m.Measurement.id, m.Measurement.collection_date, m.Measurement.abc,
                   m.Measurement.qc_status, m.Measurement.file_sha256, LATEST_REVIEW, m.Measurement.gates) \
        .where(m.Measurement.patient_id == patient_id).order_by(m.Measurement.id)
    found = list(s.execute(query))
    later = latest_versions(s, [mid for mid, *_ in found])     # a gate correction's values are current

    def call(gates: dict) -> dict:
        return gates.get("call") or {}

    results = [ResultFacts(collected, later[mid].abc if mid in later else abc,  # type: ignore[arg-type]
                           later[mid].qc_status if mid in later else qc, review, mid, sha,
                           call(later[mid].gates if mid in later else gates).get("p_below_threshold"),
                           call(later[mid].gates if mid in later else gates).get("near_cutoff"))
               for mid, collected, abc, qc, sha, review, gates in found]
    waiting = s.scalars(select(m.File).where(m.File.patient_id == patient_id,
                                             m.File.status == "pending_calibration"))
    results += [ResultFacts(f.collection_date, None, "pending_calibration", None, None, f.sha256)
                for f in waiting if f.collection_date is not None]
    decision = evaluate(patient_id, patient, results, tx.today, tx.store.rules)
    last = s.scalars(select(m.ScreeningDecision).where(m.ScreeningDecision.patient_id == patient_id)
                     .order_by(m.ScreeningDecision.id.desc()).limit(1)).first()
    after = {"status": decision.status, "reasons": list(decision.reasons),
             "measurement_id": decision.measurement_id, "abc": decision.abc,
             "icu_day": decision.icu_day, "file_sha256": decision.file}
    before = None if last is None else {
        "status": last.status, "reasons": list(last.reasons), "measurement_id": last.measurement_id,
        "abc": last.abc, "icu_day": last.icu_day, "file_sha256": last.file_sha256}
    if before == after and last is not None:
        return _with_path(s, last)
    row = m.ScreeningDecision(patient_id=patient_id, status=decision.status, reasons=list(decision.reasons),
                              measurement_id=decision.measurement_id, abc=decision.abc,
                              icu_day=decision.icu_day, file_sha256=decision.file, evaluated_at=tx.now())
    tx.save(row, "screening_decision", "patient", before, after, entity_id=patient_id)
    return _with_path(s, row)


class Screening:
    """The ``screening_decisions`` table (the screening log)."""

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def evaluate(self, patient_id: str, today: date | None = None, *, actor: str = "pipeline") -> ScreeningRecord:
        """Evaluate one patient and store the decision when it changed (audited)."""
        with self.store.write(actor, today) as tx:
            return evaluate_in(tx, patient_id)

    def evaluate_all(self, today: date | None = None, *, actor: str = "pipeline") -> list[ScreeningRecord]:
        """Evaluate every known patient (the window closes with time) in one transaction."""
        with self.store.write(actor, today) as tx:
            return [evaluate_in(tx, pid) for pid in registry.patient_ids(tx.session)]

    def log(self) -> list[ScreeningRecord]:
        """The screening log: each patient's latest stored decision."""
        with self.store.read() as s:
            latest = (select(m.ScreeningDecision.patient_id, func.max(m.ScreeningDecision.id).label("id"))
                      .group_by(m.ScreeningDecision.patient_id).subquery())
            query = (_WITH_PATH.join(latest, m.ScreeningDecision.id == latest.c.id)
                     .order_by(m.ScreeningDecision.patient_id))
            return [screening_record(r, path) for r, path in s.execute(query)]

    def history(self, patient_id: str) -> list[ScreeningRecord]:
        with self.store.read() as s:
            query = (_WITH_PATH.where(m.ScreeningDecision.patient_id == patient_id)
                     .order_by(m.ScreeningDecision.id))
            return [screening_record(r, path) for r, path in s.execute(query)]
