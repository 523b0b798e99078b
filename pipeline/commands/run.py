"""``mhladr run INBOX``: every FCS file of a folder through the Prefect batch flow.

The document is the contract's ``files`` and ``screening``, plus ``finished`` (samples of earlier
runs that found their beads in this one) and ``registry_errors`` (rows of the registry that did
not load, with their line). Embedded by default: the project's own Prefect server (SQLite under ``MHLADR_HOME/prefect``)
is started on first use and reused afterwards (:mod:`flows.server`); ``PREFECT_API_URL`` in the
environment points the run at a shared server instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.commands.screening import human as screening_table
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


def _fmt_abc(f: dict[str, Any]) -> str:
    if f.get("abc") is None:
        return "-"
    interval = f.get("abc_interval")
    return f"{f['abc']:,.0f}" + (f" ({interval[0]:,.0f}-{interval[1]:,.0f})" if interval else "")


def _detail(f: dict[str, Any], threshold: float) -> str:
    """What a technician wants to see on one line per file."""
    if f["kind"] == "beads" and f.get("slope") is not None:
        return f"slope {f['slope']:.3f}  R^2 {f['r2']:.4f}  lot {f.get('lot') or '-'}"
    if f.get("abc") is not None:
        flag = {True: f"< {threshold:,.0f}", False: f">= {threshold:,.0f}",
                None: "no decision"}[f.get("below_threshold")]
        return (f"{_fmt_abc(f):<24} {f.get('category') or '-':<17} {flag:<11} "
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
    inbox = folder(args.inbox).resolve()
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    settings = load_settings()
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
