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


def _fmt_abc(f: dict[str, Any]) -> str:
    if f.get("abc") is None:
        return "-"
    interval = f.get("abc_interval")
    return f"{f['abc']:,.0f}" + (f" ({interval[0]:,.0f}-{interval[1]:,.0f})" if interval else "")


def _detail(f: dict[str, Any]) -> str:
    """What a technician wants to see on one line per file."""
    if f["kind"] == "beads" and f.get("slope") is not None:
        return f"slope {f['slope']:.3f}  R^2 {f['r2']:.4f}  lot {f.get('lot') or '-'}"
    if f.get("abc") is not None:
        flag = {True: "< 8,000", False: ">= 8,000", None: "no decision"}[f.get("below_threshold")]
        return (f"{_fmt_abc(f):<24} {f.get('category') or '-':<17} {flag:<11} "
                f"day {f.get('icu_day') if f.get('icu_day') is not None else '-'}")
    return "; ".join(f.get("reasons") or [])


def human(document: dict[str, Any]) -> str:
    lines = [f"{'FILE':<36} {'STATUS':<20} {'QC':<7} RESULT"]
    for f in document["files"]:
        qc = (f.get("qc") or {}).get("status", "-")
        lines.append(f"{Path(f['file']).name:<36} {f['status']:<20} {qc:<7} {_detail(f)}")
        if f.get("qc") and f["qc"].get("reasons") and f["status"] != "rejected":
            lines += [f"{'':<65}- {r}" for r in f["qc"]["reasons"]]
    lines += ["", "Screening log", f"{'PATIENT':<10} {'STATUS':<13} {'AB/C':>8} {'DAY':>4}  REASONS"]
    for s in document["screening"]:
        abc = f"{s['abc']:,.0f}" if s.get("abc") is not None else "-"
        day = s.get("icu_day") if s.get("icu_day") is not None else "-"
        lines.append(f"{s['patient_id']:<10} {s['status']:<13} {abc:>8} {day:>4}  " + "; ".join(s.get("reasons") or []))
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
