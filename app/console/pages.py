"""The console's pages (server-rendered HTML, no JavaScript): sign-in, the review queue, one
review with its figures and decision form, the screening log, a patient's trend, bead QC, and
the per-tube reports over http."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from app.console import views
from app.console.request_helpers import (SignatureThrottled, Viewer, check_csrf, client_address, console_of,
                                         correct_gate, decide, ended_message, error_page, form_data, reprocess,
                                         set_session_cookie, sign_in, sign_out, viewer)
from app.console.sessions import COOKIE, LOGIN_COOKIE, LOGIN_NONCE_SECONDS
from flows.review_runs import review_run
from pipeline.access import password_problem
from pipeline.signing import SignatureRefused, Signer
from pipeline.store import StoredMeasurement

router = APIRouter()


def page(request: Request, template: str, who: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    return console_of(request).templates.TemplateResponse(request, template, {"who": who, **context},
                                                                      status_code=status)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# -- signing in and out -------------------------------------------------------------------------
def login_form(request: Request, target: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    console = console_of(request)
    nonce, token = console.sessions.login_nonce()
    response = page(request, "login.html", None, status, token=token, next=safe_next(target), error=error,
                    no_users=not console.store.users.any())
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_NONCE_SECONDS, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", ended: str | None = None) -> HTMLResponse:
    return login_form(request, next, ended_message(console_of(request), ended))


@router.post("/login")
def login(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
    console = console_of(request)
    target = form.get("next", "/")
    if not console.sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE), form.get("token")):
        return login_form(request, target, "The sign-in form had expired: please sign in again.", 403)
    user, wait = sign_in(console, form.get("user", "").strip(), form.get("password", ""), client_address(request))
    if wait:
        return login_form(request, target, f"Too many failed sign-ins: try again in {wait // 60 + 1} min.", 429)
    if user is None:
        return login_form(request, target, "Wrong user name or password.", 401)
    cookie, _ = console.sessions.issue(user.name, user.generation)
    if safe_next(target) == "/" and user.may("reprocess"):
        target = "/files"               # a technician's day starts with the files that landed
    response = RedirectResponse(safe_next(target), status_code=303)
    set_session_cookie(request, response, cookie, console.sessions.lifetime)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, who: Viewer = Depends(viewer), form: dict[str, str] = Depends(form_data)) -> Response:
    check_csrf(request, who, form.get("csrf_token"))
    sign_out(request, who)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, who: Viewer = Depends(viewer)) -> HTMLResponse:
    return page(request, "password.html", who)


@router.post("/password", response_class=HTMLResponse)
def change_password(request: Request, who: Viewer = Depends(viewer),
                    form: dict[str, str] = Depends(form_data)) -> Response:
    """The signed-in person's own password: the current one first (audited; every other session of
    theirs ends, this one is issued again)."""
    check_csrf(request, who, form.get("csrf_token"))
    console = console_of(request)
    new = form.get("new", "")
    problem = password_problem(new) or (None if new == form.get("again") else "The two new passwords differ.")
    if console.store.users.authenticate(who.user.name, form.get("current", "")) is None:
        problem = "The current password is wrong."
    if problem:
        return page(request, "password.html", who, 422, error=problem)
    user = console.store.users.set_password(who.user.name, new, actor=who.user.name)
    cookie, session = console.sessions.issue(user.name, user.generation)
    request.state.renewed = None
    fresh = Viewer(user, session, console.sessions.csrf_token(session))
    response = page(request, "password.html", fresh, done="Your password was changed.")
    set_session_cookie(request, response, cookie, console.sessions.lifetime)
    return response


# -- review -----------------------------------------------------------------------------------
def decided_notice(request: Request, measurement_id: int) -> str | None:
    """What the last decision on a result did: who decided, and the patient's status now."""
    store = console_of(request).store
    stored = store.measurements.get(measurement_id)
    decisions = store.measurements.reviews(measurement_id)
    if stored is None or not decisions:
        return None
    last = decisions[-1]
    history = store.screening.history(stored.patient_id)
    status = f" {stored.patient_id} is now {history[-1].status.replace('_', ' ')}." if history else ""
    done = "approved" if last.decision == "approve" else "rejected"
    return f"Measurement {measurement_id} of {stored.patient_id} {done} by {last.actor}.{status}"


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, decided: int | None = None, who: Viewer = Depends(viewer)) -> Response:
    if not who.user.may("review"):
        return RedirectResponse("/screening", status_code=303)
    from datetime import date

    store = console_of(request).store
    attention = [f for f in views.files_of_day(store, date.today()) if f["status"] in NEEDS_A_PERSON and f["next"]]
    return page(request, "queue.html", who, items=views.review_queue(store), active="queue",
                notice=decided_notice(request, decided) if decided else None, attention=len(attention))


def review_response(request: Request, who: Viewer, stored: StoredMeasurement, *, error: str | None = None,
                    status: int = 200, form: dict[str, str] | None = None, proposal: dict | None = None,
                    notice: str | None = None) -> HTMLResponse:
    console = console_of(request)
    view = views.result_view(console.store, console.reports, stored, who.user)
    api, ui = console.config.prefect_api, console.config.prefect_ui
    run = review_run(api, ui, stored.id) if api and ui else None
    signatures = console.store.signatures.of("review_decisions", [d.id for d in view.decisions])
    versions = console.store.measurements.versions(stored.id) if stored.version > 1 else []
    return page(request, "review.html", who, status, view=view, m=stored.measurement, stored=stored,
                figures={title: Markup(svg) for title, svg in view.figures.items()}, run=run, error=error,
                form=form or {}, active="queue", edit=views.gate_edit(stored), proposal=proposal,
                versions=versions, notice=notice, signatures=signatures)


def stored_or_404(request: Request, who: Viewer, measurement_id: int) -> StoredMeasurement | HTMLResponse:
    stored = console_of(request).store.measurements.get(measurement_id)
    if stored is None:
        return error_page(request, 404, "No such result", f"There is no measurement {measurement_id}.", who)
    return stored


def refused_signature(request: Request, who: Viewer, found: StoredMeasurement,
                      exc: SignatureThrottled | SignatureRefused, form: dict[str, str]) -> HTMLResponse:
    """The review page again, saying why the signature (the password re-entered) was refused."""
    if isinstance(exc, SignatureThrottled):
        return review_response(request, who, found, error=f"Too many refused sign-ins or signatures: try again "
                               f"in {exc.seconds // 60 + 1} min.", status=429, form=form)
    return review_response(request, who, found, error=f"{exc}. Type your password again to sign.",
                           status=403, form=form)


@router.get("/reviews/{measurement_id}", response_class=HTMLResponse)
def review_page(request: Request, measurement_id: int, regated: int | None = None,
                who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("review")
    found = stored_or_404(request, who, measurement_id)
    if isinstance(found, HTMLResponse):
        return found
    notice = f"Gate corrected: version {regated} of this result is stored." if regated else None
    return review_response(request, who, found, notice=notice)


@router.post("/reviews/{measurement_id}/gate")
def gate_correction(request: Request, measurement_id: int, who: Viewer = Depends(viewer),
                    form: dict[str, str] = Depends(form_data)) -> Response:
    """Preview (nothing stored) or save (with a reason) a corrected monocyte gate."""
    from pipeline.errors import InputError
    from pipeline.regate import preview

    who.require("review")
    check_csrf(request, who, form.get("csrf_token"))
    found = stored_or_404(request, who, measurement_id)
    if isinstance(found, HTMLResponse):
        return found
    console = console_of(request)
    try:
        gate = views.proposed_gate(found, form.get("choice", "current"), form.get("vertices"))
        if form.get("action") == "save":
            reason = form.get("gate_reason", "").strip()
            if not reason:
                raise ValueError("Give a reason for the correction, then Save.")
            _, after = correct_gate(console, who, measurement_id, gate, reason, form.get("gate_password", ""),
                                    client_address(request))
            return RedirectResponse(f"/reviews/{measurement_id}?regated={after.version}", status_code=303)
        new = preview(console.store, console.config.settings, measurement_id, gate=gate)
    except (SignatureThrottled, SignatureRefused) as exc:
        return refused_signature(request, who, found, exc, form)
    except (ValueError, InputError) as exc:
        return review_response(request, who, found, error=str(getattr(exc, "message", exc)), status=422, form=form)
    withheld = console.store.measurements.is_blinded(found) and not views.unblinded(who.user)
    svg = views.preview_figure(console.reports, found, gate, new.monocytes)
    proposal = {"abc": None if withheld else new.abc, "monocytes": new.monocytes, "qc": new.qc.status,
                "figure": Markup(svg) if svg else None, "withheld": withheld}
    return review_response(request, who, found, form=form, proposal=proposal)


@router.post("/reviews/{measurement_id}")
def review_decision(request: Request, measurement_id: int, who: Viewer = Depends(viewer),
                    form: dict[str, str] = Depends(form_data)) -> Response:
    who.require("review")
    check_csrf(request, who, form.get("csrf_token"))
    found = stored_or_404(request, who, measurement_id)
    if isinstance(found, HTMLResponse):
        return found
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    if decision not in ("approve", "reject") or not reason:
        return review_response(request, who, found, error="Give a reason, then choose Approve or Reject.",
                               status=422, form=form)
    try:
        decide(console_of(request), who, measurement_id, decision, reason, form.get("supersede") == "yes",
               form.get("password", ""), client_address(request))
    except (SignatureThrottled, SignatureRefused) as exc:
        return refused_signature(request, who, found, exc, form)
    except ValueError as exc:
        return review_response(request, who, found, error=views.console_words(str(exc)), status=409, form=form)
    return RedirectResponse(f"/?decided={measurement_id}", status_code=303)


# -- files ------------------------------------------------------------------------------------
NEEDS_A_PERSON = ("rejected", "quarantined", "qc_fail", "pending_calibration")
FILES_REFRESH = 5          # seconds between the Files page's own reloads
FILE_LABELS = {"calibrated": "calibrated", "measured": "measured", "pending_calibration": "waiting for beads",
               "qc_fail": "QC fail", "rejected": "rejected", "quarantined": "quarantined", "duplicate": "duplicate"}


def files_response(request: Request, who: Viewer, day_text: str | None, *, notice: str | None = None,
                   error: str | None = None, status: int = 200) -> HTMLResponse:
    from datetime import date, datetime

    day = views.parse_day(day_text)
    if day is None:
        return error_page(request, 422, "Bad date", f"{day_text!r} is not a date (YYYY-MM-DD).", who)
    rows = views.files_of_day(console_of(request).store, day)
    for row in rows:
        row["landed_local"] = datetime.fromisoformat(row["landed_at"]).astimezone().strftime("%H:%M:%S")
    return page(request, "files.html", who, status, rows=rows, day=day.isoformat(), is_today=day == date.today(),
                refresh=FILES_REFRESH, labels=FILE_LABELS, past={"approve": "approved", "reject": "rejected"},
                notice=notice, error=error, active="files")


@router.get("/files", response_class=HTMLResponse)
def files(request: Request, date: str | None = None, reprocessed: int | None = None, now: str | None = None,
          who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("reprocess")
    notice = (f"File {reprocessed} reprocessed by {who.user.name}: now {FILE_LABELS.get(now or '', now)}."
              if reprocessed is not None and now else None)
    return files_response(request, who, date, notice=notice)


@router.post("/files/{file_id}/reprocess")
def reprocess_file(request: Request, file_id: int, who: Viewer = Depends(viewer),
                   form: dict[str, str] = Depends(form_data)) -> Response:
    from pipeline.errors import InputError

    who.require("reprocess")
    check_csrf(request, who, form.get("csrf_token"))
    day, reason = form.get("date"), form.get("reason", "").strip()
    if not reason:
        return files_response(request, who, day, error="Say what was fixed, then Reprocess.", status=422)
    try:
        done = reprocess(console_of(request), who, file_id, reason)
    except KeyError:
        return files_response(request, who, day, error=f"There is no file {file_id}.", status=404)
    except InputError as exc:
        return files_response(request, who, day, error=exc.message, status=409)
    from urllib.parse import urlencode

    query = urlencode({"date": day or "", "reprocessed": file_id, "now": done["status"]})
    return RedirectResponse(f"/files?{query}", status_code=303)


# -- screening, patients, beads ------------------------------------------------------------------
@router.get("/screening", response_class=HTMLResponse)
def screening(request: Request, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("screening")
    store = console_of(request).store
    rows = views.screening(store, who.user)
    randomized = views.randomized(store, [r["patient_id"] for r in rows])
    counts = {status: sum(1 for r in rows if r["status"] == status and r["patient_id"] not in randomized)
              for status in ("eligible", "pending", "not_eligible")}
    counts["randomized"] = len(randomized)
    return page(request, "screening.html", who, rows=rows, counts=counts, randomized=randomized,
                unblinded=views.unblinded(who.user), active="screening")


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(request: Request, patient_id: str, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("screening")
    console = console_of(request)
    view = views.patient_view(console.store, console.reports, patient_id, who.user)
    if view is None:
        return error_page(request, 404, "No such patient", f"Nothing is known of {patient_id}.", who)
    return page(request, "patient.html", who, view=view, chart=Markup(view.chart), active="screening")


@router.get("/beads", response_class=HTMLResponse)
def beads(request: Request, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("review", "see the bead QC")
    trends = views.bead_trends(console_of(request).store)
    return page(request, "beads.html", who, trends=trends, charts=[Markup(t.chart) for t in trends],
                active="beads")


# -- reports ------------------------------------------------------------------------------------
@router.get("/reports/measurements/{measurement_id}", response_class=HTMLResponse)
def measurement_report(request: Request, measurement_id: int, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("screening")
    console = console_of(request)
    found = stored_or_404(request, who, measurement_id)
    if isinstance(found, HTMLResponse):
        return found
    path = views.readable_report(console.store, console.reports, found, who.user)
    if path is None:
        if console.store.measurements.is_blinded(found) and not views.unblinded(who.user):
            return error_page(request, 403, "Withheld", f"Measurement {measurement_id} was collected after "
                                          "randomization: its report is withheld from your role.", who)
        return error_page(request, 404, "No report", f"No report was drawn for measurement {measurement_id}.", who)
    return HTMLResponse(path.read_text(encoding="utf-8"))


@router.get("/reports/calibrations/{calibration_id}", response_class=HTMLResponse)
def calibration_report(request: Request, calibration_id: int, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("review")
    console = console_of(request)
    cal = console.store.calibrations.get(calibration_id)
    path = views.bead_report(console.store, console.reports, cal) if cal is not None else None
    if path is None:
        return error_page(request, 404, "No report", f"No report exists for calibration {calibration_id}.", who)
    return HTMLResponse(path.read_text(encoding="utf-8"))


# -- the audit-trail review (admins) --------------------------------------------------------------
def audit_response(request: Request, who: Viewer, since: str | None, *, notice: str | None = None,
                   error: str | None = None, status: int = 200) -> HTMLResponse:
    from pipeline.audit_review import LabHours, build, start_of, to_html

    console = console_of(request)
    try:
        start = start_of(date.fromisoformat(since)) if since else None
    except ValueError:
        start, error, status = None, f"{since!r} is not a date (YYYY-MM-DD).", 422
    done = build(console.store, start, LabHours.parse(console.config.settings.lab_hours))
    return page(request, "audit.html", who, status, body=Markup(to_html(done, fragment=True)), since=since,
                notice=notice, error=error, active="audit")


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, since: str | None = None, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("audit_review")
    return audit_response(request, who, since)


@router.post("/audit", response_class=HTMLResponse)
def audit_sign(request: Request, who: Viewer = Depends(viewer), form: dict[str, str] = Depends(form_data)) -> Response:
    """Record, signed with the password re-entered, that the shown period was reviewed."""
    from pipeline.audit_review import LabHours, build, record_review, start_of

    who.require("audit_review")
    check_csrf(request, who, form.get("csrf_token"))
    console, since = console_of(request), form.get("since") or None
    address = client_address(request)
    wait = console.throttle.retry_after(who.user.name, address)
    if wait:
        return audit_response(request, who, since, error=f"Too many refused signatures or sign-ins: try again in "
                                                         f"{wait // 60 + 1} min.", status=429)
    try:
        start = start_of(date.fromisoformat(since)) if since else None
        done = build(console.store, start, LabHours.parse(console.config.settings.lab_hours))
        signature = record_review(console.store, done, Signer(who.user.name, form.get("password", ""), True))
    except SignatureRefused as exc:
        console.throttle.failed(who.user.name, address)
        return audit_response(request, who, since, error=f"{exc}. Type your password again to sign.", status=403)
    except ValueError:
        return audit_response(request, who, since, error=f"{since!r} is not a date (YYYY-MM-DD).", status=422)
    return audit_response(request, who, None, notice=f"Recorded: the audit trail up to {done.until:%Y-%m-%d %H:%M} "
                                                     f"UTC was reviewed, {signature}.")
