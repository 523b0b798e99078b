"""Results store on SQLite and PostgreSQL: schema, files, calibrations, measurements, reviews,
screening decisions (each write audited)."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from science.qc import QC
from pipeline.eligibility import PatientFacts
from pipeline.store import open_store
from pipeline.store.engine import HEAD, current_revision, head_revision
from pipeline.store.measurements import AlreadyDecided, NotReviewable
from pipeline.store.models import Base
from tests.store_fixtures import (calibration, clock, db_url, measurement, settings, sha,  # noqa: F401
                            store)


def admit(store, pid="PT-1", admission=date(2026, 3, 1), **kw):
    facts = PatientFacts(pid, admission, kw.pop("sofa_24h", 8), kw.pop("mechanical_ventilation", True),
                         kw.pop("exclusion", ""), kw.pop("randomized_at", None))
    return store.patients.upsert([facts], today=kw.pop("today", date(2026, 3, 2)))


def test_migrations_reach_head_and_match_the_models(store):
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision() == HEAD == "0006"
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_is_idempotent(settings, store):
    before = store.audit.entries()
    again = open_store(settings)
    try:
        with again.engine.connect() as conn:
            assert current_revision(conn) == HEAD
        assert again.audit.entries() == before
    finally:
        again.close()


def test_sqlite_pragmas(store):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_record_file_is_idempotent_and_marks_duplicates(store):
    first = store.files.record(sha(1), "/in/a.fcs", 100, "sample", "pending_calibration", ["no beads"])
    again = store.files.record(sha(1), "/in/a.fcs", 100, "sample", "pending_calibration", ["no beads"])
    assert again == first
    dup = store.files.record(sha(1), "/in/copy.fcs", 100, "sample", "measured")
    assert dup.status == "duplicate" and "/in/a.fcs" in dup.reasons[0]
    assert store.files.original(sha(1)).path == "/in/a.fcs"
    assert store.files.original(sha(1)).status == "pending_calibration"
    assert [f.path for f in store.files.list("duplicate")] == ["/in/copy.fcs"]
    assert len(store.audit.entries()) == 2          # two sightings, the repeat wrote nothing
    assert store.files.original(sha(99)) is None


def test_update_file_audits_before_and_after(store, clock):
    store.files.record(sha(1), "/in/a.fcs", 100, "sample", "pending_calibration", ["no beads"])
    clock.advance(minutes=5)
    updated = store.files.update(sha(1), "rejected", ["truncated"])
    assert updated.status == "rejected" and updated.updated > updated.first_seen
    entry = store.audit.entries()[-1]
    assert entry.action == "update_file"
    assert entry.before["status"] == "pending_calibration" and entry.after["status"] == "rejected"
    store.files.update(sha(1), "rejected", ["truncated"])  # no change, no entry
    assert store.audit.entries()[-1].seq == entry.seq
    with pytest.raises(KeyError):
        store.files.update(sha(42), "rejected")


def test_store_and_find_calibration(store):
    store.files.record(sha(0), "/in/beads.fcs", 10, "beads", "pending_calibration")
    cal = store.calibrations.add(calibration(0, voltage=450.0))
    assert cal.id > 0 and store.calibrations.get(cal.id).calibration == calibration(0, voltage=450.0)
    assert store.files.original(sha(0)).status == "calibrated"
    assert store.calibrations.add(calibration(0, voltage=450.0)).id == cal.id  # idempotent
    found = store.calibrations.find("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 6))
    assert found is not None and found.id == cal.id
    assert found.calibration.populations[1].bead_value == pytest.approx(5359.0)
    # another voltage, day, detector or gain: no match
    assert store.calibrations.find("FACSCanto II", "V123", "PE-A", 500.0, 1.0, date(2026, 3, 6)) is None
    assert store.calibrations.find("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 7)) is None
    assert store.calibrations.find("FACSCanto II", "V999", "PE-A", 450.0, 1.0, date(2026, 3, 6)) is None
    assert store.calibrations.find("FACSCanto II", "V123", "PE-A", 450.0, None, date(2026, 3, 6)) is None
    voltages = [c.calibration.key.voltage for c in store.calibrations.on_day("FACSCanto II", "V123", "PE-A", date(2026, 3, 6))]
    assert voltages == [pytest.approx(450.0)]


def test_failed_calibration_is_never_used_and_pass_beats_review(store):
    store.files.record(sha(0), "/in/b0.fcs", 10, "beads", "pending_calibration")
    store.calibrations.add(calibration(0, qc=QC("fail", ("3 of 4 peaks",))))
    assert store.files.original(sha(0)).status == "qc_fail"
    assert store.calibrations.find("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 6)) is None
    review = store.calibrations.add(calibration(1, qc=QC("review", ("R2 0.985",))))
    passed = store.calibrations.add(calibration(2))
    store.calibrations.add(calibration(3, qc=QC("review", ("R2 0.985",))))
    found = store.calibrations.find("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 6))
    assert found.id == passed.id != review.id


def test_store_measurement_sets_file_status_and_evaluates(store):
    admit(store)
    store.files.record(sha(5), "/in/PT-1_D06.fcs", 10, "sample", "pending_calibration",
                      patient_id="PT-1", collection_date=date(2026, 3, 7))
    assert store.screening.log()[0].status == "pending"
    meas = store.measurements.add(measurement(5, "PT-1", date(2026, 3, 7), 6500.0), today=date(2026, 3, 7))
    assert store.files.original(sha(5)).status == "measured"
    row = store.screening.log()[0]
    assert (row.status, row.measurement_id, row.icu_day, row.file) == ("eligible", meas.id, 6, "/in/PT-1_D06.fcs")
    assert row.abc == pytest.approx(6500.0)
    again = store.measurements.add(measurement(5, "PT-1", date(2026, 3, 7), 6500.0))
    assert again.id == meas.id
    assert store.measurements.get(meas.id).measurement.gates == {"monocytes": {"cd14_min": 1200.0}}
    assert store.audit.verify_chain().ok


def test_qc_fail_measurement_marks_file_qc_fail(store):
    store.files.record(sha(6), "/in/x.fcs", 10, "sample", "pending_calibration")
    store.measurements.add(measurement(6, "PT-2", date(2026, 3, 7), 3000.0, qc=QC("fail", ("120 monocytes",))))
    f = store.files.original(sha(6))
    assert f.status == "qc_fail" and f.reasons == ("120 monocytes",)


def test_review_flow_reevaluates_patient(store):
    admit(store)
    meas = store.measurements.add(measurement(7, "PT-1", date(2026, 3, 7), 5000.0,
                                               qc=QC("review", ("1,500 monocytes",))), today=date(2026, 3, 7))
    assert [m.id for m in store.measurements.pending()] == [meas.id]
    assert store.screening.log()[0].status == "pending"
    store.measurements.review(meas.id, "approve", "smear checked", "tech-a", today=date(2026, 3, 7))
    assert store.measurements.pending() == []
    assert store.measurements.get(meas.id).review == "approve"
    assert store.screening.log()[0].status == "eligible"
    with pytest.raises(AlreadyDecided, match=r"already approved by tech-a at 2026-03-01T08:00:00\+00:00 "
                                              r"\(smear checked\).*--supersede"):
        store.measurements.review(meas.id, "reject", "clot found", "tech-b", today=date(2026, 3, 7))
    assert store.screening.log()[0].status == "eligible"              # the refused decision changed nothing
    store.measurements.review(meas.id, "reject", "clot found", "tech-b", supersede=True, today=date(2026, 3, 7))
    assert store.screening.log()[0].status == "pending"
    first, second = store.measurements.reviews(meas.id)
    assert (first.decision, first.actor, first.supersedes) == ("approve", "tech-a", None)
    assert (second.decision, second.actor, second.reason, second.supersedes) == ("reject", "tech-b", "clot found",
                                                                               first.id)
    entries = [e for e in store.audit.entries() if e.action.startswith("review_")]
    assert [(e.action, e.actor, e.before, e.after["reason"]) for e in entries] == [
        ("review_approve", "tech-a", None, "smear checked"),
        ("review_reject", "tech-b", {"review": "approve", "review_id": first.id}, "clot found")]


def test_review_refuses_non_review_results(store):
    meas = store.measurements.add(measurement(8, "PT-1", date(2026, 3, 7), 5000.0, qc=QC("fail", ("x",))))
    with pytest.raises(NotReviewable, match="QC is fail, not review: only QC review results .* never counts"):
        store.measurements.review(meas.id, "approve", "looks fine", "tech-a")
    with pytest.raises(KeyError):
        store.measurements.review(999, "approve", "looks fine", "tech-a")
    with pytest.raises(ValueError):
        store.measurements.review(meas.id, "maybe", "?", "tech-a")


def test_evaluate_patient_stores_only_changes(store):
    admit(store, today=date(2026, 3, 2))
    store.measurements.add(measurement(9, "PT-1", date(2026, 3, 7), 12000.0), today=date(2026, 3, 7))
    n = len(store.screening.history("PT-1"))
    store.screening.evaluate("PT-1", date(2026, 3, 8))
    assert len(store.screening.history("PT-1")) == n
    closed = store.screening.evaluate("PT-1", date(2026, 3, 12))
    assert closed.status == "not_eligible"
    history = store.screening.history("PT-1")
    assert len(history) == n + 1 and history[-1].status == "not_eligible"
    assert store.audit.entries()[-1].before["status"] == "pending"


def test_unknown_patient_is_pending_with_reason(store):
    store.measurements.add(measurement(10, "PT-404", date(2026, 3, 7), 3000.0), today=date(2026, 3, 7))
    row = store.screening.log()[0]
    assert (row.patient_id, row.status, row.reasons) == ("PT-404", "pending", ("no registry entry",))


def test_blinded_measurements_are_hidden_by_default(store):
    admit(store, randomized_at=date(2026, 3, 8))
    store.measurements.add(measurement(11, "PT-1", date(2026, 3, 7), 6000.0), today=date(2026, 3, 9))
    late = store.measurements.add(measurement(12, "PT-1", date(2026, 3, 10), 14000.0), today=date(2026, 3, 10))
    assert [m.file_sha256 for m in store.measurements.list()] == [sha(11)]
    assert {m.id for m in store.measurements.list(include_blinded=True)} >= {late.id}
    assert store.measurements.is_blinded(late)
    assert store.screening.log()[0].measurement_id != late.id


def test_blinded_measurements_lists_only_post_randomization_results(store):
    admit(store, "PT-1", randomized_at=date(2026, 3, 8))
    admit(store, "PT-2")
    store.measurements.add(measurement(11, "PT-1", date(2026, 3, 8), 6000.0), today=date(2026, 3, 9))
    late = store.measurements.add(measurement(12, "PT-1", date(2026, 3, 10), 14000.0,
                                               qc=QC("review", ("1,500 monocytes",))), today=date(2026, 3, 10))
    store.measurements.add(measurement(13, "PT-2", date(2026, 3, 10), 5000.0), today=date(2026, 3, 10))
    store.measurements.review(late.id, "approve", "smear checked", "tech-a", today=date(2026, 3, 10))
    blinded = store.measurements.blinded()
    assert [(m.id, m.review) for m in blinded] == [(late.id, "approve")]
    assert blinded == [m for m in store.measurements.list(include_blinded=True) if store.measurements.is_blinded(m)]


def test_measurement_of_file_carries_the_latest_review(store):
    assert store.measurements.of_file(sha(14)) is None
    meas = store.measurements.add(measurement(14, "PT-1", date(2026, 3, 7), 5000.0,
                                               qc=QC("review", ("1,500 monocytes",))), today=date(2026, 3, 7))
    assert store.measurements.of_file(sha(14)) == meas
    store.measurements.review(meas.id, "approve", "smear checked", "tech-a", today=date(2026, 3, 7))
    store.measurements.review(meas.id, "reject", "clot found", "tech-b", supersede=True, today=date(2026, 3, 7))
    found = store.measurements.of_file(sha(14))
    assert (found.id, found.review) == (meas.id, "reject")
    assert store.measurements.add(measurement(14, "PT-1", date(2026, 3, 7), 5000.0)).review == "reject"


def test_relocate_moves_the_original_path_without_reevaluating(store, clock):
    admit(store)
    store.files.record(sha(15), "/in/PT-1_D06.fcs", 10, "sample", "pending_calibration",
                      patient_id="PT-1", collection_date=date(2026, 3, 7))
    store.files.record(sha(15), "/in/copy.fcs", 10, "sample", "pending_calibration")
    decisions = len(store.screening.history("PT-1"))
    clock.advance(minutes=1)
    moved = store.files.relocate(sha(15), "/done/PT-1_D06.fcs")
    assert moved is not None and moved.path == "/done/PT-1_D06.fcs"
    assert moved.status == "pending_calibration" and moved.updated > moved.first_seen
    entry = store.audit.entries()[-1]
    assert (entry.action, entry.actor) == ("relocate_file", "watcher")
    assert (entry.before["path"], entry.after["path"]) == ("/in/PT-1_D06.fcs", "/done/PT-1_D06.fcs")
    assert len(store.screening.history("PT-1")) == decisions
    assert [f.path for f in store.files.list("duplicate")] == ["/in/copy.fcs"]
    assert store.files.relocate(sha(15), "/done/PT-1_D06.fcs") is not None      # same place: no entry
    assert store.audit.entries()[-1].seq == entry.seq
    assert store.files.relocate(sha(99), "/done/x.fcs") is None


def test_update_file_reevaluates_only_when_the_decision_inputs_change(store, clock):
    admit(store)
    store.files.record(sha(16), "/in/a.fcs", 10, "sample", "pending_calibration",
                      patient_id="PT-1", collection_date=date(2026, 3, 7))
    decisions = len(store.screening.history("PT-1"))
    clock.advance(days=20)                      # the window has closed since the last evaluation
    store.files.update(sha(16), "pending_calibration", ["still no beads"])     # reasons only
    assert len(store.screening.history("PT-1")) == decisions
    store.files.update(sha(16), "rejected", ["truncated"])
    assert store.screening.log()[0].status == "not_eligible"


def test_calibrations_lists_every_curve_by_id(store):
    assert store.calibrations.list() == []
    first = store.calibrations.add(calibration(0, day=date(2026, 3, 6)))
    other = store.calibrations.add(calibration(1, day=date(2026, 3, 7), serial="V999"))
    again = store.calibrations.add(calibration(0, day=date(2026, 3, 6), channel="PE-H"))
    assert [c.id for c in store.calibrations.list()] == [first.id, other.id, again.id]
    assert store.calibrations.list()[1] == other


def test_foreign_keys_and_checks_are_enforced(store):
    with pytest.raises(Exception):
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO review_decisions (measurement_id, decision, reason, actor, decided_at) "
                              "VALUES (12345, 'approve', 'r', 'a', CURRENT_TIMESTAMP)"))
    with pytest.raises(Exception):
        store.files.record(sha(13), "/x.fcs", 1, "sample", "bogus-status")
    assert store.files.list() == []


def test_a_calibration_loads_back_whole_and_converts_a_tube_the_same(store, data_samples):
    """Stored whole, loaded back exactly: the same AB/C and interval for a tube, to 1e-9."""
    from pipeline.bead_calibration import calibrate_file
    from pipeline.config import load_settings
    from pipeline.fcs import read_fcs
    from pipeline.lots import read_lots

    settings = load_settings(env={})
    fitted = calibrate_file(read_fcs(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs", settings),
                            read_lots(data_samples / "lots.csv")["lotA"], settings)
    loaded = store.calibrations.get(store.calibrations.add(fitted).id).calibration
    assert loaded == fitted
    for f in (300.0, 2_900.0, 9_999.5):
        assert loaded.to_abc(f) == pytest.approx(fitted.to_abc(f), rel=1e-9, abs=0)
        assert loaded.abc_interval(f, f_se_log=0.004) == pytest.approx(fitted.abc_interval(f, f_se_log=0.004),
                                                                        rel=1e-9, abs=0)
