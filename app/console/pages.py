"""The console's pages (server-rendered HTML, no JavaScript): sign-in, the review queue, one
review with its figures and decision form, the screening log, a patient's trend, bead QC, and
the per-tube reports over http."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from app.console import views
from app.console.request_helpers import (Viewer, check_csrf, client_address, console_of, decide, error_page, form_data,
                                         set_session_cookie, sign_in, sign_out, viewer)
from app.console.sessions import COOKIE, LOGIN_COOKIE, LOGIN_NONCE_SECONDS
from flows.review_runs import review_run
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
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return login_form(request, next)


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
    cookie, _ = console.sessions.issue(user.name)
    response = RedirectResponse(safe_next(target), status_code=303)
    set_session_cookie(request, response, cookie, console.sessions.lifetime)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, who: Viewer = Depends(viewer), form: dict[str, str] = Depends(form_data)) -> Response:
    check_csrf(request, who, form.get("csrf_token"))
    sign_out(console_of(request), who, client_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
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
    return f"Measurement {measurement_id} of {stored.patient_id} {last.decision}d by {last.actor}.{status}"


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, decided: int | None = None, who: Viewer = Depends(viewer)) -> Response:
    if not who.user.may("review"):
        return RedirectResponse("/screening", status_code=303)
    store = console_of(request).store
    return page(request, "queue.html", who, items=views.review_queue(store), active="queue",
                notice=decided_notice(request, decided) if decided else None)


def review_response(request: Request, who: Viewer, stored: StoredMeasurement, *, error: str | None = None,
                    status: int = 200, form: dict[str, str] | None = None) -> HTMLResponse:
    console = console_of(request)
    view = views.result_view(console.store, console.reports, stored, who.user)
    api, ui = console.config.prefect_api, console.config.prefect_ui
    run = review_run(api, ui, stored.id) if api and ui else None
    return page(request, "review.html", who, status, view=view, m=stored.measurement, stored=stored,
                figures={title: Markup(svg) for title, svg in view.figures.items()}, run=run, error=error,
                form=form or {}, active="queue")


def stored_or_404(request: Request, who: Viewer, measurement_id: int) -> StoredMeasurement | HTMLResponse:
    stored = console_of(request).store.measurements.get(measurement_id)
    if stored is None:
        return error_page(request, 404, "No such result", f"There is no measurement {measurement_id}.", who)
    return stored


@router.get("/reviews/{measurement_id}", response_class=HTMLResponse)
def review_page(request: Request, measurement_id: int, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("review")
    found = stored_or_404(request, who, measurement_id)
    return found if isinstance(found, HTMLResponse) else review_response(request, who, found)


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
        decide(console_of(request), who, measurement_id, decision, reason, form.get("supersede") == "yes")
    except ValueError as exc:
        return review_response(request, who, found, error=str(exc), status=409, form=form)
    return RedirectResponse(f"/?decided={measurement_id}", status_code=303)


# -- screening, patients, beads ------------------------------------------------------------------
@router.get("/screening", response_class=HTMLResponse)
def screening(request: Request, who: Viewer = Depends(viewer)) -> HTMLResponse:
    who.require("screening")
    rows = views.screening(console_of(request).store, who.user)
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in ("eligible", "pending", "not_eligible")}
    return page(request, "screening.html", who, rows=rows, counts=counts, unblinded=views.unblinded(who.user),
                active="screening")


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
    who.require("review")
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
