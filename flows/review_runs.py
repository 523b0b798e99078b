"""The review flow run of a measurement (:mod:`flows.review`) as the lab console sees it: where it
is in the Prefect UI, and closing it when the technician decided in the console instead.

Review runs are named ``review-<measurement id>`` (:mod:`flows.review_requests`). A decision
taken in the console resumes the paused run with the same decision; the flow then finds the
decision already recorded and records nothing (one decision, one audit entry). Calls go to the
Prefect REST API with short timeouts: when Prefect does not answer, the console simply shows no
link, and the run ends at its own timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

TIMEOUT = 3.0


def run_name(measurement_id: int) -> str:
    """The name (and idempotency key) of a measurement's review flow run."""
    return f"review-{measurement_id}"


@dataclass(frozen=True)
class RunRef:
    """A flow run as a link: its id, state and where the Prefect UI shows it."""

    id: str
    state: str
    paused: bool
    url: str


def review_run(api_url: str, ui_url: str, measurement_id: int) -> RunRef | None:
    """The latest review flow run of a measurement, or None (none, or Prefect not answering)."""
    body = {"flow_runs": {"name": {"any_": [run_name(measurement_id)]}}, "sort": "EXPECTED_START_TIME_DESC",
            "limit": 1}
    try:
        response = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=TIMEOUT)
        response.raise_for_status()
        found = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if not found:
        return None
    run, state = found[0], found[0].get("state") or {}
    return RunRef(run["id"], state.get("name") or "", state.get("type") == "PAUSED",
                  f"{ui_url}/runs/flow-run/{run['id']}")


def close_review_run(api_url: str, run: RunRef, decision: str, reason: str, actor: str) -> bool:
    """Resume a paused review run with the decision already recorded; whether Prefect took it."""
    if not run.paused:
        return False
    body = {"run_input": {"decision": decision, "reason": reason, "technician": actor}}
    try:
        response = httpx.post(f"{api_url}/flow_runs/{run.id}/resume", json=body, timeout=TIMEOUT)
        return response.status_code < 300 and response.json().get("status") == "ACCEPT"
    except (httpx.HTTPError, ValueError):
        return False
