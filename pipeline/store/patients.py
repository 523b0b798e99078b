"""Registry rows (clinical facts per pseudonymous patient); ISO text keeps date or date-time."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.eligibility import PatientFacts, parse_date_or_datetime
from pipeline.store import models as m
from pipeline.store.records import ImportSummary
from pipeline.store.tx import Transactions


def iso(value: date | datetime | None) -> str | None:
    """ISO text of a registry date or date-time (``None`` stays ``None``)."""
    return None if value is None else value.isoformat()


def patient_facts(row: m.Patient) -> PatientFacts:
    return PatientFacts(
        patient_id=row.patient_id, icu_admission=parse_date_or_datetime(row.icu_admission), sofa_24h=row.sofa_24h,
        mechanical_ventilation=row.mechanical_ventilation, exclusion=row.exclusion,
        randomized_at=parse_date_or_datetime(row.randomized_at) if row.randomized_at else None,
    )


def patient_dict(facts: PatientFacts) -> dict[str, Any]:
    return {"patient_id": facts.patient_id, "icu_admission": iso(facts.icu_admission),
            "sofa_24h": facts.sofa_24h, "mechanical_ventilation": facts.mechanical_ventilation,
            "exclusion": facts.exclusion, "randomized_at": iso(facts.randomized_at)}


def patient_ids(s: Session) -> list[str]:
    """Every patient the store knows: registry rows, results, files awaiting calibration."""
    ids = set(s.scalars(select(m.Patient.patient_id)))
    ids |= set(s.scalars(select(m.Measurement.patient_id).distinct()))
    ids |= {p for p in s.scalars(select(m.File.patient_id).where(m.File.status == "pending_calibration")) if p}
    return sorted(ids)


class Patients:
    """The ``patients`` table."""

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def upsert(self, patients: Sequence[PatientFacts], *, actor: str = "registry",
               today: date | None = None) -> ImportSummary:
        """Add or update registry rows in one transaction; unchanged rows write nothing.
        Every added or changed patient is re-evaluated."""
        added: list[str] = []
        changed: list[str] = []
        unchanged: list[str] = []
        with self.store.write(actor, today) as tx:
            s = tx.session
            for facts in patients:
                row = s.get(m.Patient, facts.patient_id)
                after = patient_dict(facts)
                before = patient_dict(patient_facts(row)) if row is not None else None
                if before == after:
                    unchanged.append(facts.patient_id)
                    continue
                if row is None:
                    row = m.Patient(patient_id=facts.patient_id)
                    added.append(facts.patient_id)
                else:
                    changed.append(facts.patient_id)
                row.icu_admission = iso(facts.icu_admission) or ""
                row.sofa_24h = facts.sofa_24h
                row.mechanical_ventilation = facts.mechanical_ventilation
                row.exclusion = facts.exclusion
                row.randomized_at = iso(facts.randomized_at)
                row.updated = tx.now()
                tx.save(row, "upsert_patient", "patient", before, after)
                tx.touch(facts.patient_id)
        return ImportSummary(tuple(added), tuple(changed), tuple(unchanged))

    def get(self, patient_id: str) -> PatientFacts | None:
        with self.store.read() as s:
            row = s.get(m.Patient, patient_id)
            return patient_facts(row) if row is not None else None

    def list(self) -> list[PatientFacts]:
        """Every registry row, by patient ID."""
        with self.store.read() as s:
            return [patient_facts(r) for r in s.scalars(select(m.Patient).order_by(m.Patient.patient_id))]

    def ids(self) -> list[str]:
        """Every patient the store knows: registry rows, results, files awaiting calibration."""
        with self.store.read() as s:
            return patient_ids(s)
