"""What each console page and API call shows, read from the store for one signed-in person.

Blinding is decided here, once per result: a result collected after its patient's randomization
(:func:`pipeline.eligibility.is_blinded`) shows its AB/C, PE level and PE histogram only to a
role that may read unblinded values (``unblinded_read``), and every such read is audited
(``store.audit.log_unblinded_read``). Everyone else sees "withheld" instead of those numbers.
"""

from __future__ import annotations

import re

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.access import User
from pipeline.landed import file_row
from pipeline.measurement import Measurement
from pipeline.qc_trend import ControlPoint, control_points
from pipeline.report.chart import to_svg
from pipeline.report.figure_data import SampleFigure
from pipeline.report.figures import (calibration_chart, gating_chart, levey_jennings_chart, patient_trend_chart,
                                     stability_chart)
from pipeline.report.layout import figure_path, report_path
from pipeline.screening import screening_rows
from pipeline.eligibility import PatientFacts
from pipeline.tubes import unblinded_report_path
from pipeline.store import (ReviewRecord, ScreeningRecord, Store, StoredCalibration,
                            StoredMeasurement)

WITHHELD = "withheld (collected after randomization)"
CHART_RUNS = 30            # a Levey-Jennings chart shows the latest runs (the table lists them all)
# QC reasons that state the monocytes' PE level or an AB/C (withheld for blinded results)
LEVEL_WORDS = ("monocyte PE", "AB/C")


def unblinded(user: User) -> bool:
    return user.may("unblinded_read")


def shown_reasons(reasons: tuple[str, ...], hide_levels: bool) -> list[str]:
    """QC reasons as a person may read them: those stating the PE level or an AB/C are
    replaced by a note when the result is withheld."""
    if not hide_levels:
        return list(reasons)
    return [f"a reason stating the monocytes' PE level: {WITHHELD}" if any(w in r for w in LEVEL_WORDS) else r
            for r in reasons]


# -- the review queue -------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueItem:
    id: int
    patient_id: str
    file: str
    collection_date: date
    icu_day: int | None
    monocytes: int
    abc: float | None               # None when withheld
    withheld: bool
    qc_status: str
    reasons: list[str]
    waiting_since: str

    def as_api(self) -> dict[str, Any]:
        """The contract's review-list row (``id, patient_id, file, abc, qc``) plus ``blinded``."""
        return {"id": self.id, "patient_id": self.patient_id, "file": self.file, "abc": self.abc,
                "qc": {"status": self.qc_status, "reasons": self.reasons}, "blinded": self.withheld,
                "collection_date": self.collection_date.isoformat(), "icu_day": self.icu_day}


def review_queue(store: Store) -> list[QueueItem]:
    """QC ``review`` results no one has decided yet, oldest first. Only roles that review see
    it, and none of them reads unblinded values: post-randomization levels are withheld."""
    blinded = {mm.id for mm in store.measurements.blinded()}
    return [QueueItem(mm.id, mm.patient_id, Path(mm.measurement.file).name, mm.collection_date,
                      mm.measurement.icu_day, mm.measurement.monocytes, None if mm.id in blinded else mm.abc,
                      mm.id in blinded, mm.qc.status, shown_reasons(mm.qc.reasons, mm.id in blinded),
                      mm.created.strftime("%Y-%m-%d %H:%M"))
            for mm in store.measurements.pending()]


# -- one result ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultView:
    """One stored result with what the viewer may see of it and its figures (inline SVG)."""

    stored: StoredMeasurement
    withheld: bool
    reasons: list[str]
    figures: dict[str, str]          # title -> SVG, in page order
    bead_file: str | None
    decisions: list[ReviewRecord]
    report_available: bool

    @property
    def measurement(self) -> Measurement:
        return self.stored.measurement


def result_view(store: Store, reports: Path, stored: StoredMeasurement, user: User) -> ResultView:
    """The review page's content; an unblinded read of a post-randomization result is audited."""
    meas = stored.measurement
    blinded = store.measurements.is_blinded(stored)
    withheld = blinded and not unblinded(user)
    if blinded and not withheld:
        store.audit.log_unblinded_read(user.name, "unblinded_result", [stored.patient_id],
                                       {"measurement": stored.id})
    figures: dict[str, str] = {}
    data = figure_path(reports, meas.sha256)
    if data.is_file():
        chart = gating_chart(SampleFigure.load(data), meas.qc)
        if withheld:          # the monocyte PE histogram shows the level: gates only
            chart = replace(chart, panels=chart.panels[:2])
        figures["Gates"] = to_svg(chart, "g")
    stability = meas.gates.get("stability")
    if stability:
        figures["Acquisition stability"] = to_svg(stability_chart(stability), "s")
    if meas.calibration is not None and not withheld:      # the curve and the PE level give the value back
        figures["Bead calibration"] = to_svg(calibration_chart(meas.calibration), "b")
    bead = store.files.original(meas.calibration.key.sha256 or "") if meas.calibration is not None else None
    return ResultView(stored, withheld, shown_reasons(meas.qc.reasons, withheld), figures,
                      bead.path if bead is not None else None, store.measurements.reviews(stored.id),
                      report_path(reports, meas.file, meas.sha256).is_file())


# -- gate correction -----------------------------------------------------------------------------
CHOICES = {"current": "the gate as stored", "bright": "CD14-bright monocytes only",
           "with_dim": "with the CD14-dim events at the monocytes' scatter"}


@dataclass(frozen=True)
class GateEdit:
    """What the review page's gate correction offers: candidate gates of the stored automatic
    gate (by name) and its vertices as text, one ``CD14, SSC`` pair (linear values) per line."""

    choices: dict[str, str]
    vertices: str


def gate_candidates(stored: StoredMeasurement) -> dict[str, tuple]:
    """The candidate monocyte gates of a result's stored automatic gate: as stored, the CD14-bright
    polygon alone, and with the CD14-dim population (its polygon, or the band left out)."""
    from pipeline.regate import stored_gate

    geometry = stored_gate(stored).geometry
    out = {"current": geometry.polygons, "bright": geometry.polygons[:1]}
    dim = geometry.polygons[1:] or ((geometry.dim_zone,) if geometry.dim_zone is not None else ())
    if dim:
        out["with_dim"] = geometry.polygons[:1] + tuple(dim)
    return out


def gate_edit(stored: StoredMeasurement) -> GateEdit | None:
    """The gate correction form's content; None when the result has no automatic gate to edit."""
    import numpy as np

    try:
        candidates = gate_candidates(stored)
    except ValueError:
        return None
    g = stored.measurement.gates["gate"]
    first = candidates["current"][0].as_array()
    linear = np.column_stack([np.sinh(first[:, 0]) * g["cd14_cofactor"], np.sinh(first[:, 1]) * g["ssc_cofactor"]])
    return GateEdit({k: CHOICES[k] for k in candidates}, "\n".join(f"{x:.1f}, {y:.1f}" for x, y in linear))


def proposed_gate(stored: StoredMeasurement, choice: str, vertices: str | None):  # noqa: ANN201 - a MonocyteGate
    """The corrected gate a form asks for: a candidate, or the first polygon's vertices as typed
    (``CD14, SSC`` per line, linear values). ``ValueError`` with a sentence for the page."""
    import numpy as np

    from gating.result import GatePolygon
    from pipeline.regate import stored_gate

    gate = stored_gate(stored)
    candidates = gate_candidates(stored)
    if choice not in candidates:
        raise ValueError(f"unknown gate choice {choice!r}")
    polygons = list(candidates[choice])
    if vertices and vertices.strip():
        g = gate.geometry
        try:
            pairs = [tuple(float(v) for v in line.replace(";", ",").split(",")) for line in vertices.splitlines()
                     if line.strip()]
        except ValueError:
            raise ValueError("each vertex line must be two numbers: CD14, SSC") from None
        if any(len(p) != 2 for p in pairs):
            raise ValueError("each vertex line must be two numbers: CD14, SSC")
        xy = np.asarray(pairs, dtype=float)
        plot = np.column_stack([np.arcsinh(xy[:, 0] / g.cd14_cofactor), np.arcsinh(xy[:, 1] / g.ssc_cofactor)])
        polygons[0] = GatePolygon(polygons[0].name, tuple((float(a), float(b)) for a, b in plot))
    return gate.with_polygons(polygons)


def preview_figure(reports: Path, stored: StoredMeasurement, gate, monocytes: int) -> str | None:  # noqa: ANN001
    """The gates figure with the proposed polygons drawn (SVG), or None without figure data."""
    data = figure_path(reports, stored.measurement.sha256)
    if not data.is_file():
        return None
    fig = replace(SampleFigure.load(data), gate_outlines=tuple(p.as_array() for p in gate.geometry.polygons),
                  dim_zone=(), monocytes=monocytes)
    chart = gating_chart(fig, stored.measurement.qc, "Proposed gate")
    return to_svg(replace(chart, panels=chart.panels[:1]), "p")     # the CD14/SSC plot: no PE level shown


def readable_report(store: Store, reports: Path, stored: StoredMeasurement, user: User) -> Path | None:
    """The HTML report of a result if this person may read it (None: withheld or not drawn);
    an unblinded read is audited."""
    path = report_path(reports, stored.measurement.file, stored.measurement.sha256)
    if not path.is_file():
        return None
    if store.measurements.is_blinded(stored):
        if not unblinded(user):
            return None
        store.audit.log_unblinded_read(user.name, "unblinded_report", [stored.patient_id], {"measurement": stored.id})
        with_values = unblinded_report_path(path)
        return with_values if with_values.is_file() else path
    return path


def bead_report(store: Store, reports: Path, cal: StoredCalibration) -> Path | None:
    """The HTML report of a bead calibration, if it was drawn."""
    original = store.files.original(cal.calibration.key.sha256 or "")
    if original is None:
        return None
    path = report_path(reports, original.path, cal.calibration.key.sha256 or "")
    return path if path.is_file() else None


# -- files --------------------------------------------------------------------------------------
def parse_day(text: str | None, today: date | None = None) -> date | None:
    """``YYYY-MM-DD``, or today (lab local time) when not given; None when malformed."""
    if not text:
        return today or date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def files_of_day(store: Store, day: date) -> list[dict[str, Any]]:
    """The Files page's rows (``GET /api/files``): technicians and admins only, who read no
    unblinded value: no AB/C is listed, and the QC reasons of a post-randomization tube that
    state its PE level are withheld."""
    from pipeline.landed import landed_files

    rows = landed_files(store, day)
    blinded = {mm.id for mm in store.measurements.blinded()}
    for row in rows:
        row["reasons"] = shown_reasons(tuple(row["reasons"]), row["measurement_id"] in blinded)
    return rows


# -- screening and patients ---------------------------------------------------------------------
# Command-line wording in stored texts, as the console says it (its buttons and pages).
CONSOLE_WORDS = (
    ("(mhladr review list)", "(the review queue)"),
    ("a second decision must supersede it (--supersede)",
     "a second decision must supersede it: tick Supersede and decide again"),
)
_NEXT_STEP = re.compile(r"approve or reject with mhladr review approve\|reject \d+ --reason TEXT")
_REPROCESS = re.compile(r"then: mhladr reprocess \S+ --reason TEXT")


def console_words(text: str) -> str:
    """A message written for the command line, in the console's words."""
    for cli, console in CONSOLE_WORDS:
        text = text.replace(cli, console)
    text = _REPROCESS.sub("then press Reprocess on the Files page, saying what was fixed", text)
    return _NEXT_STEP.sub("approve or reject it on its review page", text)


def screening(store: Store, user: User) -> list[dict[str, Any]]:
    """The ``mhladr screening`` document as this person may see it (post-randomization results
    only for the unblinded role, audited), in the console's words; file names without the
    server's folders except for admins."""
    rows = screening_rows(store, None, user.name if unblinded(user) else None)
    for row in rows:
        row["reasons"] = [console_words(r) for r in row.get("reasons", [])]
        if user.role != "admin":
            if row.get("file"):
                row["file"] = Path(row["file"]).name
            for later in row.get("post_randomization") or []:
                if isinstance(later, dict) and later.get("file"):
                    later["file"] = Path(later["file"]).name
    return rows


def randomized(store: Store, patient_ids: list[str]) -> set[str]:
    """The patients already randomized (registry ``randomized_at``): counted apart from
    "eligible = awaiting consent" on the screening page."""
    return {pid for pid in patient_ids if (facts := store.patients.get(pid)) is not None and facts.randomized_at}


@dataclass(frozen=True)
class PatientView:
    patient_id: str
    facts: PatientFacts | None
    status: ScreeningRecord | None
    results: list[StoredMeasurement]
    withheld: int                     # post-randomization results not shown
    chart: str
    reports: set[int]                 # ids of results whose report may be opened
    rejected: list[dict[str, Any]]    # the patient's tubes that were rejected (Files page rows)


def patient_view(store: Store, reports: Path, patient_id: str, user: User) -> PatientView | None:
    """A patient's registry facts, screening status and results over ICU days; None when the
    store knows nothing of this patient."""
    facts = store.patients.get(patient_id)
    history = store.screening.history(patient_id)
    everything = store.measurements.list(patient_id, include_blinded=True)
    rejected = [file_row(store, rec) for rec in store.files.list("rejected") if rec.patient_id == patient_id]
    if facts is None and not history and not everything and not rejected:
        return None
    blinded = {mm.id for mm in store.measurements.blinded() if mm.patient_id == patient_id}
    if unblinded(user):
        results = everything
        if blinded:
            store.audit.log_unblinded_read(user.name, "unblinded_patient", [patient_id],
                                           {"measurements": sorted(blinded)})
    else:
        results = [mm for mm in everything if mm.id not in blinded]
    chart = to_svg(patient_trend_chart(results, store.rules, f"mHLA-DR of {patient_id}"), "t")
    drawn = {mm.id for mm in results if report_path(reports, mm.measurement.file, mm.measurement.sha256).is_file()}
    return PatientView(patient_id, facts, history[-1] if history else None, results,
                       len(everything) - len(results), chart, drawn, rejected)


# -- bead QC -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BeadTrend:
    """The Levey-Jennings control of one detector with one bead lot."""

    instrument: str
    serial: str
    channel: str
    lot: str
    points: list[ControlPoint]
    calibrations: dict[int, StoredCalibration]
    chart: str

    @property
    def flagged(self) -> int:
        return sum(1 for p in self.points if p.flags)


def bead_trends(store: Store) -> list[BeadTrend]:
    """Per instrument, PE channel and bead lot (a new lot starts new control limits), every
    curve against the earlier curves of its group (:func:`pipeline.qc_trend.control_points`)."""
    groups: dict[tuple[str, str, str, str], list[StoredCalibration]] = defaultdict(list)
    for cal in store.calibrations.list():
        key = cal.calibration.key
        groups[(key.instrument or "", key.serial or "", key.channel or "", key.lot or "")].append(cal)
    trends = []
    for (instrument, serial, channel, lot), cals in sorted(groups.items()):
        days = sorted({c.calibration.key.acquired.date() for c in cals if c.calibration.key.acquired})
        points = [p for day in days for p in control_points(cals, day)]
        if not points:
            continue
        shown = points[-CHART_RUNS:]
        chart = levey_jennings_chart(shown, "Levey-Jennings", first_run=len(points) - len(shown) + 1)
        trends.append(BeadTrend(instrument, serial, channel, lot, points, {c.id: c for c in cals},
                                to_svg(chart, f"lj{len(trends)}")))
    return trends

