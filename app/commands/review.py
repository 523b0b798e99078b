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
from app.signing import add_signing, signer


def measurement_id(text: str) -> int:
    """A measurement id as `review list` (``12``) or `results` (``m12``) shows it."""
    digits = text.strip().removeprefix("m").removeprefix("M")
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a measurement id (e.g. 12 or m12 from `mhladr results`)")
    return int(digits)


def register(subparsers: Any) -> None:
    parser = command(subparsers, "review", summary="a technician's decision on results QC held for review",
                     description="A result with QC review counts for screening only once approved. `review list`\n"
                                 "shows what waits (with the file and its report); approve or reject needs a\n"
                                 "reason, kept in the audit trail with who decided. A result is decided once: a\n"
                                 "second decision is refused, naming the first, unless --supersede (both stay).\n"
                                 "Once users exist a decision is an electronic signature: your password is asked\n"
                                 "again (or read with --password-stdin); a wrong one records nothing. In\n"
                                 "single-user mode decisions stay unsigned, marked so.",
                     examples="mhladr review list\n"
                              "mhladr review approve 12 --reason 'smear checked: monocytes clearly apart'\n"
                              "printf '%s\\n' \"$PASSWORD\" | mhladr review approve 12 --reason 'smear checked' "
                              "--password-stdin\n"
                              "mhladr review reject 12 --reason 'clot in the tube' --supersede")
    sub = parser.add_subparsers(dest="review_command", required=True)
    listing = sub.add_parser("list", help="results waiting for a technician")
    add_json(listing)
    listing.set_defaults(func=run_list)
    for decision in ("approve", "reject"):
        cmd = sub.add_parser(decision, help=f"{decision} a QC review result",
                             description=f"{decision.capitalize()} a QC review result (audited). Example: "
                                         f"mhladr review {decision} 12 --reason 'smear checked'")
        cmd.add_argument("id", type=measurement_id, help="measurement id (from `review list`, or `results`: 12 or m12)")
        cmd.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        cmd.add_argument("--supersede", action="store_true",
                         help="replace an earlier decision on this result (both stay in the record)")
        add_acting(cmd)
        add_signing(cmd)
        add_json(cmd)
        cmd.set_defaults(func=run_decision, decision=decision)
    regate = sub.add_parser("regate", help="apply a corrected monocyte gate (GatingML 2.0): a new version of the result",
                            description="Gate the tube again with a corrected monocyte gate and store the new AB/C as\n"
                                        "the next version of the same result (audited; earlier versions kept; screening\n"
                                        "re-evaluated; pushed as FHIR 'amended'). The GatingML's final gate id must be\n"
                                        "'monocytes', e.g. the tube's own `analyze --gating-ml` export (beside its report)\n"
                                        "edited in FlowJo or FlowKit. Example: mhladr review regate m12 --gating-ml\n"
                                        "PT-0042.gating.xml --reason 'granulocyte tail excluded'")
    regate.add_argument("id", type=measurement_id, help="measurement id (12 or m12)")
    regate.add_argument("--gating-ml", required=True, help="the corrected gates, GatingML 2.0 (final gate id 'monocytes')")
    regate.add_argument("--reason", required=True, help="why the gate was corrected (kept in the audit trail)")
    add_acting(regate)
    add_signing(regate)
    add_json(regate)
    regate.set_defaults(func=run_regate)


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
        pending = store.measurements.pending()
        signatures = store.signatures.of_reviews(mm.id for mm in pending)
        items = []
        for mm in pending:
            blinded = mm.id in post_randomization
            qc = mm.qc.as_dict()
            if blinded:
                qc["reasons"] = list(withheld_reasons(mm.qc.reasons))
            items.append({"measurement_id": mm.id, "patient_id": mm.patient_id,
                          "collection_date": mm.collection_date.isoformat(), "icu_day": mm.measurement.icu_day,
                          "abc": None if blinded else mm.abc, "abc_text": "" if blinded else fmt.abc(mm.abc),
                          "blinded": blinded, "monocytes": mm.measurement.monocytes, "qc": qc,
                          "file": mm.measurement.file, "file_sha256": mm.file_sha256,
                          "signature": manifestation(signatures.get(mm.id)),
                          "report": str(report_path(settings.reports_dir, mm.measurement.file,
                                                    mm.file_sha256))})
    text = human_list(items)
    for item in items:
        del item["abc_text"]
    return items, text


def manifestation(signature: Any) -> dict[str, str] | None:
    """A signature as ``{"user", "meaning", "signed_at"}`` (None: unsigned or undecided)."""
    return signature.manifestation() if signature is not None else None


def run_decision(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.decisions import decide
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.signing import SignatureRefused
    from pipeline.store import open_store
    from pipeline.store.measurements import PAST
    from pipeline.store.signatures import UNSIGNED

    where = f"measurement {args.id}"
    settings = load_settings()
    with open_store(settings) as store:
        who = acting(store, f"review {args.decision}", actor=args.actor)
        try:
            done = decide(store, settings.reports_dir, args.id, args.decision, args.reason, signer(who, args),
                          supersede=args.supersede)
        except KeyError:
            raise InputError(where, BAD_INPUT, "no such measurement (see `mhladr review list`)") from None
        except SignatureRefused as exc:
            raise InputError(where, "signature_refused", str(exc)) from None
        except ValueError as exc:
            raise InputError(where, BAD_INPUT, str(exc)) from None
    review, screening = done.review, done.screening
    text = f"measurement {review.measurement_id}: {PAST[review.decision]} by {review.actor}"
    if review.supersedes is not None:
        text += f" (supersedes decision {review.supersedes})"
    text += f"; {done.signature or UNSIGNED}"
    if screening:
        text += f"; patient {screening.patient_id} is {screening.status}"
    return done.as_dict(), text


def run_regate(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline import formatting as fmt
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.regate import regate
    from pipeline.signing import SignatureRefused
    from pipeline.store import open_store
    from pipeline.store.signatures import UNSIGNED

    where = f"measurement {args.id}"
    if not Path(args.gating_ml).is_file():
        raise InputError(args.gating_ml, BAD_INPUT, "no such GatingML file")
    settings = load_settings()
    with open_store(settings) as store:
        who = acting(store, "review regate", actor=args.actor)
        try:
            before, after = regate(store, settings, args.id, reason=args.reason, signer=signer(who, args),
                                   gating_ml=args.gating_ml)
        except KeyError:
            raise InputError(where, BAD_INPUT, "no such measurement (see `mhladr results`)") from None
        except SignatureRefused as exc:
            raise InputError(where, "signature_refused", str(exc)) from None
        signature = store.signatures.of("measurement_versions", [after.version_id]).get(str(after.version_id)) \
            if after.version_id is not None else None
        blinded = store.measurements.is_blinded(after)
        screening = store.screening.history(after.patient_id)[-1] if after.patient_id else None
    value = (lambda v: None) if blinded else (lambda v: v)  # noqa: E731 - a blinded value is withheld
    document = {"measurement_id": after.id, "version": after.version, "previous_version": before.version,
                "abc": value(after.abc), "previous_abc": value(before.abc), "monocytes": after.measurement.monocytes,
                "previous_monocytes": before.measurement.monocytes, "qc": after.qc.as_dict() if not blinded else
                {"status": after.qc.status, "reasons": []}, "reason": args.reason, "actor": who.name,
                "blinded": blinded, "screening": screening.as_dict() if screening else None,
                "signature": manifestation(signature)}
    shown = "withheld (collected after randomization)" if blinded else \
        f"AB/C {fmt.abc(before.abc)} -> {fmt.abc(after.abc)}"
    text = (f"measurement {after.id}: version {after.version} stored by {who.name} ({shown}; monocytes "
            f"{before.measurement.monocytes:,} -> {after.measurement.monocytes:,}; QC {after.qc.status}); "
            f"{signature or UNSIGNED}")
    if screening:
        text += f"; patient {screening.patient_id} is {screening.status}"
    return document, text
