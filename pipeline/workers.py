"""Where a batch's per-tube work runs: a process pool over every core, or in the calling process.

Why processes and not Prefect task runs per file: a tube is ~30 ms of numpy work, while a task
run costs server round trips and a process-based task runner's workers each import Prefect
(~1.5 s). The pool's workers import only the science (numpy, scikit-learn), from a forkserver
that loads it once while the main process imports Prefect; Prefect keeps the coarse steps
(intake, calibrate, measure, reports, push) visible as tasks. The forkserver is a fresh process,
so no Prefect or database thread is ever forked.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from typing import Any, TypeVar

from pipeline.private_home import mask_others

T = TypeVar("T")
R = TypeVar("R")
# What the forkserver loads once for every worker: one numeric thread per worker (before numpy
# loads), then the tube steps and the numerics they call, including scipy.special, which every
# patient tube's interval needs (loaded once here, not ~0.4 s of CPU in each worker).
PRELOAD = ["pipeline.worker_threads", "pipeline.tubes", "calibration.calibrate", "gating.strategy", "scipy.special"]
# What a bead tube's fit needs beyond that: scikit-learn's mixture models (~1.8 s of CPU and
# ~170 MiB to import, with scipy.stats and pandas behind it). Only the one bead worker loads it,
# so the patient tubes' workers stay light.
BEAD_PRELOAD = ["sklearn.mixture"]
# How long a completed group waits for more items to complete before the caller gets it: storing
# a row alone costs about twice its share of a group's transaction, and the caller would only wait.
GROUP_WINDOW_S = 0.2


class Workers:
    """Run ``fn(item)`` for many items; results come back as they complete, with their item.

    ``beads=True`` runs the items on the bead worker, the one process that loads scikit-learn
    (:data:`BEAD_PRELOAD`); :meth:`release_beads` ends it once a batch's bead tubes are fitted.
    """

    def run(self, fn: Callable[[T], R], items: Iterable[T], beads: bool = False) -> Iterator[tuple[T, Future[R]]]:
        raise NotImplementedError

    def run_groups(self, fn: Callable[[T], R], items: Iterable[T], beads: bool = False
                   ) -> Iterator[list[tuple[T, Any]]]:
        """(item, result or the exception it raised) in groups of what has completed meanwhile, so
        the caller can store each group in one transaction while the workers go on."""
        for item, future in self.run(fn, items, beads):
            yield [(item, outcome(future))]

    def release_beads(self) -> None:
        """The bead worker's memory back (a later bead tube starts it again)."""
        return None

    def close(self) -> None:
        return None


class InProcess(Workers):
    """Every item in the calling process, in order (tests, single files, ``reprocess``)."""

    def run(self, fn: Callable[[T], R], items: Iterable[T], beads: bool = False) -> Iterator[tuple[T, Future[R]]]:
        for item in items:
            future: Future[R] = Future()
            try:
                future.set_result(fn(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(exc)
            yield item, future


class ProcessPool(Workers):
    """A forkserver process pool with one worker per core, and one bead worker when there are
    bead tubes to fit."""

    def __init__(self, processes: int | None = None) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)
        self.processes = processes or os.cpu_count() or 1
        # the forkserver may start before a home is opened: each worker masks "other" itself (files at rest)
        self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=self._context, initializer=mask_others)
        self._beads: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def warm_up(self, beads: bool = False) -> None:
        """Start the forkserver and the workers in the background (starting blocks until the
        forkserver has loaded the science; meanwhile the caller goes on, e.g. importing Prefect);
        ``beads``: the bead worker too, which then loads scikit-learn meanwhile."""
        def start() -> None:
            for _ in range(self.processes):
                self._pool.submit(os.getpid)
            if beads:
                self._bead_pool().submit(os.getpid)

        threading.Thread(target=start, name="workers-warm-up", daemon=True).start()

    def _bead_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._beads is None:
                self._beads = ProcessPoolExecutor(max_workers=1, mp_context=self._context, initializer=bead_worker)
            return self._beads

    def _submit(self, fn: Callable[[T], R], items: Iterable[T], beads: bool) -> dict[Future[R], T]:
        pool = self._bead_pool() if beads else self._pool
        return {pool.submit(fn, item): item for item in items}

    def run(self, fn: Callable[[T], R], items: Iterable[T], beads: bool = False) -> Iterator[tuple[T, Future[R]]]:
        futures = self._submit(fn, items, beads)
        for future in as_completed(futures):
            yield futures[future], future

    def run_groups(self, fn: Callable[[T], R], items: Iterable[T], beads: bool = False
                   ) -> Iterator[list[tuple[T, Any]]]:
        futures = self._submit(fn, items, beads)
        order = {future: i for i, future in enumerate(futures)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            if pending:             # what else completes soon joins the group: fewer, larger transactions
                more, pending = wait(pending, timeout=GROUP_WINDOW_S)
                done |= more
            yield [(futures[f], outcome(f)) for f in sorted(done, key=order.__getitem__)]

    def release_beads(self) -> None:
        with self._lock:
            beads, self._beads = self._beads, None
        if beads is not None:
            beads.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.release_beads()
        self._pool.shutdown(wait=True, cancel_futures=True)


_SHARED: ProcessPool | None = None


def shared() -> ProcessPool:
    """The process's pool (created on first use, kept for later batches, e.g. by ``watch``)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = ProcessPool()
    return _SHARED


def warm_up(beads: bool = False) -> None:
    """Start the shared pool early (a front-door command does this before importing Prefect);
    ``beads``: the bead worker too (a batch, which may hold bead tubes)."""
    shared().warm_up(beads)


def bead_worker() -> None:
    """Initializer of the bead worker: files at rest closed to others, scikit-learn loaded."""
    mask_others()
    for name in BEAD_PRELOAD:
        importlib.import_module(name)


def outcome(future: Future[R]) -> Any:
    """A completed future's result, or the exception it raised."""
    exc = future.exception()
    return exc if exc is not None else future.result()


def results(pairs: Iterable[tuple[T, Future[R]]]) -> Iterator[tuple[T, Any]]:
    """(item, result or the exception it raised) for each completed item."""
    for item, future in pairs:
        yield item, outcome(future)


def in_threads(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, Any]]:
    """(item, result or the exception it raised) in order, from threads of the calling process:
    for steps that mostly hash and read (hashlib releases the GIL), which gain nothing from a
    worker process and should not wait for the pool to start (40 files' intake: ~0.04 s)."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1) or 1) as pool:
        futures = [pool.submit(fn, item) for item in items]
        for item, future in zip(items, futures):
            yield item, outcome(future)
