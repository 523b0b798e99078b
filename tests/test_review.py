"""`mhladr review`: one decision per result unless superseded, clear refusals, a readable list."""

from __future__ import annotations

import json
from datetime import date

from app.cli import main
from pipeline.eligibility import PatientFacts
from science.qc import QC
from tests.store_fixtures import cli_env, clock, db_url, measurement, settings, store  # noqa: F401

REVIEW = QC("review", ("1,500 monocytes (fewer than 2000)",))


def seed(store):
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True)], today=date(2026, 3, 2))
    pending = store.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=REVIEW), size=5,
                                     today=date(2026, 3, 7))
    passed = store.measurements.add(measurement(2, "PT-1", date(2026, 3, 6), 9100.0), size=5, today=date(2026, 3, 7))
    return pending.id, passed.id


def test_a_second_decision_is_refused_naming_the_first_unless_superseding(store, cli_env, capsys):
    pending, _ = seed(store)
    assert main(["review", "approve", str(pending), "--reason", "smear checked", "--actor", "tech-a"]) == 0
    assert capsys.readouterr().out.strip() == (f"measurement {pending}: approved by tech-a; "
                                               "unsigned (single-user mode); patient PT-1 is eligible")
    assert main(["review", "reject", str(pending), "--reason", "clot", "--actor", "tech-b", "--json"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    decided = store.measurements.reviews(pending)[0].decided_at.isoformat(timespec="seconds")
    assert line == (f"measurement {pending}: already approved by tech-a at {decided} (smear checked); "
                    "a second decision must supersede it (--supersede)")
    assert json.loads(captured.out)["error"]["code"] == "bad_input"
    assert main(["review", "reject", str(pending), "--reason", "clot found", "--actor", "tech-b", "--supersede"]) == 0
    first_id = store.measurements.reviews(pending)[0].id
    assert capsys.readouterr().out.strip() == (f"measurement {pending}: rejected by tech-b (supersedes decision "
                                               f"{first_id}); unsigned (single-user mode); patient PT-1 is not_eligible")  # window closed today
    reviews = store.measurements.reviews(pending)
    assert [(r.decision, r.actor, r.reason, r.supersedes) for r in reviews] == [
        ("approve", "tech-a", "smear checked", None), ("reject", "tech-b", "clot found", first_id)]
    assert store.audit.verify().ok


def test_deciding_a_qc_pass_result_is_one_clear_refusal(store, cli_env, capsys):
    _, passed = seed(store)
    assert main(["review", "approve", str(passed), "--reason", "x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"measurement {passed}: QC is pass, not review: only QC review results are approved or rejected "
                   "(a pass counts as it is)"]
    assert main(["review", "reject", "999", "--reason", "x"]) == 2
    assert capsys.readouterr().err.strip() == "measurement 999: no such measurement (see `mhladr review list`)"


def test_review_list_has_a_header_the_file_and_the_report(store, cli_env, capsys):
    pending, _ = seed(store)
    assert main(["review", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "patient", "collected", "AB/C", "file", "QC", "reasons"]
    assert lines[1].split()[:5] == [str(pending), "PT-1", "2026-03-07", "5,100", "1.fcs"]
    assert lines[1].endswith("1,500 monocytes (fewer than 2000)")
    report = lines[2].split("report: ")[1]
    assert report.startswith(str(cli_env.home / "reports")) and report.endswith(".html")
    assert main(["review", "list", "--json"]) == 0
    item = json.loads(capsys.readouterr().out)[0]
    assert (item["file"], item["report"], item["abc"]) == ("/in/1.fcs", report, 5100.0)
