"""Reading and checking the audit trail the hub writes (see :mod:`pipeline.audit`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import select

from pipeline import audit as chain
from pipeline.store import models as m
from pipeline.store.hub import audit_entry

if TYPE_CHECKING:
    from pipeline.store.hub import Store


class AuditTrail:
    """The ``audit_log`` table."""

    def __init__(self, store: "Store") -> None:
        self.store = store

    def entries(self) -> list[chain.AuditEntry]:
        with self.store.read() as s:
            return [audit_entry(r) for r in s.scalars(select(m.AuditLog).order_by(m.AuditLog.seq))]

    def verify_chain(self) -> chain.ChainCheck:
        """Recompute the hash chain over the stored trail: detects edits, insertions, deletions."""
        return chain.verify_chain(self.entries())

    def log_unblinded_read(self, actor: str, action: str, patient_ids: Sequence[str], detail: dict[str, Any]) -> None:
        """Record that ``actor`` read post-randomization results (blinding is broken knowingly)."""
        if not actor.strip():
            raise ValueError("an unblinded read needs a named actor")
        with self.store.write(actor) as tx:
            tx.audit(action, "screening", ",".join(sorted(patient_ids)) or "-", None, detail)

    def log_access(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record a sign-in, a refused sign-in or a sign-out (the lab console's sessions)."""
        with self.store.write(actor) as tx:
            tx.audit(action, "session", actor, None, detail)
