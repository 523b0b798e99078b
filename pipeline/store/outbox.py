"""The outbox: results queued per sink and idempotency key until delivered (transactional
outbox pattern; delivery bookkeeping is audited like every other write)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import func, select

from pipeline import audit as chain
from pipeline.store import models as m
from pipeline.store.records import OutboxRecord

if TYPE_CHECKING:
    from pipeline.store.hub import Store


def outbox_record(row: m.OutboxItem) -> OutboxRecord:
    return OutboxRecord(row.id, row.sink, row.idempotency_key, dict(row.payload), row.attempts,
                        row.next_attempt, row.delivered_at, row.last_error)


class Outbox:
    """The ``outbox`` table."""

    def __init__(self, store: "Store") -> None:
        self.store = store

    def enqueue(self, sink: str, key: str, payload: dict[str, Any], *, actor: str = "pipeline") -> bool:
        """Queue a payload for a sink; False when this (sink, key) is already queued."""
        return self.enqueue_many([(sink, key, payload)], actor=actor) == 1

    def enqueue_many(self, items: Sequence[tuple[str, str, dict[str, Any]]], *, actor: str = "pipeline") -> int:
        """Queue (sink, key, payload) items in one transaction, each (sink, key) once; returns
        how many were added."""
        if not items:
            return 0
        with self.store.write(actor) as tx:
            s = tx.session
            keys = {key for _, key, _ in items}
            queued = {(sink, key) for sink, key in s.execute(
                select(m.OutboxItem.sink, m.OutboxItem.idempotency_key).where(m.OutboxItem.idempotency_key.in_(keys)))}
            now = tx.now()
            added = 0
            for sink, key, payload in items:
                if (sink, key) in queued:
                    continue
                queued.add((sink, key))
                row = m.OutboxItem(sink=sink, idempotency_key=key, payload=chain.jsonable(payload), attempts=0,
                                   next_attempt=now, delivered_at=None, last_error=None, created=now)
                s.add(row)
                s.flush()
                tx.audit("enqueue", "outbox", row.id, None, {"sink": sink, "key": key})
                added += 1
            return added

    def undelivered_count(self, sinks: Sequence[str]) -> int:
        """How many items of these sinks still wait for delivery (due or not)."""
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(m.OutboxItem).where(
                m.OutboxItem.delivered_at.is_(None), m.OutboxItem.sink.in_(sinks))) or 0

    def due(self, now: datetime, sink: str | None = None) -> list[OutboxRecord]:
        """Undelivered items whose next attempt is due (oldest first)."""
        with self.store.read() as s:
            query = select(m.OutboxItem).where(m.OutboxItem.delivered_at.is_(None),
                                               m.OutboxItem.next_attempt <= now).order_by(m.OutboxItem.id)
            if sink is not None:
                query = query.where(m.OutboxItem.sink == sink)
            return [outbox_record(r) for r in s.scalars(query)]

    def list(self, sink: str | None = None) -> list[OutboxRecord]:
        with self.store.read() as s:
            query = select(m.OutboxItem).order_by(m.OutboxItem.id)
            if sink is not None:
                query = query.where(m.OutboxItem.sink == sink)
            return [outbox_record(r) for r in s.scalars(query)]

    def mark_delivered(self, item_id: int, now: datetime, *, attempts: int = 1, actor: str = "pipeline") -> None:
        with self.store.write(actor) as tx:
            row = tx.session.get(m.OutboxItem, item_id)
            if row is None or row.delivered_at is not None:
                return
            row.attempts += attempts
            row.delivered_at, row.last_error = now, None
            tx.session.flush()
            tx.audit("delivered", "outbox", item_id, None,
                     {"sink": row.sink, "key": row.idempotency_key, "attempts": row.attempts})

    def mark_failed(self, item_id: int, error: str, next_attempt: datetime, *, attempts: int = 1,
                    actor: str = "pipeline") -> None:
        with self.store.write(actor) as tx:
            row = tx.session.get(m.OutboxItem, item_id)
            if row is None or row.delivered_at is not None:
                return
            row.attempts += attempts
            row.last_error, row.next_attempt = error[:2000], next_attempt
            tx.session.flush()
            tx.audit("delivery_failed", "outbox", item_id, None,
                     {"sink": row.sink, "key": row.idempotency_key, "attempts": row.attempts,
                      "error": row.last_error, "next_attempt": next_attempt})
