"""The qualification report: every check (criterion, observed, pass/fail), the environment, and
the report's own SHA-256 = SHA-256 of the canonical JSON of the report without its ``sha256`` and
``signature`` fields (so anyone can recompute it; the signed audit entry records the same
digest). Written as ``validation.json`` and ``validation.html``."""

from __future__ import annotations

import getpass
import hashlib
import html
import json
import platform
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from pipeline.audit import canonical_json, utc_iso
from pipeline.validation.checks import Check

UNSIGNED_FIELDS = ("sha256", "signature")


def environment(home: Path, database: str) -> dict[str, str]:
    return {"host": platform.node(), "os": platform.platform(), "python": platform.python_version(),
            "mhladr": metadata.version("mhladr"), "login": getpass.getuser(), "home": str(home),
            "database": database}


def document(checks: Sequence[Check], env: dict[str, str], started: datetime, finished: datetime) -> dict[str, Any]:
    failed = [c for c in checks if c.passed is False]
    doc = {"ok": not failed, "checks": len(checks), "passed": sum(1 for c in checks if c.passed),
           "failed": len(failed), "not_run": sum(1 for c in checks if c.passed is None),
           "started": utc_iso(started), "finished": utc_iso(finished),
           "seconds": round((finished - started).total_seconds(), 1), "environment": env,
           "results": [c.as_dict() for c in checks]}
    return {**doc, "sha256": digest(doc)}


def digest(doc: dict[str, Any]) -> str:
    """The report's SHA-256 (see the module)."""
    body = {k: v for k, v in doc.items() if k not in UNSIGNED_FIELDS}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def to_html(doc: dict[str, Any]) -> str:
    esc = html.escape
    env = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in doc["environment"].items())
    rows = "".join(f'<tr class="{r["result"].replace(" ", "-")}"><td>{esc(r["stage"])}</td><td>{esc(r["name"])}</td>'
                   f'<td>{esc(r["criterion"])}</td><td>{esc(r["observed"])}</td><td>{esc(r["result"])}</td></tr>'
                   for r in doc["results"])
    sig = doc.get("signature")
    signed = (f'<p class="sig">Signed by {esc(sig["user"])}, {esc(sig["signed_at"])}: {esc(sig["meaning"])}</p>'
              if sig else '<p class="unsigned">Unsigned (single-user mode, or the results database did not answer).</p>')
    verdict = "PASS: every check met its acceptance criterion" if doc["ok"] else \
        f"FAIL: {doc['failed']} check(s) did not meet their acceptance criterion"
    style = ("body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}table{border-collapse:collapse}"
             "td,th{padding:3px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}"
             ".fail td{background:#fde8e8}.not-run td{color:#777}.verdict{font-size:1.2em;font-weight:bold}"
             ".ok{color:#070}.bad{color:#b00}.sig{background:#eef7ee;padding:.5em}.unsigned{background:#fff7e0;padding:.5em}"
             "code{word-break:break-all}")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>mhladr validation</title>'
            f"<style>{style}</style></head><body><h1>mhladr installation and operational qualification</h1>"
            f'<p class="verdict {"ok" if doc["ok"] else "bad"}">{esc(verdict)}</p>'
            f"<p>{doc['checks']} checks: {doc['passed']} passed, {doc['failed']} failed, {doc['not_run']} not run; "
            f"{esc(doc['started'])} to {esc(doc['finished'])} ({doc['seconds']} s)</p>{signed}"
            f"<p>Report SHA-256: <code>{esc(doc['sha256'])}</code> (of validation.json without its sha256 and "
            f"signature fields)</p><h2>Environment</h2><table>{env}</table><h2>Checks</h2><table>"
            f"<tr><th>stage</th><th>check</th><th>acceptance criterion</th><th>observed</th><th>result</th></tr>"
            f"{rows}</table></body></html>\n")


def write(doc: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    data, page = folder / "validation.json", folder / "validation.html"
    data.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    page.write_text(to_html(doc), encoding="utf-8")
    return data, page
