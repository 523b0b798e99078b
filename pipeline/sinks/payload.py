"""One exported result: a measurement with its review, ICU day and the patient's screening status.

A result's ``content`` (:func:`result_payload`) is delivered as numbered versions of one record;
the versioning (digest, lifecycle status, idempotency key) lives with the outbox
(:mod:`pipeline.store.outbox`).
"""

from __future__ import annotations

from typing import Any

from pipeline.eligibility import (PatientFacts, ResultFacts, Rules, below_threshold, icu_day, in_window,
                                  is_decisive)
from pipeline.store.records import ScreeningRecord, StoredMeasurement

SCHEMA = "mhladr.result/1"


def result_payload(stored: StoredMeasurement, patient: PatientFacts | None,
                   screening: ScreeningRecord | None, rules: Rules) -> dict[str, Any]:
    """The JSON document pushed for one measurement (no volatile fields such as send time)."""
    meas = stored.measurement
    collected = stored.collection_date
    day = icu_day(patient.icu_admission, collected) if patient is not None else meas.icu_day
    facts = ResultFacts(collected, meas.abc, meas.qc.status, stored.review)  # type: ignore[arg-type]
    usable = meas.qc.status != "fail" and stored.review != "reject"
    return {
        "schema": SCHEMA,
        "patient_id": stored.patient_id,
        "measurement_id": stored.id,
        "file_sha256": meas.sha256,
        "collection_date": collected.isoformat(),
        "icu_day": day,
        "in_window": in_window(day, rules),
        "abc": meas.abc if usable else None,
        "abc_interval": list(meas.abc_interval) if usable and meas.abc_interval else None,
        "below_threshold": below_threshold(meas.abc, meas.qc.status, rules) if usable else None,
        "threshold": rules.abc_threshold,
        "category": meas.category if usable else None,
        "monocytes": meas.monocytes,
        "qc": {"status": meas.qc.status, "reasons": list(meas.qc.reasons)},
        "review": stored.review,
        "decisive": is_decisive(facts),
        "screening_status": screening.status if screening is not None else None,
        "software_version": meas.software_version,
    }
