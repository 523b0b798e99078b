"""Technician review of a QC ``review`` result: the flow run pauses until a typed decision arrives.

The decision (approve/reject, a reason, the technician) is recorded through the same store
call as ``mhladr review approve|reject`` (``store.measurements.review``), which re-evaluates the
patient: only approved results count towards eligibility. The flow never supersedes: a decision
taken elsewhere while it waits stands, and the flow records nothing. Once users are registered,
the technician named in the UI must be a registered user whose role may review. Values of
post-randomization samples are withheld from the request (blinding).
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.input import RunInput
from pydantic import Field

from pipeline import formatting as fmt
from pipeline.blinding import WITHHELD, withheld_reasons
from pipeline.config import load_settings
from pipeline.report.layout import redraw_sample_report
from pipeline.store import Store, StoredMeasurement, open_store
from pipeline.store.measurements import AlreadyDecided

DEFAULT_TIMEOUT_HOURS = 72.0


class ReviewDecision(RunInput):
    """What the technician enters in the UI to resume the run."""

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, description="why the result is approved or rejected")
    technician: str = Field(min_length=1, description="who decides (initials or user name)")


def describe(store: Store, stored: StoredMeasurement) -> str:
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
            "Resume this flow run with a decision, or run "
            f"`mhladr review approve|reject {stored.id} --reason ...`.\n")


@flow(name="mhladr-review", log_prints=False)
def review_flow(measurement_id: int, timeout_hours: float = DEFAULT_TIMEOUT_HOURS,
                poll_seconds: int = 10) -> str | None:
    """Wait for a technician's decision on one QC ``review`` result and record it."""
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
        create_markdown_artifact(markdown=describe(store, meas), key=f"review-{measurement_id}",
                                 description="result waiting for a technician")
        decision = pause_flow_run(wait_for_input=ReviewDecision, timeout=int(timeout_hours * 3600),
                                  poll_interval=poll_seconds)
        refused = store.users.refusal(decision.technician, "review")
        if refused is not None:
            raise PermissionError(f"measurement {measurement_id}: review {refused}; nothing recorded")
        try:
            store.measurements.review(measurement_id, decision.decision, decision.reason, decision.technician)
        except AlreadyDecided as taken:
            logger.info("measurement %s: %s; not recorded again", measurement_id, taken)
            return taken.earlier.decision
        redraw_sample_report(store, settings.reports_dir, measurement_id)   # its next step is the decision
        logger.info("measurement %s: %s by %s", measurement_id, decision.decision, decision.technician)
        return decision.decision
