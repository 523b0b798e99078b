"""``mhladr patients import REGISTRY.csv``: load the patient registry into the results database."""

from __future__ import annotations

import argparse
from typing import Any



def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("patients", help="manage the patient registry")
    sub = parser.add_subparsers(dest="patients_command", required=True)
    imp = sub.add_parser("import", help="import a registry CSV (idempotent; bad rows reported)")
    imp.add_argument("csv", help="patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion[,randomized_at]")
    imp.add_argument("--actor", default="", help="who imports: single-user mode only (default: the login), "
                                                 "or an admin's script")
    imp.add_argument("--json", action="store_true", help="print one JSON document")
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings
    from pipeline.registry import import_registry
    from pipeline.store import open_store

    from app.identity import acting

    with open_store(load_settings()) as store:
        who = acting(store, "patients import", actor=args.actor)
        summary, errors = import_registry(store, args.csv, actor=who.name)
    document = {
        "file": args.csv,
        "added": list(summary.added),
        "changed": list(summary.changed),
        "unchanged": len(summary.unchanged),
        "errors": [e.as_dict() for e in errors],
    }
    lines = [f"{args.csv}: {len(summary.added)} added, {len(summary.changed)} changed, "
             f"{len(summary.unchanged)} unchanged, {len(errors)} rejected"]
    lines += [f"  line {e.line}: {e.reason}" for e in errors]
    return document, "\n".join(lines)
