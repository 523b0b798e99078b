"""``mhladr serve``: the local Prefect server (UI on localhost) and the lab's deployments.

Default schedules are created once; later edits in the UI/CLI survive restarts
(:mod:`flows.deployments`). ``--stop-server`` stops the embedded server instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from app.common import optional_file
from app.identity import require


def local_timezone() -> str:
    """IANA name of the local time zone for the daily schedules (``TZ``, /etc/timezone, else UTC)."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    try:
        return Path("/etc/timezone").read_text().strip() or "UTC"
    except OSError:
        return "UTC"


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings

    settings = load_settings()
    require("serve")
    from flows.server import resolve_server, stop_server

    if args.stop_server:
        stopped = stop_server(settings.home)
        return {"stopped": stopped}, "stopped" if stopped else "no embedded server was running"
    inbox = str(Path(args.inbox).resolve()) if args.inbox else None
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    server = resolve_server(settings.home)
    os.environ["PREFECT_API_URL"] = server.url        # inherited by the served flow-run processes
    import prefect
    from flows.deployments import build

    deployments = build(inbox, registry, lots, timezone=args.timezone or local_timezone())
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    sys.stderr.write(f"Prefect UI: {server.ui_url}\nserving {', '.join(names)}\n")
    sys.stderr.flush()
    prefect.serve(*deployments, print_starting_message=False, limit=args.limit)
    return {"ui": server.ui_url, "deployments": names}, "stopped serving"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve the deployments (batch, finish-pending, daily QC, "
                                                 "screening digest, review) on the local Prefect server")
    parser.add_argument("--inbox", help="folder the batch deployment processes (no batch deployment without)")
    parser.add_argument("--registry", help="patient registry CSV for the batch/finish-pending runs")
    parser.add_argument("--lots", help="bead lot table CSV for the batch/finish-pending runs")
    parser.add_argument("--timezone", help="IANA time zone of the daily schedules (default: local)")
    parser.add_argument("--limit", type=int, default=None, help="most flow runs at once (default: no limit)")
    parser.add_argument("--stop-server", action="store_true", help="stop the embedded Prefect server and exit")
    parser.add_argument("--json", action="store_true", help="print one JSON document when done")
    parser.set_defaults(func=run)
