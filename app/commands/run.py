"""``mhladr run INBOX``: every FCS file of a folder through the Prefect batch flow.

The document is the contract's ``files`` and ``screening``, plus ``finished`` (samples of earlier
runs that found their beads in this one), ``registry_errors`` (rows of the registry that did
not load, with their line) and ``summary`` (counts by status and what needs a person). Embedded
by default: the project's own Prefect server (SQLite under ``MHLADR_HOME/prefect``) is started
on first use and reused afterwards (:mod:`flows.server`); ``PREFECT_API_URL`` in the environment
points the run at a shared server instead. The orchestrator's log lines go to the log file and
the Prefect UI, to the terminal only with ``--verbose``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from app.commands.screening import human as screening_table
from app.common import add_inputs, command, folder, optional_file, prefect_server
from app.identity import acting

STATUS_ORDER = ("calibrated", "measured", "pending_calibration", "qc_fail", "rejected", "duplicate")
RESULT_COLUMN = 65


def _detail(f: dict[str, Any], threshold: float) -> str:
    """What a technician wants to see on one line per file."""
    from pipeline import formatting as fmt

    if f["kind"] == "beads" and f.get("slope") is not None:
        return f"slope {f['slope']:.3f}  R^2 {f['r2']:.4f}  lot {f.get('lot') or '-'}"
    if f.get("abc") is not None:
        flag = {True: f"< {threshold:,.0f}", False: f">= {threshold:,.0f}",
                None: "no decision"}[f.get("below_threshold")]
        value = fmt.abc(f["abc"]) + (f" ({fmt.interval(f['abc_interval'])})" if f.get("abc_interval") else "")
        near = "  near the cut-off (P below {:.2f})".format(f["p_below_threshold"]) if f.get("near_cutoff") else ""
        return (f"{value:<24} {f.get('category') or '-':<17} {flag:<11} "
                f"day {f.get('icu_day') if f.get('icu_day') is not None else '-'}{near}")
    return (f.get("reasons") or ["-"])[0]


def row(f: dict[str, Any], threshold: float) -> list[str]:
    """One file as the table shows it: its line, then its other reasons indented below."""
    qc = (f.get("qc") or {}).get("status", "-")
    reasons = f.get("reasons") or []
    shown = reasons if f.get("abc") is not None or f.get("slope") is not None else reasons[1:]
    return ([f"{Path(f['file']).name:<36} {f['status']:<20} {qc:<7} {_detail(f, threshold)}"]
            + [f"{'':<{RESULT_COLUMN}}- {r}" for r in shown])


def summary(document: dict[str, Any], reviews_waiting: int, waiting_for_beads: int) -> dict[str, Any]:
    """Counts by status of this run's files, and what needs a person now."""
    counts = Counter(f["status"] for f in document["files"] + document["finished"])
    return {"files": len(document["files"]), "finished": len(document["finished"]),
            "by_status": {s: counts[s] for s in STATUS_ORDER if counts[s]},
            "reviews_waiting": reviews_waiting, "rejected": counts["rejected"],
            "pending_calibration": waiting_for_beads}


def summary_line(s: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in s["by_status"].items()) or "nothing new"
    finished = f" ({s['finished']} from earlier runs)" if s["finished"] else ""
    todo = [f"{s['reviews_waiting']} result(s) to review (mhladr review list)" if s["reviews_waiting"] else "",
            f"{s['rejected']} rejected file(s) (next step under each)" if s["rejected"] else "",
            f"{s['pending_calibration']} sample(s) waiting for their beads" if s["pending_calibration"] else ""]
    todo = [t for t in todo if t]
    return (f"{s['files']} file(s){finished}: {counts}. "
            + (f"Needs a person: {'; '.join(todo)}." if todo else "Nothing needs a person."))


def human(document: dict[str, Any], threshold: float, inbox: Path) -> str:
    lines: list[str] = []
    if document["files"] or document["finished"]:
        lines.append(f"{'FILE':<36} {'STATUS':<20} {'QC':<7} RESULT")
        for f in document["files"] + document["finished"]:
            lines += row(f, threshold)
    else:
        lines.append(f"{inbox}: no FCS files (.fcs, .lmd) in this folder; nothing to process")
    lines += [f"registry line {e['line']}: {e['reason']}" for e in document["registry_errors"]]
    return "\n".join(lines + ["", "Screening log", screening_table(document["screening"]), "",
                              summary_line(document["summary"])])


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline import workers

    inbox = folder(args.inbox).resolve()
    registry, lots = optional_file(args.registry), optional_file(args.lots)
    workers.warm_up(beads=True)    # the workers load the science while this process loads the rest
    from pipeline.config import load_settings
    from pipeline.store import open_store

    settings = load_settings()
    with open_store(settings) as store:      # the results database answers before Prefect starts
        acting(store, "run")
        from flows.batch import batch_flow
        from flows.server import connected

        server = prefect_server(settings, args.verbose)
        with connected(server.url):
            document = batch_flow(inbox=str(inbox), registry=registry, lots=lots)
        document["summary"] = summary(document, len(store.measurements.pending()),
                                      len(store.files.list(status="pending_calibration")))
    return document, human(document, settings.abc_threshold, inbox)


def register(subparsers: Any) -> None:
    parser = command(subparsers, "run", summary="process every FCS file of a folder (Prefect batch flow)",
                     description="Bead tubes are calibrated first, then each patient tube is paired with the\n"
                                 "calibration of the same instrument, PE voltage and day, gated, converted to AB/C\n"
                                 "and QC'd; results, HTML reports and the screening log are stored under MHLADR_HOME.\n"
                                 "Files already processed keep their results (running again changes nothing); a\n"
                                 "rejected file is taken again by `mhladr reprocess`. The table ends with a summary\n"
                                 "of what needs a person. The local Prefect server started on first use keeps\n"
                                 "running (mhladr serve --stop-server stops it).",
                     examples="mhladr run ./inbox --registry registry.csv\n"
                              "mhladr run ./inbox --registry registry.csv --lots /srv/lab/lots.csv --json\n"
                              "mhladr run ./inbox --verbose        # with Prefect's log lines")
    add_inputs(parser)
    parser.set_defaults(func=run)
