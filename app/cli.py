"""The ``mhladr`` command line.

Contract (DESIGN.md, Interfaces): every command takes ``--json`` (one JSON document on
stdout, nothing else there); exit 0 when the command did its job (QC failures included);
exit 2 when an input is unusable, with ``FILE: reason`` on stderr and, with ``--json``,
``{"error": {"file", "code", "message"}}`` on stdout.

One guard, in :func:`main`, stands around every command: an :class:`InputError` (a file, a
setting, a command line that cannot be used), or a failure :mod:`app.failures` recognises as
one (a database that does not answer, a path not allowed), is exit 2 with one line; anything
else is exit 1 with one line naming the log file that holds the traceback. The terminal never
shows a bare traceback.

Building the parser imports no command's dependencies: each command imports the pipeline,
the database or Prefect only when it runs (a pure command such as ``analyze`` loads no
database, orchestrator or plotting library).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import textwrap
from typing import Any, NoReturn

from app.identity import SINGLE_USER_NOTE
from pipeline import __version__
from pipeline.config import home_from, log_file
from pipeline.errors import USAGE, InputError

# In the order a lab meets them.
COMMAND_MODULES = (
    "inspect",
    "calibrate",
    "analyze",
    "run",
    "watch",
    "serve",
    "results",
    "review",
    "screening",
    "reprocess",
    "patients",
    "export",
    "audit",
    "users",
    "validate",
)

EXIT_OK = 0
EXIT_FAULT = 1
EXIT_INPUT = 2
INTERNAL = "internal_error"

DESCRIPTION = """\
Monocytic HLA-DR (mHLA-DR) in antibodies bound per cell (AB/C) from cytometer FCS files: bead
calibration, monocyte gate, QC, and the screening log of the interferon gamma-1b trial
(inclusion needs a decisive mHLA-DR < 8,000 AB/C on ICU day 5-10)."""

EPILOG = """\
where results go:
  MHLADR_HOME (now {home}): the results database (unless MHLADR_DATABASE_URL),
  reports/ (one HTML report per tube), logs/mhladr.log, prefect/ (the local Prefect server).
  Settings: MHLADR_HOME/settings.toml and MHLADR_* variables (README.md, Settings).

processes:
  run and watch start a local Prefect server on first use (its UI shows every run and its log
  lines) and leave it running for the next commands; mhladr serve --stop-server stops it.
  serve and watch stay in the foreground until Ctrl-C.

exit codes: 0 done (QC failures included), 2 unusable input (one line on stderr: what and the
fix), 1 unexpected failure (one line; the traceback in MHLADR_HOME/logs/mhladr.log).

example:
  mhladr run ./inbox --registry registry.csv     # every FCS file of ./inbox, then the screening log
  mhladr X --help                                 # what X does, with examples"""


class Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every command's summary on its own line (argparse sizes the
    name column by the ``COMMAND`` metavar only, so longer names would push their summary down)."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        for sub in action._get_subactions() if isinstance(action, argparse._SubParsersAction) else ():
            self._action_max_length = max(self._action_max_length, len(sub.dest) + self._current_indent + 4)


class Parser(argparse.ArgumentParser):
    """argparse, but a command line that does not parse is an :class:`InputError` (one line,
    exit 2, the JSON error with ``--json``) instead of argparse's usage text."""

    def error(self, message: str) -> NoReturn:
        raise InputError(self.prog, USAGE, f"{message}; see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mhladr", description=DESCRIPTION,
                    epilog=EPILOG.format(home=home_from(os.environ)) + "\n\n" + textwrap.fill(SINGLE_USER_NOTE, 96), formatter_class=Help)
    parser.add_argument("--version", action="version", version=f"mhladr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"app.commands.{name}").register(sub)
    return parser


def emit(document: Any, human: str, as_json: bool) -> None:
    """Print the result: the JSON document, or the human-readable text."""
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")
    sys.stdout.flush()


def _unusable(err: InputError, as_json: bool) -> int:
    sys.stderr.write(f"{err.file}: {err.message}\n")
    if as_json:
        sys.stdout.write(json.dumps({"error": err.as_dict()}) + "\n")
    return EXIT_INPUT


def _fault(exc: BaseException, argv: list[str], as_json: bool) -> int:
    from app.failures import write_crash_log

    log = write_crash_log(exc, argv, log_file(home_from(os.environ)))
    what = " ".join(str(exc).split())[:300] or "no message"
    name = f"mhladr {argv[0]}" if argv else "mhladr"
    message = f"unexpected {type(exc).__name__}: {what} (a fault of mhladr, not of the input; traceback in {log})"
    sys.stderr.write(f"{name}: {message}\n")
    if as_json:
        sys.stdout.write(json.dumps({"error": {"file": name, "code": INTERNAL, "message": message,
                                               "log": str(log)}}) + "\n")
    return EXIT_FAULT


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        document, human, *code = args.func(args)   # a command may add its own exit code (audit verify: 1)
        emit(document, human, as_json)
        if code:
            return int(code[0])
    except InputError as err:
        return _unusable(err, as_json)
    except BrokenPipeError:                      # e.g. `mhladr results | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("mhladr: interrupted\n")
        return 130
    except Exception as exc:                     # the one top-level guard (see module doc)
        from app.failures import as_input_error

        try:
            known = as_input_error(exc)
        except Exception:                        # noqa: BLE001 - explaining must not hide the failure
            known = None
        return _unusable(known, as_json) if known is not None else _fault(exc, argv, as_json)
    return EXIT_OK


def entry() -> None:
    """The ``mhladr`` console script: :func:`main`, then exit without a last collection of every
    object (the operating system frees the process; ~0.45 s of each ``mhladr run``). Commits,
    log flushes and other exit handlers still run."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
