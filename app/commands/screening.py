"""``mhladr screening``: the screening log (one status per patient) from the results database.

Results collected after a patient's randomization stay out unless ``--unblinded``, which needs
the ``unblinded`` role (any user in single-user mode); such a read is recorded in the audit trail.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.common import add_json, command
from app.identity import add_acting


def register(subparsers: Any) -> None:
    parser = command(subparsers, "screening", summary="the trial's screening log: one status per patient",
                     description="Every patient re-evaluated for today (or --today): eligible (awaiting consent),\n"
                                 "not_eligible or pending, with one reason per criterion (SOFA, ventilation,\n"
                                 "exclusions, a decisive mHLA-DR < 8,000 AB/C on ICU day 5-10). Values collected\n"
                                 "after a patient's randomization are withheld unless --unblinded (role unblinded;\n"
                                 "each read audited).",
                     examples="mhladr screening\n"
                              "mhladr screening --today 2026-03-20 --json")
    parser.add_argument("--today", help="evaluate as of this date (YYYY-MM-DD; default: today)")
    add_acting(parser, unblinding=True)
    add_json(parser)
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
    from app.common import parse_today
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.screening import screening_rows
    from pipeline.store import open_store

    today = parse_today(args.today)
    with open_store(load_settings()) as store:
        who = acting(store, "screening --unblinded" if args.unblinded else "screening", actor=args.actor)
        rows = screening_rows(store, today, who.name if args.unblinded else None)
    return rows, human(rows)
