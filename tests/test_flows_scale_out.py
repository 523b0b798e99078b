"""Scale-out (docs/scale_out.md): a Prefect server on PostgreSQL, a process work pool, two workers,
the batch deployment run on two inboxes at once, results in one shared PostgreSQL results database.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres, database ``test``; CI starts it);
the test creates its own databases and drops them afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prefect_harness import REPO

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAYS = {"canto": ("BEADS_2026-03-12_lotA_CANTO.fcs", "PT-0042_D07_HLADR.fcs"),
        "calibur": ("BEADS_2026-03-13_lotA_CALIBUR.fcs", "PT-0043_D06_HLADR.fcs")}


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL}: {exc}")
    tag = uuid.uuid4().hex[:8]
    names = (f"mhladr_prefect_{tag}", f"mhladr_results_{tag}")
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def start_worker(pool: str, name: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
                                 "--name", name, "--limit", "1"], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def test_batch_deployment_on_postgres_with_two_workers(databases: tuple[str, str], data_samples: Path,
                                                       tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.batch import batch_flow
    from flows.server import connected, ensure_server, stop_server
    from pipeline.config import load_settings
    from pipeline.store import open_store
    prefect_db, results_db = databases
    results_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{results_db}"
    server = ensure_server(tmp_path / "server",
                           database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{prefect_db}", port=0)
    env = dict(os.environ, PREFECT_API_URL=server.url, PREFECT_API_AUTH_STRING=server.auth, DO_NOT_TRACK="1", MHLADR_HOME=str(tmp_path / "home"),
               MHLADR_DATABASE_URL=results_url, PREFECT_WORKER_QUERY_SECONDS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    workers: list[subprocess.Popen] = []
    try:
        with connected(server.url), get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name="mhladr-pool", type="process"))
            flow_id = client.create_flow_from_name(batch_flow.name)
            deployment_id = client.create_deployment(
                flow_id=flow_id, name="scale-out", work_pool_name="mhladr-pool",
                entrypoint="flows/batch.py:batch_flow", path=str(REPO),
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}],
                job_variables={"env": {k: env[k] for k in ("MHLADR_HOME", "MHLADR_DATABASE_URL", "PYTHONPATH",
                                                             "DO_NOT_TRACK")}})
            workers = [start_worker("mhladr-pool", f"worker-{i}", env, tmp_path / f"worker{i}.log")
                       for i in (1, 2)]
            runs = []
            for day, names in DAYS.items():
                inbox = tmp_path / day
                inbox.mkdir()
                for name in names:
                    shutil.copy(data_samples / name, inbox / name)
                runs.append(client.create_flow_run_from_deployment(deployment_id, parameters={
                    "inbox": str(inbox), "registry": str(data_samples / "registry.csv"),
                    "lots": str(data_samples / "lots.csv")}))
            deadline = time.monotonic() + 180
            while True:
                states = [client.read_flow_run(r.id).state for r in runs]
                if all(s is not None and s.is_final() for s in states):
                    break
                assert time.monotonic() < deadline, [s.name if s else None for s in states]
                time.sleep(1)
            assert [s.type.value for s in states] == ["COMPLETED", "COMPLETED"], [s.message for s in states]
            logs = "".join((tmp_path / f"worker{i}.log").read_text(errors="replace") for i in (1, 2))
            assert logs.count("submitted to infrastructure") == len(runs)     # each run started once
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()
        from tests.prefect_harness import drain_prefect_clients
        drain_prefect_clients()
        stop_server(tmp_path / "server")
    store = open_store(load_settings(env={"MHLADR_DATABASE_URL": results_url, "MHLADR_HOME": str(tmp_path / "home")}))
    try:
        files = store.files.list()
        assert sorted(Path(f.path).name for f in files) == sorted(n for names in DAYS.values() for n in names)
        assert {f.status for f in files} == {"calibrated", "measured"}
        assert len(store.measurements.list(include_blinded=True)) == 2
    finally:
        store.close()
