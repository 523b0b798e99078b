"""``mhladr review list|approve|reject``: technicians decide QC ``review`` results.

Only approved results count for eligibility; every decision is audited and re-evaluates the
patient. A result is decided once: a second decision is refused, naming the first, unless
``--supersede`` (both stay in the record, each with its actor and reason). Values collected after
randomization are withheld from the list (blinding; the reports of such tubes withhold them too).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.common import add_json, command
from app.identity import add_acting

def register(subparsers: Any) -> None:
    parser = command(subparsers, "review", summary="a technician's decision on results QC held for review",
                     description="A result with QC review counts for screening only once approved. `review list`\n"
                                 "shows what waits (with the file and its report); approve or reject needs a\n"
                                 "reason, kept in the audit trail with who decided. A result is decided once: a\n"
                                 "second decision is refused, naming the first, unless --supersede (both stay).",
                     examples="mhladr review list\n"
                              "mhladr review approve 12 --reason 'smear checked: monocytes clearly apart'\n"
                              "mhladr review reject 12 --reason 'clot in the tube' --supersede")
    sub = parser.add_subparsers(dest="review_command", required=True)
    listing = sub.add_parser("list", help="results waiting for a technician")
    add_json(listing)
    listing.set_defaults(func=run_list)
    for decision in ("approve", "reject"):
        cmd = sub.add_parser(decision, help=f"{decision} a QC review result",
                             description=f"{decision.capitalize()} a QC review result (audited). Example: "
                                         f"mhladr review {decision} 12 --reason 'smear checked'")
        cmd.add_argument("id", type=int, help="measurement id (from `review list`)")
        cmd.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        cmd.add_argument("--supersede", action="store_true",
                         help="replace an earlier decision on this result (both stay in the record)")
        add_acting(cmd)
        add_json(cmd)
        cmd.set_defaults(func=run_decision, decision=decision)


def human_list(items: list[dict[str, Any]]) -> str:
    if not items:
        return "nothing to review"
    lines = [f"{'id':>5}  {'patient':<12} {'collected':<10}  {'AB/C':>8}  {'file':<32} QC reasons",]
    for i in items:
        value = "withheld" if i["blinded"] else i["abc_text"]
        lines.append(f"{i['measurement_id']:>5}  {i['patient_id']:<12} {i['collection_date']:<10}  {value:>8}  "
                     f"{Path(i['file']).name or '-':<32} {'; '.join(i['qc']['reasons'])}")
        lines.append(f"{'':>7}report: {i['report']}")
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from app.identity import acting
    from pipeline import formatting as fmt
    from pipeline.blinding import withheld_reasons
    from pipeline.config import load_settings
    from pipeline.report.layout import report_path
    from pipeline.store import open_store

    settings = load_settings()
    with open_store(settings) as store:
        acting(store, "review list")
        post_randomization = {mm.id for mm in store.measurements.blinded()}
        items = []
        for mm in store.measurements.pending():
            blinded = mm.id in post_randomization
            qc = mm.qc.as_dict()
            if blinded:
                qc["reasons"] = list(withheld_reasons(mm.qc.reasons))
            items.append({"measurement_id": mm.id, "patient_id": mm.patient_id,
                          "collection_date": mm.collection_date.isoformat(), "icu_day": mm.measurement.icu_day,
                          "abc": None if blinded else mm.abc, "abc_text": "" if blinded else fmt.abc(mm.abc),
                          "blinded": blinded, "monocytes": mm.measurement.monocytes, "qc": qc,
                          "file": mm.measurement.file, "file_sha256": mm.file_sha256,
                          "report": str(report_path(settings.reports_dir, mm.measurement.file,
                                                    mm.file_sha256))})
    text = human_list(items)
    for item in items:
        del item["abc_text"]
    return items, text


def run_decision(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.report.layout import redraw_sample_report
    from pipeline.store import open_store
    from pipeline.store.measurements import PAST

    where = f"measurement {args.id}"
    settings = load_settings()
    with open_store(settings) as store:
        who = acting(store, f"review {args.decision}", actor=args.actor)
        try:
            review = store.measurements.review(args.id, args.decision, args.reason, who.name,
                                               supersede=args.supersede)
        except KeyError:
            raise InputError(where, BAD_INPUT, "no such measurement (see `mhladr review list`)") from None
        except ValueError as exc:
            raise InputError(where, BAD_INPUT, str(exc)) from None
        meas = store.measurements.get(args.id)
        screening = store.screening.history(meas.patient_id)[-1] if meas else None
        redraw_sample_report(store, settings.reports_dir, args.id)     # its next step is the decision now
    document = {"measurement_id": review.measurement_id, "decision": review.decision,
                "reason": review.reason, "actor": review.actor,
                "decided_at": review.decided_at.isoformat(), "supersedes": review.supersedes,
                "screening": screening.as_dict() if screening else None}
    text = f"measurement {review.measurement_id}: {PAST[review.decision]} by {review.actor}"
    if review.supersedes is not None:
        text += f" (supersedes decision {review.supersedes})"
    if screening:
        text += f"; patient {screening.patient_id} is {screening.status}"
    return document, text
