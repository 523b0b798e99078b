"""The ``mhladr`` command line.

Contract (DESIGN.md, Interfaces): every command takes ``--json`` (one JSON document on
stdout, nothing else there); exit 0 when the command did its job (QC failures included);
exit 2 when an input is unusable, with ``FILE: reason`` on stderr and, with ``--json``,
``{"error": {"file", "code", "message"}}`` on stdout.

Building the parser imports no command's dependencies: each command imports the pipeline,
the database or Prefect only when it runs (a pure command such as ``analyze`` loads no
database, orchestrator or plotting library).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from pipeline.errors import InputError

COMMAND_MODULES = (
    "inspect",
    "calibrate",
    "analyze",
    "patients",
    "screening",
    "export",
    "review",
    "reprocess",
    "run",
    "watch",
    "serve",
    "audit",
    "users",
)

EXIT_OK = 0
EXIT_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    from app.identity import SINGLE_USER_NOTE

    parser = argparse.ArgumentParser(prog="mhladr", description="Automated monocytic HLA-DR (AB/C) pipeline.",
                                     epilog=SINGLE_USER_NOTE)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"app.commands.{name}").register(sub)
    return parser


def emit(document: Any, human: str, as_json: bool) -> None:
    """Print the result: the JSON document, or the human-readable text."""
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    try:
        document, human, *code = args.func(args)     # a command may add its own exit code (audit verify: 1)
    except InputError as err:
        sys.stderr.write(f"{err.file}: {err.message}\n")
        if as_json:
            sys.stdout.write(json.dumps({"error": err.as_dict()}) + "\n")
        return EXIT_INPUT
    emit(document, human, as_json)
    return code[0] if code else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
