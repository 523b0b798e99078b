"""Stored copies of the per-result rules are derived and checked, never a second truth (issue 20).

A result's ``icu_day``, ``in_window`` and ``below_threshold`` columns, a gate correction's
``below_threshold`` and a screening decision's ``icu_day`` are copies of what
``pipeline.eligibility.result_rules`` derives from the stored facts. ``mhladr audit verify``
derives each again (``pipeline.store.derived``): a clean home, after every normal operation
(run, reprocess, registry reimport with a changed admission, gate correction), gives no finding;
a copy edited behind the application is named with its result, file, column, stored and derived
values, exit 1.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.cli import main
from pipeline.eligibility import PatientFacts
from pipeline.store.derived import stale_copies
from tests.store_fixtures import cli_env, clock, db_url, measurement, settings, store  # noqa: F401
from tests.test_tamper import drop_every_trigger, populate

BEADS = "BEADS_2026-03-12_lotA_CANTO.fcs"
NO_REGISTRY_ROW = "PT-0042_D07_HLADR.fcs"     # measured with the day of its ICU ADMISSION DATE keyword
REGISTERED = "PT-0044_D08_HLADR.fcs"          # measured with the registry's admission


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["audit", "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)


def stale(store) -> list:  # noqa: ANN001
    with store.read(snapshot=True) as s:
        return stale_copies(s, store.rules)


def tamper(store, sql: str) -> None:  # noqa: ANN001
    with store.engine.begin() as conn:
        drop_every_trigger(conn)
        conn.execute(sa.text(sql))


def column(store, sql: str):  # noqa: ANN001, ANN201
    with store.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


# -- a store built with the store's own calls -------------------------------------------------------
def test_a_clean_store_and_a_registry_changed_since_give_no_finding(store, cli_env, capsys):
    populate(store)
    assert stale(store) == []
    assert column(store, "SELECT icu_day FROM measurements WHERE id = 1") == 6     # the registry's day, stored
    store.patients.upsert([PatientFacts("PT-1", date(2026, 2, 25), 8, True)], today=date(2026, 3, 9))
    assert store.measurements.get(1).measurement.icu_day == 10       # readers: the registry as it is now
    assert column(store, "SELECT icu_day FROM measurements WHERE id = 1") == 6     # the copy as written
    code, doc = verify(capsys)
    assert code == 0 and doc["ok"] is True and doc["problems"] == [] and doc["derived"] == []


def test_a_flipped_cut_off_copy_is_named_with_its_result_file_and_values(store, cli_env, capsys):
    populate(store)
    tamper(store, "UPDATE measurements SET below_threshold = NOT below_threshold WHERE id = 2")
    code, doc = verify(capsys)
    assert code == 1 and doc["ok"] is False
    assert doc["derived"] == [{"table": "measurements", "row": "2", "measurement_id": 2, "version": 1,
                               "file": "2.fcs", "column": "below_threshold", "stored": True, "derived": False,
                               "basis": "AB/C 9,100 with QC pass and the cut-off 8,000"}]
    whats = {p["what"].split(" ")[0] for p in doc["problems"] if (p["table"], p["row"]) == ("measurements", "2")}
    assert whats == {"content", "below_threshold"}       # the row check names the edit, this one the copy
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert ("  measurements 2: below_threshold is true but AB/C 9,100 with QC pass and the cut-off 8,000 give "
            "false (2.fcs, result m2 version 1): a stored copy that no longer matches its facts") in out


def test_an_icu_day_moved_by_one_is_named_against_the_registry_when_stored(store, cli_env, capsys):
    populate(store)
    tamper(store, "UPDATE measurements SET icu_day = icu_day + 1 WHERE id = 1")
    code, doc = verify(capsys)
    assert code == 1
    assert [(d["row"], d["file"], d["column"], d["stored"], d["derived"]) for d in doc["derived"]] == [
        ("1", "1.fcs", "icu_day", 7, 6)]
    assert "registry's ICU admission 2026-03-01 when it was stored" in doc["derived"][0]["basis"]


def test_a_window_copy_a_version_and_a_screening_decision_are_checked_too(store, cli_env, capsys):
    populate(store)
    last_version = column(store, "SELECT max(id) FROM measurement_versions")
    decision = column(store, "SELECT max(id) FROM screening_decisions WHERE measurement_id IS NOT NULL")
    tamper(store, "UPDATE measurements SET in_window = NOT in_window WHERE id = 3")
    tamper(store, f"UPDATE measurement_versions SET below_threshold = NOT below_threshold WHERE id = {last_version}")
    tamper(store, f"UPDATE screening_decisions SET icu_day = icu_day + 1 WHERE id = {decision}")
    code, doc = verify(capsys)
    assert code == 1
    found = {(d["table"], d["column"], d["measurement_id"], d["version"], d["stored"], d["derived"])
             for d in doc["derived"]}
    assert ("measurements", "in_window", 3, 1, False, True) in found
    assert ("measurement_versions", "below_threshold", 1, 3, False, True) in found
    assert len(found) == 3 and {f[:2] for f in found} == {
        ("measurements", "in_window"), ("measurement_versions", "below_threshold"), ("screening_decisions", "icu_day")}


def test_a_day_from_the_keyword_is_taken_as_stored_and_its_window_checked(store, cli_env, capsys):
    tube = replace(measurement(9, "PT-9", date(2026, 3, 12), 5000.0), icu_day=10, in_window=True)
    store.measurements.add(tube, None, size=5, today=date(2026, 3, 12))     # no registry row: the keyword's day
    assert stale(store) == []
    tamper(store, "UPDATE measurements SET icu_day = 11")
    assert [(c.column, c.stored, c.derived) for c in stale(store)] == [("in_window", True, False)]


# -- a home after the normal operations -------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path, data_samples: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import os
    for key in list(os.environ):
        if key.startswith("MHLADR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MHLADR_HOME", str(tmp_path / "home"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in (BEADS, NO_REGISTRY_ROW, REGISTERED):
        shutil.copy(data_samples / name, inbox / name)
    rows = (data_samples / "registry.csv").read_text().splitlines()
    (inbox / "registry.csv").write_text("\n".join([rows[0], *(r for r in rows if r.startswith("PT-0044,"))]) + "\n")
    shutil.copy(data_samples / "lots.csv", inbox / "lots.csv")
    (tmp_path / "lots_without_A.csv").write_text("".join(
        line for line in (data_samples / "lots.csv").read_text().splitlines(keepends=True)
        if not line.startswith("lotA")))
    return inbox


def test_run_reprocess_registry_reimport_and_regate_leave_no_finding(home: Path, data_samples: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from gating.result import GatePolygon
    from pipeline.config import load_settings
    from pipeline.decisions import reprocess
    from pipeline.processing import Processor
    from pipeline.regate import regate, stored_gate
    from pipeline.registry import import_registry
    from pipeline.signing import Signer

    tech = Signer("tech-a", None, False)
    proc = Processor(load_settings(), registry_csv=home / "registry.csv", lots_csv=home.parent / "lots_without_A.csv")
    try:                 # run: the beads' lot is unknown, both tubes wait for them
        assert [proc.process(home / n).status for n in (BEADS, NO_REGISTRY_ROW, REGISTERED)] == [
            "rejected", "pending_calibration", "pending_calibration"]
    finally:
        proc.close()
    proc = Processor(load_settings(), lots_csv=home / "lots.csv")
    try:                 # reprocess: lotA added; the waiting tubes are measured
        done = reprocess(proc, proc.store.files.list(status="rejected")[0].sha256, "lotA added", tech)
        assert done.result.status == "calibrated" and {r.status for r in done.finished} == {"measured"}
        store = proc.store
        by_file = {Path(r.measurement.file).name: r for r in store.measurements.list()}
        assert by_file[NO_REGISTRY_ROW].measurement.icu_day == 7 and by_file[REGISTERED].measurement.icu_day == 8
        assert stale(store) == []
        # registry: the missing patient added, then both admissions corrected by a day
        import_registry(store, data_samples / "registry.csv")
        moved = home / "registry_corrected.csv"
        moved.write_text((data_samples / "registry.csv").read_text()
                         .replace("PT-0042,2026-03-05T16:40", "PT-0042,2026-03-04T16:40")
                         .replace("PT-0044,2026-03-04T22:05", "PT-0044,2026-03-01T22:05"))
        summary, _ = import_registry(store, moved)
        assert set(summary.changed) == {"PT-0042", "PT-0044"}
        now = {Path(r.measurement.file).name: r for r in store.measurements.list()}
        assert now[NO_REGISTRY_ROW].measurement.icu_day == 8 and now[REGISTERED].measurement.in_window is False
        assert stale(store) == []
        # gate correction: the registered tube's gate shrunk, stored as version 2
        first = now[REGISTERED]
        gate = stored_gate(first)
        polygon = gate.geometry.polygons[0]
        centre = polygon.as_array().mean(axis=0)
        shrunk = GatePolygon(polygon.name, tuple(map(tuple, centre + 0.5 * (polygon.as_array() - centre))))
        _, second = regate(store, load_settings(), first.id, reason="tighter gate", signer=tech,
                           gate=gate.with_polygons([shrunk]))
        assert second.version == 2
    finally:
        proc.close()
    code, doc = verify(capsys)
    assert code == 0 and doc["ok"] is True and doc["problems"] == [] and doc["derived"] == [], doc
