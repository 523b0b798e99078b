"""The outbox: numbered versions of each result, queued per sink until delivered (transactional
outbox pattern; every row written and every delivery audited like any other write)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import func, select

from pipeline import audit as chain
from pipeline.sinks.payload import content_digest, version_key, versioned
from pipeline.store import models as m
from pipeline.store.records import OutboxRecord

if TYPE_CHECKING:
    from pipeline.store.hub import Store, Tx


def outbox_record(row: m.OutboxItem) -> OutboxRecord:
    return OutboxRecord(row.id, row.sink, row.idempotency_key, dict(row.payload), row.attempts,
                        row.next_attempt, row.delivered_at, row.last_error, row.measurement_id, row.version)


@dataclass
class _Latest:
    """A result's newest queued version: its number, content digest and the sinks holding it."""

    version: int
    content: str
    sinks: set[str]


class Outbox:
    """The ``outbox`` table."""

    def __init__(self, store: "Store") -> None:
        self.store = store

    def enqueue_results(self, results: Sequence[tuple[int, dict[str, Any]]], sinks: Sequence[str], *,
                        actor: str = "export") -> int:
        """Queue each result's current content for each sink, in one transaction: a content not
        queued before becomes the result's next version (:func:`pipeline.sinks.payload.versioned`);
        a sink missing the newest version gets it. Returns the items added."""
        if not results or not sinks:
            return 0
        with self.store.write(actor) as tx:
            latest = self._latest(tx, [mid for mid, _ in results])
            added = 0
            for mid, content in results:
                digest = content_digest(content)
                known = latest.get(mid)
                if known is not None and known.content == digest:
                    version, missing = known.version, [s for s in sinks if s not in known.sinks]
                    if not missing:
                        continue
                    payload = self._payload(tx, mid, version)
                else:
                    version, missing = (known.version if known else 0) + 1, list(sinks)
                    previous = self._payload(tx, mid, known.version) if known else None
                    payload = versioned(content, previous, version)
                key = version_key(payload["result_id"], version)
                for sink in missing:
                    self._add(tx, sink, key, payload, measurement_id=mid, version=version, content=digest)
                    added += 1
            return added

    def _latest(self, tx: "Tx", measurement_ids: Sequence[int]) -> dict[int, _Latest]:
        newest = (select(m.OutboxItem.measurement_id, func.max(m.OutboxItem.version).label("version"))
                  .group_by(m.OutboxItem.measurement_id).subquery())
        rows = tx.session.execute(
            select(m.OutboxItem.measurement_id, m.OutboxItem.version, m.OutboxItem.content, m.OutboxItem.sink)
            .join(newest, (m.OutboxItem.measurement_id == newest.c.measurement_id)
                  & (m.OutboxItem.version == newest.c.version)))
        wanted = set(measurement_ids)
        latest: dict[int, _Latest] = {}
        for mid, version, content, sink in rows:
            if mid in wanted:
                latest.setdefault(mid, _Latest(version, content, set())).sinks.add(sink)
        return latest

    @staticmethod
    def _payload(tx: "Tx", measurement_id: int, version: int) -> dict[str, Any]:
        return dict(tx.session.scalars(select(m.OutboxItem.payload).where(
            m.OutboxItem.measurement_id == measurement_id, m.OutboxItem.version == version).limit(1)).one())

    @staticmethod
    def _add(tx: "Tx", sink: str, key: str, payload: dict[str, Any], *, measurement_id: int, version: int,
             content: str) -> None:
        now = tx.now()
        row = m.OutboxItem(sink=sink, idempotency_key=key, payload=chain.jsonable(payload), attempts=0,
                           next_attempt=now, delivered_at=None, last_error=None, created=now,
                           measurement_id=measurement_id, version=version, content=content)
        tx.save(row, "enqueue", "outbox", None, {"sink": sink, "key": key, "measurement_id": measurement_id,
                                                 "version": version, "status": payload["status"]})

    def undelivered_count(self, sinks: Sequence[str]) -> int:
        """How many items of these sinks still wait for delivery (due or not)."""
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(m.OutboxItem).where(
                m.OutboxItem.delivered_at.is_(None), m.OutboxItem.sink.in_(sinks))) or 0

    def undelivered(self, sink: str | None = None) -> list[OutboxRecord]:
        """Items waiting for delivery, due or not, in the order they were queued."""
        with self.store.read() as s:
            query = select(m.OutboxItem).where(m.OutboxItem.delivered_at.is_(None)).order_by(m.OutboxItem.id)
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
            tx.save(row, "delivered", "outbox", None,
                    {"sink": row.sink, "key": row.idempotency_key, "attempts": row.attempts})

    def mark_failed(self, item_id: int, error: str, next_attempt: datetime, *, attempts: int = 1,
                    actor: str = "pipeline") -> None:
        with self.store.write(actor) as tx:
            row = tx.session.get(m.OutboxItem, item_id)
            if row is None or row.delivered_at is not None:
                return
            row.attempts += attempts
            row.last_error, row.next_attempt = error[:2000], next_attempt
            tx.save(row, "delivery_failed", "outbox", None,
                    {"sink": row.sink, "key": row.idempotency_key, "attempts": row.attempts,
                     "error": row.last_error, "next_attempt": next_attempt})
