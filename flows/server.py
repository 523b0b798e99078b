"""The project's own Prefect server: SQLite under ``MHLADR_HOME/prefect``, started once, reused.

Embedded mode (DESIGN.md, Dependencies): ``mhladr run``, ``watch`` and ``serve`` need no server
started by hand. The first command starts ``prefect server start`` in the background (its own
session, so it outlives the command) with ``PREFECT_HOME`` and the database under
``MHLADR_HOME/prefect``, waits for ``/api/health`` and records the URL and process id in
``server.json``; later commands find it healthy and reuse it. A ``PREFECT_API_URL`` in the
environment (a shared server, e.g. on PostgreSQL with workers) takes precedence.
"""

from __future__ import annotations

import fcntl
import json
import os
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
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class PrefectServer:
    """Where the Prefect API answers and whether this call started it."""

    url: str                    # e.g. http://127.0.0.1:4321/api
    pid: int | None             # None for an external server (PREFECT_API_URL)
    started: bool

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def server_home(mhladr_home: Path) -> Path:
    """Absolute: the server runs in this folder, so a relative ``MHLADR_HOME`` would point it elsewhere."""
    return Path(mhladr_home).absolute() / "prefect"


def server_environment(prefect_home: Path, api_url: str, base: dict[str, str] | None = None,
                       database_url: str | None = None) -> dict[str, str]:
    """The server's environment: its home, its database (SQLite under the home unless
    ``database_url``, e.g. ``postgresql+asyncpg://...``), no telemetry, and the API URL its UI
    is told to use (``/ui-settings``; Prefect's default is port 4200, not the port served)."""
    env = dict(os.environ if base is None else base)
    for name in ("PREFECT_API_URL", "PREFECT_UI_API_URL"):
        env.pop(name, None)
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def ensure_server(mhladr_home: Path, *, timeout: float = START_TIMEOUT,
                  database_url: str | None = None) -> PrefectServer:
    """Reuse the embedded server of ``mhladr_home`` if healthy, else start it and wait for health."""
    home = server_home(mhladr_home)
    with _locked(home):
        state = _read_state(home)
        if state and healthy(state["url"]):
            return PrefectServer(state["url"], state.get("pid"), started=False)
        if state and state.get("pid") and _alive(state["pid"]):
            _terminate(state["pid"])           # recorded but not answering: replace it
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        with (home / "server.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                 "--port", str(port), "--analytics-off"],
                env=server_environment(home, url, database_url=database_url), cwd=home, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        (home / STATE_FILE).write_text(json.dumps({"url": url, "pid": proc.pid, "port": port}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the Prefect server exited with code {proc.returncode}; "
                                   f"see {home / 'server.log'}")
            if healthy(url, timeout=1.0):
                return PrefectServer(url, proc.pid, started=True)
            time.sleep(0.25)
        _terminate(proc.pid)
        raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s; "
                           f"see {home / 'server.log'}")


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


def resolve_server(mhladr_home: Path, env: dict[str, str] | None = None) -> PrefectServer:
    """``PREFECT_API_URL`` from the environment when set (a shared server), else the embedded one."""
    env = dict(os.environ if env is None else env)
    if env.get("PREFECT_API_URL"):
        return PrefectServer(env["PREFECT_API_URL"].rstrip("/"), None, started=False)
    return ensure_server(mhladr_home)


@contextmanager
def connected(url: str, *, heartbeats: bool = False) -> Iterator[None]:
    """Run Prefect calls in this block against ``url``.

    Flow heartbeats are off by default: in-process sync flows join the heartbeat thread on
    exit (about 1 s per flow run) and a command that runs a flow in its own process needs no
    crash detection; served deployments keep them.
    """
    from prefect.settings import (PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
                                  temporary_settings)

    updates: dict = {PREFECT_API_URL: url}
    if not heartbeats:
        updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
    with temporary_settings(updates=updates):
        yield
