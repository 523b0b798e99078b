"""Patient registry CSV: row-by-row validation, idempotent audited import, CLI."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from app.cli import main
from pipeline.errors import InputError
from pipeline.registry import import_registry, read_registry
from tests.store_fixtures import (RegistryRow, cli_env, clock, db_url, settings, store,  # noqa: F401
                                  write_registry)


def test_read_registry_parses_dates_booleans_and_empty_exclusion(tmp_path):
    path = write_registry(tmp_path / "r.csv", [
        RegistryRow("PT-0001", "2026-03-01", 8, "yes"),
        RegistryRow("PT-0002", "2026-03-02T23:40", 6, "no", "pregnancy", "2026-03-09T10:15:00"),
    ])
    rows, errors = read_registry(path)
    assert errors == []
    assert rows[0].icu_admission == date(2026, 3, 1) and rows[0].exclusion == "" and rows[0].randomized_at is None
    assert rows[1].icu_admission == datetime(2026, 3, 2, 23, 40) and rows[1].mechanical_ventilation is False
    assert rows[1].randomized_at == datetime(2026, 3, 9, 10, 15) and rows[1].exclusion == "pregnancy"


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_load(tmp_path):
    path = write_registry(tmp_path / "r.csv", [
        "PT-1,2026-03-01,8,yes,,",
        "PT-2,01/03/2026,8,yes,,",          # line 3: not ISO
        "PT-3,2026-03-01,eight,yes,,",      # line 4
        "PT-4,2026-03-01,8,maybe,,",        # line 5
        "Jean Dupont,2026-03-01,8,yes,,",   # line 6: not a pseudonymous ID
        "PT-1,2026-03-02,8,yes,,",          # line 7: repeated
        "PT-7,2026-03-01,30,yes,,",         # line 8: SOFA out of range
        "PT-8,2026-03-01,7,no,,",
    ])
    rows, errors = read_registry(path)
    assert [r.patient_id for r in rows] == ["PT-1", "PT-8"]
    assert [(e.line, e.patient_id) for e in errors] == [
        (3, "PT-2"), (4, "PT-3"), (5, "PT-4"), (6, "Jean Dupont"), (7, "PT-1"), (8, "PT-7")]
    assert "icu_admission" in errors[0].reason and "sofa_24h" in errors[1].reason
    assert "yes or no" in errors[2].reason and "twice" in errors[4].reason


def test_unusable_registry_file_raises_input_error(tmp_path):
    (tmp_path / "bad.csv").write_text("patient_id,icu_admission\nPT-1,2026-03-01\n")
    with pytest.raises(InputError, match="sofa_24h"):
        read_registry(tmp_path / "bad.csv")
    with pytest.raises(InputError):
        read_registry(tmp_path / "missing.csv")


def test_import_is_idempotent_and_changes_are_audited(store, tmp_path):
    path = write_registry(tmp_path / "r.csv", [RegistryRow("PT-1"), RegistryRow("PT-2", sofa_24h=4)])
    summary, errors = import_registry(store, path, today=date(2026, 3, 3))
    assert (summary.added, errors) == (("PT-1", "PT-2"), [])
    n = len(store.audit.entries())
    again, _ = import_registry(store, path, today=date(2026, 3, 3))
    assert again.added == again.changed == () and again.unchanged == ("PT-1", "PT-2")
    assert len(store.audit.entries()) == n
    write_registry(path, [RegistryRow("PT-1"), RegistryRow("PT-2", sofa_24h=7)])
    changed, _ = import_registry(store, path, actor="research-nurse", today=date(2026, 3, 3))
    assert changed.changed == ("PT-2",)
    entry = [e for e in store.audit.entries() if e.action == "upsert_patient"][-1]
    assert (entry.actor, entry.before["sofa_24h"], entry.after["sofa_24h"]) == ("research-nurse", 4, 7)
    assert store.patients.get("PT-2").sofa_24h == 7
    status = {r.patient_id: r.status for r in store.screening.log()}
    assert status == {"PT-1": "pending", "PT-2": "pending"}


def test_registry_change_reevaluates(store, tmp_path):
    path = write_registry(tmp_path / "r.csv", [RegistryRow("PT-1")])
    import_registry(store, path, today=date(2026, 3, 3))
    write_registry(path, [RegistryRow("PT-1", exclusion="pregnancy")])
    import_registry(store, path, today=date(2026, 3, 3))
    row = store.screening.log()[0]
    assert row.status == "not_eligible" and "exclusion: pregnancy" in row.reasons


def test_cli_patients_import(cli_env, tmp_path, capsys):
    path = write_registry(tmp_path / "r.csv", [RegistryRow("PT-1"), "PT-2,not-a-date,8,yes,,"])
    assert main(["patients", "import", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["added"] == ["PT-1"] and doc["unchanged"] == 0
    assert doc["errors"] == [{"line": 3, "patient_id": "PT-2", "reason": doc["errors"][0]["reason"]}]
    assert main(["patients", "import", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["added"] == [] and doc["unchanged"] == 1


def test_cli_patients_import_unusable_file_exits_2(cli_env, tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("id,when\n1,2\n")
    assert main(["patients", "import", str(tmp_path / "bad.csv"), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "bad_input"
    assert captured.err.startswith(str(tmp_path / "bad.csv") + ": ")
