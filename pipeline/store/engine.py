"""Engine set-up and migrations at open.

SQLite (default, a file under ``Settings.home``): WAL journal, ``busy_timeout``, foreign keys on,
and write transactions opened with ``BEGIN IMMEDIATE`` so two writers queue on the database lock
instead of failing on a lock upgrade (https://www.sqlite.org/lang_transaction.html).
Switching a new database to WAL needs an exclusive lock, and SQLite answers ``SQLITE_BUSY`` at once
there (the busy handler does not wait) when several processes open a fresh file together: the
switch is made only when the file is not yet WAL, and retried until ``BUSY_TIMEOUT_MS``
(https://www.sqlite.org/wal.html#activating_and_configuring_wal_mode).
PostgreSQL (``MHLADR_DATABASE_URL=postgresql+psycopg://...``): write transactions and migrations
take a transaction-scoped advisory lock, so concurrent writers and concurrent first opens queue.
Migrations (Alembic, configured in code) run inside that locked transaction and are idempotent:
a second opener finds the schema at head and does nothing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
# The newest revision in MIGRATIONS (a test checks it against Alembic's own head), so opening a
# database that is up to date needs no Alembic import.
HEAD = "0008"
BUSY_TIMEOUT_MS = 30_000
# pg_advisory_xact_lock keys (arbitrary constants, "mhladr" in ASCII + a suffix).
MIGRATION_LOCK = 0x6D686C61647201
WRITE_LOCK = 0x6D686C61647202
WRITE_OPTION = "mhladr_write"


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the per-backend settings above."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    on_disk = bool(parsed.database) and parsed.database != ":memory:"
    if on_disk:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()
        if on_disk:  # an in-memory database has no WAL
            switch_to_wal(dbapi_connection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def switch_to_wal(dbapi_connection: sqlite3.Connection, timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Put the database in WAL mode (persistent), retrying while another opener holds the lock."""
    deadline = time.monotonic() + timeout_ms / 1000
    pause = 0.001
    mode = dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0]
    while mode.lower() != "wal":
        try:  # answers the mode now in force: the old one when the switch could not be made
            mode = dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        if mode.lower() != "wal":
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("database is locked: could not switch it to WAL mode")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def writer(engine: Engine) -> Engine:
    """The same engine, marked so that its transactions are write transactions."""
    return engine.execution_options(**{WRITE_OPTION: True})


def lock_for_write(conn: Connection, key: int = WRITE_LOCK) -> None:
    """Serialise writers (PostgreSQL advisory lock; SQLite already holds BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def alembic_config() -> "Config":
    """Alembic configuration built in code (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """Alembic's head of MIGRATIONS (what :data:`HEAD` must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None for an empty database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to head under a lock; a no-op when it already is.

    On SQLite, foreign keys are off while migrations rebuild tables (the procedure of
    https://www.sqlite.org/lang_altertable.html#otheralter) and checked before the commit.
    """
    with engine.connect() as conn:
        if current_revision(conn) == HEAD:
            return
    with writer(engine).connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:     # a PRAGMA that only works outside a transaction: on the driver's connection
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                lock_for_write(conn, MIGRATION_LOCK)
                if current_revision(conn) == HEAD:
                    return
                from alembic import command

                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("migration left rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
