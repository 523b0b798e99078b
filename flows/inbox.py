"""An inbox folder, as the batch flow and the watcher share it: which of its files are FCS files
to process, and the lock a watcher holds on it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import BAD_INPUT, InputError

FCS_SUFFIXES = (".fcs", ".lmd")
LOCK_NAME = ".mhladr-watch.lock"


def inbox_files(inbox: Path) -> list[Path]:
    """The FCS files directly in ``inbox`` (not in sub-folders, not hidden), in name order."""
    return sorted((p for p in Path(inbox).iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in FCS_SUFFIXES), key=lambda p: p.name)


@contextmanager
def inbox_lock(inbox: Path) -> Iterator[None]:
    """One watcher per inbox (a second one fails at once instead of racing the first); the lock
    file is removed on exit. A lock file removed by its holder between our open and our lock is
    not ours: the holder's inode is checked after locking."""
    path = inbox / LOCK_NAME
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fh.fileno()).st_ino != os.stat(path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            raise InputError(inbox, BAD_INPUT, f"another mhladr watch is watching this folder ({LOCK_NAME}): "
                                               "stop it first, or watch another folder") from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(fh, fcntl.LOCK_UN)


def watched(inbox: Path) -> bool:
    """Whether a watcher (``watch``, ``serve --inbox``) holds this inbox now: it then takes each
    file as it lands, once complete, and a scheduled run of the whole folder must leave them alone."""
    path = Path(inbox) / LOCK_NAME
    try:
        fh = path.open("r")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False
