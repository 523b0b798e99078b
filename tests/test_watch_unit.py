"""The watcher's own rules, without Prefect: completeness, slow copies, grace, moves, name clashes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from flows.watcher import PROCESSED, QUARANTINE, Watcher, completeness, free_name, place


@pytest.fixture(scope="module")
def fcs_bytes(data_samples: Path) -> bytes:
    return (data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs").read_bytes()


class Recorder:
    """A stand-in for the batch flow: records what it was given and the size at that moment."""

    def __init__(self, status: str = "calibrated") -> None:
        self.taken: list[tuple[Path, int]] = []
        self.status = status

    def __call__(self, paths: list[Path]) -> dict:
        self.taken += [(p, p.stat().st_size) for p in paths]
        return {"files": [{"file": str(p), "sha256": "0" * 64, "status": self.status,
                           "reasons": ["because"]} for p in paths]}


def run_until(watcher: Watcher, done, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "watcher did not finish in time"
        watcher.step()
        time.sleep(watcher.interval)


def test_completeness_tells_truncated_from_complete(tmp_path: Path, fcs_bytes: bytes) -> None:
    whole, half = tmp_path / "whole.fcs", tmp_path / "half.fcs"
    whole.write_bytes(fcs_bytes)
    half.write_bytes(fcs_bytes[: len(fcs_bytes) // 2])
    (tmp_path / "text.fcs").write_bytes(b"not an FCS file at all, but complete" * 4)
    assert completeness(whole) == "complete"
    assert completeness(half) == "truncated"
    assert completeness(tmp_path / "text.fcs") == "complete"      # unusable, yet nothing more will come
    assert completeness(tmp_path / "missing.fcs") == "gone"


def test_slow_copy_is_taken_only_when_complete(tmp_path: Path, fcs_bytes: bytes) -> None:
    """Chunks written with pauses longer than two polls: the size looks stable, the data are not there."""
    recorder = Recorder()
    watcher = Watcher(tmp_path, recorder, interval=0.05, grace=30.0)
    target = tmp_path / "BEADS_slow.fcs"

    def copy_slowly() -> None:
        with target.open("wb") as fh:
            for start in range(0, len(fcs_bytes), len(fcs_bytes) // 5 + 1):
                fh.write(fcs_bytes[start:start + len(fcs_bytes) // 5 + 1])
                fh.flush()
                time.sleep(0.3)               # six polls with an unchanged size

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    run_until(watcher, lambda: bool(recorder.taken) and not writer.is_alive())
    writer.join()
    assert recorder.taken == [(target, len(fcs_bytes))]
    assert (tmp_path / PROCESSED / target.name).read_bytes() == fcs_bytes


def test_truncated_file_is_taken_after_grace_and_quarantined(tmp_path: Path, fcs_bytes: bytes) -> None:
    recorder = Recorder(status="rejected")
    watcher = Watcher(tmp_path, recorder, interval=0.05, grace=0.6)
    stuck = tmp_path / "stuck.fcs"
    stuck.write_bytes(fcs_bytes[:5000])
    started = time.monotonic()
    run_until(watcher, lambda: bool(recorder.taken))
    assert time.monotonic() - started >= 0.6
    moved = tmp_path / QUARANTINE / "stuck.fcs"
    assert moved.read_bytes() == fcs_bytes[:5000]
    reason = (tmp_path / QUARANTINE / "stuck.fcs.reason.txt").read_text()
    assert "status: rejected" in reason and "because" in reason


def test_taken_once_until_reconcile(tmp_path: Path, fcs_bytes: bytes) -> None:
    """A sample waiting for its beads stays in the inbox and is offered again only at a reconcile."""
    recorder = Recorder(status="pending_calibration")
    watcher = Watcher(tmp_path, recorder, interval=0.01, reconcile_every=3600)
    (tmp_path / "PT-0001.fcs").write_bytes(fcs_bytes)
    for _ in range(10):
        watcher.step()
    assert len(recorder.taken) == 1 and (tmp_path / "PT-0001.fcs").exists()
    watcher.reconcile()
    watcher.step()
    assert len(recorder.taken) == 2


def test_name_clash_gets_a_suffix_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / QUARANTINE).mkdir()
    (tmp_path / QUARANTINE / "a.fcs").write_bytes(b"first")
    (tmp_path / QUARANTINE / "a.1.fcs.reason.txt").write_text("left from before")
    (tmp_path / "a.fcs").write_bytes(b"second")
    moved = place(tmp_path / "a.fcs", {"status": "duplicate", "reasons": ["same content as x"]})
    assert moved == tmp_path / QUARANTINE / "a.2.fcs"
    assert (tmp_path / QUARANTINE / "a.fcs").read_bytes() == b"first"
    assert moved.read_bytes() == b"second"
    assert (tmp_path / QUARANTINE / "a.1.fcs.reason.txt").read_text() == "left from before"
    assert "duplicate" in (tmp_path / QUARANTINE / "a.2.fcs.reason.txt").read_text()
    assert free_name(tmp_path / QUARANTINE, "b.fcs") == tmp_path / QUARANTINE / "b.fcs"


def test_processing_error_keeps_files_and_retries_at_reconcile(tmp_path: Path, fcs_bytes: bytes) -> None:
    calls = []

    def failing(paths: list[Path]) -> dict:
        calls.append(paths)
        raise RuntimeError("store unavailable")

    watcher = Watcher(tmp_path, failing, interval=0.01, reconcile_every=3600)
    (tmp_path / "x.fcs").write_bytes(fcs_bytes)
    for _ in range(5):
        watcher.step()
    assert len(calls) == 1 and (tmp_path / "x.fcs").exists()
    watcher.reconcile()
    watcher.step()
    assert len(calls) == 2


def test_the_lock_is_removed_on_exit_and_a_second_watcher_is_refused(tmp_path: Path) -> None:
    from flows.inbox import LOCK_NAME, inbox_lock
    from pipeline.errors import InputError

    with inbox_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()
        with pytest.raises(InputError, match="another mhladr watch is watching this folder"):
            with inbox_lock(tmp_path):
                pass
        assert (tmp_path / LOCK_NAME).exists()          # the refused one leaves the holder's lock alone
    assert not (tmp_path / LOCK_NAME).exists()
    watcher = Watcher(tmp_path, Recorder(), interval=0.01)
    watcher.run(started=watcher.stop)                  # starts, is stopped at once, exits
    assert not (tmp_path / LOCK_NAME).exists()
