"""Reading and checking the audit trail the hub writes (see :mod:`pipeline.audit` and
:mod:`pipeline.store.integrity`)."""

from __future__ import annotations

from typing import Any, Sequence

from pipeline import audit as chain
from pipeline.store import integrity
from pipeline.store.tx import Transactions


class AuditTrail:
    """The ``audit_log`` table."""

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def entries(self) -> list[chain.AuditEntry]:
        with self.store.read() as s:
            return list(integrity.entries(s))

    def verify_chain(self) -> chain.ChainCheck:
        """Recompute the hash chain over the stored trail: detects edits, insertions, deletions."""
        with self.store.read(snapshot=True) as s:
            return chain.verify_chain(integrity.entries(s))

    def verify(self, published: tuple[str, int] | None = None) -> integrity.Verification:
        """The chain, and every stored row against its last audited digest, in one snapshot;
        ``published``: a head (hash, seq) published earlier that the chain must still contain."""
        with self.store.read(snapshot=True) as s:
            return integrity.verify(s, published)

    def head(self) -> str:
        """The chain's head as ``HASH@SEQ`` (what to publish)."""
        with self.store.read() as s:
            return chain.head_text(integrity.last_entry(s))

    def log_unblinded_read(self, actor: str, action: str, patient_ids: Sequence[str], detail: dict[str, Any]) -> None:
        """Record that ``actor`` read post-randomization results (blinding is broken knowingly)."""
        self.log_event(actor, action, "screening", ",".join(sorted(patient_ids)) or "-", detail)

    def log_event(self, actor: str, action: str, entity: str, entity_id: str, detail: dict[str, Any]) -> None:
        """Record an event that writes no row (an unblinded read, acting for someone, a login)."""
        if not actor.strip():
            raise ValueError(f"{action} needs a named actor")
        with self.store.write(actor) as tx:
            tx.audit(action, entity, entity_id, None, detail)
