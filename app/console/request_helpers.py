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

from app.console.sessions import COOKIE, EXPIRED, IDLE, LoginThrottle, Session, Sessions, signing_key
from app.console.views import console_words
from pipeline import formatting as fmt
from pipeline.access import User, roles_for
from pipeline.config import Settings
from pipeline.decisions import Decided
from pipeline.signing import SignatureRefused, Signer
from pipeline.store import Store, open_store

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 64 * 1024
# What each action is called in a refusal ("your role may not ...")
ACTIONS = {"review": "review QC results", "screening": "read the screening log",
           "audit_review": "review the audit trail", "reprocess": "reprocess files"}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console serves and links to."""

    settings: Settings
    prefect_api: str | None = None          # for links to flow runs (None: no links)
    prefect_ui: str | None = None
    clock: Callable[[], float] = time.time
    registry: str | None = None             # the registry and lot table a reprocess uses (serve's)
    lots: str | None = None


class Console:
    """What every request shares: the store, sessions, the login throttle and the templates."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.store: Store = open_store(config.settings)
        self.reports = config.settings.reports_dir
        self.sessions = Sessions(signing_key(config.settings.home), lifetime=config.settings.console_session_hours * 3600,
                                 idle=config.settings.console_idle_minutes * 60, clock=config.clock)
        self.throttle = LoginThrottle(clock=config.clock)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters.update(abc=fmt.abc, interval=fmt.interval, number=fmt.number,
                                          yes_no=fmt.yes_no, percent=fmt.percent, setting=fmt.setting,
                                          console_words=console_words)
        self.templates.env.globals.update(prefect_ui=config.prefect_ui, threshold=config.settings.abc_threshold,
                                          rules=config.settings.rules())

    def close(self) -> None:
        self.store.close()


SIGNED_OUT, DISABLED = "signed_out", "disabled"


class NotSignedIn(Exception):
    """No valid session (absent, forged, expired, signed out, or its user disabled); ``reason``
    says which ended session it was (None: there was none)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


def ended_message(console: "Console", reason: str | None) -> str | None:
    """The one line the sign-in page shows for why a session ended (None: no session to end)."""
    idle = console.config.settings.console_idle_minutes
    hours = console.config.settings.console_session_hours
    return {
        IDLE: f"Your session ended after {idle:g} min without activity: please sign in again.",
        EXPIRED: f"Your session reached its limit of {hours:g} h: please sign in again.",
        SIGNED_OUT: "You were signed out (here, in another window, or by a password change): please sign in again.",
        DISABLED: "Your account is disabled: ask an administrator.",
    }.get(reason or "")


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

    def require(self, action: str, what: str | None = None) -> None:
        """Refuse (403) unless this role may take ``action``; ``what`` names it as the page does."""
        if not self.user.may(action):
            raise Denied(f"Your role ({self.user.role}) may not {what or ACTIONS.get(action, action)}; "
                         f"roles that may: {', '.join(roles_for(action))}.", self)


def console_of(request: Request) -> Console:
    return request.app.state.console


def viewer(request: Request) -> Viewer:
    """The signed-in person (dependency of every protected route)."""
    console = console_of(request)
    session, ended = console.sessions.check(request.cookies.get(COOKIE))
    if session is None:
        raise NotSignedIn(ended)
    user = console.store.users.get(session.user)
    if user is None or not user.active:
        raise NotSignedIn(DISABLED)
    if user.generation != session.generation:
        raise NotSignedIn(SIGNED_OUT)
    request.state.renewed = console.sessions.renew(session)
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


def refused_recently(console: Console, name: str) -> int:
    """Seconds to wait when the audit trail holds :data:`~pipeline.signing.LOCKOUT_FAILURES` refused
    sign-ins or signatures of ``name`` within the lockout window (refused signatures on the
    command line count too), else 0."""
    from pipeline.signing import LOCKOUT_FAILURES, LOCKOUT_WINDOW

    since = console.store.clock() - LOCKOUT_WINDOW
    return int(LOCKOUT_WINDOW.total_seconds()) if console.store.audit.failures(name, since) >= LOCKOUT_FAILURES else 0


def sign_in(console: Console, name: str, password: str, address: str) -> tuple[User | None, int]:
    """Check a login (throttled, audited): the user, or None and the seconds to wait (0: the
    name or password was wrong). A refused name is recorded only when it is a registered user
    (a password typed into the name field must not end up in the audit trail)."""
    wait = console.throttle.retry_after(name, address) or refused_recently(console, name)
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


def sign_out(request: Request, who: Viewer) -> None:
    """End every console session of the person (held in the store: it survives a restart); audited."""
    request.state.renewed = None
    console_of(request).store.users.end_sessions(who.user.name, actor=who.user.name,
                                                 details={"address": client_address(request)})


class SignatureThrottled(Exception):
    """Too many refused sign-ins or signatures on this name or address: wait ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"too many refused sign-ins or signatures: try again in {seconds} s")
        self.seconds = seconds


def decide(console: Console, who: Viewer, measurement_id: int, decision: str, reason: str,
           supersede: bool, password: str, address: str) -> Decided:
    """Record a technician's signed decision (the pipeline's one decision step, as ``mhladr
    review``: password checked, signed, audited, report redrawn); the result's waiting review flow
    run in Prefect sees it and ends. A wrong password counts toward the sign-in throttle.
    Raises ``KeyError`` for an unknown result, :class:`SignatureThrottled` while throttled,
    :class:`SignatureRefused` for a wrong password and ``ValueError`` for a refused decision."""
    from pipeline.decisions import decide as decide_step

    wait = console.throttle.retry_after(who.user.name, address)
    if wait:
        raise SignatureThrottled(wait)
    try:
        done = decide_step(console.store, console.reports, measurement_id, decision, reason,
                           Signer(who.user.name, password, True), supersede=supersede)
    except SignatureRefused:
        console.throttle.failed(who.user.name, address)
        raise
    return done


def reprocess(console: Console, who: Viewer, file_id: int, reason: str) -> dict:
    """Run a rejected or quarantined file again for the signed-in person (audited; the pipeline's
    :func:`pipeline.landed.reprocess_file`); a file that now passes leaves ``quarantine/`` for
    ``processed/``. The new result's ``run`` row plus ``finished``. Raises ``KeyError`` (unknown
    file) and ``InputError`` (not reprocessable)."""
    from flows.watcher import resettle
    from pipeline.landed import reprocess_file
    from pipeline.lots import default_table
    from pipeline.processing import Processor

    rec = console.store.files.get(file_id)
    if rec is None:
        raise KeyError(file_id)
    lots = console.config.lots or default_table(Path(rec.path).parent)
    processor = Processor(console.config.settings, registry_csv=console.config.registry, lots_csv=lots)
    try:
        result, finished = reprocess_file(processor, file_id, reason=reason, actor=who.user.name)
    finally:
        processor.close()
    document = result.as_dict()
    moved = resettle(Path(result.file), document)
    if moved is not None:
        console.store.files.relocate(result.sha256, moved, actor=who.user.name)
        document["file"] = str(moved)
    return {**document, "finished": [r.as_dict() for r in finished]}


def correct_gate(console: Console, who: Viewer, measurement_id: int, gate: object, reason: str,  # noqa: ANN201
                 password: str, address: str):
    """Store a result gated with ``gate`` as its next version, signed "corrected gate" by the
    signed-in person with the password re-entered now (the store step of ``mhladr review
    regate``: :func:`pipeline.regate.regate`). Returns (before, after). A wrong password counts
    toward the sign-in throttle, as for a decision (:class:`SignatureThrottled`,
    :class:`SignatureRefused`)."""
    from pipeline.regate import regate

    wait = console.throttle.retry_after(who.user.name, address)
    if wait:
        raise SignatureThrottled(wait)
    try:
        return regate(console.store, console.config.settings, measurement_id, reason=reason,
                      signer=Signer(who.user.name, password, True), gate=gate)  # type: ignore[arg-type]
    except SignatureRefused:
        console.throttle.failed(who.user.name, address)
        raise
