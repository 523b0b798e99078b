"""FHIR R4 Observation files, validated with ``fhir.resources.R4B`` (fhir.resources 8 defaults
to R5; R4B is the R4-compatible model set it ships).

Coding: no LOINC code is known to us for mHLA-DR expressed in AB/C, so the code carries a local
system plus ``text`` (FHIR allows text-only codes); the value uses a UCUM unit with
annotations, ``{antibodies}/{cell}``; a value below the trial cut-off is interpreted ``L``
(HL7 v3 ObservationInterpretation); the subject is the pseudonymous study ID as an identifier.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.observation import Observation

from pipeline.sinks import Sink, SinkError

LOCAL_CODES = "urn:mhladr:code"
PATIENT_IDS = "urn:mhladr:patient-id"
UCUM = "http://unitsofmeasure.org"
UNIT = "{antibodies}/{cell}"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def observation(key: str, payload: dict[str, Any]) -> Observation:
    """The Observation for one result payload (see :mod:`pipeline.sinks.payload`)."""
    qc = payload["qc"]
    rejected = qc["status"] == "fail" or payload.get("review") == "reject"
    awaiting = qc["status"] == "review" and payload.get("review") is None
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:mhladr:result", "value": key}],
        "status": "cancelled" if rejected else ("preliminary" if awaiting else "final"),
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOCAL_CODES, "code": "mhla-dr-abc",
                             "display": "Monocyte HLA-DR (AB/C)"}],
                 "text": "Monocyte HLA-DR (AB/C)"},
        "subject": {"identifier": {"system": PATIENT_IDS, "value": payload["patient_id"]}},
        "effectiveDateTime": payload["collection_date"],
        "note": [{"text": f"QC {qc['status']}" + (f": {'; '.join(qc['reasons'])}" if qc["reasons"] else "")
                  + (f"; review {payload['review']}" if payload.get("review") else "")}],
    }
    if rejected or payload.get("abc") is None:
        body["dataAbsentReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "error"}]}
    else:
        body["valueQuantity"] = {"value": round(float(payload["abc"]), 1), "unit": UNIT,
                                 "system": UCUM, "code": UNIT}
        body["referenceRange"] = [{"low": {"value": payload["threshold"], "unit": UNIT, "system": UCUM,
                                           "code": UNIT},
                                   "text": "trial cut-off: below = PAIS inclusion criterion"}]
        if payload.get("below_threshold"):
            body["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": "L", "display": "Low"}]}]
    return Observation.model_validate(body)


class FhirSink(Sink):
    name = "fhir"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        """Write ``<key>.json`` atomically (rename); rewriting the same key is harmless."""
        try:
            resource = observation(key, payload)
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / f"{key}.json"
            tmp = target.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(json.loads(resource.model_dump_json()), indent=2), encoding="utf-8")
            tmp.replace(target)
        except (OSError, ValueError) as exc:
            raise SinkError(f"fhir {self.folder}: {exc}") from exc
