"""``mhladr patients import REGISTRY.csv``: load the patient registry into the results database."""

from __future__ import annotations

import argparse
from typing import Any

from app.common import add_json, command, optional_file


def register(subparsers: Any) -> None:
    parser = command(subparsers, "patients", summary="load the patient registry into the results database",
                     description="The registry CSV holds the clinical facts screening needs:\n"
                                 "patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion[,randomized_at]\n"
                                 "(ISO dates or date-times; yes/no; empty exclusion = none). Good rows are loaded,\n"
                                 "bad rows reported with their line; importing the same file again changes nothing.",
                     examples="mhladr patients import registry.csv\n"
                              "mhladr patients import registry.csv --actor coordinator1 --json")
    sub = parser.add_subparsers(dest="patients_command", required=True, metavar="import")
    imp = sub.add_parser("import", help="import a registry CSV (idempotent; bad rows reported)",
                         description="Import a registry CSV (idempotent; bad rows reported with their line).")
    imp.add_argument("csv", help="patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion[,randomized_at]")
    imp.add_argument("--actor", default="", help="who imports: single-user mode only (default: the login), "
                                                 "or an admin's script")
    add_json(imp)
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings
    from pipeline.registry import import_registry
    from pipeline.store import open_store

    from app.identity import acting

    optional_file(args.csv)
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
