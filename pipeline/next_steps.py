"""What a person does next about a file's outcome: one sentence per cause, shown as the last
``next: ...`` reason of the file (run and watch output, quarantine reason files, reports).

A re-run never touches a file it already processed (DESIGN.md, Interfaces: ``run``), so a cause
fixed outside the file (a lot added to the table, a file renamed) is taken up by the audited
``mhladr reprocess``; a cause inside the file needs a new export, which is new content and is
processed by the next run.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.acquisition import Header
from pipeline.errors import (BAD_INPUT, BAD_LOT, CORRUPT, NO_BEADS, NO_EVENTS, NOT_FCS, TRUNCATED, UNSUPPORTED,
                             WRONG_PANEL, InputError)
from pipeline.lots import LOTS_FILE

UNKNOWN_KIND = ("neither a bead tube nor a patient tube: no pseudonymous PATIENT ID or BEAD LOT keyword and "
                "no PT-####/BEADS_ file name")
NO_COLLECTION_DATE = "no collection date (COLLECTION DATE keyword or $DATE)"
PENDING_CALIBRATION = ("put the bead tube of that instrument, PE voltage and day in the inbox: this sample is "
                       "finished by the run that processes it")
AFTER_RENAME = "then: mhladr reprocess NEW_PATH --reason TEXT"
RENAME = ("rename the file PT-####_D##_HLADR.fcs (patient tube) or BEADS_<date>_lot<NAME>.fcs (bead tube), "
          + AFTER_RENAME)
RE_EXPORT = "export the tube again from the cytometer and put the new export in the inbox"
BY_CODE = {
    NOT_FCS: "this is not an FCS file: take it out of the inbox",
    TRUNCATED: "copy the complete file into the inbox again (an unfinished copy), or " + RE_EXPORT,
    CORRUPT: RE_EXPORT,
    UNSUPPORTED: RE_EXPORT + " (FCS 3.0 or 3.1)",
    NO_EVENTS: "the tube holds no events: acquire it again",
    WRONG_PANEL: "not an mHLA-DR tube (CD14 PerCP-Cy5.5 + HLA-DR PE): check the panel; nothing to reprocess",
    NO_BEADS: "check the bead tube (mixing, PE voltage) and acquire a new one; its day's samples wait for it",
}


def reprocess(file: str | Path) -> str:
    return f"then: mhladr reprocess {file} --reason TEXT"


def after_rejection(err: InputError, file: str | Path, header: Header | None, lots_path: Path | None) -> str:
    """The next step for a file rejected with ``err``."""
    if err.code == BAD_LOT and header is not None and header.bead_lot:
        table = lots_path or f"a {LOTS_FILE} in the inbox"
        return f"add lot {header.bead_lot} to {table} (or correct the table), {reprocess(file)}"
    if err.code == BAD_LOT:
        return f"name the lot: rename the file BEADS_<date>_lot<NAME>.fcs, {AFTER_RENAME}"
    if err.code == BAD_INPUT and err.message == UNKNOWN_KIND:
        return RENAME
    if err.code == BAD_INPUT and err.message == NO_COLLECTION_DATE:
        return "set COLLECTION DATE (or $DATE) at the cytometer and " + RE_EXPORT
    return BY_CODE.get(err.code, f"fix the cause above, {reprocess(file)}")


def after_measurement(measurement_id: int, qc_status: str, review: str | None) -> str | None:
    """The next step for a stored patient tube result (None when it needs nobody)."""
    if qc_status == "review" and review is None:
        return f"QC review: approve or reject with mhladr review approve|reject {measurement_id} --reason TEXT"
    if qc_status == "fail":
        return ("QC fail: this value is not used for screening; see the QC reasons and the report, and acquire "
                "a new tube of this patient if the window is still open")
    return None


def after_beads(qc_status: str) -> str | None:
    """The next step for a stored bead calibration (None when it needs nobody)."""
    if qc_status == "fail":
        return ("QC fail: these beads are not used; that day's samples wait for a passing bead tube of the same "
                "instrument and PE voltage: acquire one and put it in the inbox")
    return None
