"""``mhladr results [--patient ID | --file PATH|SHA256]``: the stored result of each file, with its
report.

One row per file the results database has seen: bead tubes with their calibration, patient
tubes with their AB/C, QC and review, and files that wait or were rejected with what to do
next. Values of samples collected after the patient's randomization, and their reports, are
withheld (blinding, as in ``mhladr screening``) unless ``--unblinded --actor NAME`` (audited).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.common import add_json, command
from app.identity import add_acting

if TYPE_CHECKING:
    from pipeline.store import FileRecord, StoredCalibration, StoredMeasurement, Store

WITHHELD = "withheld (collected after randomization)"


def _sample(mm: "StoredMeasurement", post_randomization: bool, withheld: bool, report: Path | None,
            signature: dict[str, str] | None = None) -> dict[str, Any]:
    """A patient tube's fields; a withheld one keeps only what cannot unblind (no value, no QC
    reasons, which may quote fluorescence, no report)."""
    from pipeline.next_steps import after_measurement

    meas = mm.measurement
    shown = not withheld
    qc = meas.qc.as_dict() if shown else {"status": meas.qc.status, "reasons": []}
    return {"measurement_id": mm.id, "version": mm.version, "icu_day": meas.icu_day, "qc": qc, "review": mm.review,
            "signature": signature,
            "next_step": after_measurement(mm.id, meas.qc.status, mm.review),
            "post_randomization": post_randomization, "blinded": withheld,
            "abc": meas.abc if shown else None,
            "abc_interval": list(meas.abc_interval) if shown and meas.abc_interval else None,
            "category": meas.category if shown else None,
            "below_threshold": meas.below_threshold if shown and meas.qc.status != "fail" else None,
            "report": str(report) if shown and report else None}


def _beads(cal: "StoredCalibration", report: Path | None) -> dict[str, Any]:
    curve = cal.calibration.curve
    return {"calibration_id": cal.id, "lot": cal.calibration.key.lot, "qc": cal.calibration.qc.as_dict(),
            "slope": curve.slope if curve else None, "r2": curve.r2 if curve else None,
            "report": str(report) if report else None}


def listing(store: "Store", reports: Path, *, patient: str | None, sha256: str | None,
            unblinded: bool) -> list[dict[str, Any]]:
    """The rows: one per file record (oldest first), narrowed to a patient or a file."""
    from pipeline.report.layout import find_report

    records: list[FileRecord] = [r for r in store.files.list()
                                 if (patient is None or r.patient_id == patient)
                                 and (sha256 is None or r.sha256 == sha256)]
    measured = {mm.file_sha256: mm for mm in store.measurements.list(patient, include_blinded=True)}
    blinded = {mm.id for mm in store.measurements.blinded()}
    signed = store.signatures.of_reviews(mm.id for mm in measured.values() if mm.review)
    calibrations: dict[str, StoredCalibration] = {}
    for cal in store.calibrations.list() if any(r.kind == "beads" for r in records) else []:
        calibrations.setdefault(cal.calibration.key.sha256 or "", cal)
    rows = []
    for rec in records:
        row: dict[str, Any] = {"file": rec.path, "sha256": rec.sha256, "kind": rec.kind, "status": rec.status,
                               "reasons": list(rec.reasons), "patient_id": rec.patient_id,
                               "collection_date": rec.collection_date.isoformat() if rec.collection_date else None}
        report = find_report(reports, rec.sha256)
        if rec.status != "duplicate" and rec.sha256 in measured:
            mm = measured[rec.sha256]
            after = mm.id in blinded
            signature = signed.get(mm.id)
            row.update(_sample(mm, after, after and not unblinded, report,
                               signature.manifestation() if signature else None))
            if row["blinded"]:
                row["reasons"] = []
        elif rec.status != "duplicate" and rec.sha256 in calibrations:
            row.update(_beads(calibrations[rec.sha256], report))
        rows.append(row)
    return rows


REVIEWED = {"approve": "approved", "reject": "rejected"}     # the REVIEW column says what was done


def _line(row: dict[str, Any]) -> list[str]:
    from pipeline import formatting as fmt

    ident = (f"m{row['measurement_id']}" if "measurement_id" in row
             else f"c{row['calibration_id']}" if "calibration_id" in row else "-")
    if row.get("blinded"):
        value = "withheld"
    elif "calibration_id" in row:
        value = f"slope {fmt.number(row['slope'])}" if row["slope"] is not None else "no curve"
    else:
        value = fmt.abc(row.get("abc"))
    qc = (row.get("qc") or {}).get("status", "-")
    day = row.get("icu_day")
    lines = [f"{ident:<6} {row['patient_id'] or '-':<10} {row['collection_date'] or '-':<11} "
             f"{day if day is not None else '-':>3}  {value:<12} {qc:<7} {REVIEWED.get(row.get('review') or '', '-'):<8} "
             f"{row['status']:<20} {Path(row['file']).name}"]
    if row.get("report"):
        lines.append(f"{'':7}report {row['report']}")
    elif row.get("blinded"):
        lines.append(f"{'':7}report {WITHHELD}")
    if row["status"] in ("rejected", "pending_calibration", "duplicate"):
        lines += [f"{'':7}- {r}" for r in row["reasons"]]
    if row.get("next_step"):
        lines.append(f"{'':7}- next: {row['next_step']}")
    return lines


def human(rows: list[dict[str, Any]], what: str) -> str:
    if not rows:
        return f"no stored results {what}".rstrip()
    lines = [f"{'ID':<6} {'PATIENT':<10} {'COLLECTED':<11} {'DAY':>3}  {'AB/C':<12} {'QC':<7} {'REVIEW':<8} "
             f"{'STATUS':<20} FILE"]
    for row in rows:
        lines += _line(row)
    return "\n".join(lines + ["", "ID: m = measurement (the id `mhladr review` takes), c = bead calibration"])


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from fcsio.segments import sha256_file
    from pipeline.store import open_store

    from app.identity import acting

    sha256 = None
    if args.file is not None:
        if re.fullmatch(r"[0-9a-fA-F]{64}", args.file):
            sha256 = args.file.lower()
        elif Path(args.file).is_file():
            sha256 = sha256_file(Path(args.file))
        else:
            raise InputError(args.file, BAD_INPUT, "no such file: give the file where it is now, or its SHA-256")
    settings = load_settings()
    with open_store(settings) as store:
        who = acting(store, "results --unblinded" if args.unblinded else "results", actor=args.actor)
        rows = listing(store, settings.reports_dir, patient=args.patient, sha256=sha256,
                       unblinded=args.unblinded)
        shown = [r for r in rows if r.get("post_randomization")]
        if args.unblinded and shown:
            store.audit.log_unblinded_read(who.name, "unblinded_results", sorted({r["patient_id"] for r in shown}),
                                           {"measurements": [r["measurement_id"] for r in shown]})
    what = f"for patient {args.patient}" if args.patient else f"for {args.file}" if args.file else ""
    return rows, human(rows, what)


def register(subparsers: Any) -> None:
    parser = command(subparsers, "results", summary="stored results per patient or per file, with their reports",
                     description="One row per file the results database has seen (oldest first): bead tubes with\n"
                                 "their calibration, patient tubes with AB/C, QC and review decision, files waiting\n"
                                 "for their beads or rejected with the next step, and the path of each HTML report.\n"
                                 "Values and reports of samples collected after randomization are withheld.",
                     examples="mhladr results --patient PT-0042\n"
                              "mhladr results --file inbox/PT-0045_D05_HLADR.fcs --json\n"
                              "mhladr results --patient PT-0043 --unblinded")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--patient", metavar="ID", help="only this patient's files")
    which.add_argument("--file", metavar="PATH|SHA256", help="only this file (where it is now, or its SHA-256)")
    add_acting(parser, unblinding=True)
    add_json(parser)
    parser.set_defaults(func=run)
