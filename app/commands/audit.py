"""``mhladr audit verify [--head HASH@SEQ]``: check that nothing stored changed behind the
application's back (the audit chain, and every stored row against its last audited digest).

Exit 0 and ``{"ok": true, "entries", "problems": []}`` when everything matches; exit 1 and
``{"ok": false, "problems": [{"table", "row", "what"}]}`` otherwise (DESIGN.md, Additions). A stored
copy of a rule (a result's ICU day, window, cut-off) that differs from what the rule derives from the
stored facts is one of the problems, and also listed under ``"derived"`` with its ``measurement_id``,
``version``, ``file``, ``column``, ``stored`` and ``derived`` values (:mod:`pipeline.store.derived`). The
chain's head is printed to be published (the daily screening digest records it too); ``--head``
checks the chain against a head published earlier, so a chain rewritten from the start is caught.

``mhladr audit report [--since DATE] [--html FILE] [--sign]``: the audit-trail review
(:mod:`pipeline.audit_review`); ``--sign`` records, signed, that the period was reviewed.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import date
from typing import Any

from app.common import add_json, command
from app.signing import add_signing, signer

EXIT_PROBLEMS = 1


def register(subparsers: Any) -> None:
    parser = command(subparsers, "audit", summary="verify the audit trail and every stored result against it",
                     description="`audit verify` recomputes the hash chain of the audit trail and compares every\n"
                                 "stored row with the digest its last audit entry recorded: a row edited, deleted\n"
                                 "or inserted behind the application is named, even with the database's triggers\n"
                                 "dropped; and every stored copy of a rule (ICU day, window, cut-off) against what\n"
                                 "the rule derives from the stored facts. It prints the chain head to publish; --head\n"
                                 "checks the chain against an earlier published head (a rewritten chain).\n"
                                 "Exit 0: nothing changed; 1: problems.",
                     examples="mhladr audit verify\n"
                              "mhladr audit verify --head 3f2a...c9@1042 --json")
    sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser(
        "verify", help="exit 0 when nothing changed behind the application's back, 1 (with the problems) otherwise",
        description="Recompute the audit hash chain and compare every stored row (files, calibrations, "
                    "measurements, review decisions, patients, screening decisions, users, outbox) with the "
                    "digest its last audit entry recorded, and every stored copy of a rule (a result's ICU day, "
                    "window, cut-off) against what the rule derives from the stored facts. "
                    "Example: mhladr audit verify --head HASH@SEQ")
    verify.add_argument("--head", metavar="HASH@SEQ",
                        help="a chain head published earlier (printed by this command and the screening digest)")
    add_json(verify)
    verify.set_defaults(func=run_verify)
    report = sub.add_parser(
        "report", help="the audit-trail review: decisions, overrides, refused access, odd hours, exports, problems",
        description="The review a sponsor's monitor or an inspector reads (EMA 2023, 6.2.2), grouped and counted, "
                    "each item naming the record, the person and the time: signed records, supersedes, "
                    "rejections, gate corrections, reprocess, refused sign-ins and signatures, user and role "
                    "changes, acting for others, unblinded reads, exports and their failures, persons' actions "
                    "outside lab_hours, and the integrity problems audit verify finds. --sign records (signed, "
                    "your password again) that the period was reviewed. Role: admin. "
                    "Example: mhladr audit report --since 2026-03-01 --html review.html --sign")
    report.add_argument("--since", type=_day, metavar="DATE",
                        help="from this local date (default: since the last recorded review, else from the start)")
    report.add_argument("--html", metavar="FILE", help="also write the review as an HTML page")
    report.add_argument("--sign", action="store_true", help="record, signed, that this period was reviewed")
    add_signing(report)
    add_json(report)
    report.set_defaults(func=run_report)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def human_report(doc: dict[str, Any]) -> str:
    lines = [f"audit-trail review {doc['since'] or 'from the start'} .. {doc['until']} "
             f"({doc['entries']:,} entries; lab hours {doc['lab_hours']}; head {doc['head']})"]
    for c in doc["categories"]:
        lines.append(f"{c['count']:>6}  {c['title']}")
        for item in c["items"][:5]:
            lines.append(f"        {item['at'] or '-':<32} {item['actor']:<14} {item['record']:<28} "
                         f"{item['what'][:60]}")
        if c["count"] > 5:
            lines.append(f"        ... {c['count'] - 5} more (--json or --html for all)")
    sig = doc.get("signature")
    lines.append(f"signed by {sig['user']} at {sig['signed_at']}: {sig['meaning']}" if sig
                 else "not recorded as reviewed (--sign records it)" if not doc.get("recorded")
                 else "recorded as reviewed, unsigned (single-user mode)")
    return "\n".join(lines)


def run_report(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pathlib import Path

    from app.identity import acting
    from pipeline.audit_review import LabHours, build, record_review, start_of, to_html
    from pipeline.config import load_settings
    from pipeline.errors import InputError
    from pipeline.signing import SignatureRefused
    from pipeline.store import open_store

    settings = load_settings()
    with open_store(settings) as store:
        who = acting(store, "audit report")
        done = build(store, start_of(args.since) if args.since else None, LabHours.parse(settings.lab_hours))
        recorded = False
        if args.sign:
            try:
                signature = record_review(store, done, signer(who, args))
            except SignatureRefused as exc:
                raise InputError("audit report --sign", "signature_refused", str(exc)) from None
            done = replace(done, signature=signature.manifestation() if signature else None)
            recorded = True
    if args.html:
        try:
            Path(args.html).write_text(to_html(done), encoding="utf-8")
        except OSError as exc:
            raise InputError(args.html, "bad_input", f"cannot write the HTML review ({exc.strerror})") from None
    doc = {**done.as_dict(), "recorded": recorded}
    return doc, human_report(doc)


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
