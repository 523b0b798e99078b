"""Queue results per sink and deliver the outbox (transactional outbox pattern).

``enqueue_results`` turns the store's results into payloads and queues each new version once per
sink; ``deliver_outbox`` pushes what is due, a result's versions in order, and, on failure, keeps
the item with ``next_attempt = now + base * 2**attempts`` (capped), so nothing is lost and no
version overtakes an earlier one. ``rebuild_csv`` rewrites the eCRF file from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from pipeline.config import Settings
from pipeline.sinks import Sink, SinkError
from pipeline.sinks.csv_export import CsvSink
from pipeline.sinks.fhir import FhirSink
from pipeline.sinks.payload import result_payload
from pipeline.sinks.webhook import WebhookSink
from pipeline.store import Store


@dataclass(frozen=True)
class DeliveryReport:
    delivered: tuple[str, ...]      # idempotency keys delivered now
    failed: tuple[str, ...]         # keys that failed now (still queued)
    queued: int                     # undelivered items left in the outbox (due or not)


def configured_sinks(settings: Settings) -> dict[str, Sink]:
    """The sinks switched on in the settings (empty value = off)."""
    sinks: dict[str, Sink] = {}
    if settings.webhook_url:
        sinks["webhook"] = WebhookSink(settings.webhook_url)
    if settings.fhir_dir:
        sinks["fhir"] = FhirSink(settings.fhir_dir)
    if settings.csv_export:
        sinks["csv"] = CsvSink(settings.csv_export)
    return sinks


def enqueue_results(store: Store, sink_names: tuple[str, ...], *, include_blinded: bool = False,
                    actor: str = "export") -> int:
    """Queue the current version of every (non-blinded) result for each sink in one
    transaction; returns how many items were added."""
    screening = {r.patient_id: r for r in store.screening.log()}
    measurements = store.measurements.list(include_blinded=include_blinded)
    signatures = store.signatures.of_reviews(mm.id for mm in measurements if mm.review)
    results = [(meas.id, result_payload(meas, screening.get(meas.patient_id), store.rules, signatures.get(meas.id)))
               for meas in measurements]
    return store.outbox.enqueue_results(results, sink_names, actor=actor)


def deliver_outbox(store: Store, now: datetime, sinks: Mapping[str, Sink], *,
                   base_delay: timedelta = timedelta(seconds=30),
                   max_delay: timedelta = timedelta(hours=6), actor: str = "export") -> DeliveryReport:
    """Deliver every due item of the given sinks, each result's versions in order (a version
    waits while an earlier one of the same result and sink is undelivered); failures are
    rescheduled, never dropped."""
    delivered: list[str] = []
    failed: list[str] = []
    waiting: set[tuple[str, int]] = set()      # (sink, result) with an earlier version undelivered
    for item in store.outbox.undelivered():
        sink = sinks.get(item.sink)
        if sink is None:
            continue
        result = (item.sink, item.measurement_id)
        if result in waiting or item.next_attempt > now:
            waiting.add(result)
            continue
        try:
            sink.deliver(item.idempotency_key, item.payload)
        except SinkError as exc:
            delay = min(max_delay, base_delay * 2 ** item.attempts)
            store.outbox.mark_failed(item.id, str(exc), now + delay, actor=actor)
            failed.append(item.idempotency_key)
            waiting.add(result)
            continue
        store.outbox.mark_delivered(item.id, now, actor=actor)
        delivered.append(item.idempotency_key)
    return DeliveryReport(tuple(delivered), tuple(failed), store.outbox.undelivered_count(tuple(sinks)))


def rebuild_csv(store: Store, sink: CsvSink, now: datetime, *, include_blinded: bool = False,
                actor: str = "export") -> int:
    """Rewrite the eCRF CSV from the store: queue what is new, then write every version queued
    for the csv sink (post-randomization results only when ``include_blinded``) and mark them
    delivered. Returns the rows written."""
    enqueue_results(store, ("csv",), include_blinded=include_blinded, actor=actor)
    withheld = set() if include_blinded else {mm.id for mm in store.measurements.blinded()}
    items = [i for i in store.outbox.list("csv") if i.measurement_id not in withheld]
    sink.rewrite([(i.idempotency_key, i.payload) for i in items])
    for item in items:
        if item.delivered_at is None:
            store.outbox.mark_delivered(item.id, now, actor=actor)
    return len(items)
