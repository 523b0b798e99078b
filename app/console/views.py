"""What each console page and API call shows, read from the store for one signed-in person.

Blinding is decided here, once per result: a result collected after its patient's randomization
(:func:`pipeline.eligibility.is_blinded`) shows its AB/C, PE level and PE histogram only to a
role that may read unblinded values (``unblinded_read``), and every such read is audited
(``store.audit.log_unblinded_read``). Everyone else sees "withheld" instead of those numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.access import User
from pipeline.measurement import Measurement
from pipeline.qc_trend import ControlPoint, control_points
from pipeline.report.chart import to_svg
from pipeline.report.figure_data import SampleFigure
from pipeline.report.figures import (calibration_chart, gating_chart, levey_jennings_chart, patient_trend_chart,
                                     stability_chart)
from pipeline.report.layout import figure_path, report_path
from pipeline.screening import screening_rows
from pipeline.eligibility import PatientFacts
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
    if meas.calibration is not None:
        figures["Bead calibration"] = to_svg(calibration_chart(meas.calibration), "b")
    bead = store.files.original(meas.calibration.key.sha256 or "") if meas.calibration is not None else None
    return ResultView(stored, withheld, shown_reasons(meas.qc.reasons, withheld), figures,
                      bead.path if bead is not None else None, store.measurements.reviews(stored.id),
                      report_path(reports, meas.file, meas.sha256).is_file())


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
    return path


def bead_report(store: Store, reports: Path, cal: StoredCalibration) -> Path | None:
    """The HTML report of a bead calibration, if it was drawn."""
    original = store.files.original(cal.calibration.key.sha256 or "")
    if original is None:
        return None
    path = report_path(reports, original.path, cal.calibration.key.sha256 or "")
    return path if path.is_file() else None


# -- screening and patients ---------------------------------------------------------------------
def screening(store: Store, user: User) -> list[dict[str, Any]]:
    """The ``mhladr screening`` document as this person may see it (post-randomization results
    only for the unblinded role, audited)."""
    return screening_rows(store, None, user.name if unblinded(user) else None)


@dataclass(frozen=True)
class PatientView:
    patient_id: str
    facts: PatientFacts | None
    status: ScreeningRecord | None
    results: list[StoredMeasurement]
    withheld: int                     # post-randomization results not shown
    chart: str
    reports: set[int]                 # ids of results whose report may be opened


def patient_view(store: Store, reports: Path, patient_id: str, user: User) -> PatientView | None:
    """A patient's registry facts, screening status and results over ICU days; None when the
    store knows nothing of this patient."""
    facts = store.patients.get(patient_id)
    history = store.screening.history(patient_id)
    everything = store.measurements.list(patient_id, include_blinded=True)
    if facts is None and not history and not everything:
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
                       len(everything) - len(results), chart, drawn)


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

