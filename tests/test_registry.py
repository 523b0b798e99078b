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


def test_analyze_names_a_malformed_registry_row_instead_of_a_missing_entry(tmp_path, data_samples, capsys):
    """The patient's row cannot be used: the note says which line and why (not 'no registry entry')."""
    registry = (data_samples / "registry.csv").read_text().replace("PT-0042,2026-03-05T16:40,9,",
                                                                   "PT-0042,2026-03-05T16:40,nine,")
    (tmp_path / "registry.csv").write_text(registry)
    args = ["analyze", str(data_samples / "PT-0042_D07_HLADR.fcs"), "--beads",
            str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"), "--lots", str(data_samples / "lots.csv"),
            "--registry", str(tmp_path / "registry.csv"), "--json"]
    assert main(args) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert notes[0] == (f"registry {tmp_path / 'registry.csv'} line 2 (PT-0042) not used: sofa_24h 'nine' is not an "
                        "integer; fix the row for the registry's ICU day")
    assert not any("no registry entry" in n for n in notes)


def test_analyze_notes_a_registry_and_keyword_disagreeing_on_the_icu_day(tmp_path, data_samples, capsys):
    """The file's ICU ADMISSION DATE keyword says day 7; a registry admitting the patient 4 days
    earlier says day 11: the registry's day is used and the disagreement is a note."""
    registry = (data_samples / "registry.csv").read_text().replace("PT-0042,2026-03-05T16:40,",
                                                                   "PT-0042,2026-03-01T16:40,")
    (tmp_path / "registry.csv").write_text(registry)
    args = ["analyze", str(data_samples / "PT-0042_D07_HLADR.fcs"), "--beads",
            str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"), "--lots", str(data_samples / "lots.csv"),
            "--registry", str(tmp_path / "registry.csv")]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["icu_day"], doc["in_window"]) == (11, False)
    assert ("ICU day 11 from the registry (admission 2026-03-01) but 7 from the file's keyword (admission "
            "2026-03-05): the registry's is used; check which is right") in doc["notes"]
    assert main(args) == 0
    assert "note: ICU day 11 from the registry" in capsys.readouterr().out


def test_admission_notes_say_where_the_icu_day_comes_from():
    from pipeline.eligibility import admission_notes
    assert admission_notes(date(2026, 3, 5), datetime(2026, 3, 5, 16, 40), date(2026, 3, 12)) == []
    assert admission_notes(None, date(2026, 3, 5), date(2026, 3, 12)) == [
        "ICU admission taken from the file's keyword (the registry gives none)"]
    assert admission_notes(None, None, date(2026, 3, 12)) == []
    assert admission_notes(date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 12))[0].startswith(
        "ICU day 8 from the registry (admission 2026-03-04) but 7 from the file's keyword")


def test_admission_of_a_patient_missing_from_the_registry(tmp_path):
    from pipeline.registry import admission_of
    path = write_registry(tmp_path / "r.csv", [RegistryRow("PT-0001")])
    assert admission_of(path, "PT-0001").admission == date(2026, 3, 1)
    assert admission_of(path, "PT-0002").notes == (f"PT-0002 is not in the registry {path}",)
    assert admission_of(None, "PT-0002").notes == ()
