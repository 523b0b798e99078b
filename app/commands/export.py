"""``mhladr export [--sink webhook|fhir|csv|all]``: push results to the configured sinks.

Results are queued in the outbox once per sink and idempotency key, then every due item is
delivered; failures stay queued for the next export (nothing is lost).
"""

from __future__ import annotations

import argparse
from typing import Any

from typing import TYPE_CHECKING

from app.common import add_unblinding, unblinded_actor
from pipeline.sinks import SINK_NAMES

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.sinks import Sink
    from pipeline.sinks.outbox import DeliveryReport

def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("export", help="push results to the webhook / FHIR / CSV sinks")
    parser.add_argument("--sink", choices=(*SINK_NAMES, "all"), default="all")
    add_unblinding(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def _export(settings: "Settings", wanted: tuple[str, ...], selected: "dict[str, Sink]",
            actor: str | None) -> "tuple[int, DeliveryReport]":
    """Queue the results for the wanted sinks and deliver what is due (an unblinded export is
    audited first)."""
    from pipeline.sinks.outbox import deliver_outbox, enqueue_results
    from pipeline.store import open_store

    with open_store(settings) as store:
        if actor is not None:
            blinded = store.measurements.blinded()
            store.audit.log_unblinded_read(actor, "unblinded_export", sorted({mm.patient_id for mm in blinded}),
                                           {"sinks": list(wanted), "measurements": [mm.id for mm in blinded]})
        queued = enqueue_results(store, wanted, include_blinded=actor is not None, actor=actor or "export")
        return queued, deliver_outbox(store, store.clock(), selected, actor=actor or "export")


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.sinks.outbox import configured_sinks

    actor = unblinded_actor(args)
    settings = load_settings()
    sinks = configured_sinks(settings)
    try:
        wanted = tuple(sinks) if args.sink == "all" else (args.sink,)
        missing = [name for name in wanted if name not in sinks]
        if missing or not wanted:
            raise InputError("--sink", BAD_INPUT,
                             f"sink(s) not configured: {', '.join(missing) or 'none'} "
                             "(set MHLADR_WEBHOOK_URL, MHLADR_FHIR_DIR or MHLADR_CSV_EXPORT)")
        queued, report = _export(settings, wanted, {name: sinks[name] for name in wanted}, actor)
    finally:
        for sink in sinks.values():
            sink.close()
    document = {"sinks": list(wanted), "queued": queued, "delivered": len(report.delivered),
                "failed": len(report.failed), "pending": report.queued}
    text = (f"sinks {', '.join(wanted)}: {queued} queued, {len(report.delivered)} delivered, "
            f"{len(report.failed)} failed, {report.queued} still pending")
    return document, text
