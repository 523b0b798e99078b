"""The file-arrival watcher behind ``mhladr watch`` (polling; no inotify dependency).

A file is taken once complete: its size and modification time unchanged over two polls AND
the data its FCS HEADER/TEXT declare present (``FcsFile.data_sets()``). A file that stays
truncated longer than the grace period is taken anyway and ends ``rejected``. Taken files go
through the batch flow together (deduplicated by content hash in the results database), then
move atomically (``os.replace``, same filesystem) to ``processed/`` or ``quarantine/`` (with
``<name>.reason.txt``); a name clash gets a numbered suffix, nothing is overwritten, nothing
deleted; the store is told the new path (``on_moved``; duplicates keep the original's path).
Samples waiting for their beads stay in the inbox until finished. A reconcile scan
at start and every ``reconcile_every`` seconds re-offers whatever is still in the inbox (files
that landed while the watcher was down, waiting samples, files whose processing failed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fcsio.errors import FcsError
from fcsio.segments import FcsFile
from flows.inbox import inbox_files, inbox_lock
from pipeline.errors import TRUNCATED

log = logging.getLogger("mhladr.watch")

PROCESSED = "processed"
QUARANTINE = "quarantine"
WAITING = ("pending_calibration",)
TO_PROCESSED = ("calibrated", "measured")

ProcessFiles = Callable[[list[Path]], dict]
Relocated = Callable[[str, Path], None]          # (sha256, new path) -> record it in the store


def batch_processor(inbox: Path, registry: str | None, lots: str | None,
                    on_batch: Callable[[dict], None] | None = None) -> ProcessFiles:
    """What ``watch`` and ``serve --inbox`` hand a :class:`Watcher`: the batch flow on exactly the
    files taken (never the whole inbox), then ``on_batch`` with its document."""
    from flows.batch import batch_flow

    def process(paths: list[Path]) -> dict:
        document = batch_flow(inbox=str(inbox), registry=registry, lots=lots, files=[str(p) for p in paths])
        if on_batch is not None:
            on_batch(document)
        return document
    return process


@dataclass(frozen=True)
class Seen:
    size: int
    mtime_ns: int
    changed_at: float           # monotonic time the size/mtime was last seen changing


def completeness(path: Path) -> str:
    """``complete`` (all declared data present, or unusable anyway), ``truncated`` or ``gone``."""
    try:
        with FcsFile(path) as fcs:
            fcs.data_sets()
    except FcsError as err:
        return "truncated" if err.code == TRUNCATED else "complete"
    except FileNotFoundError:
        return "gone"
    except (OSError, ValueError):
        return "truncated"      # e.g. an empty file being created: wait like a short one
    return "complete"


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/<stem>.<n><suffix>`` with the first free n."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while candidate.exists() or (folder / f"{candidate.name}.reason.txt").exists():
        candidate = folder / f"{stem}.{n}{suffix}"
        n += 1
    return candidate


def destination(status: str) -> str | None:
    """Sub-folder for a final status; None while the file waits (pending calibration)."""
    if status in WAITING:
        return None
    return PROCESSED if status in TO_PROCESSED else QUARANTINE


def place(path: Path, entry: dict) -> Path | None:
    """Move a processed file where its status says; returns the new path (None: stays)."""
    folder = destination(entry["status"])
    if folder is None or not path.exists():
        return None
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    target = free_name(target_dir, path.name)
    if folder == QUARANTINE:
        reasons = entry.get("reasons") or []
        text = f"status: {entry['status']}\n" + "".join(f"reason: {r}\n" for r in reasons)
        tmp = target_dir / f".{target.name}.reason.tmp"
        tmp.write_text(text)
        os.replace(tmp, target_dir / f"{target.name}.reason.txt")
    os.replace(path, target)
    return target


def resettle(path: Path, entry: dict) -> Path | None:
    """Move a file reprocessed in ``quarantine/`` to ``processed/`` when its new status says so
    (its ``.reason.txt`` stays in ``quarantine/`` as the record of why it was there); the new path,
    or None when it stays."""
    path = Path(path)
    if path.parent.name != QUARANTINE or destination(entry["status"]) != PROCESSED or not path.exists():
        return None
    target_dir = path.parent.parent / PROCESSED
    target_dir.mkdir(exist_ok=True)
    target = free_name(target_dir, path.name)
    os.replace(path, target)
    return target


class Watcher:
    """Poll ``inbox`` and hand complete files to ``process`` (the batch flow)."""

    def __init__(self, inbox: Path, process: ProcessFiles, *, interval: float = 1.0,
                 grace: float = 60.0, reconcile_every: float = 60.0, on_moved: Relocated | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inbox = Path(inbox).resolve()
        self.process = process
        self.on_moved = on_moved
        self.interval = interval
        self.grace = grace
        self.reconcile_every = reconcile_every
        self.clock = clock
        self._seen: dict[Path, Seen] = {}
        self._offered: dict[Path, tuple[int, int]] = {}   # taken, still in the inbox: not again until reconcile
        self._stop = threading.Event()
        self._last_reconcile = clock()
        self.batches = 0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def ready(self) -> list[Path]:
        """Files complete now (one poll); updates what was seen."""
        now = self.clock()
        current: dict[Path, Seen] = {}
        ready = []
        for path in inbox_files(self.inbox):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            before = self._seen.get(path)
            if before is None or (before.size, before.mtime_ns) != (st.st_size, st.st_mtime_ns):
                current[path] = Seen(st.st_size, st.st_mtime_ns, now)
                continue
            current[path] = before
            if self._offered.get(path) == (st.st_size, st.st_mtime_ns):
                continue
            state = completeness(path)
            if state == "complete" or (state == "truncated" and now - before.changed_at >= self.grace):
                ready.append(path)
        self._seen = current
        self._offered = {p: v for p, v in self._offered.items() if p in current}
        return ready

    def reconcile(self) -> None:
        """Forget what was offered: every file still in the inbox is considered again."""
        self._offered.clear()
        self._last_reconcile = self.clock()

    def step(self) -> int:
        """One poll: process what is ready and move it; the number of files taken."""
        if self.clock() - self._last_reconcile >= self.reconcile_every:
            self.reconcile()
        ready = self.ready()
        if not ready:
            return 0
        for path in ready:
            st = path.stat()
            self._offered[path] = (st.st_size, st.st_mtime_ns)
        try:
            document = self.process(ready)
        except Exception:       # noqa: BLE001 - keep watching; the files are retried at the next reconcile
            log.exception("processing %d file(s) failed; they stay in the inbox", len(ready))
            return len(ready)
        self.batches += 1
        for entry in document.get("files", []) + document.get("finished", []):
            path = Path(entry["file"])
            if path.parent.resolve() != self.inbox:
                continue
            moved = place(path, entry)
            if moved is None:
                continue
            log.info("%s: %s -> %s", path.name, entry["status"], moved.parent.name)
            self._offered.pop(path, None)
            if self.on_moved is not None and entry["status"] != "duplicate":
                self.on_moved(entry["sha256"], moved)
        return len(ready)

    def run(self, started: Callable[[], None] | None = None) -> None:
        """Poll until :meth:`stop` (e.g. from a SIGTERM/SIGINT handler); a batch in progress ends
        first. ``started`` is called once the inbox is this watcher's."""
        with inbox_lock(self.inbox):
            log.info("watching %s every %.1f s", self.inbox, self.interval)
            if started is not None:
                started()
            while not self._stop.is_set():
                self.step()
                self._stop.wait(self.interval)
            log.info("watcher stopped after %d batch(es)", self.batches)
