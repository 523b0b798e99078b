"""Pushing results to the sinks switched on in the settings: queue every screening result in the
outbox, then deliver what is due (:mod:`pipeline.sinks.outbox`)."""

from __future__ import annotations

from typing import Any

from pipeline.config import Settings
from pipeline.sinks.outbox import configured_sinks, deliver_outbox, enqueue_results
from pipeline.store import Store


def push_to_sinks(store: Store, settings: Settings) -> dict[str, Any]:
    """Queue every screening result for the configured sinks and deliver what is due."""
    sinks = configured_sinks(settings)
    if not sinks:
        return {"sinks": [], "queued": 0, "delivered": 0}
    try:
        queued = enqueue_results(store, tuple(sinks))
        report = deliver_outbox(store, store.clock(), sinks)
    finally:
        for sink in sinks.values():
            sink.close()
    return {"sinks": sorted(sinks), "queued": queued, "delivered": len(report.delivered),
            "failed": len(report.failed)}
