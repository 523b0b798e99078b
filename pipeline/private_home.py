"""The results home at rest: nothing in it readable by other operating-system users.

DESIGN.md, Additions 2026-12-07, At rest: the SQLite database and everything under
``MHLADR_HOME/reports`` (whose figure data hold each tube's PE statistic and histogram) carry no
permission bit for "other". A process that opens a home masks those bits from every file and
folder it creates from then on (:func:`mask_others`, its umask gains ``007``: group bits stay as
the lab set them), and an existing home is fixed on open (:func:`protect_home`), with a note of
what changed.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

OTHERS = 0o007
log = logging.getLogger("mhladr.home")


def mask_others() -> None:
    """Add "other" to the process's umask (files and folders created from now on, by this process
    and those it starts, are not readable by other users)."""
    current = os.umask(0)
    os.umask(current | OTHERS)


def _strip(path: Path) -> bool:
    """Remove the "other" bits of ``path``; whether it had any."""
    mode = stat.S_IMODE(path.lstat().st_mode)
    if path.is_symlink() or not mode & OTHERS:
        return False
    os.chmod(path, mode & ~OTHERS)
    return True


def protect_home(home: Path, database: Path | None = None) -> list[Path]:
    """Create ``home`` when missing, then remove the "other" bits of the home, the SQLite
    database (with its journal files) and the ``reports`` tree; the paths changed (each noted in
    the log as a warning). A folder that lets no other user in already is not walked again."""
    mask_others()
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    fixed: list[Path] = []
    targets = [home]
    if database is not None:
        targets += [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm"),
                    database.with_name(database.name + "-journal")]
    for path in targets:
        if path.exists() and _strip(path):
            fixed.append(path)
    reports = home / "reports"
    if reports.is_dir() and _strip(reports):
        fixed.append(reports)
        for root, dirs, files in os.walk(reports):
            for name in dirs + files:
                if _strip(Path(root) / name):
                    fixed.append(Path(root) / name)
    if fixed:
        log.warning("%s: removed the permission bits for other users from %d path(s) (the database, reports "
                    "and their figure data must not be readable by them): %s", home, len(fixed),
                    ", ".join(str(p) for p in fixed[:5]) + (" ..." if len(fixed) > 5 else ""))
    return fixed
