"""Screening and review through the command line, on both backends (blinding included)."""

from __future__ import annotations

import json
from datetime import date

from science.qc import QC
from app.cli import main
from tests.store_fixtures import (RegistryRow, cli_env, clock, db_url, measurement, settings,  # noqa: F401
                                  store, write_registry)


def load(store, tmp_path):
    write_registry(tmp_path / "r.csv", [RegistryRow("PT-1"), RegistryRow("PT-2", sofa_24h=3),
                                        RegistryRow("PT-3", randomized_at="2026-03-08T14:00")])
    assert main(["patients", "import", str(tmp_path / "r.csv"), "--json"]) == 0
    store.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=QC("review", ("1,800 monocytes",))),
                            today=date(2026, 3, 7))
    store.measurements.add(measurement(2, "PT-3", date(2026, 3, 7), 6000.0), today=date(2026, 3, 7))
    store.measurements.add(measurement(3, "PT-3", date(2026, 3, 10), 16000.0), today=date(2026, 3, 10))
    store.measurements.add(measurement(4, "PT-9", date(2026, 3, 7), 4000.0), today=date(2026, 3, 7))


def screening(*extra):
    return ["screening", "--json", "--today", "2026-03-09", *extra]


def test_screening_json_shape_and_statuses(store, cli_env, tmp_path, capsys):
    load(store, tmp_path)
    capsys.readouterr()
    assert main(screening()) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    assert all({"patient_id", "status", "reasons", "abc", "icu_day", "file"} <= set(r) for r in rows)
    by_id = {r["patient_id"]: r for r in rows}
    assert by_id["PT-1"]["status"] == "pending" and any("technician review" in x for x in by_id["PT-1"]["reasons"])
    assert by_id["PT-2"]["status"] == "not_eligible"
    assert by_id["PT-3"]["status"] == "eligible" and by_id["PT-3"]["icu_day"] == 6
    assert by_id["PT-9"]["reasons"] == ["no registry entry"]
    assert all("post_randomization" not in r for r in rows)
    assert "16000" not in json.dumps(rows)                     # the post-randomization value stays hidden


def test_unblinded_screening_in_single_user_mode_is_audited(store, cli_env, tmp_path, capsys, monkeypatch):
    load(store, tmp_path)
    capsys.readouterr()
    monkeypatch.setattr("app.identity.os_account", lambda: "lab-pc")
    assert main(screening("--unblinded")) == 0
    assert store.audit.entries()[-1].actor == "lab-pc"            # no user registered: the login acts
    capsys.readouterr()
    assert main(screening("--unblinded", "--actor", "dsmb-stat")) == 0
    rows = {r["patient_id"]: r for r in json.loads(capsys.readouterr().out)}
    late = rows["PT-3"]["post_randomization"]
    assert [m["collection_date"] for m in late] == ["2026-03-10"] and late[0]["abc"] == 16000.0
    entry = store.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.entity_id) == ("dsmb-stat", "unblinded_screening", "PT-3")


def test_window_closes_with_today(store, cli_env, tmp_path, capsys):
    load(store, tmp_path)
    capsys.readouterr()
    store.measurements.add(measurement(5, "PT-1", date(2026, 3, 8), 9500.0), today=date(2026, 3, 8))
    store.measurements.review(1, "reject", "clumps", "tech-a", today=date(2026, 3, 8))
    assert main(screening()) == 0
    assert {r["patient_id"]: r["status"] for r in json.loads(capsys.readouterr().out)}["PT-1"] == "pending"
    assert main(["screening", "--json", "--today", "2026-03-12"]) == 0
    row = {r["patient_id"]: r for r in json.loads(capsys.readouterr().out)}["PT-1"]
    assert row["status"] == "not_eligible" and any("window closed" in x for x in row["reasons"])
    assert main(["screening", "--json", "--today", "12/03/2026"]) == 2


def test_review_commands(store, cli_env, tmp_path, capsys):
    load(store, tmp_path)
    capsys.readouterr()
    assert main(["review", "list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [(i["patient_id"], i["qc"]["status"]) for i in items] == [("PT-1", "review")]
    mid = items[0]["measurement_id"]
    assert main(["review", "approve", str(mid), "--reason", "smear checked", "--actor", "tech-a", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["decision"] == "approve" and doc["actor"] == "tech-a"
    assert doc["screening"]["status"] == "eligible" and doc["screening"]["measurement_id"] == mid
    assert main(["review", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    entry = [e for e in store.audit.entries() if e.action == "review_approve"][-1]
    assert entry.actor == "tech-a" and entry.after["reason"] == "smear checked"
    assert main(["review", "reject", "999", "--reason", "x", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "bad_input"
    passed = next(m.id for m in store.measurements.list() if m.qc.status == "pass")
    assert main(["review", "approve", str(passed), "--reason", "x", "--json"]) == 2


def test_per_result_rules_follow_the_stored_facts_not_a_stored_copy(store):
    """ICU day, window and cut-off are derived on every read from the registry's admission, the
    collection date, the AB/C and QC (pipeline.eligibility.result_rules), so a registry
    correction moves them, in the store, the screening log and the export alike."""
    from dataclasses import replace

    from pipeline.eligibility import PatientFacts, Rules
    from pipeline.sinks.payload import result_payload

    facts = PatientFacts("PT-7", date(2026, 3, 1), 8, True)
    store.patients.upsert([facts], today=date(2026, 3, 12))
    stored = store.measurements.add(measurement(7, "PT-7", date(2026, 3, 12), 7000.0), today=date(2026, 3, 12))
    read = store.measurements.get(stored.id).measurement
    assert (read.icu_day, read.in_window, read.below_threshold) == (11, False, True)

    store.patients.upsert([replace(facts, icu_admission=date(2026, 3, 4))], today=date(2026, 3, 12))
    again = store.measurements.get(stored.id)
    assert (again.measurement.icu_day, again.measurement.in_window) == (8, True)
    log = {r.patient_id: r for r in store.screening.log()}
    payload = result_payload(again, log["PT-7"], store.rules)
    assert (payload["icu_day"], payload["in_window"], payload["below_threshold"]) == (8, True, True)
    assert log["PT-7"].status == "eligible"

    store.rules = Rules(abc_threshold=6500.0)          # the rules in force, not the ones at measuring
    assert store.measurements.get(stored.id).measurement.below_threshold is False
