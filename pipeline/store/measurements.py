"""Patient results (measurements) and the technicians' review decisions on them.

A measurement row holds the result's values as columns (what the rules and lists query) and its
gating record, notes and calibration reference; it maps back to the one
:class:`pipeline.measurement.Measurement` shape (with its calibration and the file's current path).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.eligibility import ResultRules, Rules, is_blinded, parse_date_or_datetime, result_rules
from pipeline.measurement import Measurement
from pipeline.store import calibrations, files
from pipeline.store import models as m
from pipeline.store.records import ReviewRecord, StoredMeasurement
from pipeline.store.tx import Transactions, Tx
from science.qc import QC


# The latest technician decision on the selected measurement (correlated scalar subquery), so a
# list of results and their reviews is one query.
LATEST_REVIEW = (select(m.ReviewDecision.decision)
                 .where(m.ReviewDecision.measurement_id == m.Measurement.id)
                 .order_by(m.ReviewDecision.id.desc()).limit(1)
                 .correlate(m.Measurement).scalar_subquery())
# The path of the original sighting of the measured file.
FILE_PATH = (select(m.File.path).where(m.File.sha256 == m.Measurement.file_sha256, m.File.status != "duplicate")
             .limit(1).correlate(m.Measurement).scalar_subquery())


NO_DATE = date.min       # the stored collection date of a tube that gave none


def copies(admission: str | None, collection: date | None, abc: float | None, qc_status: str, rules: Rules, *,
           known_day: int | None) -> ResultRules:
    """The rules' columns a stored result keeps (ICU day, window, cut-off): :func:`result_rules` of
    the registry's admission as stored (ISO text; None: no registry row, the day is ``known_day``,
    the one the file's keyword gave), the collection date, AB/C and QC. The one derivation the
    writers, the readers and the check of the stored copies (:mod:`pipeline.store.derived`) share."""
    return result_rules(parse_date_or_datetime(admission) if admission else None,
                        None if collection == NO_DATE else collection, abc, qc_status, rules, known_day=known_day)


def measurement_dict(row: m.Measurement) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in m.Measurement.__table__.columns
            if c.name not in {"id", "created"}}


def stored(row: m.Measurement, review: str | None, path: str | None, cal: m.Calibration | None,
           admission: str | None, rules: Rules) -> StoredMeasurement:
    """A measurement row as a record. Its ICU day, window and cut-off are derived again from the
    stored facts (the registry's admission, else the day the file's keyword gave; the collection
    date, AB/C and QC) and the rules in force: the row's own columns are a copy, never read."""
    interval = (row.abc_low, row.abc_high) if row.abc_low is not None and row.abc_high is not None else None
    facts = copies(admission, row.collection_date, row.abc, row.qc_status, rules, known_day=row.icu_day)
    measurement = Measurement(
        file=path or "", sha256=row.file_sha256, patient_id=row.patient_id, collection_date=row.collection_date,
        icu_day=facts.icu_day, in_window=facts.in_window, monocytes=row.monocytes, statistic=row.statistic,
        pe_statistic=row.pe_statistic, abc=row.abc, abc_interval=interval, below_threshold=facts.below_threshold,
        category=row.category, qc=QC(row.qc_status, tuple(row.qc_reasons)), gates=dict(row.gates),
        calibration=calibrations.from_record(cal.record) if cal is not None else None,
        analysed_at=row.analysed_at, software_version=row.software_version, notes=tuple(row.notes))
    return StoredMeasurement(row.id, row.created, row.calibration_id, review, measurement)


def rows(s: Session, rules: Rules, *where: Any) -> list[StoredMeasurement]:
    """Stored measurements matching ``where`` with their latest review, file path, calibration
    and their patient's registry admission, by id, each as its current version (:func:`current`)."""
    query = (select(m.Measurement, LATEST_REVIEW, FILE_PATH, m.Calibration, m.Patient.icu_admission)
             .outerjoin(m.Calibration, m.Calibration.id == m.Measurement.calibration_id)
             .outerjoin(m.Patient, m.Patient.patient_id == m.Measurement.patient_id)
             .where(*where).order_by(m.Measurement.id))
    found = [stored(row, review, path, cal, admission, rules)
             for row, review, path, cal, admission in s.execute(query)]
    versions = latest_versions(s, [r.id for r in found])
    return [current(r, versions[r.id], rules) if r.id in versions else r for r in found]


def latest_versions(s: Session, measurement_ids: Sequence[int]) -> dict[int, m.MeasurementVersion]:
    """The newest later version of each of these measurements that has one (one query)."""
    if not measurement_ids:
        return {}
    newest = (select(m.MeasurementVersion.measurement_id, func.max(m.MeasurementVersion.version).label("v"))
              .where(m.MeasurementVersion.measurement_id.in_(set(measurement_ids)))
              .group_by(m.MeasurementVersion.measurement_id).subquery())
    found = s.scalars(select(m.MeasurementVersion).join(
        newest, (m.MeasurementVersion.measurement_id == newest.c.measurement_id)
        & (m.MeasurementVersion.version == newest.c.v)))
    return {v.measurement_id: v for v in found}


def current(first: StoredMeasurement, later: m.MeasurementVersion, rules: Rules) -> StoredMeasurement:
    """A stored measurement as its later version says (the values a gate correction changed); its
    cut-off derived again from the version's AB/C and QC (:func:`pipeline.eligibility.result_rules`:
    the same tube keeps its ICU day and window), the version's column a copy never read."""
    interval = (later.abc_low, later.abc_high) if later.abc_low is not None and later.abc_high is not None else None
    facts = copies(None, None, later.abc, later.qc_status, rules, known_day=first.measurement.icu_day)
    meas = replace(first.measurement, monocytes=later.monocytes, pe_statistic=later.pe_statistic, abc=later.abc,
                   abc_interval=interval, below_threshold=facts.below_threshold, category=later.category,
                   qc=QC(later.qc_status, tuple(later.qc_reasons)), gates=dict(later.gates),
                   notes=tuple(later.notes), analysed_at=later.analysed_at, software_version=later.software_version)
    return replace(first, measurement=meas, version=later.version, version_id=later.id)


def version_dict(row: m.MeasurementVersion) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in m.MeasurementVersion.__table__.columns
            if c.name not in {"id", "created"}}


def randomizations(s: Session) -> dict[str, Any]:
    found = s.execute(select(m.Patient.patient_id, m.Patient.randomized_at)
                      .where(m.Patient.randomized_at.is_not(None)))
    return {pid: parse_date_or_datetime(at) for pid, at in found}


def review_record(row: m.ReviewDecision) -> ReviewRecord:
    return ReviewRecord(row.id, row.measurement_id, row.decision, row.reason, row.actor, row.decided_at,
                        row.supersedes)


PAST = {"approve": "approved", "reject": "rejected"}


class NotReviewable(ValueError):
    """Only QC ``review`` results take a technician's decision."""

    def __init__(self, qc_status: str) -> None:
        self.qc_status = qc_status
        counts = "a pass counts as it is" if qc_status == "pass" else "a fail never counts"
        super().__init__(f"QC is {qc_status}, not review: only QC review results are approved or rejected "
                         f"({counts})")


class AlreadyDecided(ValueError):
    """A second decision on a result, without superseding the first."""

    def __init__(self, earlier: ReviewRecord) -> None:
        self.earlier = earlier
        super().__init__(f"already {PAST[earlier.decision]} by {earlier.actor} at "
                         f"{earlier.decided_at.isoformat(timespec='seconds')} ({earlier.reason}); "
                         "a second decision must supersede it (--supersede)")


class Measurements:
    """The ``measurements`` and ``review_decisions`` tables."""

    REVIEW_DECISIONS = m.REVIEW_DECISIONS

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def add(self, meas: Measurement, calibration_id: int | None = None, *, size: int | None = None,
            actor: str = "pipeline", today: date | None = None, note: str | None = None) -> StoredMeasurement:
        """Store a patient result (idempotent per file); the file's row follows (``measured`` or
        ``qc_fail``; recorded when ``size`` is given for a file not seen yet) and the patient is
        re-evaluated, all in one transaction."""
        return self.add_many([(meas, calibration_id, size)], actor=actor, today=today, note=note)[0]

    def add_many(self, items: Sequence[tuple[Measurement, int | None, int | None]], *, actor: str = "pipeline",
                 today: date | None = None, note: str | None = None) -> list[StoredMeasurement]:
        """:meth:`add` for several (measurement, calibration id, file size) at once: one transaction
        (one commit, each touched patient re-evaluated once), e.g. the tubes a batch's workers
        have just finished."""
        with self.store.write(actor, today) as tx:
            return [self.add_in(tx, meas, calibration_id, size=size, note=note)
                    for meas, calibration_id, size in items]

    def add_in(self, tx: Tx, meas: Measurement, calibration_id: int | None, *, size: int | None = None,
               note: str | None = None) -> StoredMeasurement:
        """:meth:`add` inside a transaction the caller holds."""
        s = tx.session
        if s.scalar(select(m.Measurement.id).where(m.Measurement.file_sha256 == meas.sha256)) is not None:
            return rows(s, tx.store.rules, m.Measurement.file_sha256 == meas.sha256)[0]
        original = files.settle_in(tx, meas.sha256, "sample", meas.qc, path=meas.file if size is not None else None,
                                   size=size, patient_id=meas.patient_id, collection_date=meas.collection_date,
                                   note=note)
        interval = meas.abc_interval
        admission = s.scalar(select(m.Patient.icu_admission).where(m.Patient.patient_id == (meas.patient_id or "")))
        copy = copies(admission, meas.collection_date, meas.abc, meas.qc.status, tx.store.rules,
                      known_day=meas.icu_day)
        row = m.Measurement(   # the rules' columns: copies derived from the facts beside them
            file_sha256=meas.sha256, patient_id=meas.patient_id or "",
            collection_date=meas.collection_date or NO_DATE, icu_day=copy.icu_day, in_window=copy.in_window,
            monocytes=int(meas.monocytes), statistic=meas.statistic, pe_statistic=meas.pe_statistic,
            abc=meas.abc, abc_low=interval[0] if interval else None, abc_high=interval[1] if interval else None,
            below_threshold=copy.below_threshold, category=meas.category,
            qc_status=meas.qc.status, qc_reasons=list(meas.qc.reasons), calibration_id=calibration_id,
            gates=meas.gates, notes=list(meas.notes), analysed_at=meas.analysed_at,
            software_version=meas.software_version, created=tx.now())
        tx.save(row, "store_measurement", "measurement", None, measurement_dict(row))
        tx.touch(row.patient_id)          # as it loads back: the file where it is now
        return StoredMeasurement(row.id, row.created, calibration_id, None,
                                 replace(meas, file=original.path if original is not None else ""))

    def get(self, measurement_id: int) -> StoredMeasurement | None:
        return self._one(m.Measurement.id == measurement_id)

    def of_file(self, sha256: str) -> StoredMeasurement | None:
        """The result measured from this file's content, if any."""
        return self._one(m.Measurement.file_sha256 == sha256)

    def _one(self, where: Any) -> StoredMeasurement | None:
        with self.store.read() as s:
            found = rows(s, self.store.rules, where)
            return found[0] if found else None

    def list(self, patient_id: str | None = None, *, include_blinded: bool = False) -> list[StoredMeasurement]:
        """Stored results (by id); results collected after the patient's randomization are left
        out unless ``include_blinded`` (callers audit such reads with ``audit.log_unblinded_read``)."""
        with self.store.read() as s:
            where = [] if patient_id is None else [m.Measurement.patient_id == patient_id]
            randomized = randomizations(s)
            return [r for r in rows(s, self.store.rules, *where)
                    if include_blinded or not is_blinded(r.collection_date, randomized.get(r.patient_id))]

    def blinded(self) -> list[StoredMeasurement]:
        """The results collected after their patient's randomization (by id)."""
        with self.store.read() as s:
            randomized = randomizations(s)
            found = rows(s, self.store.rules, m.Measurement.patient_id.in_(randomized))
            return [r for r in found if is_blinded(r.collection_date, randomized[r.patient_id])]

    def is_blinded(self, record: StoredMeasurement) -> bool:
        """Whether a result was collected after its patient's randomization."""
        with self.store.read() as s:
            patient = s.get(m.Patient, record.patient_id)
            randomized = patient.randomized_at if patient is not None else None
        return randomized is not None and is_blinded(record.collection_date, parse_date_or_datetime(randomized))

    def pending(self) -> list[StoredMeasurement]:
        """QC ``review`` results (current version) that no technician has decided yet (oldest first)."""
        with self.store.read() as s:
            return [r for r in rows(s, self.store.rules, LATEST_REVIEW.is_(None)) if r.qc.status == "review"]

    # -- versions -----------------------------------------------------------------------------
    def amend(self, measurement_id: int, meas: Measurement, *, reason: str, actor: str,
              today: date | None = None, signed: bool = False) -> StoredMeasurement:
        """Store ``meas`` (the same tube, gated again) as the next version of this result: audited
        with the earlier values as ``before``; the earlier versions stay; the patient is
        re-evaluated. ``KeyError`` for an unknown result; ``ValueError`` for another tube.
        ``signed``: the actor proved who they are just now (:mod:`pipeline.signing`); the new
        version is signed "corrected gate" in the same transaction."""
        if not reason.strip() or not actor.strip():
            raise ValueError("a new version needs a reason and an actor")
        with self.store.write(actor, today) as tx:
            s = tx.session
            found = rows(s, self.store.rules, m.Measurement.id == measurement_id)
            if not found:
                raise KeyError(f"no measurement {measurement_id}")
            earlier = found[0]
            if meas.sha256 != earlier.measurement.sha256:
                raise ValueError("a new version must come from the same tube (same SHA-256)")
            interval = meas.abc_interval
            copy = copies(None, None, meas.abc, meas.qc.status, tx.store.rules, known_day=earlier.measurement.icu_day)
            row = m.MeasurementVersion(
                measurement_id=measurement_id, version=earlier.version + 1, monocytes=int(meas.monocytes),
                pe_statistic=meas.pe_statistic, abc=meas.abc, abc_low=interval[0] if interval else None,
                abc_high=interval[1] if interval else None, below_threshold=copy.below_threshold,
                category=meas.category, qc_status=meas.qc.status, qc_reasons=list(meas.qc.reasons),
                gates=meas.gates, notes=list(meas.notes), analysed_at=meas.analysed_at,
                software_version=meas.software_version, reason=reason.strip(), actor=actor, created=tx.now())
            before = {"version": earlier.version, "abc": earlier.abc, "monocytes": earlier.measurement.monocytes,
                      "qc": earlier.qc.status}
            tx.save(row, "amend_measurement", "measurement", before, version_dict(row), entity_id=measurement_id)
            if signed:
                from pipeline.store.signatures import sign_in
                sign_in(tx, "measurement_versions", row.id, actor, "corrected gate")
            tx.touch(earlier.patient_id)
            return current(earlier, row, tx.store.rules)

    def versions(self, measurement_id: int) -> list[StoredMeasurement]:
        """Every version of a result, the first (as stored) first."""
        with self.store.read() as s:
            found = rows(s, self.store.rules, m.Measurement.id == measurement_id)
            if not found:
                return []
            first = s.scalars(select(m.Measurement).where(m.Measurement.id == measurement_id)).one()
            cal = s.get(m.Calibration, first.calibration_id) if first.calibration_id else None
            patient = s.get(m.Patient, first.patient_id)
            original = stored(first, found[0].review, found[0].measurement.file, cal,
                              patient.icu_admission if patient is not None else None, self.store.rules)
            later = s.scalars(select(m.MeasurementVersion).where(m.MeasurementVersion.measurement_id == measurement_id)
                              .order_by(m.MeasurementVersion.version))
            return [original] + [current(original, v, self.store.rules) for v in later]

    # -- reviews ------------------------------------------------------------------------------
    def review(self, measurement_id: int, decision: str, reason: str, actor: str, *, supersede: bool = False,
               today: date | None = None, signed: bool = False) -> ReviewRecord:
        """A technician's approve/reject of a QC ``review`` result; re-evaluates the patient.

        A result is decided once: a second decision is refused (:class:`AlreadyDecided`) unless
        ``supersede``, and then recorded as a new decision naming the one it replaces (both stay,
        each with its actor and reason: ICH E6(R3), changes keep the original readable).
        ``signed``: the actor proved who they are just now (:mod:`pipeline.signing`); the decision
        is signed in the same transaction (meaning ``reviewed: approved``, ``superseded: rejected``, ...).
        """
        if decision not in m.REVIEW_DECISIONS:
            raise ValueError(f"decision must be one of {m.REVIEW_DECISIONS}, not {decision!r}")
        if not reason.strip() or not actor.strip():
            raise ValueError("a review needs a reason and an actor")
        with self.store.write(actor, today) as tx:
            s = tx.session
            found = rows(s, self.store.rules, m.Measurement.id == measurement_id)
            if not found:
                raise KeyError(f"no measurement {measurement_id}")
            meas = found[0]
            if meas.qc.status != "review":
                raise NotReviewable(meas.qc.status)
            earlier = s.scalars(select(m.ReviewDecision).where(m.ReviewDecision.measurement_id == measurement_id)
                                .order_by(m.ReviewDecision.id.desc()).limit(1)).first()
            if earlier is not None and not supersede:
                raise AlreadyDecided(review_record(earlier))
            row = m.ReviewDecision(measurement_id=measurement_id, decision=decision, reason=reason.strip(),
                                   actor=actor, decided_at=tx.now(), supersedes=earlier.id if earlier else None)
            before = None if earlier is None else {"review": earlier.decision, "review_id": earlier.id}
            tx.save(row, f"review_{decision}", "measurement",
                    before, {"review": decision, "reason": row.reason, "supersedes": row.supersedes},
                    entity_id=measurement_id)
            if signed:
                from pipeline.store.signatures import sign_in
                verb = "superseded" if row.supersedes is not None else "reviewed"
                sign_in(tx, "review_decisions", row.id, actor, f"{verb}: {PAST[decision]}")
            tx.touch(meas.patient_id)
            return review_record(row)

    def reviews(self, measurement_id: int) -> list[ReviewRecord]:
        with self.store.read() as s:
            found = s.scalars(select(m.ReviewDecision).where(m.ReviewDecision.measurement_id == measurement_id)
                              .order_by(m.ReviewDecision.id))
            return [review_record(r) for r in found]
