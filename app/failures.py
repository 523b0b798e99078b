"""What the command line's top-level guard says when a command fails outside its own checks.

Known failures of the machine around a command are unusable inputs (exit 2, one line naming the
setting, URL or path and the fix): a results database that does not answer or whose URL cannot
be used, a path the process may not read or write. Anything else is a fault of mhladr: one line
on the terminal, the traceback appended to the log file (:func:`pipeline.config.log_file`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

from pipeline.errors import BAD_INPUT, BAD_SETTING, UNREACHABLE, InputError

PATH_ERRORS = (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _sqlite_usable(path: Path) -> bool:
    folder = path.parent
    return (folder.is_dir() and os.access(folder, os.W_OK)
            and (not path.exists() or os.access(path, os.R_OK | os.W_OK)))


def _answers(url: str) -> bool:
    """Whether the database at ``url`` takes a connection now (5 s at most)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return not parsed.database or parsed.database == ":memory:" or _sqlite_usable(Path(parsed.database))
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:       # noqa: BLE001 - any failure to connect means: it does not answer
        return False
    finally:
        engine.dispose()


def database_problem(exc: BaseException) -> InputError | None:
    """The results database named by the settings, when it is why ``exc`` happened."""
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.SQLAlchemyError):
        return None
    from pipeline.config import load_settings, mask_url

    try:
        settings = load_settings()
    except InputError as err:
        return err
    url = settings.effective_database_url
    where = ("MHLADR_DATABASE_URL (or database_url in settings.toml)" if settings.database_url
             else "MHLADR_HOME (the SQLite file lives there)")
    cause = _first_line(getattr(exc, "orig", None) or exc)
    if isinstance(exc, (errors.ArgumentError, errors.NoSuchModuleError)):
        return InputError(mask_url(url), BAD_SETTING, f"not a usable database URL ({cause}): fix {where}")
    if isinstance(exc, (errors.OperationalError, errors.InterfaceError)) and not _answers(url):
        return InputError(mask_url(url), UNREACHABLE,
                          f"the results database does not answer ({cause}): start it, or fix {where}"
                          + (", or unset it to use the SQLite file under MHLADR_HOME" if settings.database_url
                             else ""))
    return None


def path_problem(exc: BaseException) -> InputError | None:
    """A file or folder the process cannot use (missing, not allowed, a folder for a file)."""
    if not isinstance(exc, PATH_ERRORS) or not exc.filename:
        return None
    from pipeline.config import home_from

    home = home_from(os.environ).resolve()
    path = Path(str(exc.filename)).resolve()
    if path == home or home in path.parents or path in home.parents:
        return InputError(home, BAD_SETTING, f"the data folder MHLADR_HOME cannot be used ({exc.strerror.lower()} "
                                             f"at {exc.filename}): set MHLADR_HOME to a folder this user may write")
    fix = {PermissionError: "give this user access to it or choose another path",
           FileNotFoundError: "check the path (its folder must exist)",
           IsADirectoryError: "this is a folder: name a file",
           NotADirectoryError: "a part of this path is a file, not a folder"}[type(exc)]
    return InputError(exc.filename, BAD_INPUT, f"{exc.strerror.lower()}: {fix}")


def as_input_error(exc: BaseException) -> InputError | None:
    """The unusable input behind ``exc``, if it is one."""
    return database_problem(exc) or path_problem(exc)


def write_crash_log(exc: BaseException, argv: list[str], log: Path) -> Path:
    """Append the traceback of an unexpected failure to ``log`` (or to the temporary folder when
    ``log`` cannot be written); returns where it went."""
    from pipeline import __version__

    entry = (f"\n=== {datetime.now().astimezone().isoformat(timespec='seconds')} mhladr {__version__} "
             f"unexpected failure of: mhladr {' '.join(argv)}\n"
             + "".join(traceback.format_exception(exc)))
    for target in (log, Path(tempfile.gettempdir()) / "mhladr-errors.log"):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as fh:
                fh.write(entry)
            return target
        except OSError:
            continue
    return Path("(no writable log file)")
