"""The results database: SQLite under ``Settings.home`` by default, PostgreSQL by URL.

``open_store(settings)`` creates the engine, applies the Alembic migrations under a lock and
returns a :class:`Store`, the repository the pipeline, flows and commands call.
"""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.eligibility import Rules
from pipeline.store.engine import make_engine, upgrade
from pipeline.store.records import (CalibrationInput, CalibrationRecord, FileRecord, ImportSummary,
                                    MeasurementInput, MeasurementRecord, OutboxRecord, ReviewRecord,
                                    ScreeningRecord)
from pipeline.store.repository import Clock, Store, utc_now

__all__ = [
    "CalibrationInput", "CalibrationRecord", "FileRecord", "ImportSummary", "MeasurementInput",
    "MeasurementRecord", "OutboxRecord", "ReviewRecord", "ScreeningRecord", "Store", "open_store",
]


def open_store(settings: Settings, *, clock: Clock = utc_now) -> Store:
    """Open (and migrate, if needed) the database named by ``settings``."""
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return Store(engine, Rules.from_settings(settings), clock)
