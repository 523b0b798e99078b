"""``mhladr run INBOX``: every FCS file of a folder through the Prefect batch flow.

The document is the contract's ``files`` and ``screening``, plus ``finished`` (samples of earlier
runs that found their beads in this one) and ``registry_errors`` (rows of the registry that did
not load, with their line). Embedded by default: the project's own Prefect server (SQLite under
``MHLADR_HOME/prefect``) is started on first use and reused afterwards (:mod:`flows.server`);
``PREFECT_API_URL`` in the environment points the run at a shared server instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.commands.screening import human as screening_table
from app.common import add_inputs, folder, optional_file
from app.identity import require


def _detail(f: dict[str, Any], threshold: float) -> str:
    """What a technician wants to see on one line per file."""
    from pipeline import formatting as fmt

    if f["kind"] == "beads" and f.get("slope") is not None:
        return f"slope {f['slope']:.3f}  R^2 {f['r2']:.4f}  lot {f.get('lot') or '-'}"
    if f.get("abc") is not None:
        flag = {True: f"< {threshold:,.0f}", False: f">= {threshold:,.0f}",
                None: "no decision"}[f.get("below_threshold")]
        value = fmt.abc(f["abc"]) + (f" ({fmt.interval(f['abc_interval'])})" if f.get("abc_interval") else "")
        return (f"{value:<24} {f.get('category') or '-':<17} {flag:<11} "
                f"day {f.get('icu_day') if f.get('icu_day') is not None else '-'}")
    return "; ".join(f.get("reasons") or [])


def human(document: dict[str, Any], threshold: float) -> str:
    lines = [f"{'FILE':<36} {'STATUS':<20} {'QC':<7} RESULT"]
    for f in document["files"] + document["finished"]:
        qc = (f.get("qc") or {}).get("status", "-")
        lines.append(f"{Path(f['file']).name:<36} {f['status']:<20} {qc:<7} {_detail(f, threshold)}")
        if f.get("qc") and f["qc"].get("reasons") and f["status"] != "rejected":
            lines += [f"{'':<65}- {r}" for r in f["qc"]["reasons"]]
    lines += [f"registry line {e['line']}: {e['reason']}" for e in document["registry_errors"]]
    return "\n".join(lines + ["", "Screening log", screening_table(document["screening"])])


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline import workers
    from pipeline.config import load_settings

    inbox = folder(args.inbox).resolve()
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    settings = load_settings()
    require("run")
    workers.warm_up()          # the workers load the science while this process loads Prefect
    from flows.batch import batch_flow
    from flows.server import connected, resolve_server

    server = resolve_server(settings.home)
    with connected(server.url):
        document = batch_flow(inbox=str(inbox), registry=registry, lots=lots)
    return document, human(document, settings.abc_threshold)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="process every FCS file of a folder (Prefect batch flow)")
    add_inputs(parser)
    parser.set_defaults(func=run)
