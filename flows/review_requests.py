"""Ask for a technician's review of every undecided QC ``review`` result.

When the review deployment is served (``mhladr serve``), each undecided result gets one
review flow run (the idempotency key ``review-<measurement id>`` makes repeated requests a
no-op); it waits, paused, for the decision. Without served deployments the results simply wait
for ``mhladr review approve|reject``.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from flows.review_runs import run_name
from pipeline.store import Store

REVIEW_DEPLOYMENT = "mhladr-review/review"


def request_reviews(store: Store) -> list[int]:
    """Create the missing review flow runs; the measurement ids asked about."""
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(REVIEW_DEPLOYMENT)
        except ObjectNotFound:
            return []
        pending = [m.id for m in store.measurements.pending()]
        for measurement_id in pending:
            client.create_flow_run_from_deployment(
                deployment.id, parameters={"measurement_id": measurement_id},
                name=run_name(measurement_id), idempotency_key=run_name(measurement_id))
        return pending
