"""Signed session cookies, CSRF tokens and the failed-login throttle of the lab console.

A session cookie is ``payload.signature``: the payload (user name, a random session id, the
absolute expiry and the last activity as Unix times, the user's session generation) in URL-safe
base64, signed with HMAC-SHA256 under a key kept in ``MHLADR_HOME/console.key`` (created once
with mode 0600). The cookie carries no role: the role is read from the store on every request,
so a disabled account or a changed role takes effect at once. Each request renews the last
activity (a new cookie); past ``idle`` seconds without one, or past the absolute lifetime, the
session is over. A sign-out raises the user's session generation in the store, so it holds
across restarts of ``serve`` (DESIGN.md, Additions 2026-12-07, Console sessions; OWASP Session
Management Cheat Sheet: idle and absolute timeouts).

The CSRF token of a session is HMAC(key, "csrf" + session id): nothing to store, different for
every session, and unknown to another site. Scripts send it as ``X-CSRF-Token``; forms carry it
in a hidden field. The login form, which has no session yet, is protected the same way by a
short-lived random nonce cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "console.key"
COOKIE = "mhladr_session"
LOGIN_COOKIE = "mhladr_login"
LIFETIME_SECONDS = 8 * 3600          # one shift
IDLE_SECONDS = 15 * 60
IDLE, EXPIRED = "idle", "expired"    # why a signed cookie is no longer a session
LOGIN_NONCE_SECONDS = 1800

Clock = Callable[[], float]


def signing_key(home: Path) -> bytes:
    """The console's signing key under ``home``: created on first use (32 random bytes, mode
    0600, never rewritten), and refused when others may read it."""
    path = Path(home) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path}: the console's signing key must be readable by its owner only (chmod 600)")
    key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"{path}: the console's signing key is too short; delete it to make a new one")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """Who is signed in, under which session id, until when (absolute, Unix time), last active
    when, and under which of the user's session generations."""

    user: str
    sid: str
    expires: float
    seen: float = 0.0
    generation: int = 0


class Sessions:
    """Issues and checks signed session cookies and their CSRF tokens."""

    def __init__(self, key: bytes, *, lifetime: float = LIFETIME_SECONDS, idle: float = IDLE_SECONDS,
                 clock: Clock = time.time) -> None:
        self._key = key
        self.lifetime = lifetime
        self.idle = idle
        self._clock = clock

    def _sign(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"|" + data, hashlib.sha256).digest()

    def _cookie(self, session: Session) -> str:
        payload = json.dumps({"u": session.user, "s": session.sid, "e": session.expires, "a": session.seen,
                              "g": session.generation}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(b'session', payload))}"

    def issue(self, user: str, generation: int = 0) -> tuple[str, Session]:
        """A new session for ``user`` (at the user's current session ``generation``): the cookie
        value and the session."""
        now = self._clock()
        session = Session(user, secrets.token_urlsafe(16), now + self.lifetime, now, generation)
        return self._cookie(session), session

    def renew(self, session: Session) -> str:
        """The cookie of ``session`` active now (the idle timeout starts again)."""
        return self._cookie(Session(session.user, session.sid, session.expires, self._clock(), session.generation))

    def check(self, cookie: str | None) -> tuple[Session | None, str | None]:
        """The session a cookie carries, or None and why: :data:`IDLE` or :data:`EXPIRED` for a
        genuine cookie past a timeout, None when it is absent or forged."""
        if not cookie or cookie.count(".") != 1:
            return None, None
        body, signature = cookie.split(".")
        try:
            payload, given = _unb64(body), _unb64(signature)
            if not hmac.compare_digest(given, self._sign(b"session", payload)):
                return None, None
            data = json.loads(payload)
            session = Session(str(data["u"]), str(data["s"]), float(data["e"]), float(data["a"]), int(data["g"]))
        except (ValueError, KeyError, TypeError):
            return None, None
        now = self._clock()
        if session.expires <= now:
            return None, EXPIRED
        if session.seen + self.idle <= now:
            return None, IDLE
        return session, None

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when it is absent, forged or past a timeout."""
        return self.check(cookie)[0]

    def csrf_token(self, session: Session) -> str:
        return _b64(self._sign(b"csrf", session.sid.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf_token(session).encode())

    # -- the login form (no session yet) ------------------------------------------------------
    def login_nonce(self) -> tuple[str, str]:
        """A nonce for the login cookie and the token the login form carries with it."""
        nonce = f"{secrets.token_urlsafe(16)}.{int(self._clock() + LOGIN_NONCE_SECONDS)}"
        return nonce, _b64(self._sign(b"login", nonce.encode()))

    def login_token_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token or "." not in nonce:
            return False
        try:
            expires = int(nonce.rsplit(".", 1)[1])
        except ValueError:
            return False
        expected = _b64(self._sign(b"login", nonce.encode()))
        return expires > self._clock() and hmac.compare_digest(token.encode(), expected.encode())


class LoginThrottle:
    """Failed logins per user name and per client address: after ``per_name`` failures on a name
    (or ``per_address`` from one address: several people may share a proxy) within ``window``
    seconds, further attempts are refused until the oldest failure leaves the window."""

    def __init__(self, per_name: int = 5, per_address: int = 20, window: float = 900.0,
                 clock: Clock = time.time) -> None:
        self.limits = {"user": per_name, "addr": per_address}
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures[key]
        while found and found[0] <= now - self.window:
            found.popleft()
        return found

    def retry_after(self, name: str, address: str) -> int:
        """Seconds until a login on ``name`` from ``address`` may be tried again (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [found[0] + self.window - now
                     for kind, key in (("user", f"user:{name}"), ("addr", f"addr:{address}"))
                     if len(found := self._recent(key, now)) >= self.limits[kind]]
        return int(max(waits)) + 1 if waits else 0

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (f"user:{name}", f"addr:{address}"):
                self._recent(key, now).append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{name}", None)
