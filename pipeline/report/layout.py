"""The report files of a result under ``Settings.reports_dir``: where each goes (the file's stem
and content hash in the name), and drawing one again from what the store holds."""

from __future__ import annotations

from pathlib import Path

from pipeline import next_steps
from pipeline.pairing import bead_sha256
from pipeline.store import Store, StoredCalibration, StoredMeasurement
from pipeline.store.signatures import UNSIGNED
from pipeline.tubes import ReportJob, draw_report


def report_path(reports: Path, file: str, sha256: str) -> Path:
    """Where the HTML report of a file's result goes (content hash in the name)."""
    return reports / f"{Path(file).stem}_{sha256[:12]}.html"


def find_report(reports: Path, sha256: str) -> Path | None:
    """The HTML report drawn for this content, wherever its file has moved since."""
    return next(iter(sorted(reports.glob(f"*_{sha256[:12]}.html"))), None)


def figure_path(reports: Path, sha256: str) -> Path:
    """Where a patient tube's figure data goes."""
    return reports / "data" / f"{sha256[:16]}.npz"


def gating_ml_path(reports: Path, file: str, sha256: str) -> Path:
    """Where a patient tube's gates go as GatingML 2.0 (beside its report)."""
    return report_path(reports, file, sha256).with_suffix(".gating.xml")


def report_job(reports_dir: Path, file: str, stored: StoredCalibration | StoredMeasurement, blinded: set[int],
               bead_paths: dict[str, str], decisions: tuple[tuple[str, str, str, str, str], ...] = ()) -> ReportJob:
    """What drawing the report of a stored result needs, as plain data for a worker (``blinded``:
    ids of post-randomization measurements; ``bead_paths``: where the bead files are now, by SHA-256)."""
    if isinstance(stored, StoredCalibration):
        sha256 = bead_sha256(stored)
        return ReportJob(file, str(report_path(reports_dir, file, sha256)), stored.calibration,
                         str(figure_path(reports_dir, sha256)))
    meas = stored.measurement
    return ReportJob(file, str(report_path(reports_dir, file, meas.sha256)), meas,
                     str(figure_path(reports_dir, meas.sha256)), bead_paths.get(bead_sha256(stored)),
                     next_steps.after_measurement(stored.id, meas.qc.status, stored.review), stored.id in blinded,
                     decisions)


def redraw_sample_report(store: Store, reports_dir: Path, measurement_id: int) -> Path | None:
    """Draw a stored measurement's report again (e.g. after a technician's decision, so its next
    step is current); None when the measurement is unknown."""
    stored = store.measurements.get(measurement_id)
    if stored is None:
        return None
    blinded = {measurement_id} if store.measurements.is_blinded(stored) else set()
    bead = store.files.original(bead_sha256(stored)) if bead_sha256(stored) else None
    bead_paths = {bead.sha256: bead.path} if bead is not None else {}
    reviews = store.measurements.reviews(measurement_id)
    signatures = store.signatures.of("review_decisions", [d.id for d in reviews])
    decisions = tuple((d.decision, d.actor, d.decided_at.strftime("%Y-%m-%d %H:%M:%S"), d.reason,
                       str(signatures.get(str(d.id)) or UNSIGNED)) for d in reviews)
    return draw_report(report_job(reports_dir, stored.measurement.file, stored, blinded, bead_paths, decisions))
