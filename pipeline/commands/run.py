"""``mhladr run INBOX``: every FCS file of a folder through the Prefect batch flow.

Embedded by default: the project's own Prefect server (SQLite under ``MHLADR_HOME/prefect``)
is started on first use and reused afterwards (:mod:`flows.server`); ``PREFECT_API_URL`` in the
environment points the run at a shared server instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.config import load_settings
from pipeline.errors import BAD_INPUT, InputError


def folder(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise InputError(path, BAD_INPUT, "not a folder")
    return p


def optional_file(path: str | None) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise InputError(path, BAD_INPUT, "file not found")
    return path


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbox", help="folder of FCS files")
    parser.add_argument("--registry", help="patient registry CSV (imported, idempotent)")
    parser.add_argument("--lots", help="bead lot table CSV (default: INBOX/lots.csv if present)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def human(document: dict[str, Any]) -> str:
    lines = []
    for f in document["files"]:
        reasons = "; ".join(f.get("reasons") or [])
        lines.append(f"{f['status']:<20} {Path(f['file']).name}" + (f"  ({reasons})" if reasons else ""))
    lines.append("")
    for s in document["screening"]:
        lines.append(f"{s['patient_id']:<10} {s['status']:<13} " + "; ".join(s.get("reasons") or []))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    inbox = folder(args.inbox)
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    settings = load_settings()
    from flows.batch import batch_flow
    from flows.server import connected, resolve_server

    server = resolve_server(settings.home)
    with connected(server.url):
        result = batch_flow(inbox=str(inbox), registry=registry, lots=lots)
    document = {"files": result["files"], "screening": result["screening"]}
    return document, human(document)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="process every FCS file of a folder (Prefect batch flow)")
    add_inputs(parser)
    parser.set_defaults(func=run)
