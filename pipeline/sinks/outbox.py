"""Queue results per sink and deliver the outbox (transactional outbox pattern).

``enqueue_results`` turns the store's results into payloads and queues each once per sink and
idempotency key; ``deliver_outbox`` pushes what is due and, on failure, keeps the item with
``next_attempt = now + base * 2**attempts`` (capped), so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from pipeline.config import Settings
from pipeline.sinks import Sink, SinkError
from pipeline.sinks.csv_export import CsvSink
from pipeline.sinks.fhir import FhirSink
from pipeline.sinks.payload import idempotency_key, result_payload
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
    """Queue every (non-blinded) result for each sink in one transaction; returns how many
    items were added."""
    screening = {r.patient_id: r for r in store.screening.log()}
    patients = {p.patient_id: p for p in store.patients.list()}
    items = []
    for meas in store.measurements.list(include_blinded=include_blinded):
        payload = result_payload(meas, patients.get(meas.patient_id), screening.get(meas.patient_id),
                                 store.rules)
        key = idempotency_key(payload)
        items += [(name, key, payload) for name in sink_names]
    return store.outbox.enqueue_many(items, actor=actor)


def deliver_outbox(store: Store, now: datetime, sinks: Mapping[str, Sink], *,
                   base_delay: timedelta = timedelta(seconds=30),
                   max_delay: timedelta = timedelta(hours=6), actor: str = "export") -> DeliveryReport:
    """Deliver every due item of the given sinks; failures are rescheduled, never dropped."""
    delivered: list[str] = []
    failed: list[str] = []
    for item in store.outbox.due(now):
        sink = sinks.get(item.sink)
        if sink is None:
            continue
        try:
            sink.deliver(item.idempotency_key, item.payload)
        except SinkError as exc:
            delay = min(max_delay, base_delay * 2 ** item.attempts)
            store.outbox.mark_failed(item.id, str(exc), now + delay, actor=actor)
            failed.append(item.idempotency_key)
            continue
        store.outbox.mark_delivered(item.id, now, actor=actor)
        delivered.append(item.idempotency_key)
    return DeliveryReport(tuple(delivered), tuple(failed), store.outbox.undelivered_count(tuple(sinks)))
