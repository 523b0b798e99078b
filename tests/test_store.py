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
from pipeline.store.engine import current_revision, head_revision
from pipeline.store.models import Base
from tests.store_fixtures import (calibration, clock, db_url, measurement, settings, sha,  # noqa: F401
                            store)


def admit(store, pid="PT-1", admission=date(2026, 3, 1), **kw):
    facts = PatientFacts(pid, admission, kw.pop("sofa_24h", 8), kw.pop("mechanical_ventilation", True),
                         kw.pop("exclusion", ""), kw.pop("randomized_at", None))
    return store.upsert_patients([facts], today=kw.pop("today", date(2026, 3, 2)))


def test_migrations_reach_head_and_match_the_models(store):
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision() == "0001"
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_is_idempotent(settings, store):
    before = store.audit_entries()
    again = open_store(settings)
    try:
        with again.engine.connect() as conn:
            assert current_revision(conn) == "0001"
        assert again.audit_entries() == before
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
    first = store.record_file(sha(1), "/in/a.fcs", 100, "sample", "pending_calibration", ["no beads"])
    again = store.record_file(sha(1), "/in/a.fcs", 100, "sample", "pending_calibration", ["no beads"])
    assert again == first
    dup = store.record_file(sha(1), "/in/copy.fcs", 100, "sample", "measured")
    assert dup.status == "duplicate" and "/in/a.fcs" in dup.reasons[0]
    assert store.get_file_by_sha(sha(1)).path == "/in/a.fcs"
    assert store.get_file_by_sha(sha(1)).status == "pending_calibration"
    assert [f.path for f in store.files("duplicate")] == ["/in/copy.fcs"]
    assert len(store.audit_entries()) == 2          # two sightings, the repeat wrote nothing
    assert store.get_file_by_sha(sha(99)) is None


def test_update_file_audits_before_and_after(store, clock):
    store.record_file(sha(1), "/in/a.fcs", 100, "sample", "pending_calibration", ["no beads"])
    clock.advance(minutes=5)
    updated = store.update_file(sha(1), "rejected", ["truncated"])
    assert updated.status == "rejected" and updated.updated > updated.first_seen
    entry = store.audit_entries()[-1]
    assert entry.action == "update_file"
    assert entry.before["status"] == "pending_calibration" and entry.after["status"] == "rejected"
    store.update_file(sha(1), "rejected", ["truncated"])  # no change, no entry
    assert store.audit_entries()[-1].seq == entry.seq
    with pytest.raises(KeyError):
        store.update_file(sha(42), "rejected")


def test_store_and_find_calibration(store):
    store.record_file(sha(0), "/in/beads.fcs", 10, "beads", "pending_calibration")
    cal = store.store_calibration(calibration(0, voltage=450.0))
    assert cal.id > 0 and cal.covariance == ((1e-4, -2e-4), (-2e-4, 5e-4))
    assert store.get_file_by_sha(sha(0)).status == "calibrated"
    assert store.store_calibration(calibration(0, voltage=450.0)).id == cal.id  # idempotent
    found = store.find_calibration("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 6))
    assert found is not None and found.id == cal.id
    assert found.peaks[1]["bead_value"] == pytest.approx(5359.0)
    # another voltage, day, detector or gain: no match
    assert store.find_calibration("FACSCanto II", "V123", "PE-A", 500.0, 1.0, date(2026, 3, 6)) is None
    assert store.find_calibration("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 7)) is None
    assert store.find_calibration("FACSCanto II", "V999", "PE-A", 450.0, 1.0, date(2026, 3, 6)) is None
    assert store.find_calibration("FACSCanto II", "V123", "PE-A", 450.0, None, date(2026, 3, 6)) is None
    voltages = [c.voltage for c in store.calibrations_on("FACSCanto II", "V123", "PE-A", date(2026, 3, 6))]
    assert voltages == [pytest.approx(450.0)]


def test_failed_calibration_is_never_used_and_pass_beats_review(store):
    store.record_file(sha(0), "/in/b0.fcs", 10, "beads", "pending_calibration")
    store.store_calibration(calibration(0, qc=QC("fail", ("3 of 4 peaks",))))
    assert store.get_file_by_sha(sha(0)).status == "qc_fail"
    assert store.find_calibration("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 6)) is None
    review = store.store_calibration(calibration(1, qc=QC("review", ("R2 0.985",))))
    passed = store.store_calibration(calibration(2))
    store.store_calibration(calibration(3, qc=QC("review", ("R2 0.985",))))
    found = store.find_calibration("FACSCanto II", "V123", "PE-A", 450.0, 1.0, date(2026, 3, 6))
    assert found.id == passed.id != review.id


def test_store_measurement_sets_file_status_and_evaluates(store):
    admit(store)
    store.record_file(sha(5), "/in/PT-1_D06.fcs", 10, "sample", "pending_calibration",
                      patient_id="PT-1", collection_date=date(2026, 3, 7))
    assert store.screening()[0].status == "pending"
    meas = store.store_measurement(measurement(5, "PT-1", date(2026, 3, 7), 6500.0), today=date(2026, 3, 7))
    assert store.get_file_by_sha(sha(5)).status == "measured"
    row = store.screening()[0]
    assert (row.status, row.measurement_id, row.icu_day, row.file) == ("eligible", meas.id, 6, "/in/PT-1_D06.fcs")
    assert row.abc == pytest.approx(6500.0)
    again = store.store_measurement(measurement(5, "PT-1", date(2026, 3, 7), 6500.0))
    assert again.id == meas.id
    assert store.get_measurement(meas.id).gates == {"monocytes": {"cd14_min": 1200.0}}
    assert store.verify_audit_chain().ok


def test_qc_fail_measurement_marks_file_qc_fail(store):
    store.record_file(sha(6), "/in/x.fcs", 10, "sample", "pending_calibration")
    store.store_measurement(measurement(6, "PT-2", date(2026, 3, 7), 3000.0, qc=QC("fail", ("120 monocytes",))))
    f = store.get_file_by_sha(sha(6))
    assert f.status == "qc_fail" and f.reasons == ("120 monocytes",)


def test_review_flow_reevaluates_patient(store):
    admit(store)
    meas = store.store_measurement(measurement(7, "PT-1", date(2026, 3, 7), 5000.0,
                                               qc=QC("review", ("1,500 monocytes",))), today=date(2026, 3, 7))
    assert [m.id for m in store.pending_measurements()] == [meas.id]
    assert store.screening()[0].status == "pending"
    store.record_review(meas.id, "approve", "smear checked", "tech-a", today=date(2026, 3, 7))
    assert store.pending_measurements() == []
    assert store.get_measurement(meas.id).review == "approve"
    assert store.screening()[0].status == "eligible"
    store.record_review(meas.id, "reject", "clot found", "tech-b", today=date(2026, 3, 7))
    assert store.screening()[0].status == "pending"
    assert [r.decision for r in store.reviews(meas.id)] == ["approve", "reject"]
    actions = [e.action for e in store.audit_entries()]
    assert "review_approve" in actions and "review_reject" in actions


def test_review_refuses_non_review_results(store):
    meas = store.store_measurement(measurement(8, "PT-1", date(2026, 3, 7), 5000.0, qc=QC("fail", ("x",))))
    with pytest.raises(ValueError, match="only QC review"):
        store.record_review(meas.id, "approve", "looks fine", "tech-a")
    with pytest.raises(KeyError):
        store.record_review(999, "approve", "looks fine", "tech-a")
    with pytest.raises(ValueError):
        store.record_review(meas.id, "maybe", "?", "tech-a")


def test_evaluate_patient_stores_only_changes(store):
    admit(store, today=date(2026, 3, 2))
    store.store_measurement(measurement(9, "PT-1", date(2026, 3, 7), 12000.0), today=date(2026, 3, 7))
    n = len(store.screening_history("PT-1"))
    store.evaluate_patient("PT-1", date(2026, 3, 8))
    assert len(store.screening_history("PT-1")) == n
    closed = store.evaluate_patient("PT-1", date(2026, 3, 12))
    assert closed.status == "not_eligible"
    history = store.screening_history("PT-1")
    assert len(history) == n + 1 and history[-1].status == "not_eligible"
    assert store.audit_entries()[-1].before["status"] == "pending"


def test_unknown_patient_is_pending_with_reason(store):
    store.store_measurement(measurement(10, "PT-404", date(2026, 3, 7), 3000.0), today=date(2026, 3, 7))
    row = store.screening()[0]
    assert (row.patient_id, row.status, row.reasons) == ("PT-404", "pending", ("no registry entry",))


def test_blinded_measurements_are_hidden_by_default(store):
    admit(store, randomized_at=date(2026, 3, 8))
    store.store_measurement(measurement(11, "PT-1", date(2026, 3, 7), 6000.0), today=date(2026, 3, 9))
    late = store.store_measurement(measurement(12, "PT-1", date(2026, 3, 10), 14000.0), today=date(2026, 3, 10))
    assert [m.file_sha256 for m in store.measurements()] == [sha(11)]
    assert {m.id for m in store.measurements(include_blinded=True)} >= {late.id}
    assert store.is_blinded(late)
    assert store.screening()[0].measurement_id != late.id


def test_blinded_measurements_lists_only_post_randomization_results(store):
    admit(store, "PT-1", randomized_at=date(2026, 3, 8))
    admit(store, "PT-2")
    store.store_measurement(measurement(11, "PT-1", date(2026, 3, 8), 6000.0), today=date(2026, 3, 9))
    late = store.store_measurement(measurement(12, "PT-1", date(2026, 3, 10), 14000.0,
                                               qc=QC("review", ("1,500 monocytes",))), today=date(2026, 3, 10))
    store.store_measurement(measurement(13, "PT-2", date(2026, 3, 10), 5000.0), today=date(2026, 3, 10))
    store.record_review(late.id, "approve", "smear checked", "tech-a", today=date(2026, 3, 10))
    blinded = store.blinded_measurements()
    assert [(m.id, m.review) for m in blinded] == [(late.id, "approve")]
    assert blinded == [m for m in store.measurements(include_blinded=True) if store.is_blinded(m)]


def test_measurement_of_file_carries_the_latest_review(store):
    assert store.measurement_of_file(sha(14)) is None
    meas = store.store_measurement(measurement(14, "PT-1", date(2026, 3, 7), 5000.0,
                                               qc=QC("review", ("1,500 monocytes",))), today=date(2026, 3, 7))
    assert store.measurement_of_file(sha(14)) == meas
    store.record_review(meas.id, "approve", "smear checked", "tech-a", today=date(2026, 3, 7))
    store.record_review(meas.id, "reject", "clot found", "tech-b", today=date(2026, 3, 7))
    found = store.measurement_of_file(sha(14))
    assert (found.id, found.review) == (meas.id, "reject")
    assert store.store_measurement(measurement(14, "PT-1", date(2026, 3, 7), 5000.0)).review == "reject"


def test_relocate_moves_the_original_path_without_reevaluating(store, clock):
    admit(store)
    store.record_file(sha(15), "/in/PT-1_D06.fcs", 10, "sample", "pending_calibration",
                      patient_id="PT-1", collection_date=date(2026, 3, 7))
    store.record_file(sha(15), "/in/copy.fcs", 10, "sample", "pending_calibration")
    decisions = len(store.screening_history("PT-1"))
    clock.advance(minutes=1)
    moved = store.relocate(sha(15), "/done/PT-1_D06.fcs")
    assert moved is not None and moved.path == "/done/PT-1_D06.fcs"
    assert moved.status == "pending_calibration" and moved.updated > moved.first_seen
    entry = store.audit_entries()[-1]
    assert (entry.action, entry.actor) == ("relocate_file", "watcher")
    assert (entry.before["path"], entry.after["path"]) == ("/in/PT-1_D06.fcs", "/done/PT-1_D06.fcs")
    assert len(store.screening_history("PT-1")) == decisions
    assert [f.path for f in store.files("duplicate")] == ["/in/copy.fcs"]
    assert store.relocate(sha(15), "/done/PT-1_D06.fcs") is not None      # same place: no entry
    assert store.audit_entries()[-1].seq == entry.seq
    assert store.relocate(sha(99), "/done/x.fcs") is None


def test_update_file_reevaluates_only_when_the_decision_inputs_change(store, clock):
    admit(store)
    store.record_file(sha(16), "/in/a.fcs", 10, "sample", "pending_calibration",
                      patient_id="PT-1", collection_date=date(2026, 3, 7))
    decisions = len(store.screening_history("PT-1"))
    clock.advance(days=20)                      # the window has closed since the last evaluation
    store.update_file(sha(16), "pending_calibration", ["still no beads"])     # reasons only
    assert len(store.screening_history("PT-1")) == decisions
    store.update_file(sha(16), "rejected", ["truncated"])
    assert store.screening()[0].status == "not_eligible"


def test_calibrations_lists_every_curve_by_id(store):
    assert store.calibrations() == []
    first = store.store_calibration(calibration(0, day=date(2026, 3, 6)))
    other = store.store_calibration(calibration(1, day=date(2026, 3, 7), serial="V999"))
    again = store.store_calibration(calibration(0, day=date(2026, 3, 6), channel="PE-H"))
    assert [c.id for c in store.calibrations()] == [first.id, other.id, again.id]
    assert store.calibrations()[1] == other


def test_foreign_keys_and_checks_are_enforced(store):
    with pytest.raises(Exception):
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO review_decisions (measurement_id, decision, reason, actor, decided_at) "
                              "VALUES (12345, 'approve', 'r', 'a', CURRENT_TIMESTAMP)"))
    with pytest.raises(Exception):
        store.record_file(sha(13), "/x.fcs", 1, "sample", "bogus-status")
    assert store.files() == []
