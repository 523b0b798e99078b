"""One exported result: a measurement with its review, ICU day and the patient's screening status,
delivered as numbered versions of one record.

A result's ``content`` (:func:`result_payload`) is digested (:func:`content_digest`); when the
digest changes (a technician decides, the screening status moves) the result gets a new version,
with the same ``result_id`` (the file's SHA-256: the FHIR Observation's id and identifier). Each
version carries its lifecycle ``status`` (FHIR R4 ObservationStatus, :func:`lifecycle_status`) and
is delivered once per sink under its own idempotency key (:func:`version_key`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.audit import canonical_json
from pipeline.eligibility import (PatientFacts, ResultFacts, Rules, below_threshold, icu_day, in_window,
                                  is_decisive)
from pipeline.store.records import ScreeningRecord, StoredMeasurement
from pipeline.store.signatures import SignatureRecord

SCHEMA = "mhladr.result/1"


def result_payload(stored: StoredMeasurement, patient: PatientFacts | None,
                   screening: ScreeningRecord | None, rules: Rules,
                   signature: SignatureRecord | None = None) -> dict[str, Any]:
    """The JSON document pushed for one measurement (no volatile fields such as send time);
    ``signature``: the electronic signature of its review decision, when signed (the key is
    absent otherwise, so results without one keep their content digest)."""
    meas = stored.measurement
    collected = stored.collection_date
    day = icu_day(patient.icu_admission, collected) if patient is not None else meas.icu_day
    facts = ResultFacts(collected, meas.abc, meas.qc.status, stored.review)  # type: ignore[arg-type]
    usable = meas.qc.status != "fail" and stored.review != "reject"
    payload: dict[str, Any] = {
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


def content_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a result's canonical content (what makes a new version when it changes)."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def version_key(result_id: str, version: int) -> str:
    """The idempotency key of one version of one result: ``mhladr-<result id>-v<version>``."""
    return f"mhladr-{result_id}-v{version}"


# What the Observation itself says: a version that changes none of these (e.g. only the patient's
# screening status moved) keeps the previous version's status.
OBSERVED = ("patient_id", "collection_date", "abc", "abc_interval", "below_threshold", "threshold", "category",
            "qc", "review", "signature")


def lifecycle_status(content: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """The FHIR R4 ObservationStatus of a result's next version (hl7.org/fhir/R4/valueset-observation-status):
    ``preliminary`` while a QC review result awaits its technician; ``final`` once usable (QC
    pass, or approved); ``cancelled`` when withdrawn (QC fail, or rejected); ``amended`` when a
    result released as final or cancelled changes afterwards (e.g. a superseding decision)."""
    if content["qc"]["status"] == "fail" or content.get("review") == "reject":
        return "cancelled"
    if content["qc"]["status"] == "review" and content.get("review") is None:
        return "preliminary"
    if previous is None or previous["status"] == "preliminary":
        return "final"
    if all(previous.get(k) == content.get(k) for k in OBSERVED):
        return previous["status"]
    return "amended"


def versioned(content: dict[str, Any], previous: dict[str, Any] | None, version: int) -> dict[str, Any]:
    """The payload delivered for version ``version`` of a result (``previous``: the payload of
    the version before, if any)."""
    return {**content, "result_id": content["file_sha256"], "version": version,
            "status": lifecycle_status(content, previous)}
