"""What happens to the files of a batch, stage by stage: the API the Prefect flows compose.

Data flow (DESIGN.md, Architecture), each file hashed once and decoded once:

1. :meth:`Processor.intake` -- SHA-256 and HEADER/TEXT of every file (threads): content seen
   before keeps its earlier result (or is recorded as a duplicate); a file that cannot be read is
   ``rejected``; TEXT says bead tube or patient tube.
2. :meth:`Processor.calibrate` -- bead tubes decoded and fitted (workers); each group of fitted
   tubes is stored with their files' statuses in one transaction.
3. :meth:`Processor.measure` -- each patient tube gets the calibration of the same cytometer,
   PE channel, voltage, gain, scale and day (or waits as ``pending_calibration``), is decoded,
   gated and converted (workers); the measurements the workers have finished meanwhile, their
   files' statuses and their patients' re-evaluations are one transaction.
4. :meth:`Processor.finish_pending` -- samples of earlier batches whose beads have arrived.
5. :meth:`Processor.push` -- the outbox to the configured sinks.
6. :meth:`Processor.reports` -- HTML reports of what was stored, drawn last (workers): figures
   never hold a result back.

The Processor only runs these stages; what they use lives in modules of its own: the tube jobs
(:mod:`pipeline.tubes`), bead pairing (:mod:`pipeline.pairing`), what each file shows
(:mod:`pipeline.result_documents`), the report files (:mod:`pipeline.report.layout`), the sinks
(:mod:`pipeline.sink_push`); a rejected file runs again through :mod:`pipeline.reprocess`.

A crash loses nothing: a file without a row is simply processed again. Every outcome that needs
a person ends its reasons with one ``next: ...`` line saying what to do (:mod:`pipeline.next_steps`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from calibration.result import Calibration
from pipeline.acquisition import Header
from pipeline.config import Settings
from pipeline.eligibility import is_blinded
from pipeline import next_steps
from pipeline.errors import BAD_INPUT, BAD_LOT, InputError
from pipeline.fcs_metadata import patient_from_name
from pipeline.lots import Lot, find_lot, no_table, read_lots
from pipeline.measurement import Measurement, require_panel
from pipeline.pairing import bead_sha256, calibration_for, pending_reason
from pipeline.registry import RowError, SampleLogs, import_registry
from pipeline.report.layout import figure_path, gating_ml_path, report_job
from pipeline.result_documents import FileResult, bead_result, sample_result
from pipeline.sink_push import push_to_sinks
from pipeline.store import FileRecord, StoredCalibration, StoredMeasurement, open_store
from pipeline.store.files import settled
from pipeline.tubes import (BeadTube, Examine, Examined, PatientTube, calibrate, draw_report, examine,
                            measure_tube)
from pipeline.workers import InProcess, Workers, in_threads, results

Stored = StoredCalibration | StoredMeasurement


@dataclass
class Intake:
    """The files of a batch after their HEADER/TEXT was read, in name order."""

    order: list[Path]
    results: dict[Path, FileResult] = field(default_factory=dict)   # decided: earlier, duplicate, rejected
    beads: list[Examined] = field(default_factory=list)
    samples: list[Examined] = field(default_factory=list)
    repeats: list[Examined] = field(default_factory=list)          # new content seen twice in this batch
    first: dict[str, Path] = field(default_factory=dict)           # sha256 -> first path of new content


class Processor:
    """One results store, the lab's lots and registry, the workers, and the stages per file."""

    def __init__(self, settings: Settings, registry_csv: str | Path | None = None,
                 lots_csv: str | Path | None = None, workers: Workers | None = None) -> None:
        self.settings = settings
        self.store = open_store(settings)                  # creates the home, closed to other users
        self.workers = workers or InProcess()
        self.lots_path = Path(lots_csv) if lots_csv else None
        self.lots: dict[str, Lot] = read_lots(lots_csv) if lots_csv else {}
        self.registry_errors: list[RowError] = []      # bad registry rows, reported by `mhladr run`
        if registry_csv:
            _, self.registry_errors = import_registry(self.store, registry_csv, actor="registry")
        self.sample_logs = SampleLogs.read(registry_csv)  # its sample-log columns (draw time), per tube
        self.reports_dir = settings.reports_dir
        self._stored: dict[str, Stored] = {}       # sha256 -> what this processor just stored, for its report

    def close(self) -> None:
        self.store.close()

    # -- 1. intake ------------------------------------------------------------------------------
    def intake(self, paths: Iterable[str | Path]) -> Intake:
        """Hash and read the HEADER/TEXT of every file (name order; the first of identical
        contents wins) and sort them: earlier results, duplicates, rejections, beads, samples."""
        order = sorted((Path(p).resolve() for p in paths), key=lambda p: (p.name, str(p)))
        self._stored.clear()
        examined = dict(in_threads(examine, [Examine(str(p), self.settings) for p in order]))
        found = [self._examined(job, outcome) for job, outcome in examined.items()]
        by_path = {Path(e.path): e for e in found}
        known = self.store.files.originals([e.sha256 for e in found])
        intake = Intake(order)
        for path in order:
            e = by_path[path]
            earlier = known.get(e.sha256)
            if earlier is not None:                          # processed before: same file, or a duplicate
                intake.results[path] = (self._earlier(earlier) if earlier.path == str(path)
                                        else self.duplicate(e, self._earlier(earlier)))
            elif e.sha256 in intake.first:
                intake.repeats.append(e)
            else:
                intake.first[e.sha256] = path
                self._sort(intake, e)
        return intake

    @staticmethod
    def _examined(job: Examine, outcome: Examined | BaseException) -> Examined:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _sort(self, intake: Intake, e: Examined) -> None:
        err = e.error or unusable(e.header)
        if err is not None:
            intake.results[Path(e.path)] = self.reject(e, err)
        elif e.header.kind == "beads":  # type: ignore[union-attr]
            intake.beads.append(e)
        else:
            intake.samples.append(e)

    def duplicate(self, e: Examined, earlier: FileResult) -> FileResult:
        """Record a second sighting of known content; the earlier file keeps its status."""
        rec = self.store.files.record(e.sha256, e.path, e.size, earlier.kind, "duplicate",
                                      (f"same content as {earlier.file}",))
        return FileResult(e.path, e.sha256, earlier.kind, "duplicate", rec.reasons, earlier.patient_id,
                          {"duplicate_of": earlier.file})

    def reject(self, e: Examined, err: InputError, *, actor: str = "pipeline", note: str | None = None) -> FileResult:
        """Record an unusable input as ``rejected`` (the file stays where it is)."""
        header = e.header
        kind = header.kind if header is not None else "unknown"
        # an unreadable tube still names its patient in its file name: the patient page lists it
        patient = header.patient_id if header is not None else patient_from_name(Path(e.path).stem, self.settings)
        step = next_steps.after_rejection(err, e.path, header, self.lots_path)
        reasons = (f"{err.code}: {err.message}", f"next: {step}") + ((note,) if note else ())
        result = FileResult(e.path, e.sha256, kind, "rejected", reasons, patient, {"error": err.as_dict()})
        if self.store.files.original(e.sha256) is None:
            self.store.files.record(e.sha256, e.path, e.size, kind, "rejected", result.reasons, patient_id=patient,
                                    collection_date=header.collection_date if header is not None else None,
                                    actor=actor)
        else:
            self.store.files.update(e.sha256, "rejected", result.reasons, actor=actor)
        return result

    # -- 2. bead tubes --------------------------------------------------------------------------
    def calibrate(self, beads: list[Examined], *, actor: str = "pipeline",
                  note: str | None = None) -> dict[Path, FileResult]:
        """Fit every bead tube and store each calibration with its file's status."""
        out: dict[Path, FileResult] = {}
        jobs = []
        for e in beads:
            try:
                jobs.append(BeadTube(e, self._lot(e.header), self.settings))  # type: ignore[arg-type]
            except InputError as err:
                out[Path(e.path)] = self.reject(e, err, actor=actor, note=note)
        try:
            for group in self.workers.run_groups(calibrate, jobs, beads=True):
                out.update(self._stored_beads([(job.tube, outcome) for job, outcome in group], actor=actor, note=note))
        finally:
            self.workers.release_beads()
        return out

    def _lot(self, header: Header) -> Lot:
        if not header.bead_lot:
            raise InputError(header.path, BAD_LOT, "the bead file names no lot (no BEAD LOT keyword, no lot in "
                             "its name)")
        if self.lots_path is None:
            raise no_table(header.path)
        try:
            return find_lot(header.bead_lot, self.lots, header.path)
        except InputError as err:
            raise InputError(header.path, BAD_LOT, f"{err.message} in {self.lots_path}") from None

    def _stored_beads(self, group: list[tuple[Examined, Calibration | BaseException]], *, actor: str,
                      note: str | None) -> dict[Path, FileResult]:
        """Store a group of fitted bead tubes in one transaction (rejections each in their own)."""
        out, fitted, failure = self._settle_errors(group, actor, note)
        stored = self.store.calibrations.add_many([(cal, e.path, e.size) for e, cal in fitted], actor=actor, note=note)
        for (e, _), cal in zip(fitted, stored):
            self._stored[e.sha256] = cal
            out[Path(e.path)] = bead_result(self.reports_dir, e.path, cal, *settled("beads", cal.calibration.qc, note))
        if failure is not None:
            raise failure
        return out

    def _settle_errors(self, group: list[tuple[Examined, Any]], actor: str, note: str | None
                       ) -> tuple[dict[Path, FileResult], list[tuple[Examined, Any]], BaseException | None]:
        """Split a group of worker outcomes: input errors are rejected here, results returned to
        store, and the first unexpected exception (a bug) returned to raise once the rest is stored."""
        out: dict[Path, FileResult] = {}
        kept: list[tuple[Examined, Any]] = []
        failure: BaseException | None = None
        for e, outcome in group:
            if isinstance(outcome, InputError):
                out[Path(e.path)] = self.reject(e, outcome, actor=actor, note=note)
            elif isinstance(outcome, BaseException):
                failure = failure or outcome
            else:
                kept.append((e, outcome))
        return out, kept, failure

    # -- 3. patient tubes -----------------------------------------------------------------------
    def measure(self, samples: list[Examined], *, actor: str = "pipeline",
                note: str | None = None) -> dict[Path, FileResult]:
        """Measure every patient tube whose calibration exists; the others wait for their beads."""
        out: dict[Path, FileResult] = {}
        jobs: list[PatientTube] = []
        calibrations: dict[tuple, StoredCalibration | None] = {}
        patients = {p.patient_id: p for p in self.store.patients.list()} if samples else {}
        for e in samples:
            header = e.header
            assert header is not None
            stored = calibration_for(self.store, header, calibrations)
            if stored is None:
                out[Path(e.path)] = self._pending(e, actor)
                continue
            patient = patients.get(header.patient_id or "")
            log, _ = self.sample_logs.of(header.patient_id, header.collection_date)
            jobs.append(PatientTube(e, stored.calibration, stored.id, patient.icu_admission if patient else None,
                                    self.settings, str(figure_path(self.reports_dir, e.sha256)),
                                    str(gating_ml_path(self.reports_dir, e.path, e.sha256)), log))
        bead_paths = self._paths_of(job.calibration.key.sha256 or "" for job in jobs)
        for group in self.workers.run_groups(measure_tube, jobs):
            out.update(self._stored_samples(group, bead_paths, actor, note))
        return out

    def _pending(self, e: Examined, actor: str) -> FileResult:
        header = e.header
        assert header is not None
        reasons = (pending_reason(self.store, header), f"next: {next_steps.PENDING_CALIBRATION}")
        self.store.files.record(e.sha256, e.path, e.size, "sample", "pending_calibration", reasons,
                                patient_id=header.patient_id, collection_date=header.collection_date, actor=actor)
        return FileResult(e.path, e.sha256, "sample", "pending_calibration", reasons, header.patient_id,
                          {"collection_date": header.collection_date.isoformat() if header.collection_date else None})

    def _stored_samples(self, group: list[tuple[PatientTube, Measurement | BaseException]],
                        bead_paths: dict[str, str], actor: str, note: str | None) -> dict[Path, FileResult]:
        """Store a group of measured patient tubes in one transaction (each touched patient
        re-evaluated once; rejections each in their own)."""
        ids = {job.tube.sha256: job.calibration_id for job, _ in group}
        out, measured, failure = self._settle_errors([(job.tube, outcome) for job, outcome in group], actor, note)
        stored = self.store.measurements.add_many([(meas, ids[e.sha256], e.size) for e, meas in measured],
                                                  actor=actor, note=note)
        randomized = {pid: self.store.patients.get(pid) for pid in {mm.patient_id for mm in stored}}
        for mm in stored:
            self._stored[mm.measurement.sha256] = mm
            patient = randomized[mm.patient_id]
            blinded = patient is not None and is_blinded(mm.collection_date, patient.randomized_at)
            out[Path(mm.measurement.file)] = sample_result(
                self.reports_dir, mm, *settled("sample", mm.measurement.qc, note), bead_path=bead_paths.get(bead_sha256(mm)),
                blinded=blinded)
        if failure is not None:
            raise failure
        return out

    def _paths_of(self, sha256s: Iterable[str]) -> dict[str, str]:
        """Where these contents' files are now (one query), by SHA-256."""
        wanted = [sha for sha in set(sha256s) if sha]
        return {sha: rec.path for sha, rec in self.store.files.originals(wanted).items()} if wanted else {}

    # -- 4. samples of earlier batches ----------------------------------------------------------
    def finish_pending(self, exclude: frozenset[str] = frozenset()) -> list[FileResult]:
        """Measure the samples left ``pending_calibration`` whose calibration now exists
        (``exclude``: SHA-256s just handled, e.g. by the same batch). A file is hashed again
        before use: it may have been replaced since it was first seen."""
        waiting = [rec for rec in self.store.files.list(status="pending_calibration")
                   if rec.sha256 not in exclude and Path(rec.path).is_file()]  # moved: the watcher finishes it
        ready: list[Examined] = []
        done: list[FileResult] = []
        for job, outcome in in_threads(examine, [Examine(r.path, self.settings) for r in waiting]):
            rec = next(r for r in waiting if r.path == job.path)
            e = self._examined(job, outcome)
            if e.sha256 != rec.sha256:
                continue
            if e.error is not None:
                done.append(self.reject(e, e.error))
            elif calibration_for(self.store, e.header) is not None:  # type: ignore[arg-type]
                ready.append(e)
        done += [r for r in self.measure(ready).values() if r.status != "pending_calibration"]
        return done

    # -- 6. reports ---------------------------------------------------------------------------
    def reports(self, done: Iterable[FileResult]) -> list[Path]:
        """Draw the HTML report of every stored result among ``done`` (workers)."""
        found: list[tuple[FileResult, Stored]] = []
        for r in done:
            if r.status in ("calibrated", "measured", "qc_fail") and r.fields.get("report"):
                stored = self._stored.pop(r.sha256, None) or (
                    self.store.measurements.of_file(r.sha256) if r.kind == "sample"
                    else next(iter(self.store.calibrations.of_file(r.sha256)), None))
                if stored is not None:
                    found.append((r, stored))
        blinded = {mm.id for mm in self.store.measurements.blinded()} if found else set()
        bead_paths = self._paths_of(bead_sha256(stored) for _, stored in found)
        jobs = [report_job(self.reports_dir, r.file, stored, blinded, bead_paths) for r, stored in found]
        drawn = []
        for job, outcome in results(self.workers.run(draw_report, jobs)):
            if isinstance(outcome, BaseException):
                raise outcome
            drawn.append(outcome)
        return drawn

    # -- 5. eligibility and push ------------------------------------------------------------------
    def evaluate(self, patient_ids: Iterable[str], today: date | None = None) -> None:
        """Re-evaluate these patients as of ``today`` (the window closes with time)."""
        with self.store.write("pipeline", today) as tx:
            for pid in sorted(set(patient_ids)):
                tx.touch(pid)

    def push(self) -> dict[str, Any]:
        """Queue every screening result for the configured sinks and deliver what is due."""
        return push_to_sinks(self.store, self.settings)

    def screening(self) -> list[dict[str, Any]]:
        return [row.as_dict() for row in self.store.screening.log()]

    # -- all stages for one file, in-process (tests, reprocess) ---------------------------------------
    def process(self, path: str | Path) -> FileResult:
        """Every stage for one file; the store re-evaluates the patient with each write."""
        path = Path(path).resolve()
        intake = self.intake([path])
        done = intake.results.get(path) or next(iter({**self.calibrate(intake.beads),
                                                      **self.measure(intake.samples)}.values()))
        self.reports([done])
        return done

    # -- earlier results ------------------------------------------------------------------------
    def _earlier(self, rec: FileRecord) -> FileResult:
        """The result a file got when it was processed before (as stored)."""
        if rec.kind == "beads" and rec.status in ("calibrated", "qc_fail"):
            stored = next(iter(self.store.calibrations.of_file(rec.sha256)), None)
            if stored is not None:
                return bead_result(self.reports_dir, rec.path, stored, rec.status, rec.reasons)
        if rec.kind == "sample" and rec.status in ("measured", "qc_fail"):
            meas = self.store.measurements.of_file(rec.sha256)
            if meas is not None:
                bead = bead_sha256(meas)
                return sample_result(self.reports_dir, meas, rec.status, rec.reasons, bead_path=self._paths_of([bead]).get(bead),
                                           blinded=self.store.measurements.is_blinded(meas))
        return FileResult(rec.path, rec.sha256, rec.kind, rec.status, rec.reasons, rec.patient_id, {})


def unusable(header: Header | None) -> InputError | None:
    """Why TEXT already rules a file out: neither beads nor a patient tube, wrong panel, no date."""
    if header is None or header.kind == "beads":
        return None
    if header.kind != "sample":
        return InputError(header.path, BAD_INPUT, next_steps.UNKNOWN_KIND)
    try:
        require_panel(header)
    except InputError as err:
        return err
    if header.collection_date is None:
        return InputError(header.path, BAD_INPUT, next_steps.NO_COLLECTION_DATE)
    return None
