"""Finish the samples left ``pending_calibration`` once their bead tube has been processed."""

from __future__ import annotations

from prefect import flow
from prefect.utilities.annotations import quote

from flows import tasks
from flows.artifacts import publish
from flows.review_requests import request_reviews
from pipeline import workers
from pipeline.config import load_settings
from pipeline.processing import Processor


@flow(name="mhladr-finish-pending", log_prints=False)
def finish_pending_flow(registry: str | None = None, lots: str | None = None) -> list[dict]:
    """Pair, gate and quantify the waiting samples (each store write re-evaluates its patient); push."""
    processor = Processor(load_settings(), registry_csv=registry, lots_csv=lots, workers=workers.shared())
    try:
        p = quote(processor)
        finished = tasks.finish_pending(p)
        tasks.reports(p, quote(finished))
        tasks.push(p)
        publish(finished, "finish-pending")
        request_reviews(processor.store)
        return [r.as_dict() for r in finished]
    finally:
        processor.close()
