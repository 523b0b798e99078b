"""The served deployments and their default schedules (created once, then the lab's).

``serve()`` re-registers every deployment it serves, and Prefect's deployment update replaces
all schedules whenever the update carries a schedule list (even an empty one). So a restart
would wipe a schedule a technician added or edited in the UI/CLI. Here a deployment gets the
default schedules only when it does not exist yet; when it exists, its current schedules
(cadence, active flag, parameters, slug) are read back and re-applied unchanged.

:class:`Serving` runs them with one Prefect runner inside the caller's event loop (what
``prefect.serve`` does, minus its own signal handling): ``mhladr serve`` decides when it stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.flows import Flow
from prefect.runner import Runner

from flows.batch import batch_flow
from flows.daily_qc import daily_qc_flow
from flows.finish_pending import finish_pending_flow
from flows.review import review_flow
from flows.screening_digest import screening_digest_flow

TAGS = ["mhladr"]


@dataclass(frozen=True)
class DeploymentSpec:
    flow: Flow
    name: str
    parameters: dict[str, Any]
    default_schedules: tuple[DeploymentScheduleCreate, ...]
    description: str

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.name}"


def _every(minutes: int, slug: str) -> DeploymentScheduleCreate:
    return DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(minutes=minutes)),
                                    active=True, slug=slug)


def _daily(cron: str, timezone: str, slug: str) -> DeploymentScheduleCreate:
    return DeploymentScheduleCreate(schedule=CronSchedule(cron=cron, timezone=timezone), active=True, slug=slug)


def specs(inbox: str | None, registry: str | None, lots: str | None, *,
          timezone: str = "UTC") -> list[DeploymentSpec]:
    """The lab's deployments: batch (when an inbox is given), finish-pending, daily QC, digest, review."""
    out = []
    if inbox:
        out.append(DeploymentSpec(batch_flow, "inbox", {"inbox": inbox, "registry": registry, "lots": lots},
                                  (_every(10, "every-10-min"),), "process every FCS file of the inbox"))
    out += [
        DeploymentSpec(finish_pending_flow, "finish-pending", {"registry": registry, "lots": lots},
                       (_every(15, "every-15-min"),), "finish samples whose beads have arrived"),
        DeploymentSpec(daily_qc_flow, "daily-qc", {}, (_daily("0 7 * * *", timezone, "daily-0700"),),
                       "bead-curve slope/intercept vs the earlier curves (Levey-Jennings)"),
        DeploymentSpec(screening_digest_flow, "screening-digest", {},
                       (_daily("0 8 * * *", timezone, "daily-0800"),), "screening log as an artifact"),
        DeploymentSpec(review_flow, "review", {}, (), "technician review of a QC review result"),
    ]
    return out


def schedules_to_apply(spec: DeploymentSpec) -> list[DeploymentScheduleCreate]:
    """Defaults for a new deployment; the deployment's current schedules otherwise."""
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_deployment_by_name(spec.full_name)
        except ObjectNotFound:
            return list(spec.default_schedules)
    return [DeploymentScheduleCreate(schedule=s.schedule, active=s.active, parameters=s.parameters or {},
                                     slug=s.slug) for s in existing.schedules]


def build(inbox: str | None, registry: str | None, lots: str | None, *,
          timezone: str = "UTC") -> list[RunnerDeployment]:
    """Runner deployments ready for :func:`prefect.serve`, schedules preserved as above."""
    return [spec.flow.to_deployment(name=spec.name, parameters=spec.parameters,
                                    schedules=schedules_to_apply(spec), tags=TAGS,
                                    description=spec.description)
            for spec in specs(inbox, registry, lots, timezone=timezone)]


class Serving:
    """The deployments served by one Prefect runner in the running event loop."""

    def __init__(self, limit: int | None) -> None:
        self.runner = Runner(limit=limit, pause_on_shutdown=True)

    async def register(self, deployments: list[RunnerDeployment]) -> None:
        """Create or update the deployments on the server (schedules as :func:`build` chose)."""
        for deployment in deployments:
            await self.runner.aadd_deployment(deployment)

    async def run(self) -> None:
        """Poll for scheduled runs and start them until :meth:`stop`. (Prefect's runner installs
        its own SIGTERM handler when it starts; a caller with its own re-installs it after.)"""
        await self.runner.start()

    @property
    def started(self) -> bool:
        return bool(self.runner.started)

    async def stop(self, *, pause: bool) -> None:
        """Stop polling and cancel the runs in flight; ``pause`` the deployments (Prefect's
        default, so no scheduled run piles up while no one serves them) only when the server
        still answers: a server that is gone would make each call wait for its retries."""
        self.runner.pause_on_shutdown = pause
        if self.runner.started:
            await self.runner.astop()
