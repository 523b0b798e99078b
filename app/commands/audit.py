"""``mhladr audit verify [--head HASH@SEQ]``: check that nothing stored changed behind the
application's back (the audit chain, and every stored row against its last audited digest).

Exit 0 and ``{"ok": true, "entries", "problems": []}`` when everything matches; exit 1 and
``{"ok": false, "problems": [{"table", "row", "what"}]}`` otherwise (DESIGN.md, Additions). The
chain's head is printed to be published (the daily screening digest records it too); ``--head``
checks the chain against a head published earlier, so a chain rewritten from the start is caught.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.common import add_json, command

EXIT_PROBLEMS = 1


def register(subparsers: Any) -> None:
    parser = command(subparsers, "audit", summary="verify the audit trail and every stored result against it",
                     description="`audit verify` recomputes the hash chain of the audit trail and compares every\n"
                                 "stored row with the digest its last audit entry recorded: a row edited, deleted\n"
                                 "or inserted behind the application is named, even with the database's triggers\n"
                                 "dropped. It prints the chain head to publish; --head checks the chain against an\n"
                                 "earlier published head (a rewritten chain). Exit 0: nothing changed; 1: problems.",
                     examples="mhladr audit verify\n"
                              "mhladr audit verify --head 3f2a...c9@1042 --json")
    sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser(
        "verify", help="exit 0 when nothing changed behind the application's back, 1 (with the problems) otherwise",
        description="Recompute the audit hash chain and compare every stored row (files, calibrations, "
                    "measurements, review decisions, patients, screening decisions, users, outbox) with the "
                    "digest its last audit entry recorded. Example: mhladr audit verify --head HASH@SEQ")
    verify.add_argument("--head", metavar="HASH@SEQ",
                        help="a chain head published earlier (printed by this command and the screening digest)")
    add_json(verify)
    verify.set_defaults(func=run_verify)


def human(doc: dict[str, Any]) -> str:
    lines = [f"{'ok' if doc['ok'] else 'PROBLEMS'}: {doc['entries']:,} audit entries, {doc['rows']:,} rows checked",
             f"chain head (publish it): {doc['head']}"]
    lines += [f"  {p['table']} {p['row']}: {p['what']}" for p in doc["problems"]]
    return "\n".join(lines)


def run_verify(args: argparse.Namespace) -> tuple[dict[str, Any], str, int]:
    from pipeline.audit import parse_head
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.store import open_store

    try:
        published = parse_head(args.head) if args.head else None
    except ValueError as exc:
        raise InputError("--head", BAD_INPUT, str(exc)) from None
    with open_store(load_settings()) as store:      # no role: see app.identity
        doc = store.audit.verify(published).as_dict()
    return doc, human(doc), 0 if doc["ok"] else EXIT_PROBLEMS
