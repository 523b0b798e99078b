"""The console's JSON API for scripts and tests (DESIGN.md, Additions): login, the review list, a
decision (signed: the body's ``password`` is re-entered), the screening log. Errors are ``{"error": {"code", "message"}}`` with 401 (not signed
in), 403 (role, CSRF), 404, 409 (decision refused), 422 (malformed body) or 429 (throttled)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.console import views
from app.console.request_helpers import (SignatureThrottled, Viewer, api_error, check_csrf, client_address, console_of,
                                         decide, reprocess, set_session_cookie, sign_in, sign_out, viewer)
from app.console.sessions import COOKIE
from pipeline.signing import SignatureRefused

router = APIRouter(prefix="/api")


class Credentials(BaseModel):
    user: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class Reprocess(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Decision(BaseModel):
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000)
    supersede: bool = False
    password: str = Field(default="", max_length=1000)     # the electronic signature, re-entered


@router.post("/login")
def login(request: Request, body: Credentials) -> Response:
    console = console_of(request)
    user, wait = sign_in(console, body.user.strip(), body.password, client_address(request))
    if wait:
        return api_error(429, "too_many_attempts", f"too many failed sign-ins: try again in {wait} s",
                         {"Retry-After": str(wait)})
    if user is None:
        return api_error(401, "bad_credentials", "wrong user name or password")
    cookie, session = console.sessions.issue(user.name, user.generation)
    response = JSONResponse({"user": user.name, "role": user.role,
                             "csrf_token": console.sessions.csrf_token(session)})
    set_session_cookie(request, response, cookie, console.sessions.lifetime)
    return response


@router.post("/logout")
def logout(request: Request, who: Viewer = Depends(viewer),
           x_csrf_token: str | None = Header(default=None)) -> Response:
    check_csrf(request, who, x_csrf_token)
    sign_out(request, who)
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
        done = decide(console, who, measurement_id, body.decision, reason, body.supersede, body.password,
                      client_address(request))
    except KeyError:
        return api_error(404, "not_found", f"no measurement {measurement_id}")
    except SignatureThrottled as exc:
        return api_error(429, "too_many_attempts", str(exc), {"Retry-After": str(exc.seconds)})
    except SignatureRefused as exc:
        return api_error(403, "signature_refused", str(exc))
    except ValueError as exc:
        return api_error(409, "refused", str(exc).replace("(--supersede)", '(send "supersede": true)'))
    return JSONResponse(done.as_dict())


@router.get("/screening")
def screening(request: Request, who: Viewer = Depends(viewer)) -> list[dict[str, Any]]:
    who.require("screening")
    return views.screening(console_of(request).store, who.user)


@router.get("/files")
def files(request: Request, date: str | None = None, who: Viewer = Depends(viewer)) -> Response:
    """Every file that landed on ``date`` (YYYY-MM-DD; default today, lab local time)."""
    who.require("reprocess")
    day = views.parse_day(date)
    if day is None:
        return api_error(422, "bad_request", f"date: {date!r} is not a date (YYYY-MM-DD)")
    return JSONResponse(views.files_of_day(console_of(request).store, day))


@router.post("/files/{file_id}/reprocess")
def reprocess_file(request: Request, file_id: int, body: Reprocess, who: Viewer = Depends(viewer),
                   x_csrf_token: str | None = Header(default=None)) -> Response:
    from pipeline.errors import InputError

    check_csrf(request, who, x_csrf_token)
    who.require("reprocess")
    reason = body.reason.strip()
    if not reason:
        return api_error(422, "bad_request", "a reprocess needs a reason")
    try:
        return JSONResponse(reprocess(console_of(request), who, file_id, reason))
    except KeyError:
        return api_error(404, "not_found", f"no file {file_id}")
    except InputError as exc:
        return api_error(409, "refused", exc.message)
