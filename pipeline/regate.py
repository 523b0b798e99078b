"""Gate correction: the same tube gated again with a corrected monocyte gate, stored as the next
version of the same result (``mhladr review regate``, the console's review page).

The tube is read again from where its file is now (its SHA-256 checked), with the calibration
and ICU admission of its first version; the corrected gate is applied as it is, never refitted:
a :class:`gating.fitted.MonocyteGate` (polygons moved on the CD14/SSC plot, or another candidate
population) or a GatingML 2.0 file whose gate ``monocytes`` is used (e.g. the tube's own export
edited in FlowJo or FlowKit). :func:`preview` computes the new AB/C without storing anything;
:func:`regate` stores it (audited; the earlier versions stay; the patient is re-evaluated; the
next push delivers it as FHIR ``amended`` once an earlier version was released), keeps the
earlier figure data beside, and redraws the report and the GatingML export.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.acquisition import Acquisition
from pipeline.config import Settings
from pipeline.errors import BAD_INPUT, InputError
from pipeline.fcs import read_fcs
from pipeline.measurement import Measurement, measure
from pipeline.preanalytics import SampleLog
from pipeline.report.layout import figure_path, gating_ml_path, redraw_sample_report
from pipeline.report.figure_data import SampleFigure
from pipeline.signing import Signer, authenticate
from pipeline.store import Store, StoredMeasurement
from pipeline.tubes import write_gates

if TYPE_CHECKING:
    from gating.fitted import MonocyteGate
    from gating.result import MonocyteGateResult
    from gating.template import TemplateGate

FINAL_GATE = "monocytes"          # the final gate's id in a GatingML correction (as analyze --gating-ml writes it)


def corrected_gate_file(path: str | Path, acq: Acquisition) -> "TemplateGate":
    """The gate ``monocytes`` of a GatingML 2.0 file for this tube (``InputError`` naming the file
    when unusable); a matrix in the file must be the tube's own spillover."""
    from gating.template import load_template_gate

    spill = (acq.spillover.channels, acq.spillover.matrix) if acq.spillover is not None else None
    try:
        return load_template_gate(path, FINAL_GATE, spill)
    except Exception as exc:                # noqa: BLE001 - FlowKit's parser raises many kinds
        raise InputError(path, BAD_INPUT, f"not a usable GatingML 2.0 correction (final gate id "
                                          f"{FINAL_GATE!r}): {exc}") from None


def first_sample_log(meas: Measurement) -> SampleLog:
    """What the sample log said of the draw when the tube was first measured (kept in its
    pre-analytics record), so a gate correction checks the same pre-analytics."""
    pre = meas.gates.get("preanalytics") or {}
    drawn = pre.get("drawn") if pre.get("drawn_from") == "sample log" else None
    collected = None
    if drawn:
        collected = datetime.fromisoformat(drawn) if "T" in drawn else date.fromisoformat(drawn)
    return SampleLog(collected, pre.get("tube_type") or "", pre.get("storage") or "")


def stored_gate(stored: StoredMeasurement) -> "MonocyteGate":
    """The automatic gate stored with a result, to move its vertices or swap its polygons."""
    from gating.fitted import MonocyteGate

    return MonocyteGate.from_record(stored.measurement.gates.get("gate") or {})


def _gated(store: Store, settings: Settings, stored: StoredMeasurement, *, gate: "MonocyteGate | None",
           gating_ml: str | Path | None) -> tuple[Measurement, "MonocyteGateResult", Acquisition]:
    meas = stored.measurement
    if meas.calibration is None:
        raise InputError(meas.file, BAD_INPUT, "this result has no calibration: nothing to convert a new gate with")
    if not Path(meas.file).is_file():
        raise InputError(meas.file, BAD_INPUT, "the tube's file is no longer here: put it back to correct its gate")
    acq = read_fcs(meas.file, settings)
    if acq.sha256 != meas.sha256:
        raise InputError(meas.file, BAD_INPUT, "the file at this path is not the tube this result was measured from")
    template = corrected_gate_file(gating_ml, acq) if gating_ml is not None else None
    patient = store.patients.get(stored.patient_id)
    new, gating = measure(acq, meas.calibration, settings, admission=patient.icu_admission if patient else None,
                          template=template, gate=gate, now=datetime.now().astimezone(),
                          sample_log=first_sample_log(meas))
    return new, gating, acq


def preview(store: Store, settings: Settings, measurement_id: int, *, gate: "MonocyteGate | None" = None,
            gating_ml: str | Path | None = None) -> Measurement:
    """The result this tube would have with the corrected gate (nothing stored)."""
    stored = _stored(store, measurement_id)
    return _gated(store, settings, stored, gate=gate, gating_ml=gating_ml)[0]


def regate(store: Store, settings: Settings, measurement_id: int, *, reason: str, signer: Signer,
           gate: "MonocyteGate | None" = None, gating_ml: str | Path | None = None
           ) -> tuple[StoredMeasurement, StoredMeasurement]:
    """Store the tube gated with the corrected gate as the next version of its result, for
    ``signer`` with ``reason`` (the one store step of a gate correction), signed "corrected gate"
    once the signer's password is checked (:func:`pipeline.signing.authenticate`; unsigned in
    single-user mode). Returns (the version before, the new one)."""
    if (gate is None) == (gating_ml is None):
        raise ValueError("give exactly one corrected gate: a MonocyteGate or a GatingML file")
    before = _stored(store, measurement_id)
    new, gating, acq = _gated(store, settings, before, gate=gate, gating_ml=gating_ml)
    signed = authenticate(store, signer, f"measurement {measurement_id}")
    after = store.measurements.amend(measurement_id, new, reason=reason, actor=signer.name, signed=signed)
    reports = settings.reports_dir
    figure = figure_path(reports, before.measurement.sha256)
    if figure.is_file():
        shutil.copy2(figure, figure.with_name(f"{figure.stem}.v{before.version}{figure.suffix}"))
    SampleFigure.of(acq, gating, new.pe_statistic, new.statistic).save(figure)
    write_gates(gating, acq, gating_ml_path(reports, before.measurement.file, before.measurement.sha256))
    redraw_sample_report(store, reports, measurement_id)
    return before, after


def _stored(store: Store, measurement_id: int) -> StoredMeasurement:
    stored = store.measurements.get(measurement_id)
    if stored is None:
        raise KeyError(measurement_id)
    return stored
