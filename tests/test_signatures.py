"""Electronic signatures (21 CFR Part 11 §11.50/§11.70/§11.200): a decision is signed only after
the person re-enters their password; a wrong one records nothing, is audited and counts toward
the lockout; the manifestation (name, UTC time, meaning) reaches results, the review list, the
report and FHIR; a signature whose record changed is named by ``audit verify``; single-user mode
stays unsigned, marked so."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
import sqlalchemy as sa

from app.cli import main
from pipeline.eligibility import PatientFacts
from pipeline.signing import LOCKOUT_FAILURES, SignatureRefused, Signer, sign_record
from pipeline.sinks.fhir import SIGNATURE, observation
from pipeline.sinks.payload import result_payload
from science.qc import QC
from tests.store_fixtures import cli_env, clock, db_url, measurement, settings, store  # noqa: F401
from tests.test_tamper import drop_every_trigger

REVIEW = QC("review", ("1,500 monocytes (fewer than 2000)",))
TOM = "battery staple horse"


def seed(store) -> tuple[int, int]:
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True)], today=date(2026, 3, 2))
    first = store.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=REVIEW), size=5,
                                   today=date(2026, 3, 7))
    second = store.measurements.add(measurement(2, "PT-1", date(2026, 3, 8), 4900.0, qc=REVIEW), size=5,
                                    today=date(2026, 3, 8))
    return first.id, second.id


@pytest.fixture
def staffed(store, monkeypatch):
    store.users.add("ann", "admin", "correct horse battery", actor="setup")
    store.users.add("tom", "technician", TOM, actor="ann")
    monkeypatch.setattr("app.identity.os_account", lambda: "tom")   # the OS account of the process
    return store


def decide_cli(monkeypatch, capsys, decision: str, mid: int, password: str, *extra: str) -> tuple[int, dict]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = main(["review", decision, str(mid), "--reason", "smear checked", "--password-stdin", "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def fhir(payload: dict) -> dict:
    """The Observation of a payload as version 1 (the outbox adds these fields)."""
    return observation({**payload, "result_id": payload["file_sha256"], "version": 1, "status": "final"}).model_dump()


def refused_signatures(store) -> list[str]:
    return [e.actor for e in store.audit.entries() if e.action == "signature_refused"]


def test_a_wrong_password_records_nothing_is_audited_and_locks_out(staffed, cli_env, monkeypatch, capsys):
    first, second = seed(staffed)
    code, doc = decide_cli(monkeypatch, capsys, "approve", first, "not my password")
    assert code == 2 and doc["error"]["code"] == "signature_refused" and "wrong password" in doc["error"]["message"]
    assert staffed.measurements.reviews(first) == [] and staffed.signatures.list() == []
    assert refused_signatures(staffed) == ["tom"]

    code, doc = decide_cli(monkeypatch, capsys, "approve", first, TOM)
    assert code == 0 and doc["actor"] == "tom"
    assert doc["signature"]["user"] == "tom" and doc["signature"]["meaning"] == "reviewed: approved"
    assert doc["signature"]["signed_at"].endswith("+00:00")
    assert main(["results", "--json"]) == 0
    rows = {r.get("measurement_id"): r for r in json.loads(capsys.readouterr().out)}
    assert rows[first]["signature"] == doc["signature"] and rows[second]["signature"] is None
    assert main(["review", "list", "--json"]) == 0
    assert [(i["measurement_id"], i["signature"]) for i in json.loads(capsys.readouterr().out)] == [(second, None)]

    for _ in range(LOCKOUT_FAILURES - 1):       # with the first, 5 refusals within 15 min
        assert decide_cli(monkeypatch, capsys, "reject", second, "guess")[0] == 2
    code, doc = decide_cli(monkeypatch, capsys, "reject", second, TOM)
    assert code == 2 and "locked out" in doc["error"]["message"]
    assert staffed.measurements.reviews(second) == []
    assert staffed.audit.verify().ok


def test_single_user_mode_decides_unsigned_and_says_so(store, cli_env, capsys):
    first, _ = seed(store)
    assert main(["review", "approve", str(first), "--reason", "smear checked", "--actor", "lab", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["signature"] is None
    assert main(["review", "list"]) == 0 and main(["results", "--json"]) == 0
    capsys.readouterr()
    assert store.signatures.list() == []
    reports = list((cli_env.home / "reports").rglob("*.html"))
    assert len(reports) == 1 and "<strong>approved</strong> by lab" in reports[0].read_text()    # the decision section
    assert '<span class="signature">Unsigned (single-user mode)</span>' in reports[0].read_text()
    resource = fhir(result_payload(store.measurements.get(first), None, store.rules))
    assert resource["extension"] == [{"url": SIGNATURE, "extension": [{"url": "unsigned", "valueBoolean": True}]}]


def test_the_signature_reaches_fhir(staffed, tmp_path):
    from pipeline.decisions import decide

    first, _ = seed(staffed)
    done = decide(staffed, tmp_path / "reports", first, "approve", "smear checked", Signer("tom", TOM, True))
    resource = fhir(result_payload(staffed.measurements.get(first), None, staffed.rules, done.signature))
    (ext,) = resource["extension"]
    fields = {e["url"]: e.get("valueString") or e.get("valueDateTime") for e in ext["extension"]}
    assert ext["url"] == SIGNATURE and fields["signer"] == "tom" and fields["meaning"] == "reviewed: approved"
    assert str(fields["when"]).startswith(done.signature.signed_at.strftime("%Y-%m-%d"))


def test_a_signature_broken_by_a_direct_edit_is_named(staffed, cli_env, capsys):
    first, second = seed(staffed)
    staffed.measurements.review(first, "approve", "smear checked", "tom", signed=True)
    staffed.measurements.review(second, "reject", "clots", "tom", signed=True)
    entry = staffed.audit.entries()[-1].seq
    on_entry = sign_record(staffed, Signer("ann", "correct horse battery", True), "audit_log", entry,
                           "audit trail reviewed")
    assert on_entry is not None and staffed.audit.verify().ok
    with pytest.raises(SignatureRefused):
        sign_record(staffed, Signer("ann", "wrong", True), "audit_log", entry, "audit trail reviewed")
    sigs = {s.record_key: s for s in staffed.signatures.list() if s.record_table == "review_decisions"}
    first_review = staffed.measurements.reviews(first)[0].id
    with staffed.engine.begin() as conn:
        drop_every_trigger(conn)
        # the signed decision is edited, with its audit digest forged too so only the signature shows it
        conn.execute(sa.text("UPDATE review_decisions SET reason = 'no smear made' WHERE id = :id"),
                     {"id": first_review})
    assert main(["audit", "verify", "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    signature_id = str(sigs[str(first_review)].id)
    assert ("signatures", signature_id) in {(p["table"], p["row"]) for p in problems}
    assert any("changed after signing" in p["what"] for p in problems if p["row"] == signature_id)
    # a signature moved to another record breaks its link too
    other = staffed.measurements.reviews(second)[0].id
    with staffed.engine.begin() as conn:
        conn.execute(sa.text("UPDATE signatures SET record_key = :k WHERE id = :id"),
                     {"k": str(other), "id": int(signature_id)})
    assert main(["audit", "verify", "--json"]) == 1
    moved = [p["what"] for p in json.loads(capsys.readouterr().out)["problems"]
             if p["table"] == "signatures" and p["row"] == signature_id]
    assert any("content differs" in w for w in moved) and any("changed after signing" in w for w in moved)
