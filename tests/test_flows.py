"""The Prefect flows against one real Prefect server (``prefect_server``, tests/prefect_harness.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.prefect_harness import cli_env

SUBSET = ("BEADS_2026-03-12_lotA_CANTO.fcs", "BEADS_2026-03-13_lotA_CALIBUR.fcs",
          "PT-0042_D07_HLADR.fcs", "PT-0043_D06_HLADR.fcs", "PT-0052_D06_HLADR.fcs")


def mhladr(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def make_inbox(data_samples: Path, folder: Path, names: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(data_samples / name, folder / name)
    shutil.copy(data_samples / "lots.csv", folder / "lots.csv")
    return folder


def open_home(home: Path):
    from pipeline.config import load_settings
    from pipeline.store import open_store
    return open_store(load_settings(env={"MHLADR_HOME": str(home)}))


@pytest.fixture
def in_process(prefect_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Flows run in this process against the session server, results under a fresh home."""
    from flows.server import connected
    home = tmp_path / "home"
    monkeypatch.setenv("MHLADR_HOME", str(home))
    with connected(prefect_server.url):
        yield home


def test_run_twice_gives_the_same_results_and_no_duplicates(prefect_server, data_samples: Path,
                                                            tmp_path: Path) -> None:
    inbox = make_inbox(data_samples, tmp_path / "inbox", SUBSET)
    (inbox / "ZZ_copy_of_beads.fcs").write_bytes((inbox / SUBSET[0]).read_bytes())
    (inbox / "broken.fcs").write_bytes((inbox / SUBSET[2]).read_bytes()[:4000])
    env = cli_env(prefect_server.url, tmp_path / "home")
    args = ["run", str(inbox), "--registry", str(data_samples / "registry.csv"), "--json"]
    first, second = mhladr(args, env), mhladr(args, env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    status = {Path(f["file"]).name: f["status"] for f in a["files"]}
    assert status == {Path(f["file"]).name: f["status"] for f in b["files"]}
    assert status[SUBSET[0]] == "calibrated" and status["ZZ_copy_of_beads.fcs"] == "duplicate"
    assert status["broken.fcs"] == "rejected"
    assert {status[n] for n in SUBSET[2:]} == {"measured"}
    assert [(f["sha256"], f.get("abc")) for f in a["files"]] == [(f["sha256"], f.get("abc")) for f in b["files"]]
    strip = [{k: v for k, v in row.items() if k != "evaluated_at"} for row in a["screening"]]
    assert strip == [{k: v for k, v in row.items() if k != "evaluated_at"} for row in b["screening"]]
    store = open_home(tmp_path / "home")
    try:
        measured = store.measurements.list(include_blinded=True)
        assert len(measured) == 3 and len({m.file_sha256 for m in measured}) == 3
        assert len([f for f in store.files.list() if f.kind == "beads" and f.status == "calibrated"]) == 2
    finally:
        store.close()


def test_beads_are_handled_before_samples_whatever_the_names(in_process: Path, data_samples: Path,
                                                             tmp_path: Path) -> None:
    from flows.batch import batch_flow
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(data_samples / "PT-0042_D07_HLADR.fcs", inbox / "A_first_by_name.fcs")
    shutil.copy(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs", inbox / "Z_beads_last.fcs")
    doc = batch_flow(inbox=str(inbox), registry=str(data_samples / "registry.csv"),
                     lots=str(data_samples / "lots.csv"))
    status = {Path(f["file"]).name: f["status"] for f in doc["files"]}
    assert status == {"A_first_by_name.fcs": "measured", "Z_beads_last.fcs": "calibrated"}
    assert [Path(f["file"]).name for f in doc["files"]] == ["A_first_by_name.fcs", "Z_beads_last.fcs"]


def test_pending_sample_is_finished_when_its_beads_arrive(in_process: Path, data_samples: Path,
                                                          tmp_path: Path) -> None:
    from flows.batch import batch_flow
    from flows.finish_pending import finish_pending_flow
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    make_inbox(data_samples, day1, ("PT-0042_D07_HLADR.fcs",))
    make_inbox(data_samples, day2, ("BEADS_2026-03-12_lotA_CANTO.fcs",))
    registry = str(data_samples / "registry.csv")
    first = batch_flow(inbox=str(day1), registry=registry)
    assert [f["status"] for f in first["files"]] == ["pending_calibration"]
    second = batch_flow(inbox=str(day2), registry=registry)
    assert [f["status"] for f in second["files"]] == ["calibrated"]
    assert [(Path(f["file"]).name, f["status"]) for f in second["finished"]] == [
        ("PT-0042_D07_HLADR.fcs", "measured")]
    assert finish_pending_flow(registry=registry) == []


def _count_files(home: Path) -> int:
    if not (home / "mhladr.sqlite").exists():
        return 0
    try:
        store = open_home(home)
    except Exception:          # noqa: BLE001 - the database may be mid-migration
        return 0
    try:
        return len(store.files.list())
    finally:
        store.close()


def copies_inbox(data_samples: Path, folder: Path, copies: int) -> tuple[str, ...]:
    """Every bead tube of data_samples once and each patient tube ``copies`` times (only $FIL
    differs, so each copy is new content): a batch long enough to be stopped halfway."""
    from data_samples.generate import fcs_bytes
    from data_samples.sample_set import build_tubes
    folder.mkdir(parents=True)
    for tube in build_tubes():
        for copy in range(1 if tube.kind == "beads" else copies):
            name = tube.filename if copy == 0 else tube.filename.replace(".fcs", f"_r{copy}.fcs")
            (folder / name).write_bytes(fcs_bytes(tube, name))
    shutil.copy(data_samples / "lots.csv", folder / "lots.csv")
    return tuple(sorted(p.name for p in folder.glob("*.fcs")))


def test_batch_killed_halfway_then_rerun_processes_every_file_once(prefect_server, data_samples: Path,
                                                                   tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    names = copies_inbox(data_samples, inbox, copies=6)
    home = tmp_path / "home"
    env = cli_env(prefect_server.url, home)
    args = [sys.executable, "-m", "app.cli", "run", str(inbox), "--registry",
            str(data_samples / "registry.csv"), "--json"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while _count_files(home) < 6:
        assert proc.poll() is None, "the batch ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _count_files(home)
    assert 6 <= killed_at < len(names)
    rerun = mhladr(args[3:], env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    doc = json.loads(rerun.stdout)
    assert sorted(Path(f["file"]).name for f in doc["files"]) == list(names)
    assert {f["status"] for f in doc["files"]} <= {"calibrated", "measured"}
    store = open_home(home)
    try:
        files = store.files.list()
        assert len(files) == len(names) and len({f.sha256 for f in files}) == len(names)
        samples = [n for n in names if n.startswith("PT-")]
        measured = store.measurements.list(include_blinded=True)
        assert sorted(m.file_sha256 for m in measured) == sorted(
            f["sha256"] for f in doc["files"] if f["kind"] == "sample")
        assert len(measured) == len(samples)
    finally:
        store.close()


def test_screening_digest_and_artifacts(in_process: Path, data_samples: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.batch import batch_flow
    from flows.screening_digest import screening_digest_flow
    inbox = make_inbox(data_samples, tmp_path / "inbox", SUBSET)
    doc = batch_flow(inbox=str(inbox), registry=str(data_samples / "registry.csv"))
    rows = screening_digest_flow()
    assert rows == doc["screening"] and {r["patient_id"] for r in rows} >= {"PT-0042", "PT-0043", "PT-0052"}
    with get_client(sync_client=True) as client:
        def latest(key: str):
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return max(found, key=lambda a: a.created)
        digest = latest("screening-digest").data
        files_table = latest("batch-files").data
        reports = latest("batch-reports").data
    for row in rows:
        assert f"| {row['patient_id']} | {row['status']} |" in digest
    assert "every stored row matches its audit trail" in digest and "Chain head: `" in digest
    table = json.loads(files_table) if isinstance(files_table, str) else files_table
    assert sorted(r["file"] for r in table) == sorted(SUBSET)
    for f in doc["files"]:
        if f["kind"] == "sample":
            mid = f["measurement_id"]
            assert Path(f["report"]).exists() and f"/reports/measurements/{mid})" in reports
            assert f"/reviews/{mid})" in reports
    assert "file://" not in reports and "](http://" in reports


def _calibration(day: date, slope: float, intercept: float, n: int):
    from dataclasses import replace

    from tests.store_fixtures import calibration
    cal = calibration(n, day=day, serial="V1")
    return replace(cal, key=replace(cal.key, sha256=f"{n:064x}"),
                   curve=replace(cal.curve, slope=slope, intercept=intercept))


def test_daily_qc_flags_a_curve_beyond_two_sd(in_process: Path) -> None:
    from flows.daily_qc import daily_qc_flow
    from pipeline.config import load_settings
    from pipeline.store import open_store
    store = open_store(load_settings())
    today = date(2026, 3, 20)
    history = [(1.00, 0.50), (1.02, 0.48), (0.99, 0.51), (1.01, 0.49), (1.00, 0.50)]
    try:
        for i, (slope, intercept) in enumerate(history):
            cal = _calibration(today - timedelta(days=len(history) - i), slope, intercept, i + 1)
            store.files.record(cal.key.sha256, f"/x/b{i}.fcs", 1, "beads", "calibrated")
            store.calibrations.add(cal)
        for n, (slope, intercept) in ((10, (1.10, 0.50)), (11, (1.005, 0.495))):
            cal = _calibration(today, slope, intercept, n)
            store.files.record(cal.key.sha256, f"/x/t{n}.fcs", 1, "beads", "calibrated")
            store.calibrations.add(cal)
    finally:
        store.close()
    rows = daily_qc_flow(day=today)
    assert len(rows) == 2 and all(r["reference_curves"] == 5 for r in rows)
    flagged = [r for r in rows if r["flags"]]
    assert len(flagged) == 1 and flagged[0]["slope"] == "1.1000" and "slope" in flagged[0]["flags"]


def test_daily_qc_short_history_is_noted_not_flagged() -> None:
    from pipeline.qc_trend import MIN_REFERENCE, control_points, out_of_control
    from pipeline.store import StoredCalibration

    def record(day: date, slope: float, n: int) -> StoredCalibration:
        return StoredCalibration(n, datetime.now(timezone.utc), _calibration(day, slope, 0.5, n))
    today = date(2026, 3, 20)
    cals = [record(today - timedelta(days=1 + i), 1.0 + 0.01 * i, i + 1) for i in range(MIN_REFERENCE - 1)]
    cals.append(record(today, 3.0, 9))
    (point,) = control_points(cals, today)
    assert point.reference_n == MIN_REFERENCE - 1 and point.flags == () and "only 2 earlier" in point.note
    assert out_of_control([point]) == [] and point.as_row()["note"] == point.note


def test_review_flow_records_no_typed_decision_and_ends_with_the_real_one(in_process: Path, data_samples: Path,
                                                                          tmp_path: Path, prefect_server) -> None:
    """Resuming the review run through Prefect's API with a typed technician records nothing; the
    run ends once a person who proved who they are (here the store call the console makes) decides."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from flows.batch import batch_flow
    from flows.review import review_flow
    from flows.server import auth_headers, connected
    from pipeline.config import load_settings
    from pipeline.store import open_store
    inbox = make_inbox(data_samples, tmp_path / "inbox", SUBSET)
    batch_flow(inbox=str(inbox), registry=str(data_samples / "registry.csv"))
    with open_store(load_settings()) as store:
        pending = store.measurements.pending()
        assert [m.patient_id for m in pending] == ["PT-0052"]
        measurement_id = pending[0].id
        trail_before = len(store.audit.entries())
    outcome: dict = {}
    run_name = f"review-test-{measurement_id}-{time.time_ns()}"

    def run() -> None:
        with connected(prefect_server.url):
            outcome["decision"] = review_flow.with_options(flow_run_name=run_name)(
                measurement_id=measurement_id, poll_seconds=0.5)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            assert time.monotonic() < deadline, "the review flow never started waiting"
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name])))
            if runs and runs[0].state is not None and runs[0].state.is_running():
                break
            time.sleep(0.3)
        typed = {"run_input": {"decision": "approve", "reason": "looks fine", "technician": "tom"}}
        url = f"{prefect_server.url}/flow_runs/{runs[0].id}/resume"
        assert httpx.post(url, json=typed, timeout=10).status_code == 401          # the API is locked
        resumed = httpx.post(url, json=typed, headers=auth_headers(prefect_server.url), timeout=10)
        assert resumed.status_code >= 400 or resumed.json().get("status") != "ACCEPT"   # nothing to resume
        time.sleep(1.5)
        with open_store(load_settings()) as store:
            assert store.measurements.get(measurement_id).review is None
            assert store.measurements.reviews(measurement_id) == []
            assert len(store.audit.entries()) == trail_before
            assert worker.is_alive()                                   # still waiting for a real decision
            store.measurements.review(measurement_id, "approve", "clean peaks on review", "tech")
        artifact = client.read_artifacts()
    worker.join(timeout=60)
    assert outcome.get("decision") == "approve"
    assert any(f"/reviews/{measurement_id}" in (a.data or "") for a in artifact)
    with open_store(load_settings()) as store:
        reviews = store.measurements.reviews(measurement_id)
        assert [(r.decision, r.actor) for r in reviews] == [("approve", "tech")]
