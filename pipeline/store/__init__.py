"""The results database: SQLite under ``Settings.home`` by default, PostgreSQL by URL.

``open_store(settings)`` creates the engine, applies the Alembic migrations under a lock and
returns the :class:`~pipeline.store.hub.Store` hub with its repositories (``files``,
``calibrations``, ``measurements``, ``patients``, ``screening``, ``outbox``, ``audit``); use it
as a context manager.
"""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.private_home import protect_home
from pipeline.store.engine import make_engine, upgrade
from pipeline.store.hub import Clock, Store, utc_now
from pipeline.store.records import (FileRecord, ImportSummary, OutboxRecord, ReviewRecord, ScreeningRecord,
                                    StoredCalibration, StoredMeasurement)

__all__ = [
    "Clock", "FileRecord", "ImportSummary", "OutboxRecord", "ReviewRecord", "ScreeningRecord", "Store",
    "StoredCalibration", "StoredMeasurement", "open_store", "utc_now",
]


def open_store(settings: Settings, *, clock: Clock = utc_now) -> Store:
    """Open (and migrate, if needed) the database named by ``settings``; the home is made private
    first (:func:`pipeline.private_home.protect_home`)."""
    protect_home(settings.home, None if settings.database_url else settings.sqlite_path)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return Store(engine, settings.rules(), clock)
