"""The results store's hub: the one place that opens transactions, writes audit entries and
re-evaluates, once, the patients a transaction touched.

Every write is one transaction (:meth:`Store.write`): the repositories beside this module add
or change rows through the :class:`Tx` it yields, each change is audited in the same
transaction (:meth:`Tx.audit`), and before the commit every patient the transaction touched
(:meth:`Tx.touch`) gets its screening decision re-evaluated exactly once. Writers are
serialised (SQLite ``BEGIN IMMEDIATE`` / PostgreSQL advisory lock, see ``engine``), which keeps
the audit hash chain linear across processes.

``Store`` is a context manager: ``with open_store(settings) as store: ...`` closes the engine.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline import audit as chain
from pipeline.eligibility import Rules
from pipeline.store import models as m
from pipeline.store.engine import lock_for_write, writer

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Tx:
    """One write transaction: its session, who acts, the day rules are evaluated for, and the
    patients to re-evaluate before it commits."""

    def __init__(self, store: "Store", session: Session, actor: str, today: date | None) -> None:
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

    def audit(self, action: str, entity: str, entity_id: object, before: Any, after: Any,
              actor: str | None = None) -> None:
        """Append one entry to the hash-chained audit trail (see :mod:`pipeline.audit`)."""
        s = self.session
        if self._head is None:      # writers are serialised: no one else extends the chain meanwhile
            last = s.scalars(select(m.AuditLog).order_by(m.AuditLog.seq.desc()).limit(1)).first()
            self._head = audit_entry(last) if last is not None else None
        entry = chain.make_entry(self._head, self.now(), actor or self.actor, action, entity, str(entity_id),
                                 before, after)
        s.add(m.AuditLog(seq=entry.seq, at=entry.at, actor=entry.actor, action=entry.action,
                         entity=entry.entity, entity_id=entry.entity_id, before=entry.before,
                         after=entry.after, prev_hash=entry.prev_hash, hash=entry.hash))
        s.flush()
        self._head = entry

    def touch(self, patient_id: str | None) -> None:
        """Re-evaluate this patient's screening before the transaction commits (once)."""
        if patient_id and patient_id not in self._touched:
            self._touched.append(patient_id)

    def evaluate_touched(self) -> None:
        from pipeline.store.screening import evaluate_in   # screening reads every other repository
        for patient_id in self._touched:
            evaluate_in(self, patient_id)
        self._touched.clear()


class Store:
    """One results database: the hub (transactions, audit, re-evaluation) and its repositories.

    Create with :func:`pipeline.store.open_store`. Repositories: ``files``, ``calibrations``,
    ``measurements`` (with reviews), ``patients``, ``screening``, ``outbox``, ``audit``, ``users``.
    """

    def __init__(self, engine: Engine, rules: Rules, clock: Clock = utc_now) -> None:
        from pipeline.store.audit_trail import AuditTrail
        from pipeline.store.calibrations import Calibrations
        from pipeline.store.files import Files
        from pipeline.store.measurements import Measurements
        from pipeline.store.outbox import Outbox
        from pipeline.store.patients import Patients
        from pipeline.store.screening import Screening
        from pipeline.store.users import Users

        self.engine = engine
        self.rules = rules
        self.clock = clock
        self._writer = writer(engine)
        self.files = Files(self)
        self.calibrations = Calibrations(self)
        self.measurements = Measurements(self)
        self.patients = Patients(self)
        self.screening = Screening(self)
        self.outbox = Outbox(self)
        self.audit = AuditTrail(self)
        self.users = Users(self)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def read(self) -> Iterator[Session]:
        """A read-only transaction (a consistent snapshot on PostgreSQL and in WAL mode)."""
        with Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session


def audit_entry(row: m.AuditLog) -> chain.AuditEntry:
    return chain.AuditEntry(row.seq, row.at, row.actor, row.action, row.entity, row.entity_id,
                            row.before, row.after, row.prev_hash, row.hash)
