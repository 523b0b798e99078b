"""``mhladr serve``: the lab's deployments on the local Prefect server, and the lab console.

One ``serve`` per home (:mod:`app.serving`): a second one exits 2 naming the running one and
touches nothing. Once ready it writes ``MHLADR_HOME/serve.json`` (``pid``, ``prefect_api``,
``prefect_ui``, ``console``). Default schedules are created once; later edits in the UI/CLI
survive restarts (:mod:`flows.deployments`). Ctrl-C (or SIGTERM) stops it within seconds;
``--stop-server`` stops a running ``serve`` of this home and then the embedded Prefect server.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from app.common import LOTS_HELP, add_json, command, folder, optional_file, usable_server
from app.identity import require


def local_timezone() -> str:
    """IANA name of the local time zone for the daily schedules (``TZ``, /etc/timezone, else UTC)."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    try:
        return Path("/etc/timezone").read_text().strip() or "UTC"
    except OSError:
        return "UTC"


def stop(home: Path) -> tuple[dict[str, Any], str]:
    from app.serving import stop_running
    from flows.server import stop_server

    pid = stop_running(home)
    stopped = stop_server(home)
    done = ([f"stopped mhladr serve (pid {pid})"] if pid else []) + (["stopped the Prefect server"] if stopped else [])
    return {"serve_stopped": pid, "stopped": stopped}, "; ".join(done) or "nothing was running"


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings

    settings = load_settings()
    require("serve")
    if args.stop_server:
        return stop(settings.home)
    from app.serving import HomeLock, already_running, bind_console, console_address

    inbox = str(folder(args.inbox).resolve()) if args.inbox else None
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    lock = HomeLock(settings.home)
    if not lock.acquire():
        raise already_running(settings.home)
    try:
        return serve_locked(args, settings, inbox, registry, lots, bind_console(*console_address()))
    finally:
        lock.release()


def serve_locked(args: argparse.Namespace, settings: Any, inbox: str | None, registry: str | None,
                 lots: str | None, sock: Any) -> tuple[dict[str, Any], str]:
    """Everything after the home's lock is held: server, deployments, console, the loop."""
    from app.console.thread import ConsoleThread
    from app.console.web import ConsoleConfig, create_app
    from app.serving import serve
    from flows.deployments import build
    from flows.server import connected

    server = usable_server(settings)
    os.environ["PREFECT_API_URL"] = server.url        # inherited by the served flow-run processes ...
    if server.auth:
        os.environ["PREFECT_API_AUTH_STRING"] = server.auth      # ... with the server's lock
    with connected(server.url, heartbeats=True):
        deployments = build(inbox, registry, lots, timezone=args.timezone or local_timezone())
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    app = create_app(ConsoleConfig(settings, prefect_api=server.url, prefect_ui=server.ui_url, registry=registry,
                                   lots=lots))
    console = ConsoleThread(app, sock).start()
    from app.serving import public_url

    os.environ["MHLADR_CONSOLE_URL"] = public_url(console.url)    # artifacts of this serve's flows link it
    watch = None
    try:
        if inbox:
            from app.serving import InboxWatch

            watch = InboxWatch(Path(inbox), registry, lots, settings, server.url, grace=args.grace).start()
        sys.stderr.write(f"Lab console: {console.url}\nPrefect UI:  {server.ui_url}\n"
                         f"serving {', '.join(names)} (Ctrl-C to stop)\n"
                         + (f"watching {inbox}: files are processed as they land\n" if inbox else ""))
        sys.stderr.flush()
        with connected(server.url, heartbeats=True):
            endpoints = serve(settings.home, deployments, console, server.url, server.ui_url, args.limit)
    finally:
        if watch is not None:
            watch.stop()
        console.stop()
        app.state.console.close()
    return ({"console": endpoints.console, "prefect_ui": endpoints.prefect_ui, "prefect_api": endpoints.prefect_api,
             "deployments": names}, "stopped serving")


def register(subparsers: Any) -> None:
    parser = command(subparsers, "serve", summary="serve the deployments, their schedules and the lab console (foreground)",
                     description="Stays in the foreground until Ctrl-C: serves the deployments (batch,\n"
                                 "finish-pending, daily bead QC, screening digest, review) with their schedules on the\n"
                                 "local Prefect server (started on first use) or the one in PREFECT_API_URL, and the\n"
                                 "lab console; both addresses are printed and written to MHLADR_HOME/serve.json.\n"
                                 "One serve per home. --stop-server stops this home's serve and the local server that\n"
                                 "run/watch/serve leave running.",
                     examples="mhladr serve --inbox ./inbox --registry registry.csv\n"
                              "mhladr serve --stop-server")
    parser.add_argument("--inbox", help="folder whose files are processed as they land, like `mhladr watch` "
                                        "(and by the batch deployment; none without)")
    parser.add_argument("--registry", help="patient registry CSV for the batch/finish-pending runs")
    parser.add_argument("--lots", help=LOTS_HELP)
    parser.add_argument("--timezone", help="IANA time zone of the daily schedules (default: local)")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="with --inbox: seconds a truncated file may stay incomplete before it is rejected (default 60)")
    parser.add_argument("--limit", type=int, default=None, help="most flow runs at once (default: no limit)")
    parser.add_argument("--stop-server", action="store_true",
                        help="stop this home's running serve and its embedded Prefect server, then exit")
    add_json(parser)
    parser.set_defaults(func=run)
