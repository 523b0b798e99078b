"""The lab console's JSON API and its security, over HTTP against the session's real uvicorn
server (DESIGN.md, Additions: login 200/401, 401 without a session, 403 without the CSRF header
or a reviewing role, a decision changes the screening; blinded roles never receive
post-randomization values)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.console_fixtures import BLINDED_FILE, PEOPLE, RunningConsole


def audit_actions(console: RunningConsole, actor: str) -> list[str]:
    with console.store() as store:
        return [e.action for e in store.audit.entries() if e.actor == actor]


def test_login_returns_the_role_a_csrf_token_and_a_strict_session_cookie(console: RunningConsole) -> None:
    with console.client() as client:
        response = client.post("/api/login", json={"user": "tech", "password": PEOPLE["tech"][1]})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user", "role", "csrf_token"}
    assert (body["user"], body["role"]) == ("tech", "technician") and len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"].lower()
    assert "mhladr_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "login" in audit_actions(console, "tech")


@pytest.mark.parametrize("user, password", [("tech", "wrong"), ("nobody", "whatever"), ("tech", "")])
def test_wrong_credentials_are_401_without_saying_which(console: RunningConsole, user: str, password: str) -> None:
    with console.client() as client:
        response = client.post("/api/login", json={"user": user, "password": password})
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "bad_credentials", "message": "wrong user name or password"}}
    assert "mhladr_session" not in response.headers.get("set-cookie", "")


def test_without_a_session_the_api_says_401_and_pages_send_to_sign_in(console: RunningConsole) -> None:
    with console.client() as client:
        assert client.get("/api/reviews").status_code == 401
        assert client.get("/api/screening").status_code == 401
        assert client.post("/api/reviews/1", json={"decision": "approve", "reason": "x"},
                           headers={"X-CSRF-Token": "x"}).status_code == 401
        for path in ("/", "/reviews/1", "/screening", "/patients/PT-0043", "/beads", "/reports/measurements/1"):
            response = client.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_review_list_has_the_contract_fields_and_withholds_post_randomization_values(console: RunningConsole) -> None:
    with console.login("tech") as (client, _):
        rows = client.get("/api/reviews").json()
    assert {"id", "patient_id", "file", "abc", "qc"} <= set(rows[0])
    by_file = {r["file"]: r for r in rows}
    assert by_file[BLINDED_FILE]["abc"] is None and by_file[BLINDED_FILE]["blinded"] is True
    assert by_file["PT-0047_D02_HLADR.fcs"]["abc"] > 0 and by_file["PT-0047_D02_HLADR.fcs"]["blinded"] is False
    assert all(r["qc"]["status"] == "review" and r["qc"]["reasons"] for r in rows)


def test_a_decision_needs_the_csrf_header(console: RunningConsole) -> None:
    target = console.measurement_of("PT-0045_D05_HLADR.fcs")
    with console.login("tech") as (client, token):
        altered = token[:-1] + ("A" if token[-1] != "A" else "B")
        for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": altered}):
            response = client.post(f"/api/reviews/{target}", json={"decision": "approve", "reason": "ok"},
                                   headers=headers)
            assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]
    with console.store() as store:
        assert store.measurements.reviews(target) == []


@pytest.mark.parametrize("name", ["inv", "unb"])
def test_roles_that_may_not_review_get_403(console: RunningConsole, name: str) -> None:
    target = console.measurement_of("PT-0045_D05_HLADR.fcs")
    with console.login(name) as (client, token):
        assert client.get("/api/reviews").status_code == 403
        response = client.post(f"/api/reviews/{target}", json={"decision": "approve", "reason": "looks fine"},
                               headers={"X-CSRF-Token": token})
        assert response.status_code == 403 and "may not review" in response.json()["error"]["message"]
        assert client.get(f"/reviews/{target}").status_code == 403
        assert client.get("/beads").status_code == 403
        assert client.get("/").headers["location"] == "/screening"
    with console.store() as store:
        assert store.measurements.reviews(target) == []


def test_a_decision_is_audited_and_changes_the_screening(console: RunningConsole) -> None:
    target = console.measurement_of("PT-0042_D07_HLADR.fcs")
    with console.login("adm") as (client, token):
        before = {r["patient_id"]: r for r in client.get("/api/screening").json()}
        assert before["PT-0042"]["status"] == "pending"
        wrong = client.post(f"/api/reviews/{target}", json={"decision": "approve", "reason": "smear checked",
                                                             "password": "not-adm-pass"}, headers={"X-CSRF-Token": token})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "signature_refused"
        with console.store() as store:
            assert store.measurements.reviews(target) == []          # a wrong password records nothing
        response = client.post(f"/api/reviews/{target}", json={"decision": "approve", "reason": " smear checked ",
                                                                "password": PEOPLE["adm"][1]},
                               headers={"X-CSRF-Token": token})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["decision"], body["reason"], body["actor"]) == ("approve", "smear checked", "adm")
        assert body["signature"]["user"] == "adm" and body["signature"]["meaning"] == "reviewed: approved"
        assert body["signature"]["signed_at"].endswith("+00:00")
        assert body["screening"]["patient_id"] == "PT-0042" and body["screening"]["status"] == "not_eligible"
        after = {r["patient_id"]: r for r in client.get("/api/screening").json()}
        assert after["PT-0042"]["status"] == "not_eligible" and after["PT-0042"]["abc"] > 8000
        assert target not in [r["id"] for r in client.get("/api/reviews").json()]
        again = client.post(f"/api/reviews/{target}", json={"decision": "reject", "reason": "clot"},
                            headers={"X-CSRF-Token": token})
        assert again.status_code == 409 and "already approved by adm" in again.json()["error"]["message"]
        superseded = client.post(f"/api/reviews/{target}", json={"decision": "reject", "reason": "clot found",
                                                                  "supersede": True, "password": PEOPLE["adm"][1]},
                                 headers={"X-CSRF-Token": token})
        assert superseded.status_code == 200 and superseded.json()["screening"]["status"] == "not_eligible"
        assert superseded.json()["signature"]["meaning"] == "superseded: rejected"
        bad = client.post(f"/api/reviews/{target}", json={"decision": "maybe", "reason": "x"},
                          headers={"X-CSRF-Token": token})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_request"
        assert client.post("/api/reviews/999999", json={"decision": "approve", "reason": "x"},
                           headers={"X-CSRF-Token": token}).status_code == 404
    with console.store() as store:
        assert [(r.decision, r.actor) for r in store.measurements.reviews(target)] == [("approve", "adm"),
                                                                                     ("reject", "adm")]
        assert store.audit.verify_chain().ok
    assert {"review_approve", "review_reject", "sign", "signature_refused"} <= set(audit_actions(console, "adm"))


def test_blinded_roles_never_receive_post_randomization_values(console: RunningConsole) -> None:
    blinded = console.measurement_of(BLINDED_FILE)
    with console.store() as store:
        value = store.measurements.get(blinded).abc
    shown = [f"{value:,.0f}", repr(value)]
    for name in ("inv", "tech", "adm"):
        with console.login(name) as (client, _):
            documents = [client.get("/api/screening"), client.get("/screening"), client.get("/patients/PT-0047")]
            if name != "inv":
                documents += [client.get("/api/reviews"), client.get(f"/reviews/{blinded}")]
            assert all(d.status_code == 200 for d in documents)
            assert not any(text in d.text for d in documents for text in shown), name
            assert all("post_randomization" not in row for row in documents[0].json())
            assert client.get(f"/reports/measurements/{blinded}").status_code == 403
    assert "unblinded_screening" not in audit_actions(console, "inv")


def test_the_unblinded_role_reads_post_randomization_values_and_each_read_is_audited(console: RunningConsole) -> None:
    blinded = console.measurement_of(BLINDED_FILE)
    with console.login("unb") as (client, _):
        rows = {r["patient_id"]: r for r in client.get("/api/screening").json()}
        assert [p["measurement_id"] for p in rows["PT-0047"]["post_randomization"]] == [blinded]
        assert rows["PT-0047"]["post_randomization"][0]["abc"] > 0
        report = client.get(f"/reports/measurements/{blinded}")
        assert report.status_code == 200 and "PT-0047" in report.text
        assert client.get("/patients/PT-0047").status_code == 200
    assert {"unblinded_screening", "unblinded_report", "unblinded_patient"} <= set(audit_actions(console, "unb"))


def test_reports_are_served_over_http(console: RunningConsole) -> None:
    target = console.measurement_of("PT-0043_D06_HLADR.fcs")
    with console.login("inv") as (client, _):
        report = client.get(f"/reports/measurements/{target}")
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert "PT-0043" in report.text and "<svg" in report.text
        assert client.get("/reports/calibrations/1").status_code == 403          # bead QC: reviewing roles
    with console.login("tech") as (client, _):
        bead = client.get("/reports/calibrations/1")
        assert bead.status_code == 200 and "Bead calibration" in bead.text
        assert client.get("/reports/measurements/999999").status_code == 404


def test_forged_expired_revoked_and_disabled_sessions_are_refused(console: RunningConsole) -> None:
    from app.console.sessions import COOKIE, Sessions, signing_key

    key = signing_key(console.home)
    expired, _ = Sessions(key, clock=lambda: 1_000_000.0).issue("tech")
    forged, _ = Sessions(b"k" * 32).issue("adm")
    with console.login("tech") as (client, _):
        good = client.cookies[COOKIE]
        body, signature = good.split(".")
        for cookie in (expired, forged, body + "." + signature[::-1], "x" * 40, ""):
            with console.client() as other:
                other.cookies.set(COOKIE, cookie)
                assert other.get("/api/reviews").status_code == 401
    with console.login("leaving") as (leaving, token):
        assert leaving.get("/api/reviews").status_code == 200
        with console.store() as store:
            store.users.disable("leaving", actor="adm")
        assert leaving.get("/api/reviews").status_code == 401
    with console.login("tech") as (client, token):
        cookie = client.cookies[COOKIE]
        assert client.post("/api/logout").status_code == 403                     # a logout is a state change too
        assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 200
        with console.client() as replay:
            replay.cookies.set(COOKIE, cookie)
            assert replay.get("/api/reviews").status_code == 401
    assert "logout" in audit_actions(console, "tech")


def test_failed_logins_are_throttled_per_name(console: RunningConsole) -> None:
    with console.client() as client:
        for _ in range(5):
            assert client.post("/api/login", json={"user": "throttled", "password": "nope"}).status_code == 401
        locked = client.post("/api/login", json={"user": "throttled", "password": PEOPLE["throttled"][1]})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 60
        assert client.post("/api/login", json={"user": "tech", "password": PEOPLE["tech"][1]}).status_code == 200
    assert audit_actions(console, "throttled").count("login_failed") == 5


def test_page_forms_need_their_tokens(console: RunningConsole) -> None:
    target = console.measurement_of("PT-0045_D05_HLADR.fcs")
    with console.login("tech") as (client, _):
        form = {"decision": "approve", "reason": "looks fine"}
        assert client.post(f"/reviews/{target}", data=form).status_code == 403
        assert client.post(f"/reviews/{target}", data={**form, "csrf_token": "forged"}).status_code == 403
        assert client.post("/logout", data={}).status_code == 403
    with console.client() as anonymous:
        refused = anonymous.post("/login", data={"user": "tech", "password": PEOPLE["tech"][1]})
        assert refused.status_code == 403 and "mhladr_session" not in refused.headers.get("set-cookie", "")
    with console.store() as store:
        assert store.measurements.reviews(target) == []


def test_every_response_carries_the_security_headers(console: RunningConsole) -> None:
    with console.client() as client:
        response = client.get("/login")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text


def test_the_signing_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    from app.console.sessions import KEY_FILE, signing_key

    key = signing_key(tmp_path)
    assert len(key) == 32 and signing_key(tmp_path) == key
    assert stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode) == 0o600
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        signing_key(tmp_path)


def test_sessions_expire_and_the_throttle_forgets_old_failures() -> None:
    from app.console.sessions import LoginThrottle, Sessions

    now = [1_000.0]
    sessions = Sessions(b"s" * 32, lifetime=60, clock=lambda: now[0])
    cookie, session = sessions.issue("tech")
    assert sessions.read(cookie) == session and sessions.csrf_ok(session, sessions.csrf_token(session))
    now[0] += 61
    assert sessions.read(cookie) is None
    throttle = LoginThrottle(per_name=2, per_address=3, window=100, clock=lambda: now[0])
    throttle.failed("a", "10.0.0.1")
    throttle.failed("a", "10.0.0.1")
    assert throttle.retry_after("a", "10.0.0.2") == 101 and throttle.retry_after("b", "10.0.0.1") == 0
    throttle.failed("b", "10.0.0.1")
    assert throttle.retry_after("c", "10.0.0.1") == 101                 # the address's own limit
    now[0] += 101
    assert throttle.retry_after("a", "10.0.0.1") == 0


def test_the_console_answers_over_a_real_socket(console: RunningConsole) -> None:
    assert console.url.startswith("http://127.0.0.1:")
    response = httpx.get(console.url + "/static/console.css", timeout=10)
    assert response.status_code == 200 and "font-family" in response.text


def test_the_review_page_links_the_prefect_run_and_the_decision_is_the_consoles(console: RunningConsole,
                                                                                prefect_server) -> None:  # noqa: ANN001
    """The console links the (locked) Prefect run and records the decision itself; the run, which
    takes no input, sees it in the store and ends (tests/test_flows.py)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Paused

    from flows.review import review_flow
    from flows.review_runs import run_name
    from flows.server import connected

    target = console.measurement_of("PT-0047_D02_HLADR.fcs")
    with connected(prefect_server.url), get_client(sync_client=True) as client:
        run = client.create_flow_run(review_flow, name=run_name(target), parameters={"measurement_id": target})
        client.set_flow_run_state(run.id, Paused(), force=True)
        with console.login("tech") as (session, token):
            page = session.get(f"/reviews/{target}")
            assert f'href="{prefect_server.ui_url}/runs/flow-run/{run.id}"' in page.text and "(Paused)" in page.text
            decided = session.post(f"/api/reviews/{target}", json={"decision": "reject", "reason": "clumped",
                                                                          "password": PEOPLE["tech"][1]},
                                   headers={"X-CSRF-Token": token})
            assert decided.status_code == 200 and decided.json()["actor"] == "tech"
    with console.store() as store:
        assert store.measurements.get(target).review == "reject"


def test_the_audit_review_page_is_for_admins_and_records_a_signed_review(console: RunningConsole) -> None:
    with console.login("tech") as (client, _):
        assert client.get("/audit").status_code == 403
    with console.login("adm") as (client, token):
        shown = client.get("/audit")
        assert shown.status_code == 200
        for title in ("Refused sign-ins", "Refused signatures", "User and role changes", "Actions outside lab hours",
                      "Integrity problems (audit verify)"):
            assert title in shown.text
        assert 'href="/audit"' in shown.text and 'name="password" type="password"' in shown.text
        assert client.get("/audit?since=yesterday").status_code == 422
        assert client.post("/audit", data={"password": PEOPLE["adm"][1]}).status_code == 403      # no CSRF token
        wrong = client.post("/audit", data={"csrf_token": token, "password": "not it"})
        assert wrong.status_code == 403 and "wrong password" in wrong.text
        signed = client.post("/audit", data={"csrf_token": token, "password": PEOPLE["adm"][1]})
        assert signed.status_code == 200 and "was reviewed, signed by adm" in signed.text
        assert "audit trail reviewed" in signed.text
    with console.store() as store:
        (review,) = [e for e in store.audit.entries() if e.action == "audit_reviewed"]
        (signature,) = [s for s in store.signatures.list() if s.meaning == "audit trail reviewed"]
        assert review.actor == "adm" and signature.record_key == str(review.seq) and store.audit.verify().ok


def test_refused_signatures_elsewhere_count_toward_the_sign_in_lockout(console: RunningConsole) -> None:
    from pipeline.signing import LOCKOUT_FAILURES, SignatureRefused, Signer, authenticate

    with console.store() as store:            # e.g. wrong passwords given to `mhladr review --password-stdin`
        for _ in range(LOCKOUT_FAILURES):
            with pytest.raises(SignatureRefused):
                authenticate(store, Signer("locked", "a guess", True), "measurement 1")
    with console.client() as client:
        locked = client.post("/api/login", json={"user": "locked", "password": PEOPLE["locked"][1]})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 60
