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
from pipeline.store.engine import current_revision, head_revision, make_engine, writer
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


def _open_fresh_files(folder: str, rounds: int, barrier, errors) -> None:
    """Each round, every process opens (and writes to) the same brand-new SQLite file at once."""
    from sqlalchemy import text

    for r in range(rounds):
        barrier.wait(timeout=120)
        engine = make_engine(f"sqlite:///{folder}/fresh-{r}.sqlite")
        try:
            with writer(engine).begin() as conn:
                conn.execute(text("CREATE TABLE IF NOT EXISTS opens (n INTEGER)"))
                conn.execute(text("INSERT INTO opens VALUES (:r)"), {"r": r})
        except Exception as exc:
            errors.put(f"round {r}: {type(exc).__name__}: {exc}")
        finally:
            engine.dispose()


def _burn(seconds: float) -> None:
    """CPU load beside the openers (the race showed up on a loaded machine)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(10_000))


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


def test_many_processes_opening_fresh_sqlite_files_under_load_never_fail(tmp_path):
    """Stress of the first-open race: 8 processes x 100 fresh files, with 2 CPU burners.

    Before the WAL switch was retried, about 1 open in 100-300 failed with "database is locked".
    """
    processes, rounds = 8, 100
    burners = [CTX.Process(target=_burn, args=(60.0,)) for _ in range(2)]
    for b in burners:
        b.start()
    try:
        errors = _run(_open_fresh_files, lambda i: (str(tmp_path), rounds), processes)
    finally:
        for b in burners:
            b.terminate()
            b.join(timeout=10)
    assert errors == [], f"{len(errors)} of {processes * rounds} opens failed: {errors[:3]}"
    engine = make_engine(f"sqlite:///{tmp_path}/fresh-{rounds - 1}.sqlite")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM opens").scalar() == processes
    finally:
        engine.dispose()


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
