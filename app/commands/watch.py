"""``mhladr watch INBOX``: process files as they land (see :mod:`flows.watcher`).

One line per file as it is done (status, QC, AB/C or reason, where it went); the orchestrator's
log lines go to the log file and the Prefect UI (to the terminal with ``--verbose``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from app.common import add_inputs, command, folder, optional_file, prefect_server
from app.identity import acting


def announce(document: dict, threshold: float, as_json: bool) -> None:
    """One line per file of a batch (stderr with --json: stdout holds the final document only)."""
    from app.commands.run import row
    from flows.watcher import destination

    stream = sys.stderr if as_json else sys.stdout
    for entry in document.get("files", []) + document.get("finished", []):
        lines = row(entry, threshold)
        where = destination(entry["status"])
        lines[0] += f"  -> {where}/" if where else "  (stays in the inbox)"
        stream.write(f"{time.strftime('%H:%M:%S')} " + f"\n{'':9}".join(lines) + "\n")
    stream.flush()


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline import workers
    from pipeline.config import load_settings

    inbox = folder(args.inbox).resolve()
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    settings = load_settings()
    from pipeline.store import open_store

    def started() -> None:
        if not args.json:
            print(f"watching {inbox} (Ctrl-C stops; results under {settings.home})", flush=True)

    moved: dict[str, int] = {"files": 0}
    with open_store(settings) as store:   # the database answers before Prefect starts; records the moves
        acting(store, "watch")
        workers.warm_up()
        from flows.server import connected
        from flows.watcher import Watcher, batch_processor

        def done(result: dict) -> None:
            moved["files"] += len(result.get("files", []))
            announce(result, settings.abc_threshold, args.json)

        server = prefect_server(settings, args.verbose)
        watcher = Watcher(inbox, batch_processor(inbox, registry, lots, done), interval=args.interval, grace=args.grace,
                          reconcile_every=args.reconcile, on_moved=store.files.relocate)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: watcher.stop())
        with connected(server.url):
            watcher.run(started)
    document = {"inbox": str(inbox), "batches": watcher.batches, "files": moved["files"]}
    return document, f"stopped: {watcher.batches} batch(es), {moved['files']} file(s)"


def register(subparsers: Any) -> None:
    parser = command(subparsers, "watch", summary="process FCS files as they land in a folder (foreground)",
                     description="Stays in the foreground until Ctrl-C. A file is taken once completely written,\n"
                                 "goes through the same batch flow as `mhladr run`, and moves to INBOX/processed/\n"
                                 "(calibrated, measured) or INBOX/quarantine/ (rejected, QC fail, duplicate; a\n"
                                 "<name>.reason.txt beside it says why and what to do next). Samples waiting for\n"
                                 "their beads stay in the inbox until the beads arrive. One line per file.",
                     examples="mhladr watch ./inbox --registry registry.csv\n"
                              "mhladr watch ./inbox --lots /srv/lab/lots.csv --interval 1")
    add_inputs(parser)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between polls (default 0.25)")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="seconds a truncated file may stay incomplete before it is rejected (default 60)")
    parser.add_argument("--reconcile", type=float, default=60.0,
                        help="seconds between full reconcile scans of the inbox (default 60)")
    parser.set_defaults(func=run)
