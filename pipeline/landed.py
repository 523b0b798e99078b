"""The files that landed on a day, whatever became of them (the console's Files page and
``GET /api/files``), and the audited reprocess of one of them (``POST /api/files/{id}/reprocess``).

Status is the ``run`` status of the file (DESIGN.md, Interfaces) plus ``quarantined``: a rejected
file that the inbox watcher moved to ``quarantine/``. ``next`` is the file's ``next: ...`` step
(:mod:`pipeline.next_steps`), or the review step of a measurement that waits for a technician.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fcsio.segments import sha256_file
from pipeline import next_steps
from pipeline.errors import BAD_INPUT, InputError
from pipeline.lots import SORTED_INTO
from pipeline.processing import Processor
from pipeline.reprocess import reprocess
from pipeline.result_documents import FileResult
from pipeline.store import Store
from pipeline.store.records import FileRecord

QUARANTINE_FOLDER = "quarantine"
NEXT = "next: "
REPROCESSABLE = ("rejected",)
REPLACED = "replaced by new content"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The lab's local calendar day as an aware [start, end) interval."""
    start = datetime.combine(day, time.min).astimezone()
    return start, datetime.combine(day + timedelta(days=1), time.min).astimezone()


def shown_status(rec: FileRecord) -> str:
    """The ``run`` status, or ``quarantined`` for a rejected file the watcher moved aside."""
    if rec.status == "rejected" and Path(rec.path).parent.name == QUARANTINE_FOLDER:
        return "quarantined"
    return rec.status


def file_row(store: Store, rec: FileRecord) -> dict[str, Any]:
    """One file as ``GET /api/files`` shows it (plus ``measurement_id`` / ``review`` of a patient tube)."""
    reasons = [r for r in rec.reasons if not r.startswith(NEXT)]
    step = next((r[len(NEXT):] for r in rec.reasons if r.startswith(NEXT)), None)
    qc, measurement_id, review = None, None, None
    if rec.kind == "sample" and rec.status in ("measured", "qc_fail"):
        stored = store.measurements.of_file(rec.sha256)
        if stored is not None:
            qc, measurement_id, review = stored.qc.status, stored.id, stored.review
            step = step or next_steps.after_measurement(stored.id, stored.qc.status, stored.review)
    elif rec.kind == "beads" and rec.status in ("calibrated", "qc_fail"):
        cals = store.calibrations.of_file(rec.sha256)
        qc = cals[0].calibration.qc.status if cals else None
    if rec.status == "pending_calibration":
        step = step or next_steps.PENDING_CALIBRATION
    if not reprocessable(rec) and rec.status in REPROCESSABLE:
        step = None                          # replaced by its fixed content: nothing left to do here
    return {"id": rec.id, "file": Path(rec.path).name, "path": rec.path, "sha256": rec.sha256, "kind": rec.kind,
            "status": shown_status(rec), "qc": qc, "reasons": reasons, "next": step,
            "patient_id": rec.patient_id, "landed_at": rec.first_seen.isoformat(),
            "measurement_id": measurement_id, "review": review,
            "reprocessable": reprocessable(rec)}


def reprocessable(rec: FileRecord) -> bool:
    """A rejected file not yet replaced by its fixed content."""
    return rec.status in REPROCESSABLE and not any(r.startswith(REPLACED) for r in rec.reasons)


def landed_files(store: Store, day: date) -> list[dict[str, Any]]:
    """Every file first seen on ``day`` (lab local time), in landing order."""
    return [file_row(store, rec) for rec in store.files.landed(*day_bounds(day))]


def inbox_of(path: Path) -> Path:
    """The inbox a file belongs to (the folder above ``processed/`` or ``quarantine/``)."""
    folder = path.parent
    return folder.parent if folder.name in SORTED_INTO else folder


def reprocess_file(processor: Processor, file_id: int, *, reason: str, actor: str
                   ) -> tuple[FileResult, list[FileResult]]:
    """Run a rejected (or quarantined) file again once it is fixed, for ``actor`` (the one store
    step behind the console's Reprocess button; a signature attaches here). When the file at its
    path was replaced (e.g. a truncated copy by the complete export), the new content is processed
    as a file of its own and the rejected record says so; either way who asked and why are audited.
    Returns the file's new result and the samples a new calibration finished. ``KeyError``: no
    such file; ``InputError``: not reprocessable."""
    rec = processor.store.files.get(file_id)
    if rec is None:
        raise KeyError(file_id)
    if not reprocessable(rec):
        raise InputError(rec.path, BAD_INPUT, f"only rejected or quarantined files are reprocessed "
                                              f"(this one is {rec.status})")
    path = Path(rec.path)
    if not path.is_file():
        raise InputError(rec.path, BAD_INPUT, "the file is no longer here: put the fixed file back at this path")
    now = sha256_file(path)
    if now == rec.sha256:
        result = reprocess(processor, rec.sha256, reason=reason, actor=actor)
    else:
        note = f"{REPLACED} {now[:12]} at this path; reprocessed by {actor}: {reason}"
        processor.store.files.update(rec.sha256, rec.status, (*rec.reasons, note), actor=actor)
        result = processor.process(path)
    finished = processor.finish_pending() if result.status == "calibrated" else []
    processor.reports(finished)
    return result, finished
