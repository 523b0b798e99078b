"""One real Prefect server for the whole test session (the embedded server of a temporary home).

``prefect_server`` starts it through the same code path as ``mhladr run`` (:mod:`flows.server`),
so the suite also tests the embedded mode; it is stopped when the session ends. Tests run flows
in-process inside ``connected(prefect_server.url)`` or in a subprocess with
``PREFECT_API_URL=prefect_server.url`` (see :func:`cli_env`). Nothing starts at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``MHLADR_HOME`` whose embedded Prefect server is the session's (``mhladr serve`` with
    this home and no ``PREFECT_API_URL`` reuses it)."""
    return tmp_path_factory.mktemp("prefect-server")


@pytest.fixture(scope="session")
def prefect_server(prefect_home: Path) -> Iterator["object"]:
    from flows.server import ensure_server, stop_server

    server = ensure_server(prefect_home, port=0)          # any free port (never a fixed one in tests)
    try:
        yield server
    finally:
        drain_prefect_clients()
        stop_server(prefect_home, timeout=5.0)


def drain_prefect_clients(timeout: float = 10.0) -> None:
    """Send this process's queued Prefect logs and events before the server goes away
    (otherwise they are retried against a dead server at interpreter exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)


def cli_env(server_url: str, home: Path, **extra: str) -> dict[str, str]:
    """Environment of an ``mhladr`` subprocess that uses the session's (locked) server and its own results home."""
    from flows.server import auth_for

    env = dict(os.environ)
    env.update({"PREFECT_API_URL": server_url, "PREFECT_API_AUTH_STRING": auth_for(server_url) or "",
                "MHLADR_HOME": str(home), "DO_NOT_TRACK": "1", "MHLADR_PREFECT_PORT": "0",
                "PREFECT_LOGGING_LEVEL": "WARNING", "MHLADR_CONSOLE_PORT": "0",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))})
    env.update(extra)
    return env
