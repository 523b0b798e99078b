"""``mhladr review list|approve|reject``: technicians decide QC ``review`` results.

Only approved results count for eligibility; every decision is audited and re-evaluates the
patient. Values collected after randomization are not shown in the list (blinding).
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any



def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("review", help="review QC 'review' results")
    sub = parser.add_subparsers(dest="review_command", required=True)
    listing = sub.add_parser("list", help="results waiting for a technician")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(func=run_list)
    for decision in ("approve", "reject"):
        cmd = sub.add_parser(decision, help=f"{decision} a result")
        cmd.add_argument("id", type=int, help="measurement id (from `review list`)")
        cmd.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        cmd.add_argument("--actor", default="", help="technician name (default: login name)")
        cmd.add_argument("--json", action="store_true", help="print one JSON document")
        cmd.set_defaults(func=run_decision, decision=decision)


def run_list(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from pipeline.config import load_settings
    from pipeline.store import open_store

    with open_store(load_settings()) as store:
        post_randomization = {mm.id for mm in store.measurements.blinded()}
        items = []
        for mm in store.measurements.pending():
            blinded = mm.id in post_randomization
            items.append({"measurement_id": mm.id, "patient_id": mm.patient_id,
                          "collection_date": mm.collection_date.isoformat(), "icu_day": mm.measurement.icu_day,
                          "abc": None if blinded else mm.abc, "blinded": blinded,
                          "monocytes": mm.measurement.monocytes, "qc": mm.qc.as_dict(),
                          "file_sha256": mm.file_sha256})
    lines = [f"{i['measurement_id']:>5}  {i['patient_id']:<12} {i['collection_date']}  "
             f"{'blinded' if i['blinded'] else format(i['abc'] or 0, ',.0f'):>8}  {'; '.join(i['qc']['reasons'])}"
             for i in items]
    return items, "\n".join(lines) or "nothing to review"


def run_decision(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.store import open_store

    actor = args.actor.strip() or getpass.getuser()
    with open_store(load_settings()) as store:
        try:
            review = store.measurements.review(args.id, args.decision, args.reason, actor)
        except KeyError:
            raise InputError(f"measurement {args.id}", BAD_INPUT, "no such measurement") from None
        except ValueError as exc:
            raise InputError(f"measurement {args.id}", BAD_INPUT, str(exc)) from None
        meas = store.measurements.get(args.id)
        screening = store.screening.history(meas.patient_id)[-1] if meas else None
    document = {"measurement_id": review.measurement_id, "decision": review.decision,
                "reason": review.reason, "actor": review.actor,
                "decided_at": review.decided_at.isoformat(),
                "screening": screening.as_dict() if screening else None}
    text = f"measurement {review.measurement_id}: {review.decision}d by {review.actor}"
    if screening:
        text += f"; patient {screening.patient_id} is {screening.status}"
    return document, text
