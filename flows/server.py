"""The project's own Prefect server: SQLite under ``MHLADR_HOME/prefect``, started once, reused.

Embedded mode (DESIGN.md, Dependencies): ``mhladr run``, ``watch`` and ``serve`` need no server
started by hand. The first command starts ``prefect server start`` in the background (its own
session, so it outlives the command) with ``PREFECT_HOME`` and the database under
``MHLADR_HOME/prefect``, waits for ``/api/health`` and records the URL and process id in
``server.json``; later commands find it healthy and reuse it. A ``PREFECT_API_URL`` in the
environment (a shared server, e.g. on PostgreSQL with workers) takes precedence.

Locked: the embedded server requires HTTP basic auth on its API and UI (Prefect 3's
``server.api.auth_string``, ``PREFECT_SERVER_API_AUTH_STRING``) with a secret ``mhladr:<random>`` kept
in ``MHLADR_HOME/prefect/auth`` (mode 0600, made once). Every mhladr client sends it (``api.auth_string``,
``PREFECT_API_AUTH_STRING``): :func:`connected` for Prefect's own client, :func:`auth_headers` for
direct REST calls, the environment of served flow runs. A shared server is locked the same way by
its operator; mhladr then reads the secret from ``PREFECT_API_AUTH_STRING``.

Stable address: the embedded server listens on the port kept in ``MHLADR_HOME/prefect/port``, chosen
once as the setting ``prefect_port`` (default 4200) or the next free port above it, so the UI
address printed once stays valid; ``prefect_port = 0`` takes any free port at each start (tests).
"""

from __future__ import annotations

import fcntl
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STATE_FILE = "server.json"
AUTH_FILE = "auth"
PORT_FILE = "port"
AUTH_USER = "mhladr"
DEFAULT_PORT = 4200
START_TIMEOUT = 90.0
_KNOWN_AUTH: dict[str, str] = {}        # API URL -> auth string of the servers this process started or found


@dataclass(frozen=True)
class PrefectServer:
    """Where the Prefect API answers and whether this call started it."""

    url: str                    # e.g. http://127.0.0.1:4321/api
    pid: int | None             # None for an external server (PREFECT_API_URL)
    started: bool
    auth: str | None = None     # "user:password" the API requires (None: an unlocked shared server)

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def server_home(mhladr_home: Path) -> Path:
    """Absolute: the server runs in this folder, so a relative ``MHLADR_HOME`` would point it elsewhere."""
    return Path(mhladr_home).absolute() / "prefect"


def auth_secret(prefect_home: Path) -> str:
    """The embedded server's basic-auth string ``mhladr:<random>``, made once under ``prefect_home``
    (mode 0600) and refused when others may read it."""
    path = Path(prefect_home) / AUTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{AUTH_USER}:{secrets.token_urlsafe(24)}")
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path}: the Prefect server's secret must be readable by its owner only (chmod 600)")
    return path.read_text().strip()


def auth_for(url: str, env: dict[str, str] | None = None) -> str | None:
    """The auth string of the server at ``url``: the one this process started or found, else
    ``PREFECT_API_AUTH_STRING`` (a shared server's), else None."""
    env = os.environ if env is None else env
    return _KNOWN_AUTH.get(url.rstrip("/")) or env.get("PREFECT_API_AUTH_STRING") or None


def auth_headers(url: str) -> dict[str, str]:
    """The ``Authorization`` header of a direct REST call to the server at ``url`` (RFC 7617)."""
    auth = auth_for(url)
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}


def _known(server: PrefectServer) -> PrefectServer:
    if server.auth:
        _KNOWN_AUTH[server.url.rstrip("/")] = server.auth
    return server


def server_environment(prefect_home: Path, api_url: str, base: dict[str, str] | None = None,
                       database_url: str | None = None, auth: str | None = None) -> dict[str, str]:
    """The server's environment: its home, its database (SQLite under the home unless
    ``database_url``, e.g. ``postgresql+asyncpg://...``), no telemetry, the API URL its UI
    is told to use (``/ui-settings``; Prefect's default is port 4200, not the port served) and,
    with ``auth``, basic auth on its API and UI."""
    env = dict(os.environ if base is None else base)
    for name in ("PREFECT_API_URL", "PREFECT_UI_API_URL", "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"):
        env.pop(name, None)
    if auth:
        env.update({"PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_API_AUTH_STRING": auth})
    env.update({
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_UI_API_URL": api_url,
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url or f"sqlite+aiosqlite:///{prefect_home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    })
    return env


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_port(home: Path, wanted: int) -> int:
    """The port of the embedded server of ``home`` (its Prefect folder): the one kept there while it
    is free, else ``wanted`` or the next free port above it, kept for the next start; ``wanted = 0``:
    any free port, not kept."""
    if wanted == 0:
        return _free_port()
    kept = home / PORT_FILE
    try:
        port = int(kept.read_text().strip())
    except (OSError, ValueError):
        port = wanted
    port = next((p for p in range(port, min(port + 100, 65536)) if _bindable(p)), 0) or _free_port()
    kept.write_text(f"{port}\n")
    return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_prefect_server(pid: int) -> bool:
    """Guard before signalling a recorded pid: it must still be a ``prefect server`` process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)
    return b"prefect" in b" ".join(cmdline) and b"server" in cmdline


def _read_state(home: Path) -> dict | None:
    try:
        return json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _terminate(pid: int, timeout: float = 15.0) -> None:
    if not _is_prefect_server(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def ensure_server(mhladr_home: Path, *, timeout: float = START_TIMEOUT, database_url: str | None = None,
                  port: int = DEFAULT_PORT) -> PrefectServer:
    """Reuse the embedded server of ``mhladr_home`` if healthy, else start it (locked, on the home's
    stable port, see :func:`server_port`) and wait for health."""
    home = server_home(mhladr_home)
    with _locked(home):
        auth = auth_secret(home)
        state = _read_state(home)
        if state and healthy(state["url"]) and _accepts(state["url"], auth):
            return _known(PrefectServer(state["url"], state.get("pid"), started=False, auth=auth))
        if state and state.get("pid") and _alive(state["pid"]):
            _terminate(state["pid"])           # recorded but not answering, or not locked: replace it
        port = server_port(home, port)
        url = f"http://127.0.0.1:{port}/api"
        with (home / "server.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                 "--port", str(port), "--analytics-off"],
                env=server_environment(home, url, database_url=database_url, auth=auth), cwd=home,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        (home / STATE_FILE).write_text(json.dumps({"url": url, "pid": proc.pid, "port": port}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the Prefect server exited with code {proc.returncode}; "
                                   f"see {home / 'server.log'}")
            if healthy(url, timeout=1.0):
                return _known(PrefectServer(url, proc.pid, started=True, auth=auth))
            time.sleep(0.25)
        _terminate(proc.pid)
        raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s; "
                           f"see {home / 'server.log'}")


def _version_status(url: str, auth: str | None) -> int | None:
    """The HTTP status of an authenticated call (``/admin/version``) with ``auth`` (None: without
    credentials); None when nothing answers."""
    token = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    try:
        return httpx.get(f"{url}/admin/version", headers=token, timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def _accepts(url: str, auth: str) -> bool:
    """Whether the server at ``url`` is locked with ``auth``: it refuses a call without it and takes
    one with it (an embedded server started before the lock is replaced)."""
    return _version_status(url, None) == 401 and _version_status(url, auth) == 200


def refusal(server: PrefectServer) -> str | None:
    """Why a shared server (``PREFECT_API_URL``) cannot be used, in one line: it does not answer,
    or it refuses this process's credentials (the secret itself is never named); None when usable."""
    if not healthy(server.url):
        return "no Prefect server answers at PREFECT_API_URL: start it, or unset PREFECT_API_URL to use the embedded one"
    if _version_status(server.url, server.auth) == 401:
        return ("the Prefect server at PREFECT_API_URL refuses "
                + ("the credentials in PREFECT_API_AUTH_STRING: set it to the server's user:password"
                   if server.auth else "calls without credentials: set PREFECT_API_AUTH_STRING to its user:password"))
    return None


def stop_server(mhladr_home: Path, *, timeout: float = 15.0) -> bool:
    """Stop the embedded server of ``mhladr_home`` (SIGTERM, then SIGKILL after ``timeout``
    seconds); whether one was running."""
    home = server_home(mhladr_home)
    with _locked(home):
        state = _read_state(home)
        if not state:
            return False
        pid = state.get("pid")
        running = bool(pid) and _alive(pid)
        if running:
            _terminate(pid, timeout)
        (home / STATE_FILE).unlink(missing_ok=True)
        return running


def resolve_server(mhladr_home: Path, env: dict[str, str] | None = None, *,
                   port: int = DEFAULT_PORT) -> PrefectServer:
    """``PREFECT_API_URL`` from the environment when set (a shared server, with its
    ``PREFECT_API_AUTH_STRING``), else the embedded one."""
    env = dict(os.environ if env is None else env)
    if env.get("PREFECT_API_URL"):
        url = env["PREFECT_API_URL"].rstrip("/")
        return _known(PrefectServer(url, None, started=False, auth=auth_for(url, env)))
    return ensure_server(mhladr_home, port=port)


@contextmanager
def connected(url: str, *, heartbeats: bool = False) -> Iterator[None]:
    """Run Prefect calls in this block against ``url``, with its auth string (:func:`auth_for`).

    Flow heartbeats are off by default: in-process sync flows join the heartbeat thread on
    exit (about 1 s per flow run) and a command that runs a flow in its own process needs no
    crash detection; served deployments keep them.
    """
    from prefect.settings import (PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
                                  temporary_settings)

    updates: dict = {PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: auth_for(url)}
    if not heartbeats:
        updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
    with temporary_settings(updates=updates):
        yield
