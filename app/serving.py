"""One ``mhladr serve`` per home: its lock, ``serve.json``, and the loop that serves the
deployments and the lab console.

- A lock file (``MHLADR_HOME/serve.lock``, an exclusive ``flock`` held for the process's life,
  with its pid inside) is taken before anything else: a second ``serve`` on the same home finds
  it held and stops before it registers, changes or pauses any deployment.
- ``MHLADR_HOME/serve.json`` = ``{"pid", "prefect_api", "prefect_ui", "console"}`` is written
  once the deployments are registered and the console answers, and removed on the way out.
- The loop ends on Ctrl-C or SIGTERM (``serve --stop-server`` sends it), or when the Prefect
  server stops answering; the runner is stopped, the console closed, all within seconds.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from app.console.thread import ConsoleThread
from flows.deployments import Serving
from flows.server import healthy
from pipeline.errors import ALREADY_RUNNING, BAD_INPUT, UNREACHABLE, InputError

if TYPE_CHECKING:
    from pipeline.config import Settings

LOCK_FILE = "serve.lock"
STATE_FILE = "serve.json"
DEFAULT_CONSOLE_HOST = "127.0.0.1"
DEFAULT_CONSOLE_PORT = 8470
HEALTH_EVERY = 5.0          # seconds between checks of the Prefect server
HEALTH_MISSES = 3           # unanswered checks in a row before serve gives up
STOP_WITHIN = 7.0           # seconds the runner gets to stop (Ctrl-C must end within 10 s)


@dataclass(frozen=True)
class Endpoints:
    """``serve.json``: who serves this home and where (URLs)."""

    pid: int
    prefect_api: str
    prefect_ui: str
    console: str


class HomeLock:
    """The exclusive lock of one home's ``serve`` (released when the process ends, however)."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / LOCK_FILE
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock and write this pid into it; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def holder(home: Path) -> int | None:
    """The pid of the ``serve`` holding this home's lock (0 when it has not written it yet), or None."""
    path = Path(home) / LOCK_FILE
    if not path.is_file():
        return None
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            text = fh.read().strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def read_endpoints(home: Path) -> dict | None:
    try:
        return json.loads((Path(home) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def already_running(home: Path) -> InputError:
    """The one-line refusal of a second ``serve`` on ``home``, naming the running one."""
    pid = holder(home)
    found = read_endpoints(home) or {}
    where = (f"console {found['console']}, Prefect UI {found['prefect_ui']}" if found.get("console")
             else "still starting")
    return InputError(Path(home) / STATE_FILE, ALREADY_RUNNING,
                      f"mhladr serve is already running for this home (pid {pid or '?'}, {where}); "
                      "stop it with `mhladr serve --stop-server` or Ctrl-C in its terminal")


def stop_running(home: Path, timeout: float = 15.0) -> int | None:
    """Stop the ``serve`` of this home (SIGTERM, SIGKILL after ``timeout`` s); its pid, or None."""
    pid = holder(home)
    if not pid:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while holder(home) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if holder(home) is not None:
        os.kill(pid, signal.SIGKILL)
        while holder(home) is not None:
            time.sleep(0.1)
        (Path(home) / STATE_FILE).unlink(missing_ok=True)
    return pid


class InboxWatch:
    """``serve --inbox``: the watcher of ``mhladr watch`` (same stability check, latency, moves to
    ``processed/``/``quarantine/`` with a ``.reason.txt``, pending samples finished when their beads
    land) in a thread of ``serve``, its flows run against the served Prefect API."""

    def __init__(self, inbox: Path, registry: str | None, lots: str | None, settings: "Settings",
                 prefect_api: str, *, interval: float = 0.25, grace: float = 60.0) -> None:
        from flows.watcher import Watcher, batch_processor
        from pipeline.store import open_store

        self.store = open_store(settings)
        self.prefect_api = prefect_api
        self.watcher = Watcher(inbox, batch_processor(inbox, registry, lots, self._announce), interval=interval,
                               grace=grace, on_moved=self.store.files.relocate)
        self.thread = threading.Thread(target=self._run, name="mhladr-inbox", daemon=True)
        self.started = threading.Event()
        self.error: BaseException | None = None

    @staticmethod
    def _announce(document: dict) -> None:
        for entry in document.get("files", []) + document.get("finished", []):
            logging.getLogger("mhladr.watch").info("%s: %s", Path(entry["file"]).name, entry["status"])

    def _run(self) -> None:
        from flows.server import connected

        try:
            with connected(self.prefect_api):
                self.watcher.run(self.started.set)
        except BaseException as exc:      # noqa: BLE001 - raised by start(), or logged
            self.error = exc
            logging.getLogger("mhladr.watch").error("the inbox watcher stopped: %s", exc)
        finally:
            self.started.set()

    def start(self) -> "InboxWatch":
        from pipeline import workers

        workers.warm_up()
        self.thread.start()
        self.started.wait()
        if self.error is not None:       # e.g. a `mhladr watch` already watches this inbox
            self.store.close()
            raise self.error
        return self

    def stop(self, timeout: float = STOP_WITHIN) -> None:
        self.watcher.stop()
        self.thread.join(timeout)
        self.store.close()


def console_address(env: dict[str, str] | None = None) -> tuple[str, int]:
    """Where the console listens: ``MHLADR_CONSOLE_HOST`` (default 127.0.0.1; a lab-network
    address to reach it from tablets, behind TLS) and ``MHLADR_CONSOLE_PORT`` (default 8470;
    0 = any free port)."""
    env = dict(os.environ if env is None else env)
    host = env.get("MHLADR_CONSOLE_HOST", DEFAULT_CONSOLE_HOST).strip() or DEFAULT_CONSOLE_HOST
    raw = env.get("MHLADR_CONSOLE_PORT", str(DEFAULT_CONSOLE_PORT)).strip()
    if not raw.isdigit() or int(raw) > 65535:
        raise InputError("MHLADR_CONSOLE_PORT", BAD_INPUT, f"{raw!r} is not a port number (0-65535)")
    return host, int(raw)


def bind_console(host: str, port: int) -> socket.socket:
    from app.console.thread import bind

    try:
        return bind(host, port)
    except OSError as exc:
        raise InputError(f"{host}:{port}", BAD_INPUT,
                         f"the lab console cannot listen there ({exc.strerror or exc}); "
                         "choose another MHLADR_CONSOLE_HOST / MHLADR_CONSOLE_PORT") from None


def public_url(console_url: str) -> str:
    """The console's URL as others type it (the host name when it listens on every address)."""
    for wildcard in ("0.0.0.0", "[::]"):
        if f"//{wildcard}:" in console_url:
            return console_url.replace(wildcard, socket.gethostname())
    return console_url


def serve(home: Path, deployments: list, console: ConsoleThread, prefect_api: str, prefect_ui: str,
          limit: int | None) -> Endpoints:
    """Serve until a signal (returns) or until the Prefect server is gone (``InputError``)."""
    return asyncio.run(_serve(Path(home), deployments, console, prefect_api, prefect_ui, limit))


def _warnings_without_tracebacks(record: logging.LogRecord) -> bool:
    """Prefect's clients warn with a full traceback when the server's websocket drops; a warning
    line says enough in the terminal of ``serve`` (errors keep theirs)."""
    if record.levelno < logging.ERROR:
        record.exc_info, record.exc_text = None, None
    return True


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass


async def _serve(home: Path, deployments: list, console: ConsoleThread, prefect_api: str, prefect_ui: str,
                 limit: int | None) -> Endpoints:
    loop = asyncio.get_running_loop()
    for handler in logging.getLogger().handlers:
        handler.addFilter(_warnings_without_tracebacks)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = Serving(limit)
    await serving.register(deployments)
    task = asyncio.create_task(serving.run())
    await asyncio.sleep(0)                                   # the runner takes SIGTERM as it starts ...
    loop.add_signal_handler(signal.SIGTERM, stop.set)        # ... and gives it back here
    while not serving.started and not task.done() and not stop.is_set():
        await _wait(stop, 0.05)
    endpoints = Endpoints(os.getpid(), prefect_api, prefect_ui, public_url(console.url))
    state = home / STATE_FILE
    gone = False
    try:
        if not task.done() and not stop.is_set():
            tmp = state.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(endpoints), indent=2) + "\n")
            tmp.replace(state)
        misses = 0
        while not stop.is_set() and not task.done():
            await _wait(stop, HEALTH_EVERY)
            if stop.is_set():
                break
            misses = 0 if await asyncio.to_thread(healthy, prefect_api, 2.0) else misses + 1
            gone = misses >= HEALTH_MISSES
            if gone:
                break
    finally:
        state.unlink(missing_ok=True)
        logging.getLogger("prefect").setLevel(logging.ERROR)      # no shutdown chatter: one line ends serve
        await _stop(serving, task, pause=not gone and await asyncio.to_thread(healthy, prefect_api, 1.0))
    if gone:
        raise InputError(prefect_api, UNREACHABLE, "the Prefect server stopped answering; serve stopped "
                         "(start it again with `mhladr serve`)")
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    return endpoints


async def _stop(serving: Serving, task: asyncio.Task, *, pause: bool) -> None:
    """Stop the runner within :data:`STOP_WITHIN` seconds, cancelling it if it lingers."""
    try:
        await asyncio.wait_for(serving.stop(pause=pause), STOP_WITHIN / 2)
        await asyncio.wait_for(asyncio.shield(task), STOP_WITHIN / 2)
    except (TimeoutError, asyncio.CancelledError, Exception):      # noqa: BLE001 - stopping anyway
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
