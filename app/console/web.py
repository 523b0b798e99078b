"""The lab console's application: the routes of :mod:`app.console.api` and :mod:`app.console.pages`
over the shared request helpers of :mod:`app.console.request_helpers`, with the refusals
(401/403/422) and the security headers of every answer.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.console import api, pages
from app.console.request_helpers import (COOKIE, HERE, Console, ConsoleConfig, Denied, NotSignedIn, api_error,
                                         console_of, ended_message, error_page, is_api, set_session_cookie)

__all__ = ["ConsoleConfig", "create_app"]
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(config: ConsoleConfig) -> FastAPI:
    """The console app (close ``app.state.console`` when done)."""
    app = FastAPI(title="mHLA-DR lab console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = Console(config)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        ended = ended_message(console_of(request), exc.reason)
        if is_api(request):
            if ended:
                return api_error(401, "session_ended", f"{ended} (POST /api/login)")
            return api_error(401, "not_signed_in", "sign in first (POST /api/login)")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        why = f"&ended={exc.reason}" if ended else ""
        response = RedirectResponse(f"/login?next={quote(target, safe='')}{why}", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        if is_api(request):
            return api_error(422, "bad_request", problems)
        return error_page(request, 422, "Bad request", problems)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        if is_api(request):
            return api_error(403, "forbidden", exc.message)
        return error_page(request, 403, "Not allowed", exc.message, exc.who)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable) -> Response:
        response = await call_next(request)
        renewed = getattr(request.state, "renewed", None)
        if renewed and response.status_code < 400:        # the idle timeout starts again
            set_session_cookie(request, response, renewed, console_of(request).sessions.lifetime)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app
