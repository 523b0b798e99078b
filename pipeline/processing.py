"""What happens to one FCS file, step by step: the API the Prefect flows compose.

Data flow (DESIGN.md, Architecture): SHA-256 -> already seen? -> read -> bead tube: fit and
store a calibration / patient tube: find the calibration of the same cytometer, PE channel,
voltage, gain and day -> gate -> AB/C + QC -> store -> evaluate eligibility -> push. A patient
tube without its beads waits as ``pending_calibration`` and is finished by
:meth:`Processor.finish_pending` once they arrive.

Writes are ordered so a crash loses nothing: the calibration or measurement is stored first
(idempotent per file), the file's row last; a file without a row is simply processed again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.curve import Curve
from calibration.key import CalibrationKey
from calibration.result import Calibration, Population
from pipeline import __version__
from pipeline.acquisition import Acquisition
from pipeline.bead_calibration import calibrate_file, calibration_document, qc_config_from_settings
from pipeline.config import Settings
from pipeline.errors import BAD_INPUT, BAD_LOT, InputError
from pipeline.fcs import read_fcs, sha256_file
from pipeline.lots import Lot, find_lot, read_lots
from pipeline.measurement import load_template, measure, measurement_fields, measurement_input, require_panel
from pipeline.registry import RowError, import_registry
from pipeline.report.calibration_figure import draw_calibration_figure
from pipeline.report.html import write_sample_report
from pipeline.sinks.outbox import configured_sinks, deliver_outbox, enqueue_results
from pipeline.store import CalibrationInput, CalibrationRecord, FileRecord, Store, open_store

if TYPE_CHECKING:
    from gating.template import TemplateGate

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


def calibration_input(cal: Calibration, document: dict[str, Any]) -> CalibrationInput:
    """The store's record of a calibration (its validity key, curve, peaks and QC)."""
    key, curve = cal.key, cal.curve
    return CalibrationInput(
        instrument=key.instrument or "", serial=key.serial or "", channel=key.channel or "",
        voltage=key.voltage, gain=key.gain,
        acquisition_date=key.acquired.date() if key.acquired else date.min, lot=key.lot or "",
        bead_values=cal.bead_values, file_sha256=key.sha256 or "",
        slope=curve.slope if curve else float("nan"), intercept=curve.intercept if curve else float("nan"),
        r2=curve.r2 if curve else float("nan"), covariance=curve.covariance if curve else None,
        peaks=tuple(document["peaks"]), qc=cal.qc, statistic=cal.statistic, software_version=__version__)


def calibration_from_record(rec: CalibrationRecord) -> Calibration:
    """A stored calibration, rebuilt for converting a sample (curve, key, QC; no bead events)."""
    fitted = [p for p in rec.peaks if p.get("status") == "fitted" and p.get("fluorescence")]
    fl = [float(p["fluorescence"]) for p in fitted]
    curve = None
    if len(fitted) >= 2:
        cov = rec.covariance or ((float("nan"),) * 2,) * 2
        curve = Curve(slope=rec.slope, intercept=rec.intercept, r2=rec.r2, n_points=len(fitted),
                      residual_sd=float("nan"), covariance=(tuple(cov[0]), tuple(cov[1])),  # type: ignore[arg-type]
                      f_min=min(fl), f_max=max(fl))
    populations = tuple(Population(level=i, bead_value=float(p["bead_value"]), status=p.get("status", "fitted"),
                                   fluorescence=p.get("fluorescence"), events=int(p.get("events") or 0),
                                   cv=p.get("cv"), residual=p.get("residual"))
                        for i, p in enumerate(rec.peaks))
    return Calibration(
        key=CalibrationKey(instrument=rec.instrument, serial=rec.serial, channel=rec.channel,
                           voltage=rec.voltage, gain=rec.gain, acquired=None, lot=rec.lot,
                           sha256=rec.file_sha256),
        statistic=rec.statistic, bead_values=tuple(rec.bead_values), populations=populations,  # type: ignore[arg-type]
        extra_populations=(), curve=curve, qc=rec.qc, gate=None, events=np.empty(0))


def calibration_fields(rec: CalibrationRecord) -> dict[str, Any]:
    """The calibration a sample was converted with, as reported beside its AB/C."""
    return {"id": rec.id, "file_sha256": rec.file_sha256, "instrument": rec.instrument, "serial": rec.serial,
            "channel": rec.channel, "voltage": rec.voltage, "gain": rec.gain,
            "acquisition_date": rec.acquisition_date.isoformat(), "lot": rec.lot,
            "bead_values": list(rec.bead_values), "slope": rec.slope, "intercept": rec.intercept,
            "r2": rec.r2, "statistic": rec.statistic, "peaks": list(rec.peaks), "qc": rec.qc.as_dict()}


def rejected(file: str, sha256: str, kind: str, patient_id: str | None, err: InputError) -> FileResult:
    """The ``rejected`` outcome of an unusable input, with its reason code."""
    return FileResult(file, sha256, kind, "rejected", (f"{err.code}: {err.message}",), patient_id,
                      {"error": err.as_dict()})


class Processor:
    """One results store, the lab's lots, registry and gating template, and the steps per file."""

    def __init__(self, settings: Settings, registry_csv: str | Path | None = None,
                 lots_csv: str | Path | None = None) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.store: Store = open_store(settings)
        self.lots: dict[str, Lot] = read_lots(lots_csv) if lots_csv else {}
        self.registry_errors: list[RowError] = []      # bad registry rows, reported by `mhladr run`
        if registry_csv:
            _, self.registry_errors = import_registry(self.store, registry_csv, actor="registry")
        self.template: TemplateGate | None = load_template(settings)

    def close(self) -> None:
        self.store.close()

    # -- identity ---------------------------------------------------------------------------
    # Paths are resolved once where they enter (``process``, the batch flow), so a file's identity
    # is its absolute path string, whatever the working folder.
    def known(self, sha256: str) -> FileResult | None:
        """The earlier result for this content (the original sighting), if any."""
        rec = self.store.get_file_by_sha(sha256)
        return self._from_record(rec) if rec is not None else None

    def seen(self, path: Path, sha256: str) -> FileResult | None:
        """For content processed before: the earlier result itself when ``path`` is that file (a
        re-run changes nothing), else a recorded duplicate. None for new content."""
        earlier = self.known(sha256)
        if earlier is None or earlier.file == str(path):
            return earlier
        return self.duplicate(path, sha256, earlier)

    def duplicate(self, path: Path, sha256: str, earlier: FileResult) -> FileResult:
        """Record a second sighting of known content; the earlier file keeps its status."""
        rec = self.store.record_file(sha256, str(path), path.stat().st_size, earlier.kind, "duplicate",
                                     (f"same content as {earlier.file}",))
        return FileResult(str(path), sha256, earlier.kind, "duplicate", rec.reasons, earlier.patient_id,
                          {"duplicate_of": earlier.file})

    # -- steps --------------------------------------------------------------------------------
    def read(self, path: str | Path) -> Acquisition:
        return read_fcs(path, self.settings)

    def reject(self, path: str | Path, sha256: str, err: InputError) -> FileResult:
        result = rejected(str(path), sha256, "unknown", None, err)
        self.store.record_file(sha256, str(path), Path(path).stat().st_size, "unknown", "rejected", result.reasons)
        return result

    def handle(self, acq: Acquisition) -> FileResult:
        """Calibrate a bead tube or measure a patient tube, store the result, return the outcome."""
        if acq.kind == "beads":
            return self._beads(acq)
        if acq.kind == "sample":
            return self._sample(acq)
        raise InputError(acq.path, BAD_INPUT, "neither a bead tube nor a patient tube: no pseudonymous "
                         "PATIENT ID or BEAD LOT keyword and no PT-####/BEADS_ file name")

    def _lot(self, acq: Acquisition) -> Lot:
        if not acq.bead_lot:
            raise InputError(acq.path, BAD_LOT, "the bead file names no lot (no BEAD LOT keyword, no lot in its name)")
        return find_lot(acq.bead_lot, self.lots, acq.path)

    def _beads(self, acq: Acquisition) -> FileResult:
        lot = self._lot(acq)
        cal = calibrate_file(acq, lot.values, lot.name or acq.bead_lot,
                             config=qc_config_from_settings(self.settings),
                             statistic=self.settings.statistic)  # type: ignore[arg-type]
        document = calibration_document(cal, acq.path)
        document["figure"] = str(draw_calibration_figure(cal, self._bead_figure(acq.sha256)))
        self.store.store_calibration(calibration_input(cal, document))
        status = "qc_fail" if cal.qc.status == "fail" else "calibrated"
        self.store.record_file(acq.sha256, acq.path, acq.size, "beads", status, cal.qc.reasons)
        return FileResult(acq.path, acq.sha256, "beads", status, cal.qc.reasons, None, document)

    def _pe_setting(self, acq: Acquisition) -> tuple[str, float | None, float | None, date]:
        pe = acq.channel(acq.roles.pe)  # type: ignore[arg-type]
        day = acq.acquired.date() if acq.acquired else acq.collection_date
        if day is None:
            raise InputError(acq.path, BAD_INPUT, "no acquisition date ($DATE) to pair the tube with its beads")
        return pe.name, pe.voltage, pe.gain, day

    def _sample(self, acq: Acquisition) -> FileResult:
        require_panel(acq)
        if acq.collection_date is None:
            raise InputError(acq.path, BAD_INPUT, "no collection date (COLLECTION DATE keyword or $DATE)")
        channel, voltage, gain, day = self._pe_setting(acq)
        rec = self.store.find_calibration(acq.instrument or "", acq.serial or "", channel, voltage, gain, day)
        if rec is None:
            reason = self._pending_reason(acq, channel, voltage, day)
            self.store.record_file(acq.sha256, acq.path, acq.size, "sample", "pending_calibration", (reason,),
                                   patient_id=acq.patient_id, collection_date=acq.collection_date)
            return FileResult(acq.path, acq.sha256, "sample", "pending_calibration", (reason,), acq.patient_id,
                              {"collection_date": acq.collection_date.isoformat()})
        return self._measure(acq, rec)

    def _pending_reason(self, acq: Acquisition, channel: str, voltage: float | None, day: date) -> str:
        others = [c for c in self.store.calibrations_on(acq.instrument or "", acq.serial or "", channel, day)
                  if c.qc.status != "fail"]
        where = f"{acq.instrument} {acq.serial or ''}".strip()
        if others:
            have = ", ".join(sorted({f"{c.voltage:g} V" for c in others if c.voltage is not None}))
            return (f"no calibration of {where} {channel} at {voltage:g} V on {day.isoformat()}: "
                    f"beads that day were acquired at {have}")
        return f"no bead calibration of {where} {channel} on {day.isoformat()} yet"

    def _measure(self, acq: Acquisition, rec: CalibrationRecord) -> FileResult:
        patient = self.store.get_patient(acq.patient_id) if acq.patient_id else None
        result = measure(acq, calibration_from_record(rec), self.settings,
                         admission=patient.icu_admission if patient else None, template=self.template)
        meas = measurement_input(result, calibration_id=rec.id)
        self.store.store_measurement(meas)
        status = "qc_fail" if result.qc.status == "fail" else "measured"
        self.store.record_file(acq.sha256, acq.path, acq.size, "sample", status, result.qc.reasons,
                               patient_id=acq.patient_id, collection_date=acq.collection_date)
        report = write_sample_report(result, acq, self._reports() / f"{Path(acq.path).stem}_{acq.sha256[:12]}.html",
                                     self._bead_figure(rec.file_sha256))
        fields = measurement_fields(meas, acq.path, calibration_fields(rec))
        fields["report"] = str(report)
        return FileResult(acq.path, acq.sha256, "sample", status, result.qc.reasons, acq.patient_id, fields)

    def _reports(self) -> Path:
        folder = self.settings.home / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _bead_figure(self, sha256: str) -> Path:
        """Where the calibration figure of a bead file lives (drawn when the beads are fitted)."""
        return self._reports() / f"beads_{sha256[:12]}.png"

    def finish_pending(self, exclude: frozenset[str] = frozenset()) -> list[FileResult]:
        """Measure the samples left ``pending_calibration`` whose calibration now exists
        (``exclude``: SHA-256s just handled, e.g. by the same batch, not worth re-reading)."""
        done = []
        for rec in self.store.files(status="pending_calibration"):
            path = Path(rec.path)
            if rec.sha256 in exclude or not path.is_file():
                continue  # moved by the watcher: it finishes the file from its new place
            try:
                acq = self.read(path)
                if acq.sha256 != rec.sha256:
                    continue
                result = self._sample(acq)
            except InputError as err:
                result = self._reject_known(rec, err)
            if result.status != "pending_calibration":
                done.append(result)
        return done

    def _reject_known(self, rec: FileRecord, err: InputError) -> FileResult:
        result = rejected(rec.path, rec.sha256, rec.kind, rec.patient_id, err)
        self.store.update_file(rec.sha256, "rejected", result.reasons)
        return result

    def reprocess(self, sha256: str, *, reason: str, actor: str) -> FileResult:
        """Process a ``rejected`` file again after its cause was fixed (e.g. a lot added to
        lots.csv); a re-run never does this by itself. The new outcome and who asked, and why,
        go to the audit trail."""
        rec = self.store.get_file_by_sha(sha256)
        if rec is None:
            raise InputError(sha256, BAD_INPUT, "no file with this SHA-256 in the results database")
        if rec.status != "rejected":
            raise InputError(rec.path, BAD_INPUT, f"only rejected files are reprocessed (this one is {rec.status})")
        note = f"reprocessed by {actor}: {reason}"
        identity: dict[str, Any] = {}
        try:
            acq = self.read(rec.path)
            if acq.sha256 != sha256:
                raise InputError(rec.path, BAD_INPUT, "the file at this path has changed since it was rejected")
            identity = {"kind": acq.kind, "patient_id": acq.patient_id, "collection_date": acq.collection_date}
            result = self.handle(acq)
        except InputError as err:
            result = rejected(rec.path, sha256, rec.kind, rec.patient_id, err)
        result = dataclasses.replace(result, reasons=result.reasons + (note,))
        self.store.update_file(sha256, result.status, result.reasons, actor=actor, **identity)  # re-evaluates
        return result

    # -- eligibility and push -------------------------------------------------------------------
    def evaluate(self, patient_ids: Iterable[str], today: date | None = None) -> None:
        for pid in sorted(set(patient_ids)):
            self.store.evaluate_patient(pid, today)

    def push(self) -> dict[str, Any]:
        """Queue every screening result for the configured sinks and deliver what is due."""
        sinks = configured_sinks(self.settings)
        if not sinks:
            return {"sinks": [], "queued": 0, "delivered": 0}
        try:
            queued = enqueue_results(self.store, tuple(sinks))
            report = deliver_outbox(self.store, self.store.clock(), sinks)
        finally:
            for sink in sinks.values():
                sink.close()
        return {"sinks": sorted(sinks), "queued": queued, "delivered": len(report.delivered),
                "failed": len(report.failed)}

    def screening(self) -> list[dict[str, Any]]:
        return [row.as_dict() for row in self.store.screening()]

    # -- all steps in-process (no Prefect) ---------------------------------------------------------
    def process(self, path: str | Path) -> FileResult:
        """Every step for one file; the store re-evaluates the patient with each write."""
        path = Path(path).resolve()
        sha = sha256_file(path)
        earlier = self.seen(path, sha)
        if earlier is not None:
            return earlier
        try:
            return self.handle(self.read(path))
        except InputError as err:
            return self.reject(path, sha, err)

    # -- earlier results ----------------------------------------------------------------------------
    def _from_record(self, rec: FileRecord) -> FileResult:
        fields: dict[str, Any] = {}
        if rec.kind == "beads":
            cals = self.store.calibrations_of_file(rec.sha256)
            if cals:
                fields = calibration_fields(cals[0])
        elif rec.status in ("measured", "qc_fail") and rec.kind == "sample":
            meas = self.store.measurement_of_file(rec.sha256)
            if meas is not None:
                cal = self.store.get_calibration(meas.calibration_id) if meas.calibration_id else None
                fields = measurement_fields(meas, rec.path, calibration_fields(cal) if cal else {})
        return FileResult(rec.path, rec.sha256, rec.kind, rec.status, rec.reasons, rec.patient_id, fields)
