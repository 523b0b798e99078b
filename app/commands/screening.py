"""``mhladr screening``: the screening log (one status per patient) from the results database.

Results collected after a patient's randomization stay out unless ``--unblinded --actor NAME``
is given; such a read is recorded in the audit trail.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.common import add_unblinding, parse_today, unblinded_actor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("screening", help="show the trial screening log")
    parser.add_argument("--today", help="evaluate as of this date (YYYY-MM-DD; default: today)")
    add_unblinding(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def human(rows: list[dict[str, Any]]) -> str:
    from pipeline import formatting as fmt

    if not rows:
        return "no patients"
    lines = [f"{'patient':<12} {'status':<13} {'AB/C':>8} {'day':>4}  reasons"]
    for r in rows:
        day = str(r["icu_day"]) if r["icu_day"] is not None else "-"
        lines.append(f"{r['patient_id']:<12} {r['status']:<13} {fmt.abc(r['abc']):>8} {day:>4}  "
                     f"{'; '.join(r['reasons'])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from pipeline.config import load_settings
    from pipeline.screening import screening_rows
    from pipeline.store import open_store

    actor = unblinded_actor(args)
    today = parse_today(args.today)
    with open_store(load_settings()) as store:
        rows = screening_rows(store, today, actor)
    return rows, human(rows)
