"""The review flow run of a measurement (:mod:`flows.review`) as the lab console sees it: where it
is in the Prefect UI.

Review runs are named ``review-<measurement id>`` (:mod:`flows.review_requests`). The run only
waits: it records nothing and ends by itself once the decision is in the store (taken in the
console or on the command line). Calls go to the locked Prefect REST API (:func:`flows.server.auth_headers`)
with short timeouts: when Prefect does not answer, the console simply shows no link.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from flows.server import auth_headers

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
        response = httpx.post(f"{api_url}/flow_runs/filter", json=body, headers=auth_headers(api_url),
                              timeout=TIMEOUT)
        response.raise_for_status()
        found = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if not found:
        return None
    run, state = found[0], found[0].get("state") or {}
    return RunRef(run["id"], state.get("name") or "", state.get("type") == "PAUSED",
                  f"{ui_url}/runs/flow-run/{run['id']}")
