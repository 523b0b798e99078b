"""Technician review of a QC ``review`` result in Prefect: the flow run waits for the decision and
shows where to take it; it never records one.

A decision is recorded only for a person who proved who they are (DESIGN.md, Additions
2026-12-07, Identity): a signed-in console session or the command line's OS account. The run
publishes a request (an artifact linking the console's review page ``/reviews/<id>``), then checks
the store every ``poll_seconds`` and ends with the decision once it is there; it takes no input,
so resuming it through Prefect's UI or API with a typed name records nothing. Values of
post-randomization samples are withheld from the request (blinding).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from pipeline import formatting as fmt
from pipeline.blinding import WITHHELD, withheld_reasons
from pipeline.config import load_settings
from pipeline.store import Store, StoredMeasurement, open_store

DEFAULT_TIMEOUT_HOURS = 72.0
SERVE_STATE = "serve.json"          # written by ``mhladr serve`` (its console's address)


def review_page(home: Path, measurement_id: int) -> str:
    """The console's review page of a result: a full link while ``serve`` runs, else its path."""
    try:
        console = json.loads((Path(home) / SERVE_STATE).read_text())["console"].rstrip("/")
    except (OSError, ValueError, KeyError, AttributeError):
        console = ""
    return f"{console}/reviews/{measurement_id}"


def describe(store: Store, stored: StoredMeasurement, page: str = "") -> str:
    """The review request as markdown; AB/C is withheld for post-randomization (blinded) samples."""
    meas = stored.measurement
    blinded = store.measurements.is_blinded(stored)
    abc = f"AB/C {WITHHELD}" if blinded else f"{fmt.abc(meas.abc)} AB/C"
    shown = withheld_reasons(meas.qc.reasons) if blinded else meas.qc.reasons
    reasons = "\n".join(f"- {r}" for r in shown) or "- (none given)"
    return (f"# Review measurement {stored.id}\n\n"
            f"Patient {stored.patient_id}, collected {stored.collection_date.isoformat()}, ICU day "
            f"{meas.icu_day if meas.icu_day is not None else '—'}; {meas.monocytes:,} monocytes; {abc}.\n\n"
            f"QC `{meas.qc.status}` because:\n{reasons}\n\n"
            f"Decide in the lab console: [{page or f'/reviews/{stored.id}'}]({page or f'/reviews/{stored.id}'}) "
            "(signed in as a technician or admin). This run records no decision itself: it ends once "
            "the decision is made there.\n")


@flow(name="mhladr-review", log_prints=False)
def review_flow(measurement_id: int, timeout_hours: float = DEFAULT_TIMEOUT_HOURS,
                poll_seconds: float = 10.0) -> str | None:
    """Wait for a technician's decision on one QC ``review`` result (taken in the console or on the
    command line) and return it; None when none came within ``timeout_hours``."""
    logger = get_run_logger()
    settings = load_settings()
    with open_store(settings) as store:
        meas = store.measurements.get(measurement_id)
        if meas is None:
            raise ValueError(f"no measurement {measurement_id}")
        if meas.qc.status != "review" or meas.review is not None:
            logger.info("measurement %s needs no review (QC %s, decision %s)",
                        measurement_id, meas.qc.status, meas.review)
            return meas.review
        page = review_page(settings.home, measurement_id)
        create_markdown_artifact(markdown=describe(store, meas, page), key=f"review-{measurement_id}",
                                 description="result waiting for a technician")
        logger.info("measurement %s waits for a decision in the lab console: %s", measurement_id, page)
        deadline = time.monotonic() + timeout_hours * 3600
        while time.monotonic() < deadline:
            time.sleep(poll_seconds)
            decided = store.measurements.get(measurement_id)
            if decided is not None and decided.review is not None:
                logger.info("measurement %s: %s (recorded in the console or on the command line)",
                            measurement_id, decided.review)
                return decided.review
        logger.warning("measurement %s: no decision within %s h", measurement_id, timeout_hours)
        return None
