"""The outbox: numbered versions of each result, queued per sink until delivered (transactional
outbox pattern; every row written and every delivery audited like any other write).

A result's content (:func:`pipeline.sinks.payload.result_payload`) is digested
(:func:`content_digest`); when the digest changes (a technician decides, the screening status
moves) the result gets a new version, with the same ``result_id`` (the file's SHA-256: the FHIR
Observation's id and identifier). Each version carries its lifecycle ``status`` (FHIR R4
ObservationStatus, :func:`lifecycle_status`) and is delivered once per sink under its own
idempotency key (:func:`version_key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, select

from pipeline import audit as chain
from pipeline.store import models as m
from pipeline.store.records import OutboxRecord
from pipeline.store.tx import Transactions, Tx


def content_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a result's canonical content (what makes a new version when it changes)."""
    return chain.json_digest(payload)


def version_key(result_id: str, version: int) -> str:
    """The idempotency key of one version of one result: ``mhladr-<result id>-v<version>``."""
    return f"mhladr-{result_id}-v{version}"


# What the Observation itself says: a version that changes none of these (e.g. only the patient's
# screening status moved) keeps the previous version's status.
OBSERVED = ("patient_id", "collection_date", "abc", "abc_interval", "below_threshold", "threshold", "category",
            "qc", "review", "signature")


def lifecycle_status(content: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """The FHIR R4 ObservationStatus of a result's next version (hl7.org/fhir/R4/valueset-observation-status):
    ``preliminary`` while a QC review result awaits its technician; ``final`` once usable (QC
    pass, or approved); ``cancelled`` when withdrawn (QC fail, or rejected); ``amended`` when a
    result released as final or cancelled changes afterwards (e.g. a superseding decision)."""
    if content["qc"]["status"] == "fail" or content.get("review") == "reject":
        return "cancelled"
    if content["qc"]["status"] == "review" and content.get("review") is None:
        return "preliminary"
    if previous is None or previous["status"] == "preliminary":
        return "final"
    if all(previous.get(k) == content.get(k) for k in OBSERVED):
        return previous["status"]
    return "amended"


def versioned(content: dict[str, Any], previous: dict[str, Any] | None, version: int) -> dict[str, Any]:
    """The payload delivered for version ``version`` of a result (``previous``: the payload of
    the version before, if any)."""
    return {**content, "result_id": content["file_sha256"], "version": version,
            "status": lifecycle_status(content, previous)}


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

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def enqueue_results(self, results: Sequence[tuple[int, dict[str, Any]]], sinks: Sequence[str], *,
                        actor: str = "export") -> int:
        """Queue each result's current content for each sink, in one transaction: a content not
        queued before becomes the result's next version (:func:`versioned`);
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

    def _latest(self, tx: Tx, measurement_ids: Sequence[int]) -> dict[int, _Latest]:
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
    def _payload(tx: Tx, measurement_id: int, version: int) -> dict[str, Any]:
        return dict(tx.session.scalars(select(m.OutboxItem.payload).where(
            m.OutboxItem.measurement_id == measurement_id, m.OutboxItem.version == version).limit(1)).one())

    @staticmethod
    def _add(tx: Tx, sink: str, key: str, payload: dict[str, Any], *, measurement_id: int, version: int,
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
