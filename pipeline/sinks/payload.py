"""One exported result: a measurement with its review, ICU day and the patient's screening status.

A result's ``content`` (:func:`result_payload`) is delivered as numbered versions of one record;
the versioning (digest, lifecycle status, idempotency key) lives with the outbox
(:mod:`pipeline.store.outbox`).
"""

from __future__ import annotations

from typing import Any

from pipeline.eligibility import ResultFacts, Rules, is_decisive
from pipeline.store.records import ScreeningRecord, StoredMeasurement
from pipeline.store.signatures import SignatureRecord

SCHEMA = "mhladr.result/1"


def result_payload(stored: StoredMeasurement, screening: ScreeningRecord | None, rules: Rules,
                   signature: SignatureRecord | None = None) -> dict[str, Any]:
    """The JSON document pushed for one measurement (no volatile fields such as send time). Its
    ICU day, window and cut-off are the store's, derived from the stored facts when it was read
    (:func:`pipeline.eligibility.result_rules`), never computed here. ``signature``: the
    electronic signature of its review decision, when signed (the key is absent otherwise, so
    results without one keep their content digest)."""
    meas = stored.measurement
    collected = stored.collection_date
    facts = ResultFacts(collected, meas.abc, meas.qc.status, stored.review)  # type: ignore[arg-type]
    usable = meas.qc.status != "fail" and stored.review != "reject"
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "patient_id": stored.patient_id,
        "measurement_id": stored.id,
        "file_sha256": meas.sha256,
        "collection_date": collected.isoformat(),
        "icu_day": meas.icu_day,
        "in_window": meas.in_window,
        "abc": meas.abc if usable else None,
        "abc_interval": list(meas.abc_interval) if usable and meas.abc_interval else None,
        "below_threshold": meas.below_threshold if usable else None,
        "threshold": rules.abc_threshold,
        "category": meas.category if usable else None,
        "p_below_threshold": meas.p_below_threshold if usable else None,
        "near_cutoff": meas.near_cutoff if usable else None,
        "hla_dr_positive_percent": meas.hla_dr_positive_percent if usable else None,
        "monocytes": meas.monocytes,
        "qc": {"status": meas.qc.status, "reasons": list(meas.qc.reasons)},
        "review": stored.review,
        "decisive": is_decisive(facts),
        "screening_status": screening.status if screening is not None else None,
        "software_version": meas.software_version,
    }
    if signature is not None:
        payload["signature"] = signature.manifestation()
    return payload
