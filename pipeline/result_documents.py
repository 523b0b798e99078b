"""What ``mhladr run`` shows for each file: :class:`FileResult`, and the documents of a stored
bead calibration or patient result (with its report's path and the next step for a person)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import next_steps
from pipeline.bead_calibration import calibration_document
from pipeline.blinding import withheld_document, withheld_reasons
from pipeline.measurement import measurement_document
from pipeline.report.layout import report_path
from pipeline.store import StoredCalibration, StoredMeasurement


@dataclass(frozen=True)
class FileResult:
    """What became of one file (one entry of ``mhladr run``'s ``files``)."""

    file: str
    sha256: str
    kind: str
    status: str          # calibrated | measured | pending_calibration | qc_fail | rejected | duplicate
    reasons: tuple[str, ...]
    patient_id: str | None
    fields: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {**self.fields, "file": self.file, "sha256": self.sha256, "kind": self.kind,
                "status": self.status, "reasons": list(self.reasons), "patient_id": self.patient_id}


def bead_result(reports_dir: Path, file: str, stored: StoredCalibration, status: str,
                reasons: tuple[str, ...]) -> FileResult:
    """A stored bead calibration as ``mhladr run`` shows it."""
    document = calibration_document(stored.calibration, file)
    document.update(id=stored.id, report=str(report_path(reports_dir, file, stored.calibration.key.sha256 or "")))
    step = next_steps.after_beads(stored.calibration.qc.status)
    return FileResult(file, stored.calibration.key.sha256 or "", "beads", status,
                      reasons + ((f"next: {step}",) if step else ()), None, document)


def sample_result(reports_dir: Path, stored: StoredMeasurement, status: str, reasons: tuple[str, ...], *,
                  bead_path: str | None, blinded: bool) -> FileResult:
    """A stored measurement as ``mhladr run`` shows it (``blinded``: collected after its
    patient's randomization, the value is withheld)."""
    meas = stored.measurement
    cal = stored.measurement.calibration
    calibration = {"id": stored.calibration_id, **(calibration_document(cal, bead_path)
                                                  if cal is not None else {})}
    fields = measurement_document(meas, calibration)
    fields.update(measurement_id=stored.id, review=stored.review,
                  report=str(report_path(reports_dir, meas.file, meas.sha256)))
    step = next_steps.after_measurement(stored.id, meas.qc.status, stored.review)
    reasons = reasons + ((f"next: {step}",) if step else ())
    if blinded:
        fields, reasons = withheld_document(fields), withheld_reasons(reasons)
    return FileResult(meas.file, meas.sha256, "sample", status, reasons, meas.patient_id, fields)
