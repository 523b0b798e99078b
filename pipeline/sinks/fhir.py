"""FHIR R4 Observation files, validated with ``fhir.resources.R4B`` (fhir.resources 8 defaults
to R5; R4B is the R4-compatible model set it ships).

One Observation per result, updated in place: ``<result id>.json`` keeps the same ``id`` and
``identifier`` across versions; ``meta.versionId`` counts the versions and ``status`` follows the
result's lifecycle (preliminary -> final, cancelled when withdrawn, amended when changed after
release; :func:`pipeline.sinks.payload.lifecycle_status`). An older version never overwrites a
newer one.

Coding: no LOINC code is known to us for mHLA-DR expressed in AB/C, so the code carries a local
system plus ``text`` (FHIR allows text-only codes); the value uses a UCUM unit with
annotations, ``{antibodies}/{cell}``; a value below the trial cut-off is interpreted ``L``
(HL7 v3 ObservationInterpretation); the subject is the pseudonymous study ID as an identifier.
Beside the value, ``component`` entries (local codes, FHIR R4 Observation.component) carry
``mhla-dr-p-below-cutoff`` (p_below_threshold, unit 1), ``mhla-dr-near-cutoff`` (near_cutoff,
valueBoolean) and ``mhla-dr-positive-percent`` (% HLA-DR+ monocytes, UCUM ``%``); a value near
the cut-off also gets the interpretation text "near the cut-off".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.observation import Observation

from pipeline.sinks import Sink, SinkError

RESULT_IDS = "urn:mhladr:result"
LOCAL_CODES = "urn:mhladr:code"
PATIENT_IDS = "urn:mhladr:patient-id"
UCUM = "http://unitsofmeasure.org"
UNIT = "{antibodies}/{cell}"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SIGNATURE = "urn:mhladr:extension:review-signature"     # 21 CFR Part 11 §11.50 manifestation


def signature_extension(signature: dict[str, str] | None) -> dict[str, Any]:
    """The review decision's electronic signature as an Observation extension (:data:`SIGNATURE`):
    ``signer`` (the printed name), ``when`` (UTC) and ``meaning``; ``unsigned`` = true in
    single-user mode. (FHIR R4's own Signature type lives on Provenance; this keeps the manifestation
    on the one resource each result is.)"""
    if signature is None:
        return {"url": SIGNATURE, "extension": [{"url": "unsigned", "valueBoolean": True}]}
    return {"url": SIGNATURE, "extension": [{"url": "signer", "valueString": signature["user"]},
                                            {"url": "when", "valueDateTime": signature["signed_at"]},
                                            {"url": "meaning", "valueString": signature["meaning"]}]}


def observation(payload: dict[str, Any]) -> Observation:
    """The Observation for one version of a result (see :mod:`pipeline.sinks.payload`)."""
    qc = payload["qc"]
    withdrawn = payload["status"] == "cancelled"
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": payload["result_id"],
        "meta": {"versionId": str(payload["version"])},
        "identifier": [{"system": RESULT_IDS, "value": payload["result_id"]}],
        "status": payload["status"],
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOCAL_CODES, "code": "mhla-dr-abc",
                             "display": "Monocyte HLA-DR (AB/C)"}],
                 "text": "Monocyte HLA-DR (AB/C)"},
        "subject": {"identifier": {"system": PATIENT_IDS, "value": payload["patient_id"]}},
        "effectiveDateTime": payload["collection_date"],
        "note": [{"text": f"QC {qc['status']}" + (f": {'; '.join(qc['reasons'])}" if qc["reasons"] else "")
                  + (f"; review {payload['review']}" if payload.get("review") else "")}],
    }
    if payload.get("review"):
        body["extension"] = [signature_extension(payload.get("signature"))]
    if withdrawn or payload.get("abc") is None:
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
        if payload.get("near_cutoff"):
            body.setdefault("interpretation", []).append({"text": "near the cut-off: P(true AB/C below it) "
                                                                  f"{payload['p_below_threshold']:.2f}"})
        body["component"] = components(payload)
    return Observation.model_validate(body)


def components(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The call near the cut-off and % HLA-DR+ monocytes as Observation components."""
    def code(local: str, text: str) -> dict[str, Any]:
        return {"coding": [{"system": LOCAL_CODES, "code": local, "display": text}], "text": text}
    out: list[dict[str, Any]] = []
    if payload.get("p_below_threshold") is not None:
        out.append({"code": code("mhla-dr-p-below-cutoff", "Probability that the true AB/C is below the cut-off"),
                    "valueQuantity": {"value": round(float(payload["p_below_threshold"]), 4), "unit": "1",
                                      "system": UCUM, "code": "1"}})
    if payload.get("near_cutoff") is not None:
        out.append({"code": code("mhla-dr-near-cutoff", "AB/C near the cut-off"),
                    "valueBoolean": bool(payload["near_cutoff"])})
    if payload.get("hla_dr_positive_percent") is not None:
        out.append({"code": code("mhla-dr-positive-percent", "HLA-DR positive monocytes (%)"),
                    "valueQuantity": {"value": round(float(payload["hla_dr_positive_percent"]), 1), "unit": "%",
                                      "system": UCUM, "code": "%"}})
    return out


def stored_version(path: Path) -> int:
    """The ``meta.versionId`` of an Observation file (0 when there is none)."""
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text(encoding="utf-8")).get("meta", {}).get("versionId", 0))


class FhirSink(Sink):
    name = "fhir"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, result_id: str) -> Path:
        return self.folder / f"{result_id}.json"

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        """Write ``<result id>.json`` atomically (rename), unless the file holds this version or
        a newer one already (delivering a version twice is harmless)."""
        try:
            resource = observation(payload)
            target = self.path(payload["result_id"])
            if stored_version(target) >= payload["version"]:
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(json.loads(resource.model_dump_json()), indent=2), encoding="utf-8")
            tmp.replace(target)
        except (OSError, ValueError, KeyError) as exc:
            raise SinkError(f"fhir {self.folder}: {exc}") from exc
