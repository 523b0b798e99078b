"""Crash safety and concurrency of the store, on SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from pipeline.config import load_settings
from pipeline.store import open_store
from pipeline.store.engine import current_revision, head_revision
from tests.store_fixtures import db_url, measurement, sha  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
# spawn, not fork: the test process may hold Prefect client threads (fork would copy their locks)
CTX = multiprocessing.get_context("spawn")


def _open_and_write(url: str, home: str, n: int, barrier, errors) -> None:
    try:
        barrier.wait(timeout=120)
        store = open_store(load_settings(env={"MHLADR_HOME": home}, database_url=url))
        store.files.record(sha(f"open-{n}"), f"/in/open-{n}.fcs", 10, "sample", "pending_calibration")
        store.close()
    except Exception as exc:  # reported to the parent
        errors.put(f"{n}: {type(exc).__name__}: {exc}")


def _writer(url: str, home: str, worker: int, count: int, barrier, errors) -> None:
    try:
        store = open_store(load_settings(env={"MHLADR_HOME": home}, database_url=url))
        barrier.wait(timeout=120)
        for i in range(count):
            n = f"w{worker}-{i}"
            store.files.record(sha(n), f"/in/{n}.fcs", 10, "sample", "pending_calibration",
                              patient_id=f"PT-{worker}")
            store.measurements.add(measurement(n, f"PT-{worker}", date(2026, 3, 7), 5000.0 + i),
                                    today=date(2026, 3, 7))
        store.close()
    except Exception as exc:
        errors.put(f"{worker}: {type(exc).__name__}: {exc}")


def _run(target, args_for, n: int) -> list[str]:
    barrier, errors = CTX.Barrier(n), CTX.Queue()
    procs = [CTX.Process(target=target, args=(*args_for(i), barrier, errors)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return found


def test_concurrent_first_opens_do_not_race(db_url, tmp_path):
    home = str(tmp_path / "home")
    assert _run(_open_and_write, lambda i: (db_url, home, i), 4) == []
    store = open_store(load_settings(env={"MHLADR_HOME": home}, database_url=db_url))
    try:
        with store.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
        assert len(store.files.list()) == 4
        assert store.audit.verify_chain().ok
    finally:
        store.close()


def test_two_processes_writing_at_once_both_succeed(db_url, tmp_path):
    home = str(tmp_path / "home")
    open_store(load_settings(env={"MHLADR_HOME": home}, database_url=db_url)).close()
    count = 15
    assert _run(_writer, lambda i: (db_url, home, i, count), 2) == []
    store = open_store(load_settings(env={"MHLADR_HOME": home}, database_url=db_url))
    try:
        assert len(store.files.list()) == 2 * count
        assert len(store.measurements.list()) == 2 * count
        assert {r.patient_id: r.status for r in store.screening.log()} == {"PT-0": "pending", "PT-1": "pending"}
        check = store.audit.verify_chain()
        assert check.ok, check.problems
    finally:
        store.close()


CRASHER = textwrap.dedent("""
    import sys, time
    from datetime import datetime, timezone
    from pipeline.config import load_settings
    from pipeline.store import open_store

    calls = {"n": 0}
    def clock():
        calls["n"] += 1
        if calls["n"] == int(sys.argv[2]):          # inside the 4th write, after its INSERT
            print("MID", flush=True)
            time.sleep(120)
        return datetime(2026, 3, 1, 8, 0, calls["n"], tzinfo=timezone.utc)

    store = open_store(load_settings(env={"MHLADR_HOME": sys.argv[3]}, database_url=sys.argv[1]), clock=clock)
    for i in range(4):
        store.files.record(f"{i:064x}", f"/in/{i}.fcs", 10, "sample", "pending_calibration")
        print("COMMITTED", i, flush=True)
""")


def test_sigkill_mid_transaction_loses_nothing_committed(db_url, tmp_path):
    home = str(tmp_path / "home")
    # record_file reads the clock twice (row time, audit time): call 8 is the 4th audit entry.
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, db_url, "8", home], cwd=REPO,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.strip() == "MID":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lines == ["COMMITTED 0", "COMMITTED 1", "COMMITTED 2", "MID"]

    store = open_store(load_settings(env={"MHLADR_HOME": home}, database_url=db_url))
    try:
        assert [f.path for f in store.files.list()] == ["/in/0.fcs", "/in/1.fcs", "/in/2.fcs"]
        assert len(store.audit.entries()) == 3 and store.audit.verify_chain().ok
        # the database is not left locked: a new write goes through
        store.files.record(f"{3:064x}", "/in/3.fcs", 10, "sample", "pending_calibration")
        assert len(store.files.list()) == 4 and store.audit.verify_chain().ok
    finally:
        store.close()
