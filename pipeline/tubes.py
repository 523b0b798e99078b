"""One tube through the science, as a batch's worker process runs it: a bead tube to its
calibration, a patient tube to its measurement, a stored result to its report.

Each function takes one small job (picklable), reads the file it names once (the header, with
its SHA-256, was taken by :func:`examine`), and raises :class:`~pipeline.errors.InputError` for
an unusable input. No database here: the batch stores what comes back. Jobs compare by
identity (``eq=False``), so a batch can key its results by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from calibration.result import Calibration
from fcsio.segments import sha256_file
from pipeline.acquisition import Header
from pipeline.bead_calibration import calibrate_file
from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.fcs import decode, read_header
from pipeline.lots import Lot
from pipeline.measurement import Measurement, measure
from pipeline.preanalytics import SampleLog
from pipeline.report.figure_data import SampleFigure
from pipeline.report.html import write_bead_report, write_sample_report

if TYPE_CHECKING:
    from gating.result import MonocyteGateResult
    from gating.template import TemplateGate
    from pipeline.acquisition import Acquisition


@dataclass(frozen=True, eq=False)
class Examine:
    path: str
    settings: Settings


@dataclass(frozen=True)
class Examined:
    """A file's SHA-256 and size, and its header or why it cannot be used."""

    path: str
    sha256: str
    size: int
    header: Header | None
    error: InputError | None


@dataclass(frozen=True, eq=False)
class BeadTube:
    tube: Examined
    lot: Lot
    settings: Settings


@dataclass(frozen=True, eq=False)
class PatientTube:
    tube: Examined
    calibration: Calibration
    calibration_id: int
    admission: date | datetime | None
    settings: Settings
    figure: str                 # where the report's figure data goes
    gating_ml: str              # where the tube's gates go as GatingML 2.0
    sample_log: SampleLog = SampleLog()     # the registry's sample-log columns (draw time) for this tube


@dataclass(frozen=True, eq=False)
class ReportJob:
    """A stored result's report to draw: the file, where the report goes, the result (a bead
    calibration or a patient measurement), its figure data and what the report says around it."""

    file: str
    path: str
    result: Calibration | Measurement
    figure: str
    bead_file: str | None = None
    next_step: str | None = None
    blinded: bool = False           # collected after randomization: the report withholds the value
    decisions: tuple[tuple[str, str, str, str, str], ...] = ()   # technicians' (decision, actor, UTC time, reason, signature)


def examine(job: Examine) -> Examined:
    """Hash the file (once) and read its HEADER and TEXT (no event decoded)."""
    path = Path(job.path)
    sha256 = sha256_file(path)
    size = path.stat().st_size
    try:
        return Examined(job.path, sha256, size, read_header(path, job.settings, sha256=sha256), None)
    except InputError as err:
        return Examined(job.path, sha256, size, None, err)


def calibrate(job: BeadTube) -> Calibration:
    """Decode the bead tube and fit its calibration."""
    return calibrate_file(decode(_header(job.tube)), job.lot, job.settings)


def measure_tube(job: PatientTube) -> Measurement:
    """Decode the patient tube, gate it and convert it; its figure data is saved beside."""
    acq = decode(_header(job.tube))
    settings = job.settings
    measurement, gating = measure(acq, job.calibration, settings, admission=job.admission, sample_log=job.sample_log,
                                  template=template(settings.gating_template, settings.gating_template_gate))
    SampleFigure.of(acq, gating, measurement.pe_statistic, measurement.statistic).save(Path(job.figure))
    write_gates(gating, acq, Path(job.gating_ml))
    return measurement


def unblinded_report_path(path: Path) -> Path:
    """Where the report of a post-randomization tube with its values goes (the unblinded role's)."""
    return Path(path).with_suffix(".unblinded.html")


def draw_report(job: ReportJob) -> Path:
    """Write the HTML report of one stored result (its GatingML beside, when there is one); a
    post-randomization tube gets two: the blinded one at ``job.path``, and the one with its values
    for the unblinded role (:func:`unblinded_report_path`)."""
    if isinstance(job.result, Calibration):
        return write_bead_report(job.result, job.file, Path(job.path))
    figure = SampleFigure.load(Path(job.figure)) if Path(job.figure).is_file() else None
    gates = Path(job.path).with_suffix(".gating.xml")
    gating_ml = gates.name if gates.is_file() else None
    if job.blinded:
        write_sample_report(job.result, figure, unblinded_report_path(Path(job.path)), bead_file=job.bead_file,
                            next_step=job.next_step, gating_ml=gating_ml, decisions=job.decisions)
    return write_sample_report(job.result, figure, Path(job.path), bead_file=job.bead_file, next_step=job.next_step,
                               gating_ml=gating_ml, blinded=job.blinded, decisions=job.decisions)


def write_gates(gating: "MonocyteGateResult", acq: "Acquisition", path: Path) -> Path | None:
    """The tube's automatic gates as GatingML 2.0 (what FlowKit or FlowJo applies to the same file),
    with the spillover the events were compensated with; None when there is no automatic gate."""
    from gating.gatingml import write_gatingml

    spill = (acq.spillover.channels, acq.spillover.matrix) if acq.spillover else None
    try:
        text = write_gatingml(gating, spill)
    except ValueError:          # no automatic gate: none found, or the lab's template is the gate
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _header(e: Examined) -> Header:
    if e.header is None:
        raise e.error or InputError(e.path, "bad_input", "no header")
    return e.header


@lru_cache(maxsize=4)
def template(path: str, gate: str) -> "TemplateGate | None":
    """The lab's GatingML monocyte gate named in the settings, if any, loaded once per process
    (flowkit is imported only then)."""
    if not path:
        return None
    from gating.template import load_template_gate
    return load_template_gate(path, gate)
