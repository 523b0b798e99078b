"""Reading and checking the audit trail the hub writes (see :mod:`pipeline.audit` and
:mod:`pipeline.store.integrity`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, select

from pipeline import audit as chain
from pipeline.store import integrity
from pipeline.store.derived import stale_copies
from pipeline.store import models as m
from pipeline.store.signatures import broken
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
        ``published``: a head (hash, seq) published earlier that the chain must still contain;
        then every signature against the record it signed (:func:`pipeline.store.signatures.broken`)
        and every stored copy of a rule against what the rule derives from the stored facts
        (:func:`pipeline.store.derived.stale_copies`)."""
        with self.store.read(snapshot=True) as s:
            found = integrity.verify(s, published)
            stale = tuple(stale_copies(s, self.store.rules))
            return replace(found, problems=found.problems + tuple(broken(s)) + tuple(c.problem() for c in stale),
                           derived=stale)

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

    def failures(self, name: str, since: datetime) -> int:
        """Refused sign-ins and refused signatures recorded for ``name`` since ``since``."""
        with self.store.read() as s:
            return s.scalar(select(func.count()).select_from(m.AuditLog).where(
                m.AuditLog.actor == name, m.AuditLog.at >= since,
                m.AuditLog.action.in_(("login_failed", "signature_refused")))) or 0

    def since(self, moment: datetime | None) -> list[chain.AuditEntry]:
        """The entries recorded at or after ``moment`` (all when None), in ``seq`` order."""
        with self.store.read() as s:
            query = select(*integrity.ENTRY_COLUMNS).order_by(m.AuditLog.seq)
            if moment is not None:
                query = query.where(m.AuditLog.at >= moment)
            return [integrity.stored_entry(r) for r in s.execute(query)]

    def last_about(self, entity_id: str) -> chain.AuditEntry | None:
        """The newest entry about ``entity_id`` (e.g. a file's SHA-256)."""
        with self.store.read() as s:
            row = s.execute(select(*integrity.ENTRY_COLUMNS).where(m.AuditLog.entity_id == entity_id)
                            .order_by(m.AuditLog.seq.desc()).limit(1)).first()
            return integrity.stored_entry(row) if row is not None else None
