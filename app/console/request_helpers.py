"""What every route of the lab console shares: one store, the session keys, the templates, and the
checks (who is signed in, what their role may do, the CSRF token of a state change).

Every page and API call goes through :func:`viewer` (a signed, unexpired session of an active
user, else 401 for the API and the login page for a browser) and states the action it needs
(:meth:`Viewer.require`, the :data:`pipeline.access.PERMISSIONS` table, else 403). Every
state-changing request also carries the session's CSRF token: the ``X-CSRF-Token`` header for
the API, a hidden form field for pages (else 403).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from app.console.sessions import COOKIE, LoginThrottle, Session, Sessions, signing_key
from flows.review_runs import close_review_run, review_run
from pipeline import formatting as fmt
from pipeline.access import User, roles_for
from pipeline.config import Settings
from pipeline.store import ReviewRecord, Store, open_store

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 64 * 1024
# What each action is called in a refusal ("your role may not ...")
ACTIONS = {"review": "review QC results", "screening": "read the screening log"}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console serves and links to."""

    settings: Settings
    prefect_api: str | None = None          # for links to flow runs (None: no links)
    prefect_ui: str | None = None
    clock: Callable[[], float] = time.time


class Console:
    """What every request shares: the store, sessions, the login throttle and the templates."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.store: Store = open_store(config.settings)
        self.reports = config.settings.reports_dir
        self.sessions = Sessions(signing_key(config.settings.home), clock=config.clock)
        self.throttle = LoginThrottle(clock=config.clock)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters.update(abc=fmt.abc, interval=fmt.interval, number=fmt.number,
                                          yes_no=fmt.yes_no, percent=fmt.percent, setting=fmt.setting)
        self.templates.env.globals.update(prefect_ui=config.prefect_ui, threshold=config.settings.abc_threshold,
                                          rules=config.settings.rules())

    def close(self) -> None:
        self.store.close()


class NotSignedIn(Exception):
    """No valid session (absent, forged, expired, revoked, or its user disabled)."""


class Denied(Exception):
    """Signed in, but this role may not do this, or the CSRF token is missing or wrong."""

    def __init__(self, message: str, who: "Viewer | None" = None) -> None:
        super().__init__(message)
        self.message = message
        self.who = who


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of a request."""

    user: User
    session: Session
    csrf_token: str

    def require(self, action: str) -> None:
        if not self.user.may(action):
            raise Denied(f"Your role ({self.user.role}) may not {ACTIONS.get(action, action)}; "
                         f"roles that may: {', '.join(roles_for(action))}.", self)


def console_of(request: Request) -> Console:
    return request.app.state.console


def viewer(request: Request) -> Viewer:
    """The signed-in person (dependency of every protected route)."""
    console = console_of(request)
    session = console.sessions.read(request.cookies.get(COOKIE))
    user = console.store.users.get(session.user) if session is not None else None
    if session is None or user is None or not user.active:
        raise NotSignedIn()
    return Viewer(user, session, console.sessions.csrf_token(session))


def check_csrf(request: Request, who: Viewer, token: str | None) -> None:
    if not console_of(request).sessions.csrf_ok(who.session, token):
        raise Denied("Missing or wrong CSRF token: reload the page and try again.", who)


async def form_data(request: Request) -> dict[str, str]:
    """A URL-encoded form body (first value of each field), at most :data:`MAX_FORM_BYTES`."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Denied("Form too large.")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_session_cookie(request: Request, response: Response, cookie: str, lifetime: float) -> None:
    response.set_cookie(COOKIE, cookie, max_age=int(lifetime), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def error_page(request: Request, status: int, title: str, message: str, who: Viewer | None = None) -> HTMLResponse:
    return console_of(request).templates.TemplateResponse(
        request, "error.html", {"title": title, "message": message, "who": who}, status_code=status)


def sign_in(console: Console, name: str, password: str, address: str) -> tuple[User | None, int]:
    """Check a login (throttled, audited): the user, or None and the seconds to wait (0: the
    name or password was wrong). A refused name is recorded only when it is a registered user
    (a password typed into the name field must not end up in the audit trail)."""
    wait = console.throttle.retry_after(name, address)
    if wait:
        return None, wait
    user = console.store.users.authenticate(name, password)
    if user is None:
        console.throttle.failed(name, address)
        known = console.store.users.get(name) is not None
        who = name if known else "(unknown name)"
        console.store.audit.log_event(who, "login_failed", "session", who, {"address": address})
        return None, 0
    console.throttle.succeeded(name)
    console.store.audit.log_event(user.name, "login", "session", user.name, {"address": address, "role": user.role})
    return user, 0


def sign_out(console: Console, who: Viewer, address: str) -> None:
    console.sessions.revoke(who.session)
    console.store.audit.log_event(who.user.name, "logout", "session", who.user.name, {"address": address})


def decide(console: Console, who: Viewer, measurement_id: int, decision: str, reason: str,
           supersede: bool) -> ReviewRecord:
    """Record a technician's decision (the store call ``mhladr review`` makes, audited) and close
    the result's paused review flow run in Prefect, if any. Raises ``KeyError`` for an unknown
    result and ``ValueError`` for a refused decision (not a review result, decided already)."""
    from pipeline.report.layout import redraw_sample_report

    record = console.store.measurements.review(measurement_id, decision, reason, who.user.name, supersede=supersede)
    redraw_sample_report(console.store, console.reports, measurement_id)     # its next step is the decision now
    api, ui = console.config.prefect_api, console.config.prefect_ui
    if api and ui:
        run = review_run(api, ui, measurement_id)
        if run is not None:
            close_review_run(api, run, decision, record.reason, who.user.name)
    return record
