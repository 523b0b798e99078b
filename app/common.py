"""Arguments and checks several commands share (help layout, folders, optional files, the lot
table rule, figure targets, the Prefect server, dates)."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import BAD_INPUT, UNREACHABLE, InputError
from pipeline.lots import RULE

if TYPE_CHECKING:
    from flows.server import PrefectServer
    from pipeline.config import Settings

LOTS_HELP = f"bead lot table CSV (default: {RULE})"


def command(subparsers: Any, name: str, *, summary: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A sub-command with its one-line summary (top-level help), a description and examples."""
    return subparsers.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}.\n\n{description}",
                                 epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.strip().splitlines()),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout (nothing else there)")


def folder(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise InputError(path, BAD_INPUT, "no such folder" if not p.exists() else "not a folder: give the inbox folder")
    return p


def optional_file(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InputError(path, BAD_INPUT, "no such file" if not p.exists() else "a folder, not a file")
    return path


def lots_table(given: str | None, fcs_folder: str | Path) -> str | None:
    """The lot table a command uses: ``--lots`` when given, else the one rule of
    :func:`pipeline.lots.default_table`."""
    from pipeline.lots import default_table

    if given is not None:
        return optional_file(given)
    found = default_table(fcs_folder)
    return str(found) if found else None


def output_target(path: str | None, suffix: str = ".png", what: str = "the figure is written as PNG") -> Path | None:
    """Where an output option (``--figure``, ``--gating-ml``) writes: a new or existing file
    named ``*suffix`` in an existing, writable folder; checked before any work."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise InputError(path, BAD_INPUT, f"this is a folder: give a file name ending in {suffix}")
    if target.suffix.lower() != suffix:
        raise InputError(path, BAD_INPUT, f"{what}: give a file name ending in {suffix}")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(path, BAD_INPUT, f"no folder {parent}: create it first or choose another folder")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(path, BAD_INPUT, "not allowed to write here: choose another folder")
    return target


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbox", help="folder of FCS files")
    parser.add_argument("--registry", help="patient registry CSV (imported, idempotent)")
    parser.add_argument("--lots", help=LOTS_HELP)
    parser.add_argument("--verbose", action="store_true",
                        help="also print the orchestrator's log lines (always in MHLADR_HOME/logs/mhladr.log and "
                             "the Prefect UI)")
    add_json(parser)


def prefect_server(settings: "Settings", verbose: bool) -> "PrefectServer":
    """The Prefect server a flow command uses (embedded, or ``PREFECT_API_URL``), with the log
    lines routed (:func:`flows.logs.route_logs`); a shared server that does not answer is an
    unusable setting."""
    from flows.logs import route_logs

    route_logs(settings.log_file, verbose=verbose)
    return usable_server(settings)


def usable_server(settings: "Settings") -> "PrefectServer":
    """The embedded Prefect server, or the shared one of ``PREFECT_API_URL`` once it answers and
    takes this process's credentials (else exit 2 naming the setting: :func:`flows.server.refusal`)."""
    from flows.server import refusal, resolve_server

    server = resolve_server(settings.home, port=settings.prefect_port)
    if server.pid is None and (why := refusal(server)) is not None:
        raise InputError(server.url, UNREACHABLE, why)
    return server


def parse_today(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("--today", BAD_INPUT, f"{text!r} is not a date (YYYY-MM-DD)") from None
