"""Coarse Prefect tasks over :class:`pipeline.processing.Processor` (composition only).

Every task takes the flow's Processor, which is neither hashable nor serialisable, so caching
is off (``cache_policy=NONE``). Only ``push`` retries: delivering the outbox is idempotent
(one key per result and sink); storing a result is not something to repeat blindly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from pipeline.acquisition import Acquisition
from pipeline.errors import InputError
from pipeline.fcs import sha256_file
from pipeline.processing import FileResult, Processor


@task(name="fingerprint", cache_policy=NONE)
def fingerprint(processor: Processor, path: Path) -> tuple[str, FileResult | None]:
    """SHA-256 of the file and, for content seen before, its outcome (earlier result or duplicate)."""
    sha256 = sha256_file(path)
    return sha256, processor.seen(path, sha256)


@task(name="read", cache_policy=NONE)
def read(processor: Processor, path: Path, sha256: str) -> Acquisition | FileResult:
    """The acquisition, or the file's ``rejected`` result when it cannot be used."""
    try:
        return processor.read(path)
    except InputError as err:
        return processor.reject(path, sha256, err)


@task(name="handle", cache_policy=NONE)
def handle(processor: Processor, acq: Acquisition) -> FileResult:
    """Beads: calibrate and store; sample: pair, gate, quantify and store (or wait for beads);
    an acquisition that turns out unusable (wrong panel, unknown lot, ...) is ``rejected``."""
    try:
        return processor.handle(acq)
    except InputError as err:
        return processor.reject(acq.path, acq.sha256, err)


@task(name="duplicate", cache_policy=NONE)
def duplicate(processor: Processor, path: Path, sha256: str, earlier: FileResult) -> FileResult:
    return processor.duplicate(path, sha256, earlier)


@task(name="finish-pending", cache_policy=NONE)
def finish_pending(processor: Processor, exclude: frozenset[str] = frozenset()) -> list[FileResult]:
    """Samples left ``pending_calibration`` whose beads have arrived since."""
    return processor.finish_pending(exclude)


@task(name="evaluate", cache_policy=NONE)
def evaluate(processor: Processor, patient_ids: Iterable[str]) -> None:
    """Re-evaluate the screening status of the patients a batch touched (the window closes with time)."""
    processor.evaluate(patient_ids)


@task(name="push", cache_policy=NONE, retries=3, retry_delay_seconds=[2, 10, 30])
def push(processor: Processor) -> dict:
    """Deliver the outbox to the configured sinks (idempotent per result and sink)."""
    return processor.push()
