"""``mhladr watch INBOX``: process files as they land (see :mod:`flows.watcher`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from app.common import add_inputs, folder, optional_file
from app.identity import require


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline import workers
    from pipeline.config import load_settings

    inbox = folder(args.inbox).resolve()
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    settings = load_settings()
    require("watch")
    workers.warm_up()
    from flows.batch import batch_flow
    from flows.server import connected, resolve_server
    from flows.watcher import Watcher
    from pipeline.store import open_store

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("mhladr.watch")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    server = resolve_server(settings.home)
    moved: dict[str, int] = {"files": 0}

    def process(paths: list[Path]) -> dict:
        result = batch_flow(inbox=str(inbox), registry=registry, lots=lots, files=[str(p) for p in paths])
        moved["files"] += len(paths)
        return result

    store = open_store(settings)          # records where the watcher moves each file
    watcher = Watcher(inbox, process, interval=args.interval, grace=args.grace,
                      reconcile_every=args.reconcile, on_moved=store.files.relocate)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: watcher.stop())
    try:
        with connected(server.url):
            watcher.run()
    finally:
        store.close()
    document = {"inbox": str(inbox), "batches": watcher.batches, "files": moved["files"]}
    return document, f"stopped: {watcher.batches} batch(es), {moved['files']} file(s)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("watch", help="process FCS files as they land in a folder")
    add_inputs(parser)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="seconds a truncated file may stay incomplete before it is rejected (default 60)")
    parser.add_argument("--reconcile", type=float, default=60.0,
                        help="seconds between full reconcile scans of the inbox (default 60)")
    parser.set_defaults(func=run)
