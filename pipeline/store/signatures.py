"""Electronic signatures (21 CFR Part 11 §11.50 manifestation, §11.70 record linking, §11.200
components; EMA guideline on computerised systems in clinical trials, 2023, §6.8): each one names
the signer, the UTC time and the meaning, and is linked to the signed record by that record's
digest as the database held it when it was signed (:func:`pipeline.store.integrity.row_ref`), so
it cannot be moved to another record and :func:`broken` names it once the record changes.

A signature is written in the transaction of the record it signs (:func:`sign_in`); who may sign
(the password re-entered) is checked before, in :mod:`pipeline.signing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

import sqlalchemy as sa
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from pipeline import audit as chain
from pipeline.store import models as m

if TYPE_CHECKING:
    from pipeline.store.tx import Transactions, Tx

UNSIGNED = "unsigned (single-user mode)"


@dataclass(frozen=True)
class SignatureRecord:
    """One stored signature: the manifestation (signer, meaning, UTC time) and the link."""

    id: int
    signer: str
    meaning: str
    signed_at: datetime
    record_table: str
    record_key: str
    record_digest: str

    def manifestation(self) -> dict[str, str]:
        """``{"user", "meaning", "signed_at"}`` (UTC ISO time), as shown on every surface."""
        return {"user": self.signer, "meaning": self.meaning, "signed_at": chain.utc_iso(self.signed_at)}

    def __str__(self) -> str:
        return f"signed by {self.signer}, {self.signed_at.strftime('%Y-%m-%d %H:%M:%S')} UTC: {self.meaning}"


def record(row: m.Signature) -> SignatureRecord:
    return SignatureRecord(row.id, row.signer, row.meaning, row.signed_at, row.record_table, row.record_key,
                           row.record_digest)


def table_named(name: str) -> sa.Table:
    """A signable table: any table of the store, the audit trail included."""
    return m.Base.metadata.tables[name]


def sign_in(tx: "Tx", table: str, key: object, signer: str, meaning: str) -> SignatureRecord:
    """Sign row ``key`` of ``table`` in the caller's transaction (after the row is written)."""
    from pipeline.store import integrity

    ref = integrity.row_ref(tx.session, table_named(table), key)
    row = m.Signature(signer=signer, meaning=meaning, signed_at=tx.now(), record_table=table,
                      record_key=ref.key, record_digest=ref.digest)
    tx.save(row, "sign", table, None, {"meaning": meaning, "record": ref.key, "digest": ref.digest},
            entity_id=ref.key)
    return record(row)


def broken(bind: Session | Connection) -> Iterator[chain.Problem]:
    """Every signature whose record is gone or no longer matches the digest it signed."""
    from pipeline.store import integrity

    for row in bind.execute(select(m.Signature.__table__)).mappings():
        where = f"signature {row['id']} ({row['meaning']} by {row['signer']})"
        try:
            now = integrity.row_ref(bind, table_named(row["record_table"]), row["record_key"])
        except (LookupError, KeyError):
            yield chain.Problem("signatures", str(row["id"]), f"{where}: the signed record "
                                f"{row['record_table']} {row['record_key']} is gone")
            continue
        if now.digest != row["record_digest"]:
            yield chain.Problem("signatures", str(row["id"]), f"{where}: {row['record_table']} {row['record_key']} "
                                "no longer matches the digest it signed (changed after signing)")


class Signatures:
    """The ``signatures`` table."""

    def __init__(self, store: "Transactions") -> None:
        self.store = store

    def sign(self, table: str, key: object, signer: str, meaning: str) -> SignatureRecord:
        """Sign a stored row in a transaction of its own; the caller checked the signer's password
        (:func:`pipeline.signing.authenticate`) just before."""
        with self.store.write(signer) as tx:
            return sign_in(tx, table, key, signer, meaning)

    def of(self, table: str, keys: Any) -> dict[str, SignatureRecord]:
        """The latest signature of each of these records (key as text -> signature)."""
        wanted = [str(k) for k in keys]
        if not wanted:
            return {}
        with self.store.read() as s:
            rows = s.scalars(select(m.Signature).where(m.Signature.record_table == table,
                                                       m.Signature.record_key.in_(wanted))
                             .order_by(m.Signature.id)).all()
        return {r.record_key: record(r) for r in rows}

    def of_reviews(self, measurement_ids: Any) -> dict[int, SignatureRecord | None]:
        """The signature of each measurement's current review decision (None: unsigned or undecided)."""
        ids = list(measurement_ids)
        if not ids:
            return {}
        with self.store.read() as s:
            latest = dict(s.execute(select(m.ReviewDecision.measurement_id, sa.func.max(m.ReviewDecision.id))
                                    .where(m.ReviewDecision.measurement_id.in_(ids))
                                    .group_by(m.ReviewDecision.measurement_id)).all())
        signed = self.of("review_decisions", latest.values())
        return {mid: signed.get(str(latest[mid])) if mid in latest else None for mid in ids}

    def list(self, since: datetime | None = None) -> list[SignatureRecord]:
        with self.store.read() as s:
            query = select(m.Signature).order_by(m.Signature.id)
            if since is not None:
                query = query.where(m.Signature.signed_at >= since)
            return [record(r) for r in s.scalars(query)]
