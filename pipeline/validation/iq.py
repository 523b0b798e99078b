"""Installation qualification: is the installed system the released one, and can it run here?

Each function returns :class:`~pipeline.validation.checks.Check` s; the release manifest
(:mod:`pipeline.validation.manifest`) holds what the release shipped.
"""

from __future__ import annotations

import json
import os
import platform
import stat
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from pipeline.validation.checks import Check, check
from pipeline.validation.manifest import ROOT, installed_files

IQ = "IQ"


def python_version(release: dict[str, Any]) -> list[Check]:
    here = ".".join(platform.python_version_tuple()[:2])
    return [check(IQ, "python", f"Python {release['python']}", f"Python {platform.python_version()}",
                  here == release["python"])]


def dependencies(release: dict[str, Any], version_of: Callable[[str], str] = metadata.version) -> list[Check]:
    """Each runtime dependency at the version the release was built and tested with."""
    found = []
    for name, wanted in sorted(release["dependencies"].items()):
        try:
            have = version_of(name)
        except metadata.PackageNotFoundError:
            have = "not installed"
        found.append(check(IQ, f"dependency {name}", f"{name} {wanted}", f"{name} {have}", have == wanted))
    return found


def files(release: dict[str, Any], root: Path = ROOT) -> list[Check]:
    """The installed package files against their release SHA-256s: one check, naming every
    file modified, missing or added."""
    have = installed_files(root)
    wanted = release["files"]
    modified = sorted(f for f in wanted if f in have and have[f] != wanted[f])
    missing = sorted(set(wanted) - set(have))
    added = sorted(set(have) - set(wanted))
    problems = [*(f"modified: {f}" for f in modified), *(f"missing: {f}" for f in missing),
                *(f"not in the release: {f}" for f in added)]
    observed = "; ".join(problems) if problems else f"{len(have)} files match"
    return [check(IQ, "installed files", f"the {len(wanted)} files of release {release['version']} "
                                         "(SHA-256 manifest)", observed, not problems)]


def database(url: str, shown: str) -> list[Check]:
    """The results database answers, and the shipped migrations bring it to the released head (as
    every command does on first use: an empty database is created, an older one upgraded)."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.store.engine import HEAD, current_revision, head_revision, make_engine, upgrade

    try:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                before = current_revision(conn)
            upgrade(engine)
            with engine.connect() as conn:
                after = current_revision(conn)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        return [check(IQ, "database reachable", f"{shown} answers", f"unreachable: {reason}", False),
                check(IQ, "database migrations", f"at revision {HEAD}", "not checked (unreachable)", False)]
    was = "" if before == after else f" (was {before or 'empty'}: migrated now)"
    return [check(IQ, "database reachable", f"{shown} answers", "answers", True),
            check(IQ, "database migrations", f"at revision {HEAD}, the head of the shipped migrations",
                  f"at revision {after}{was}", after == HEAD == head_revision())]


def prefect(home: Path, env: dict[str, str]) -> list[Check]:
    """The Prefect server answers, when one is configured (``PREFECT_API_URL`` or a running ``serve``)."""
    import httpx

    url = env.get("PREFECT_API_URL", "")
    serve = home / "serve.json"
    if not url and serve.is_file():
        url = json.loads(serve.read_text()).get("prefect_api", "")
    if not url:
        return [check(IQ, "prefect reachable", "answers /health when configured",
                      "none configured (the embedded server starts on first use)", True)]
    try:
        ok = httpx.get(url.rstrip("/") + "/health", timeout=5).status_code == 200
        observed = "answers" if ok else "does not answer /health with 200"
    except httpx.HTTPError as exc:
        ok, observed = False, f"unreachable: {exc}"
    return [check(IQ, "prefect reachable", f"{url} answers /health", observed, ok)]


def home_permissions(home: Path, sqlite: Path | None) -> list[Check]:
    """``MHLADR_HOME``, its SQLite database and reports: nothing readable by other OS users."""
    found = []
    for path in (home, home / "reports", sqlite):
        if path is None or not path.exists():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        found.append(check(IQ, f"permissions {path.name or path}", "no permission bit for other users "
                                                                   f"({path})", f"{mode:04o}", not mode & 0o007))
    owner = home.exists() and home.stat().st_uid == os.getuid()
    found.append(check(IQ, "home owner", f"{home} belongs to the user who runs mhladr", "yes" if owner else "no",
                       owner))
    return found
