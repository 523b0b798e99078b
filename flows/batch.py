"""Batch flow: every FCS file of a folder (or a given list) through the pipeline's stages.

Order (DESIGN.md, data flow): files are taken in name order, so the first file by name wins
among identical contents; bead tubes are calibrated before samples, so the samples of a
same-day batch find their calibration without waiting; then repeats of this batch's new
content are recorded as duplicates, samples still ``pending_calibration`` from earlier
batches are finished, the outbox is pushed, and the reports are drawn last (figures never sit
on the critical path). A file
whose content was already processed under the same path keeps its earlier result
(re-running changes nothing). Each store write re-evaluates the patients it touched, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.utilities.annotations import quote

from flows import tasks
from flows.artifacts import publish
from flows.inbox import inbox_files
from flows.inbox import watched
from flows.review_requests import request_reviews
from pipeline import workers
from pipeline.config import load_settings
from pipeline.lots import default_table
from pipeline.processing import Processor
from pipeline.result_documents import FileResult


@dataclass(frozen=True)
class BatchOutcome:
    """Results of the batch's files (in name order) and the older samples finished now."""

    results: tuple[FileResult, ...]
    finished_elsewhere: tuple[FileResult, ...]


def process_files(processor: Processor, paths: list[Path]) -> BatchOutcome:
    """The batch's task graph (see module doc); returns one result per path.

    Arguments are passed ``quote``-d: Prefect would otherwise walk every header and result to
    look for futures, which costs more than the work of a small batch.
    """
    p = quote(processor)
    intake = tasks.intake(p, quote(paths))
    results = dict(intake.results)
    results.update(tasks.calibrate(p, quote(intake.beads)))
    results.update(tasks.measure(p, quote(intake.samples)))
    results.update(tasks.duplicates(p, quote(intake.repeats), quote(results), quote(intake.first)))
    by_sha = {r.sha256: path for path, r in results.items() if r.status != "duplicate"}
    elsewhere = []
    for done in tasks.finish_pending(p, quote(frozenset(intake.first))):
        if done.sha256 in by_sha:
            results[by_sha[done.sha256]] = done
        else:
            elsewhere.append(done)
    outcome = BatchOutcome(tuple(results[path] for path in intake.order), tuple(elsewhere))
    new = [r for r in results.values() if r.sha256 in intake.first]
    tasks.push(p)                                   # the results leave before their figures are drawn
    tasks.reports(p, quote(new + elsewhere))
    return outcome


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, list)
                                                       and all(isinstance(v, str) for v in value))


class PlainParameterFlow(Flow):
    """A flow whose parameters are recorded in its Prefect run as they are when they are plain
    JSON (None, strings, lists of strings): Prefect's general encoder (FastAPI's
    ``jsonable_encoder``) would load FastAPI into the command, ~0.3 s of CPU, to copy three
    strings. Other values go through Prefect's own encoding.

    Its function may return its document ``quote``-d: Prefect then does not walk it for futures
    (the 300-file document of ``mhladr run`` is ~200,000 nodes, ~1 s of CPU), and the caller
    gets the document itself."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if all(_plain(v) for v in parameters.values()):
            return {k: list(v) if isinstance(v, list) else v for k, v in parameters.items()}
        return super().serialize_parameters(parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = super().__call__(*args, **kwargs)
        return out.unquote() if isinstance(out, quote) else out


def plain_flow(**options: Any) -> Callable[[Callable[..., Any]], PlainParameterFlow]:
    """``@prefect.flow(**options)`` making a :class:`PlainParameterFlow`."""
    return lambda fn: PlainParameterFlow(fn=fn, **options)


@plain_flow(name="mhladr-batch", log_prints=False)
def batch_flow(inbox: str, registry: str | None = None, lots: str | None = None,
               files: list[str] | None = None) -> quote[dict]:
    """Process the FCS files of ``inbox`` (or only ``files``); the ``mhladr run`` document
    (``quote``-d, see :class:`PlainParameterFlow`; calling the flow returns the document). A run
    of the whole folder while a watcher holds it (``serve --inbox``, ``watch``) processes no file:
    the watcher takes each one as it lands (finishing waiting samples still runs).

    ``lots`` defaults to the one rule of :func:`pipeline.lots.default_table` (``INBOX/lots.csv``,
    else ``./lots.csv``). Returns ``{"files": [...],
    "screening": [...], "finished": [...], "registry_errors": [...]}`` where ``finished``
    lists samples of earlier batches that found their beads in this one.
    """
    settings = load_settings()
    if files is not None:
        paths = [Path(f) for f in files]
    else:                    # a watcher takes files as they land: a scheduled run would race it
        paths = [] if watched(Path(inbox)) else inbox_files(Path(inbox))
    lots = lots or default_table(inbox)
    processor = Processor(settings, registry_csv=registry, lots_csv=lots, workers=workers.shared())
    try:
        outcome = process_files(processor, paths)
        publish(outcome.results + outcome.finished_elsewhere, "batch")
        request_reviews(processor.store)
        return quote({"files": [r.as_dict() for r in outcome.results],
                      "screening": processor.screening(),
                      "finished": [r.as_dict() for r in outcome.finished_elsewhere],
                      "registry_errors": [e.as_dict() for e in processor.registry_errors]})
    finally:
        processor.close()
