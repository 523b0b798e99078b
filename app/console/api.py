"""The console's JSON API for scripts and tests (DESIGN.md, Additions): login, the review list, a
decision, the screening log. Errors are ``{"error": {"code", "message"}}`` with 401 (not signed
in), 403 (role, CSRF), 404, 409 (decision refused), 422 (malformed body) or 429 (throttled)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.console import views
from app.console.request_helpers import (Viewer, api_error, check_csrf, client_address, console_of, decide,
                                         set_session_cookie, sign_in, sign_out, viewer)
from app.console.sessions import COOKIE

router = APIRouter(prefix="/api")


class Credentials(BaseModel):
    user: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class Decision(BaseModel):
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000)
    supersede: bool = False


@router.post("/login")
def login(request: Request, body: Credentials) -> Response:
    console = console_of(request)
    user, wait = sign_in(console, body.user.strip(), body.password, client_address(request))
    if wait:
        return api_error(429, "too_many_attempts", f"too many failed sign-ins: try again in {wait} s",
                         {"Retry-After": str(wait)})
    if user is None:
        return api_error(401, "bad_credentials", "wrong user name or password")
    cookie, session = console.sessions.issue(user.name)
    response = JSONResponse({"user": user.name, "role": user.role,
                             "csrf_token": console.sessions.csrf_token(session)})
    set_session_cookie(request, response, cookie, console.sessions.lifetime)
    return response


@router.post("/logout")
def logout(request: Request, who: Viewer = Depends(viewer),
           x_csrf_token: str | None = Header(default=None)) -> Response:
    check_csrf(request, who, x_csrf_token)
    sign_out(console_of(request), who, client_address(request))
    response = JSONResponse({"user": who.user.name, "signed_out": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/reviews")
def reviews(request: Request, who: Viewer = Depends(viewer)) -> list[dict[str, Any]]:
    who.require("review")
    return [item.as_api() for item in views.review_queue(console_of(request).store)]


@router.post("/reviews/{measurement_id}")
def review_decision(request: Request, measurement_id: int, body: Decision, who: Viewer = Depends(viewer),
                    x_csrf_token: str | None = Header(default=None)) -> Response:
    check_csrf(request, who, x_csrf_token)
    who.require("review")
    reason = body.reason.strip()
    if not reason:
        return api_error(422, "bad_request", "a decision needs a reason")
    console = console_of(request)
    try:
        record = decide(console, who, measurement_id, body.decision, reason, body.supersede)
    except KeyError:
        return api_error(404, "not_found", f"no measurement {measurement_id}")
    except ValueError as exc:
        return api_error(409, "refused", str(exc))
    stored = console.store.measurements.get(measurement_id)
    history = console.store.screening.history(stored.patient_id) if stored is not None else []
    return JSONResponse({"measurement_id": record.measurement_id, "decision": record.decision,
                         "reason": record.reason, "actor": record.actor,
                         "decided_at": record.decided_at.isoformat(),
                         "screening": history[-1].as_dict() if history else None})


@router.get("/screening")
def screening(request: Request, who: Viewer = Depends(viewer)) -> list[dict[str, Any]]:
    who.require("screening")
    return views.screening(console_of(request).store, who.user)
