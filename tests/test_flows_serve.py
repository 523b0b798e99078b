"""``mhladr serve``: deployments with default schedules created once; a technician's edits survive restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tests.prefect_harness import cli_env

DEPLOYMENTS = ("mhladr-batch/inbox", "mhladr-finish-pending/finish-pending", "mhladr-daily-qc/daily-qc",
               "mhladr-screening-digest/screening-digest", "mhladr-review/review")


def start_serve(env: dict[str, str], inbox: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--inbox", str(inbox),
                             "--timezone", "Europe/Paris"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_applied(client, since: datetime, proc: subprocess.Popen, timeout: float = 90) -> dict:
    """The deployments once every one was (re)registered after ``since``."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "mhladr serve exited"
        assert time.monotonic() < deadline, "deployments were not registered in time"
        found = {}
        for name in DEPLOYMENTS:
            try:
                dep = client.read_deployment_by_name(name)
            except Exception:          # noqa: BLE001 - not registered yet
                break
            if dep.updated is None or dep.updated < since:
                break
            found[name] = dep
        if len(found) == len(DEPLOYMENTS):
            return found
        time.sleep(0.5)


def test_serve_creates_default_schedules_once_and_keeps_edits(prefect_server, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    from flows.server import connected
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = cli_env(prefect_server.url, tmp_path / "home")
    with connected(prefect_server.url), get_client(sync_client=True) as client:
        proc = start_serve(env, inbox)
        try:
            deps = wait_applied(client, datetime.now(timezone.utc), proc)
        finally:
            stop(proc)
        qc = deps["mhladr-daily-qc/daily-qc"]
        assert [(s.schedule.cron, s.schedule.timezone) for s in qc.schedules] == [("0 7 * * *", "Europe/Paris")]
        assert [s.schedule.interval.total_seconds() for s in deps["mhladr-batch/inbox"].schedules] == [600]
        assert deps["mhladr-review/review"].schedules == []
        assert deps["mhladr-batch/inbox"].parameters["inbox"] == str(inbox.resolve())
        # The technician moves the QC to 06:30, pauses the digest and adds a Sunday run of the batch.
        client.update_deployment_schedule(qc.id, qc.schedules[0].id, schedule=CronSchedule(
            cron="30 6 * * *", timezone="Europe/Paris"))
        digest = deps["mhladr-screening-digest/screening-digest"]
        client.update_deployment_schedule(digest.id, digest.schedules[0].id, active=False)
        batch = deps["mhladr-batch/inbox"]
        client.create_deployment_schedules(batch.id, [(CronSchedule(cron="0 12 * * 0"), True)])
        restarted = datetime.now(timezone.utc)
        proc = start_serve(env, inbox)
        try:
            deps = wait_applied(client, restarted, proc)
        finally:
            stop(proc)
    assert [s.schedule.cron for s in deps["mhladr-daily-qc/daily-qc"].schedules] == ["30 6 * * *"]
    assert [s.active for s in deps["mhladr-screening-digest/screening-digest"].schedules] == [False]
    kinds = sorted(type(s.schedule).__name__ for s in deps["mhladr-batch/inbox"].schedules)
    assert kinds == ["CronSchedule", "IntervalSchedule"]
    assert any(isinstance(s.schedule, IntervalSchedule) for s in deps["mhladr-batch/inbox"].schedules)
