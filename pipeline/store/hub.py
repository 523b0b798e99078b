"""The results store's hub: one :class:`Store` wires the repositories beside this module to the
transactions of :mod:`pipeline.store.tx` (which they import) and to the screening re-evaluation
every write ends with.

``Store`` is a context manager: ``with open_store(settings) as store: ...`` closes the engine.
"""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.eligibility import Rules
from pipeline.store.audit_trail import AuditTrail
from pipeline.store.calibrations import Calibrations
from pipeline.store.files import Files
from pipeline.store.measurements import Measurements
from pipeline.store.outbox import Outbox
from pipeline.store.patients import Patients
from pipeline.store.screening import Screening, evaluate_in
from pipeline.store.signatures import Signatures
from pipeline.store.tx import Clock, Transactions, utc_now
from pipeline.store.users import Users


class Store(Transactions):
    """One results database: the hub (transactions, audit, re-evaluation) and its repositories.

    Create with :func:`pipeline.store.open_store`. Repositories: ``files``, ``calibrations``,
    ``measurements`` (with reviews), ``patients``, ``screening``, ``outbox``, ``audit``, ``users``,
    ``signatures``.
    """

    def __init__(self, engine: Engine, rules: Rules, clock: Clock = utc_now) -> None:
        super().__init__(engine, rules, clock, evaluate_in)
        self.files = Files(self)
        self.calibrations = Calibrations(self)
        self.measurements = Measurements(self)
        self.patients = Patients(self)
        self.screening = Screening(self)
        self.outbox = Outbox(self)
        self.audit = AuditTrail(self)
        self.users = Users(self)
        self.signatures = Signatures(self)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
