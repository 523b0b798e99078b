"""PostgreSQL specifics: selected through MHLADR_DATABASE_URL, advisory locks, TRUNCATE guard."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pipeline.config import load_settings
from pipeline.store import open_store
from tests.store_fixtures import drop_postgres_schema, fresh_postgres_schema, postgres_url, sha


@pytest.fixture
def pg_url():
    base, reason = postgres_url()
    if base is None:
        pytest.skip(reason)
    url, schema = fresh_postgres_schema(base)
    yield url
    drop_postgres_schema(base, schema)


def test_database_url_from_environment_selects_postgres(pg_url, tmp_path):
    settings = load_settings(env={"MHLADR_HOME": str(tmp_path), "MHLADR_DATABASE_URL": pg_url})
    store = open_store(settings)
    try:
        assert store.engine.dialect.name == "postgresql"
        assert store.engine.dialect.driver == "psycopg"
        store.files.record(sha(1), "/in/a.fcs", 1, "sample", "pending_calibration")
        assert not (tmp_path / "mhladr.sqlite").exists()
    finally:
        store.close()


def test_truncate_of_audit_log_is_refused(pg_url, tmp_path):
    store = open_store(load_settings(env={"MHLADR_HOME": str(tmp_path)}, database_url=pg_url))
    try:
        store.files.record(sha(1), "/in/a.fcs", 1, "sample", "pending_calibration")
        with pytest.raises(Exception, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text("TRUNCATE audit_log"))
        assert store.audit.verify_chain().entries == 1
    finally:
        store.close()


def test_writer_waits_for_the_advisory_lock(pg_url, tmp_path):
    """A second writer blocks while another transaction holds the write lock."""
    from pipeline.store.engine import WRITE_LOCK
    store = open_store(load_settings(env={"MHLADR_HOME": str(tmp_path)}, database_url=pg_url))
    try:
        with store.engine.connect() as holder:
            with holder.begin():
                holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})
                with store.engine.connect() as other:
                    got = other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": WRITE_LOCK}).scalar()
                    assert got is False
        with store.engine.connect() as other:
            with other.begin():
                assert other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": WRITE_LOCK}).scalar()
    finally:
        store.close()
