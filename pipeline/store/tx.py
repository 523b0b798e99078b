"""Transactions of the results store: the one place that opens them, writes audit entries and
re-evaluates, once, the patients a transaction touched.

Every write is one transaction (:meth:`Transactions.write`): the repositories beside this module
add or change rows through the :class:`Tx` it yields, only with :meth:`Tx.save`, which audits the
change in the same transaction with the digest of the row as stored (tamper evidence,
:mod:`pipeline.store.integrity`); :meth:`Tx.audit` alone records events that write no row
(e.g. an unblinded read). Before the commit every patient the transaction touched
(:meth:`Tx.touch`) gets its screening decision re-evaluated exactly once. Writers are
serialised (SQLite ``BEGIN IMMEDIATE`` / PostgreSQL advisory lock, see ``engine``), which keeps
the audit hash chain linear across processes. The repositories import this module; the hub
(:mod:`pipeline.store.hub`) builds them on a :class:`Transactions` and hands it the screening
re-evaluation.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pipeline import audit as chain
from pipeline.eligibility import Rules
from pipeline.store import integrity
from pipeline.store import models as m
from pipeline.store.engine import lock_for_write, writer

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Tx:
    """One write transaction: its session, who acts, the day rules are evaluated for, and the
    patients to re-evaluate before it commits."""

    def __init__(self, store: "Transactions", session: Session, actor: str, today: date | None) -> None:
        self.store = store
        self.session = session
        self.actor = actor
        self._today = today
        self._touched: list[str] = []
        self._head: chain.AuditEntry | None = None      # the chain's last entry, read once per transaction

    @property
    def today(self) -> date:
        """The day screening rules are evaluated for (the store's today unless given)."""
        if self._today is None:
            self._today = self.store.today()
        return self._today

    def now(self) -> datetime:
        return self.store.clock()

    @property
    def head(self) -> chain.AuditEntry:
        """The entry this transaction wrote last (after :meth:`audit` or :meth:`save`)."""
        if self._head is None:
            raise LookupError("nothing audited in this transaction yet")
        return self._head

    def save(self, row: m.Base, action: str, entity: str, before: Any, after: Any,
             entity_id: object = None) -> None:
        """Add or change ``row`` and audit it, with the digest of the row as the database now
        holds it: the one way the repositories write (``entity_id`` defaults to the row's key)."""
        self.session.add(row)
        self.session.flush()
        table = row.__table__
        key = getattr(row, integrity.key_column(table))
        self.audit(action, entity, key if entity_id is None else entity_id, before, after,
                   row=integrity.row_ref(self.session, table, key))

    def audit(self, action: str, entity: str, entity_id: object, before: Any, after: Any,
              actor: str | None = None, row: chain.RowRef | None = None) -> None:
        """Append one entry to the hash-chained audit trail (see :mod:`pipeline.audit`); an event
        that writes no row (rows are written with :meth:`save`)."""
        s = self.session
        if self._head is None:      # writers are serialised: no one else extends the chain meanwhile
            self._head = integrity.last_entry(s)
        entry = chain.make_entry(self._head, self.now(), actor or self.actor, action, entity, str(entity_id),
                                 before, after, row)
        s.add(m.AuditLog(**integrity.entry_columns(entry)))
        s.flush()
        self._head = entry

    def touch(self, patient_id: str | None) -> None:
        """Re-evaluate this patient's screening before the transaction commits (once)."""
        if patient_id and patient_id not in self._touched:
            self._touched.append(patient_id)

    def evaluate_touched(self) -> None:
        for patient_id in self._touched:
            self.store.evaluate(self, patient_id)
        self._touched.clear()


Evaluate = Callable[[Tx, str], None]


class Transactions:
    """One results database's transactions; ``evaluate(tx, patient_id)`` re-evaluates a touched
    patient's screening before a write commits (wired by the hub)."""

    def __init__(self, engine: Engine, rules: Rules, clock: Clock, evaluate: Evaluate) -> None:
        self.engine = engine
        self.rules = rules
        self.clock = clock
        self.evaluate = evaluate
        self._writer = writer(engine)

    def today(self) -> date:
        """The local calendar date now (the clinical day for the window)."""
        return self.clock().astimezone().date()

    @contextmanager
    def write(self, actor: str, today: date | None = None) -> Iterator[Tx]:
        """A write transaction; touched patients are re-evaluated, once each, before commit."""
        with Session(self._writer, expire_on_commit=False) as session:
            with session.begin():
                lock_for_write(session.connection())
                tx = Tx(self, session, actor, today)
                yield tx
                tx.evaluate_touched()

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Session]:
        """A read-only transaction. ``snapshot``: every statement sees the same state (PostgreSQL
        REPEATABLE READ; a SQLite read transaction in WAL mode always does)."""
        engine = self.engine
        if snapshot and engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with Session(engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
