"""Batch flow: every FCS file of a folder (or a given list) through the pipeline.

Order (DESIGN.md, data flow): files are fingerprinted in name order, so the first file by
name wins among identical contents; bead tubes are handled before samples, so the samples of
a same-day batch find their calibration without waiting; then duplicates are recorded against
the result they repeat, samples still ``pending_calibration`` from earlier batches are
finished, the patients touched are re-evaluated and the outbox is pushed. A file whose
content was already processed under the same path keeps its earlier result (re-running
changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows import tasks
from flows.artifacts import publish
from flows.inbox import inbox_files
from flows.review_requests import request_reviews
from pipeline.config import load_settings
from pipeline.processing import FileResult, Processor


@dataclass(frozen=True)
class BatchOutcome:
    """Results of the batch's files (in name order) and the older samples finished now."""

    results: tuple[FileResult, ...]
    finished_elsewhere: tuple[FileResult, ...]


def process_files(processor: Processor, paths: list[Path]) -> BatchOutcome:
    """The batch's task graph (see module doc); returns one result per path."""
    ordered = sorted((p.resolve() for p in paths), key=lambda p: (p.name, str(p)))
    results: dict[Path, FileResult] = {}
    first: dict[str, Path] = {}                 # sha256 -> first path of new content in this batch
    samples: list[tuple[Path, str]] = []
    repeats: list[tuple[Path, str]] = []
    for path in ordered:
        sha256, earlier = tasks.fingerprint(processor, path)
        if earlier is not None:                 # processed before: same file, or recorded duplicate
            results[path] = earlier
            continue
        if sha256 in first:                     # repeats new content of this batch: after its first
            repeats.append((path, sha256))
            continue
        first[sha256] = path
        acq = tasks.read(processor, path, sha256)
        if isinstance(acq, FileResult):
            results[path] = acq
        elif acq.kind == "beads":
            results[path] = tasks.handle(processor, acq)
        else:
            samples.append((path, sha256))          # re-read after the beads: bounded memory
    for path, sha256 in samples:
        acq = tasks.read(processor, path, sha256)
        results[path] = acq if isinstance(acq, FileResult) else tasks.handle(processor, acq)
    for path, sha256 in repeats:
        results[path] = tasks.duplicate(processor, path, sha256, results[first[sha256]])
    by_sha = {r.sha256: p for p, r in results.items() if r.status != "duplicate"}
    elsewhere = []
    for done in tasks.finish_pending(processor, frozenset(first)):
        if done.sha256 in by_sha:
            results[by_sha[done.sha256]] = done
        else:
            elsewhere.append(done)
    outcome = BatchOutcome(tuple(results[p] for p in ordered), tuple(elsewhere))
    touched = [r.patient_id for r in outcome.results + outcome.finished_elsewhere if r.patient_id]
    tasks.evaluate(processor, touched)
    tasks.push(processor)
    return outcome


@flow(name="mhladr-batch", log_prints=False)
def batch_flow(inbox: str, registry: str | None = None, lots: str | None = None,
               files: list[str] | None = None) -> dict:
    """Process the FCS files of ``inbox`` (or only ``files``); the ``mhladr run`` document.

    ``lots`` defaults to ``INBOX/lots.csv`` when present. Returns ``{"files": [...],
    "screening": [...], "finished": [...]}`` where ``finished`` lists samples of earlier
    batches that found their beads in this one.
    """
    settings = load_settings()
    paths = [Path(f) for f in files] if files is not None else inbox_files(Path(inbox))
    if lots is None and (Path(inbox) / "lots.csv").is_file():
        lots = str(Path(inbox) / "lots.csv")
    processor = Processor(settings, registry_csv=registry, lots_csv=lots)
    try:
        outcome = process_files(processor, paths)
        publish(outcome.results + outcome.finished_elsewhere, settings.home / "reports", "batch")
        request_reviews(settings)
        return {"files": [r.as_dict() for r in outcome.results],
                "screening": processor.screening(),
                "finished": [r.as_dict() for r in outcome.finished_elsewhere],
                "registry_errors": [e.as_dict() for e in processor.registry_errors]}
    finally:
        processor.close()
