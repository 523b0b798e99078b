"""``mhladr audit report``: on a home built for it, every category counts what happened in it,
each item naming the record, the person and the time; ``--sign`` records the review, signed."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from app.cli import main
from pipeline.audit_review import LabHours, build
from pipeline.eligibility import PatientFacts
from pipeline.signing import SignatureRefused, Signer, authenticate
from pipeline.sinks import SinkError
from pipeline.sinks.outbox import deliver_outbox, enqueue_results
from science.qc import QC
from tests.store_fixtures import cli_env, clock, db_url, measurement, settings, store  # noqa: F401
from tests.test_tamper import drop_every_trigger

REVIEW = QC("review", ("1,500 monocytes (fewer than 2000)",))
ANN, TOM = "correct horse battery", "battery staple horse"


class Refusing:
    name = "webhook"

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        raise SinkError("webhook https://ecrf.example.org: 503")


class Taking:
    name = "csv"

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        return None


def build_home(store, clock) -> dict[str, int]:
    """A day of a lab's actions with one of each thing the review looks for."""
    store.users.add("ann", "admin", ANN, actor="setup")
    store.users.add("tom", "technician", TOM, actor="ann")
    store.users.add("ivy", "investigator", "ivy's long passphrase", actor="ann")
    store.users.disable("ivy", actor="ann")
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True)], today=date(2026, 3, 2))
    first = store.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=REVIEW), size=5,
                                   today=date(2026, 3, 7))
    second = store.measurements.add(measurement(2, "PT-1", date(2026, 3, 8), 4900.0, qc=REVIEW), size=5,
                                    today=date(2026, 3, 8))
    store.audit.log_event("tom", "login_failed", "session", "tom", {"address": "10.0.0.7"})
    with pytest.raises(SignatureRefused):
        authenticate(store, Signer("tom", "a guess", True), f"measurement {first.id}")
    store.measurements.review(first.id, "approve", "smear checked", "tom", signed=True)
    store.measurements.review(first.id, "reject", "clot found later", "tom", supersede=True, signed=True)
    store.audit.log_event("ann", "act_as", "user", "tom", {"command": "review approve"})
    store.audit.log_unblinded_read("ann", "unblinded_results", ["PT-1"], {"rows": 1})
    clock.advance(hours=14)                    # T0 + 14 h: late evening, outside 07:00-19:00 UTC
    store.measurements.review(second.id, "reject", "clumped", "tom", signed=True)
    enqueue_results(store, ("csv", "webhook"))
    deliver_outbox(store, clock(), {"csv": Taking(), "webhook": Refusing()})
    return {"first": first.id, "second": second.id}


def test_every_category_on_a_home_built_for_it(store, clock, cli_env, monkeypatch, capsys, tmp_path):
    assert clock().hour < 12                   # the home's day starts in lab hours (UTC)
    build_home(store, clock)
    with store.engine.begin() as conn:        # and someone edits a result behind the application
        drop_every_trigger(conn)
        conn.execute(sa.text("UPDATE measurements SET abc = 9100 WHERE id = 2"))
    done = build(store, None, LabHours.parse("07:00-19:00"), tz=timezone.utc)
    counts = done.counts
    assert counts["signed"] == 3 and counts["supersedes"] == 1 and counts["rejections"] == 2
    assert counts["refused_sign_ins"] == 1 and counts["refused_signatures"] == 1
    assert counts["user_changes"] == 4                  # three added, one disabled
    assert counts["acting_for"] == 1 and counts["unblinded_reads"] == 1
    assert counts["exports"] >= 2 and counts["export_failures"] >= 2 and counts["gate_corrections"] == 0
    assert counts["integrity"] == 2 and counts["audit_reviews"] == 0     # the row, and its stale cut-off copy
    late = {(i.actor, i.what.split(" ")[0]) for c in done.categories if c.key == "outside_lab_hours" for i in c.items}
    assert ("tom", "review_reject") in late and all(actor != "export" for actor, _ in late)
    supersede = next(c for c in done.categories if c.key == "supersedes").items[0]
    assert supersede.actor == "tom" and supersede.record == "measurement 1" and supersede.at is not None
    problem, stale = next(c for c in done.categories if c.key == "integrity").items
    assert problem.record == "measurements 2" and "edited behind the application" in problem.what
    assert stale.record == "measurements 2" and stale.what.startswith("below_threshold is true but AB/C 9,100")

    # the command: admin only, --sign needs the password, records the review; the next starts after it
    monkeypatch.setattr("app.identity.os_account", lambda: "tom")   # the OS account of the process
    assert main(["audit", "report"]) == 2 and "needs the role admin" in capsys.readouterr().err
    monkeypatch.setattr("app.identity.os_account", lambda: "ann")   # the OS account of the process
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert main(["audit", "report", "--sign", "--password-stdin", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "signature_refused"
    html = tmp_path / "review.html"
    monkeypatch.setattr("sys.stdin", io.StringIO(ANN + "\n"))
    assert main(["audit", "report", "--sign", "--password-stdin", "--html", str(html), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recorded"] and doc["signature"]["user"] == "ann"
    assert doc["signature"]["meaning"] == "audit trail reviewed"
    assert doc["counts"]["refused_signatures"] == 2          # the wrong password just now too
    page = html.read_text()
    assert "Superseded decisions (1)" in page and "Reviewed and signed by ann" in page
    assert main(["audit", "report", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["since"] > doc["until"] and after["counts"]["audit_reviews"] == 1
    assert after["counts"]["user_changes"] == 0               # what the signed review covered is not repeated
    assert after["counts"]["signed"] == 1                    # the review's own signature


def test_lab_hours_setting_is_checked(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("MHLADR_LAB_HOURS", "19:00-07:00")
    assert main(["audit", "report"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("MHLADR_LAB_HOURS") and "HH:MM-HH:MM" in err
    with pytest.raises(ValueError):
        LabHours.parse("7-19")
    late = datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)
    assert LabHours.parse("00:00-24:00").within(late, timezone.utc)
    assert not LabHours.parse("07:00-19:00").within(late, timezone.utc)
