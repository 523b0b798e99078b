"""``mhladr validate [--json] [--report DIR]``: installation and operational qualification on this
machine (:mod:`pipeline.validation`). Exit 0 when every check meets its acceptance criterion, 1
otherwise; the HTML and JSON report go to ``--report DIR`` (default
``MHLADR_HOME/validation/<UTC time>``). Once users exist the run is signed (an admin's password,
asked before the checks run) and recorded in the audit trail with the report's SHA-256.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.common import add_json, command
from app.signing import add_signing, signer

EXIT_FAILED = 1


def register(subparsers: Any) -> None:
    parser = command(subparsers, "validate", summary="installation and operational qualification (IQ/OQ) on this machine",
                     description="IQ: Python and every dependency at the released versions, the installed files\n"
                                 "against the release's SHA-256 manifest, the results database reachable and at\n"
                                 "its migration head, the Prefect server reachable (when configured), MHLADR_HOME\n"
                                 "permissions, the settings valid. OQ: the shipped reference tubes (known truth:\n"
                                 "three instrument flavours, two bead lots, values near 8,000, failure cases)\n"
                                 "through the real processing chain, store, screening and audit verify in a\n"
                                 "scratch home. Writes validation.html and validation.json (each check with its\n"
                                 "criterion, observed value and result; the environment; the report's SHA-256).\n"
                                 "Exit 0: every check passed; 1: at least one failed. Signed once users exist.",
                     examples="mhladr validate\n"
                              "mhladr validate --report /srv/lab/qualification/2026-12 --json")
    parser.add_argument("--report", metavar="DIR", help="where to write validation.html and validation.json")
    add_signing(parser)
    add_json(parser)
    parser.set_defaults(func=run)


def human(doc: dict[str, Any], folder: str) -> str:
    lines = [f"{r['result'].upper():>7}  {r['stage']}  {r['name']}: {r['observed'][:110]}"
             for r in doc["results"] if r["result"] != "pass"]
    verdict = "PASS" if doc["ok"] else "FAIL"
    sig = doc.get("signature")
    return "\n".join([*lines, f"{verdict}: {doc['passed']} of {doc['checks']} checks passed, {doc['failed']} failed, "
                              f"{doc['not_run']} not run ({doc['seconds']} s)",
                      f"report: {folder}/validation.html (SHA-256 {doc['sha256']})",
                      f"signed by {sig['user']} at {sig['signed_at']}" if sig else "unsigned"])


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str, int]:
    import os
    import tempfile
    from datetime import datetime, timezone
    from pathlib import Path

    from pipeline.config import load_settings
    from pipeline.errors import InputError
    from pipeline.private_home import mask_others
    from pipeline.validation import iq, oq, report
    from pipeline.validation.checks import check
    from pipeline.validation.manifest import MANIFEST, load

    started = datetime.now(timezone.utc)
    settings = load_settings()          # an unusable setting stops here: exit 2, one line naming it
    checks = [check(iq.IQ, "settings valid", "every setting known, typed and in range", "valid", True)]
    home = settings.home
    mask_others()                       # what this run creates (the database, the report) is private, as for any command
    home.mkdir(parents=True, exist_ok=True, mode=0o700)        # as any command makes it on first use
    try:
        release = load(MANIFEST)
    except (OSError, ValueError) as exc:
        release = None
        checks.append(check(iq.IQ, "release manifest", f"{MANIFEST} readable", str(exc), False))
    if release is not None:
        checks += iq.python_version(release) + iq.dependencies(release) + iq.files(release)
    url = settings.effective_database_url
    shown = _shown(url)
    checks += iq.database(url, shown)
    db_ok = all(c.passed for c in checks if c.name.startswith("database"))
    sign_as = None
    if db_ok:                                   # who signs, proven before the run (a wrong password: exit 2)
        sign_as = _signer(settings, args)
    checks += iq.prefect(home, dict(os.environ)) + iq.home_permissions(
        home, None if settings.database_url else settings.sqlite_path)
    with tempfile.TemporaryDirectory(prefix="mhladr-oq-") as scratch:
        checks += oq.run(Path(scratch))
    doc = report.document(checks, report.environment(home, shown), started, datetime.now(timezone.utc))
    if sign_as is not None:
        doc = {**doc, "signature": _record(settings, doc, sign_as)}
    folder = Path(args.report) if args.report else home / "validation" / started.strftime("%Y%m%dT%H%M%SZ")
    try:
        report.write(doc, folder)
    except OSError as exc:
        raise InputError(str(folder), "bad_input", f"cannot write the report ({exc.strerror})") from None
    return doc, human(doc, str(folder)), 0 if doc["ok"] else EXIT_FAILED


def _shown(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _signer(settings: Any, args: argparse.Namespace) -> Any:
    """The admin running a validation, password checked (None in single-user mode)."""
    from app.identity import acting
    from pipeline.errors import InputError
    from pipeline.signing import SignatureRefused, authenticate
    from pipeline.store import open_store

    with open_store(settings) as store:
        who = acting(store, "validate")
        person = signer(who, args)
        try:
            return person if authenticate(store, person, "validation run") else None
        except SignatureRefused as exc:
            raise InputError("validate", "signature_refused", str(exc)) from None


def _record(settings: Any, doc: dict[str, Any], person: Any) -> dict[str, str] | None:
    """The run in the audit trail (its report SHA-256 and verdict), signed by ``person``."""
    from pipeline.store import open_store
    from pipeline.store.signatures import sign_in

    with open_store(settings) as store, store.write(person.name) as tx:
        tx.audit("validation_run", "validation", doc["sha256"][:16], None,
                 {"sha256": doc["sha256"], "ok": doc["ok"], "checks": doc["checks"], "failed": doc["failed"]})
        return sign_in(tx, "audit_log", tx.head.seq, person.name, "validation run performed").manifestation()
