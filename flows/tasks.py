"""Coarse Prefect tasks over :class:`pipeline.processing.Processor` (composition only).

One task per stage of a batch, not per file: a tube is ~30 ms of work in the processor's
worker processes, far less than a task run's round trips to the server. Every task takes the
flow's Processor, which is neither hashable nor serialisable, so caching is off
(``cache_policy=NONE``). Only ``push`` retries: delivering the outbox is idempotent (one key per
result and sink); storing a result is not something to repeat blindly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from pipeline.processing import Intake, Processor
from pipeline.result_documents import FileResult
from pipeline.tubes import Examined


@task(name="intake", cache_policy=NONE)
def intake(processor: Processor, paths: Sequence[Path]) -> Intake:
    """SHA-256 and HEADER/TEXT of every file; earlier results, duplicates and rejections decided."""
    return processor.intake(paths)


@task(name="calibrate", cache_policy=NONE)
def calibrate(processor: Processor, beads: list[Examined]) -> dict[Path, FileResult]:
    """Fit and store the bead tubes' calibrations."""
    return processor.calibrate(beads)


@task(name="measure", cache_policy=NONE)
def measure(processor: Processor, samples: list[Examined]) -> dict[Path, FileResult]:
    """Pair, gate, quantify and store the patient tubes (or leave them waiting for their beads)."""
    return processor.measure(samples)


@task(name="duplicates", cache_policy=NONE)
def duplicates(processor: Processor, repeats: list[Examined], originals: dict[Path, FileResult],
               first: dict[str, Path]) -> dict[Path, FileResult]:
    """Record the repeats of content first seen earlier in the same batch."""
    return {Path(e.path): processor.duplicate(e, originals[first[e.sha256]]) for e in repeats}


@task(name="finish-pending", cache_policy=NONE)
def finish_pending(processor: Processor, exclude: frozenset[str] = frozenset()) -> list[FileResult]:
    """Samples left ``pending_calibration`` whose beads have arrived since."""
    return processor.finish_pending(exclude)


@task(name="reports", cache_policy=NONE)
def reports(processor: Processor, done: Iterable[FileResult]) -> list[Path]:
    """The HTML reports of the results just stored."""
    return processor.reports(done)


@task(name="push", cache_policy=NONE, retries=3, retry_delay_seconds=[2, 10, 30])
def push(processor: Processor) -> dict:
    """Deliver the outbox to the configured sinks (idempotent per result and sink)."""
    return processor.push()
