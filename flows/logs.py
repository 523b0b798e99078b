"""Where the log lines of a command that runs flows go: always to the log file under
``MHLADR_HOME/logs/``; to the terminal only with ``--verbose``, except the project's own warnings
and errors, which show there as one line each (their traceback stays in the log file).

Prefect's API handler still sends every flow and task run's lines to the Prefect server, so the
Prefect UI shows them whatever the terminal shows. Prefect configures logging when it is
imported (a console handler on the root logger); :func:`route_logs` runs after that.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

APP_LOGGER = "mhladr"
FILE_HANDLER = "mhladr-log-file"
LINE_HANDLER = "mhladr-one-line"
MAX_BYTES = 5_000_000


class OneLine(logging.Formatter):
    """A record as one line: its message, and the exception's type and message (no traceback)."""

    def __init__(self, log_file: Path) -> None:
        super().__init__()
        self.log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        line = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            first = (str(exc).strip().splitlines() or [""])[0]
            line += f" ({type(exc).__name__}: {first}; traceback in {self.log_file})"
        return " ".join(line.split())


def _replace(logger: logging.Logger, name: str, handler: logging.Handler) -> None:
    """Add ``handler`` under ``name``, dropping an earlier one of that name (one per process)."""
    for old in [h for h in logger.handlers if h.name == name]:
        logger.removeHandler(old)
        old.close()
    handler.name = name
    logger.addHandler(handler)


def route_logs(log_file: Path, *, verbose: bool) -> None:
    """Send log lines to ``log_file`` (INFO and up) and, with ``verbose``, to the terminal as
    Prefect prints them; without, the terminal gets only this project's warnings, one line each."""
    import prefect  # noqa: F401  (configures Prefect's logging: its console handler on the root logger)
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(log_file, maxBytes=MAX_BYTES, backupCount=3, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    _replace(root, FILE_HANDLER, to_file)
    app = logging.getLogger(APP_LOGGER)
    app.setLevel(logging.INFO)
    if verbose:                       # the root's console handler shows them already
        _replace(app, LINE_HANDLER, logging.NullHandler())
        return
    line = logging.StreamHandler()
    line.setLevel(logging.WARNING)
    line.setFormatter(OneLine(log_file))
    _replace(app, LINE_HANDLER, line)
