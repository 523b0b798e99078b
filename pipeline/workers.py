"""Where a batch's per-tube work runs: a process pool over every core, or in the calling process.

Why processes and not Prefect task runs per file: a tube is ~30 ms of numpy work, while a task
run costs server round trips and a process-based task runner's workers each import Prefect
(~1.5 s). The pool's workers import only the science (numpy, scikit-learn), from a forkserver
that loads it once while the main process imports Prefect; Prefect keeps the coarse steps
(intake, calibrate, measure, reports, push) visible as tasks. The forkserver is a fresh process,
so no Prefect or database thread is ever forked.
"""

from __future__ import annotations

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
# How long a completed group waits for more items to complete before the caller gets it: storing
# a row alone costs about twice its share of a group's transaction, and the caller would only wait.
GROUP_WINDOW_S = 0.2


class Workers:
    """Run ``fn(item)`` for many items; results come back as they complete, with their item."""

    def run(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, Future[R]]]:
        raise NotImplementedError

    def run_groups(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[list[tuple[T, Any]]]:
        """(item, result or the exception it raised) in groups of what has completed meanwhile, so
        the caller can store each group in one transaction while the workers go on."""
        for item, future in self.run(fn, items):
            yield [(item, outcome(future))]

    def close(self) -> None:
        return None


class InProcess(Workers):
    """Every item in the calling process, in order (tests, single files, ``reprocess``)."""

    def run(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, Future[R]]]:
        for item in items:
            future: Future[R] = Future()
            try:
                future.set_result(fn(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(exc)
            yield item, future


class ProcessPool(Workers):
    """A forkserver process pool with one worker per core."""

    def __init__(self, processes: int | None = None) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self.processes = processes or os.cpu_count() or 1
        # the forkserver may start before a home is opened: each worker masks "other" itself (files at rest)
        self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context, initializer=mask_others)

    def warm_up(self) -> None:
        """Start the forkserver and the workers in the background (starting blocks until the
        forkserver has loaded the science; meanwhile the caller goes on, e.g. importing Prefect)."""
        def start() -> None:
            for _ in range(self.processes):
                self._pool.submit(os.getpid)

        threading.Thread(target=start, name="workers-warm-up", daemon=True).start()

    def run(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, Future[R]]]:
        futures = {self._pool.submit(fn, item): item for item in items}
        for future in as_completed(futures):
            yield futures[future], future

    def run_groups(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[list[tuple[T, Any]]]:
        futures = {self._pool.submit(fn, item): item for item in items}
        order = {future: i for i, future in enumerate(futures)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            if pending:             # what else completes soon joins the group: fewer, larger transactions
                more, pending = wait(pending, timeout=GROUP_WINDOW_S)
                done |= more
            yield [(futures[f], outcome(f)) for f in sorted(done, key=order.__getitem__)]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_SHARED: ProcessPool | None = None


def shared() -> ProcessPool:
    """The process's pool (created on first use, kept for later batches, e.g. by ``watch``)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = ProcessPool()
    return _SHARED


def warm_up() -> None:
    """Start the shared pool early (a front-door command does this before importing Prefect)."""
    shared().warm_up()


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
