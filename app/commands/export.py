"""``mhladr export [--sink webhook|fhir|csv|all] [--rebuild]``: push results to the configured sinks.

Each result is exported as numbered versions of one record (FHIR: one Observation per result,
updated in place): a version is queued once per sink, then every due item is delivered, each
result's versions in order; failures stay queued for the next export (nothing is lost).
``--sink csv --rebuild`` rewrites the eCRF file from the store. Results collected after
randomization stay out unless ``--unblinded`` (role unblinded; audited).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from app.common import add_json, command
from app.identity import add_acting
from pipeline.sinks import SINK_NAMES

SINK_SETTINGS = {"webhook": "WEBHOOK_URL", "fhir": "FHIR_DIR", "csv": "CSV_EXPORT"}

if TYPE_CHECKING:
    from pipeline.sinks import Sink
    from pipeline.store import Store


def register(subparsers: Any) -> None:
    parser = command(subparsers, "export", summary="push results to the webhook, FHIR and eCRF CSV sinks",
                     description="Every stored result goes out as numbered versions of one record (FHIR: one\n"
                                 "Observation per result, updated in place), each version delivered once per sink;\n"
                                 "a failed delivery stays queued for the next export. Sinks are switched on by\n"
                                 "settings: MHLADR_WEBHOOK_URL (HTTP POST), MHLADR_FHIR_DIR (Observation files),\n"
                                 "MHLADR_CSV_EXPORT (the eCRF CSV); README.md, Settings.",
                     examples="MHLADR_CSV_EXPORT=ecrf.csv mhladr export --sink csv\n"
                              "mhladr export --sink csv --rebuild        # rewrite the eCRF file from the store")
    parser.add_argument("--sink", choices=(*SINK_NAMES, "all"), default="all",
                        help="where to push (default: all, every sink switched on by MHLADR_WEBHOOK_URL, "
                             "MHLADR_FHIR_DIR, MHLADR_CSV_EXPORT)")
    parser.add_argument("--rebuild", action="store_true",
                        help="with --sink csv: rewrite the eCRF file from the store (every version)")
    add_acting(parser, unblinding=True)
    add_json(parser)
    parser.set_defaults(func=run)


def _export(store: "Store", wanted: tuple[str, ...], selected: "dict[str, Sink]", actor: str,
            unblinded: bool, rebuild: bool) -> dict[str, Any]:
    """Queue the results for the wanted sinks and deliver what is due, or rebuild the CSV (an
    unblinded export is audited first)."""
    from pipeline.sinks.outbox import deliver_outbox, enqueue_results, rebuild_csv

    if unblinded:
        blinded = store.measurements.blinded()
        store.audit.log_unblinded_read(actor, "unblinded_export", sorted({mm.patient_id for mm in blinded}),
                                       {"sinks": list(wanted), "measurements": [mm.id for mm in blinded]})
    if rebuild:
        rows = rebuild_csv(store, selected["csv"], store.clock(), include_blinded=unblinded, actor=actor)
        return {"sinks": ["csv"], "rebuilt": rows}
    queued = enqueue_results(store, wanted, include_blinded=unblinded, actor=actor)
    report = deliver_outbox(store, store.clock(), selected, actor=actor)
    return {"sinks": list(wanted), "queued": queued, "delivered": len(report.delivered),
            "failed": len(report.failed), "pending": report.queued}


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.sinks.outbox import configured_sinks
    from pipeline.store import open_store

    if args.rebuild and args.sink != "csv":
        raise InputError("--rebuild", BAD_INPUT, "--rebuild rewrites the eCRF CSV: use it with --sink csv")
    settings = load_settings()
    with open_store(settings) as store:
        who = acting(store, "export --unblinded" if args.unblinded else "export", actor=args.actor)   # role first
        sinks = configured_sinks(settings)
        try:
            wanted = tuple(sinks) if args.sink == "all" else (args.sink,)
            missing = [name for name in wanted if name not in sinks]
            if not wanted:
                raise InputError("export", BAD_INPUT, "no sink is on: set MHLADR_WEBHOOK_URL (HTTP POST), "
                                                      "MHLADR_FHIR_DIR (FHIR Observation files) or MHLADR_CSV_EXPORT "
                                                      "(eCRF CSV) in the environment or settings.toml (README.md, "
                                                      "Settings)")
            if missing:
                raise InputError("--sink", BAD_INPUT,
                                 f"sink {missing[0]} is off: set MHLADR_{SINK_SETTINGS[missing[0]]}")
            document = _export(store, wanted, {name: sinks[name] for name in wanted}, who.name, args.unblinded,
                               args.rebuild)
        finally:
            for sink in sinks.values():
                sink.close()
    if args.rebuild:
        return document, f"{settings.csv_export}: rewritten with {document['rebuilt']} row(s) from the store"
    text = (f"sinks {', '.join(wanted)}: {document['queued']} queued, {document['delivered']} delivered, "
            f"{document['failed']} failed, {document['pending']} still pending")
    return document, text
