"""Pushing results out of the screening log (the database stays the system of record).

Each result becomes one payload with an idempotency key (:mod:`payload`), queued per sink in
the store's outbox (:mod:`outbox`) and delivered by a sink: an HTTP webhook (:mod:`webhook`),
FHIR R4 Observation files (:mod:`fhir`) or the eCRF CSV (:mod:`csv_export`). A failed push stays
in the outbox and is retried later with exponential backoff.
"""

from __future__ import annotations

from typing import Any, Protocol

SINK_NAMES = ("webhook", "fhir", "csv")


class SinkError(Exception):
    """A delivery that did not succeed (the item stays in the outbox)."""


class Sink(Protocol):
    name: str

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        """Deliver one result; idempotent per ``key``; raise :class:`SinkError` on failure."""
        ...

    def close(self) -> None:
        """Release what the sink holds (a connection pool); nothing by default."""
        return None
