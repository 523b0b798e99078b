"""``mhladr screening``: the screening log (one status per patient) from the results database.

Results collected after a patient's randomization stay out unless ``--unblinded --actor NAME``
is given; such a read is recorded in the audit trail.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from pipeline.config import load_settings
from pipeline.errors import BAD_INPUT, InputError
from pipeline.screening import screening_rows
from pipeline.store import open_store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("screening", help="show the trial screening log")
    parser.add_argument("--today", help="evaluate as of this date (YYYY-MM-DD; default: today)")
    add_unblinding(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def add_unblinding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unblinded", action="store_true",
                        help="include results collected after randomization (audited)")
    parser.add_argument("--actor", default="", help="who reads or acts (required with --unblinded)")


def unblinded_actor(args: argparse.Namespace) -> str | None:
    """The named actor of an unblinded read, or None for a blinded one."""
    if not args.unblinded:
        return None
    if not args.actor.strip():
        raise InputError("--unblinded", BAD_INPUT, "an unblinded read needs --actor NAME")
    return args.actor.strip()


def parse_today(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("--today", BAD_INPUT, f"{text!r} is not a date (YYYY-MM-DD)") from None


def human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no patients"
    lines = [f"{'patient':<12} {'status':<13} {'AB/C':>8} {'day':>4}  reasons"]
    for r in rows:
        abc = f"{r['abc']:,.0f}" if r["abc"] is not None else "-"
        day = str(r["icu_day"]) if r["icu_day"] is not None else "-"
        lines.append(f"{r['patient_id']:<12} {r['status']:<13} {abc:>8} {day:>4}  {'; '.join(r['reasons'])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    actor = unblinded_actor(args)
    today = parse_today(args.today)
    store = open_store(load_settings())
    try:
        rows = screening_rows(store, today, actor)
    finally:
        store.close()
    return rows, human(rows)
