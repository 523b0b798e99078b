"""Records that cannot change behind the application's back, on SQLite and PostgreSQL.

An intruder with write access to the database drops every trigger, then edits, deletes and
inserts rows of each stored table directly; ``mhladr audit verify`` must exit 1 naming the table
and the row (and exit 0 on the untouched store). The triggers themselves refuse what they guard;
a chain rewritten from the start is caught against a head published earlier; a store written
before migration 0004 is covered by its baseline.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from app.cli import main
from pipeline import audit as chain
from pipeline.config import load_settings
from pipeline.eligibility import PatientFacts
from pipeline.sinks.outbox import enqueue_results
from pipeline.store.outbox import content_digest
from pipeline.store import integrity, open_store
from pipeline.store import models as m
from science.qc import QC
from tests.store_fixtures import (calibration, cli_env, clock, db_url, measurement, settings,  # noqa: F401
                                  store)

TABLES = ("files", "calibrations", "measurements", "review_decisions", "patients", "screening_decisions",
          "users", "outbox", "signatures", "measurement_versions")
EDITS = {
    "files": "UPDATE files SET status = 'rejected' WHERE id = :key",
    "calibrations": "UPDATE calibrations SET qc_status = 'review' WHERE id = :key",
    "measurements": "UPDATE measurements SET abc = 9000 WHERE id = :key",
    "review_decisions": "UPDATE review_decisions SET decision = 'reject' WHERE id = :key",
    "patients": "UPDATE patients SET sofa_24h = 12 WHERE patient_id = :key",
    "screening_decisions": "UPDATE screening_decisions SET status = 'eligible' WHERE id = :key",
    "users": "UPDATE users SET role = 'unblinded' WHERE id = :key",
    "outbox": "UPDATE outbox SET attempts = 7 WHERE id = :key",
    "signatures": "UPDATE signatures SET meaning = 'reviewed: rejected' WHERE id = :key",
    "measurement_versions": "UPDATE measurement_versions SET abc = 9000 WHERE id = :key",
}
# Columns an inserted copy must change to pass the unique constraints.
UNIQUE = {"files": {"sha256": "f" * 64, "path": "/in/forged.fcs"}, "calibrations": {"file_sha256": "e" * 64},
          "measurements": {"file_sha256": "d" * 64}, "users": {"name": "mallory"},
          "outbox": {"idempotency_key": "forged"}, "measurement_versions": {"version": 99}}


def populate(store) -> None:
    """Rows in every covered table (at least two each)."""
    store.users.add("ann", "admin", "correct horse battery", actor="setup")
    store.users.add("tom", "technician", "battery staple horse", actor="ann")
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True),
                           PatientFacts("PT-2", date(2026, 3, 1), 8, True)], today=date(2026, 3, 2))
    first = store.calibrations.add(calibration(100), path="/in/beads1.fcs", size=10)
    store.calibrations.add(calibration(101, voltage=500.0), path="/in/beads2.fcs", size=10)
    review = QC("review", ("1,500 monocytes",))
    first_tube = measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=review)
    m1 = store.measurements.add(first_tube, first.id, size=5, today=date(2026, 3, 7))
    store.measurements.add(measurement(2, "PT-2", date(2026, 3, 7), 9100.0), first.id, size=5,
                           today=date(2026, 3, 7))
    m3 = store.measurements.add(measurement(3, "PT-2", date(2026, 3, 8), 4100.0, qc=review), first.id, size=5,
                                today=date(2026, 3, 8))
    store.measurements.review(m1.id, "approve", "smear checked", "tom", today=date(2026, 3, 8), signed=True)
    store.measurements.review(m3.id, "reject", "clots", "tom", today=date(2026, 3, 8), signed=True)
    enqueue_results(store, ("csv",))
    for abc in (5300.0, 5250.0):           # two gate corrections of the first tube (after the push)
        store.measurements.amend(m1.id, replace(first_tube, abc=abc), reason="gate corrected", actor="tom",
                                 today=date(2026, 3, 8))


def drop_every_trigger(conn: sa.Connection) -> int:
    """What an intruder with DDL rights does first."""
    if conn.dialect.name == "postgresql":
        found = conn.execute(sa.text(
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")).all()
        for name, table in found:
            conn.execute(sa.text(f'DROP TRIGGER "{name}" ON "{table}"'))
    else:
        found = conn.execute(sa.text("SELECT name, NULL FROM sqlite_master WHERE type = 'trigger'")).all()
        for name, _ in found:
            conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
    return len(found)


def keys(store, table: sa.Table) -> list[str]:
    (pk,) = table.primary_key.columns
    with store.engine.connect() as conn:
        return [str(k) for k in conn.scalars(sa.select(pk).order_by(pk))]


def forged_copy(conn: sa.Connection, table: sa.Table, key: str) -> str:
    """Insert a copy of row ``key`` under a new key (unique columns changed); returns the new key."""
    (pk,) = table.primary_key.columns
    row = dict(conn.execute(sa.select(table).where(pk == (key if pk.name == "patient_id" else int(key)))).mappings()
               .one())
    new = "PT-FORGED" if pk.name == "patient_id" else conn.execute(sa.select(sa.func.max(pk))).scalar() + 1
    conn.execute(sa.insert(table).values({**row, **UNIQUE.get(table.name, {}), pk.name: new}))
    return str(new)


def delete(store, table: sa.Table, key: str) -> None:
    """Delete a row with foreign-key checks off, as an intruder would (they refuse dangling references)."""
    (pk,) = table.primary_key.columns
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        value = key if pk.name == "patient_id" else int(key)
        if store.engine.dialect.name == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(f"DELETE FROM {table.name} WHERE {pk.name} = %s", (value,))
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.execute(f"DELETE FROM {table.name} WHERE {pk.name} = ?", (value,))
        raw.commit()
    finally:
        raw.close()


def verify(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["audit", "verify", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def as_admin(monkeypatch):
    monkeypatch.setattr("app.identity.os_account", lambda: "ann")


def test_every_covered_table_is_tested() -> None:
    assert {t.name for t in integrity.COVERED} == set(TABLES) == set(EDITS)


@pytest.mark.parametrize("table_name", TABLES)
def test_edit_delete_insert_behind_dropped_triggers_are_named(store, cli_env, as_admin, capsys, table_name):
    populate(store)
    code, doc = verify(capsys)
    assert code == 0 and doc["ok"] is True and doc["problems"] == [] and doc["entries"] > 20
    table = m.Base.metadata.tables[table_name]
    present = keys(store, table)
    assert len(present) >= 2
    edited, deleted = present[0], present[-1]
    with store.engine.begin() as conn:
        assert drop_every_trigger(conn) >= 10
        (pk,) = table.primary_key.columns
        conn.execute(sa.text(EDITS[table_name]), {"key": edited if pk.name == "patient_id" else int(edited)})
        inserted = forged_copy(conn, table, present[0])
    delete(store, table, deleted)
    code, doc = verify(capsys)
    assert code == 1 and doc.get("ok") is False, doc
    found = {(p["table"], p["row"], p["what"].split(" ")[0]) for p in doc["problems"]}
    broken = [p["what"] for p in doc["problems"] if p["table"] == "signatures" and table_name != "signatures"]
    # an AB/C edited to 9,000 (and the forged copy of that row) no longer matches its cut-off copy
    stale = {(table_name, key, "below_threshold") for key in (edited, inserted)} \
        if table_name in ("measurements", "measurement_versions") else set()
    assert found - {f for f in found if f[0] == "signatures" and table_name != "signatures"} == {
        (table_name, edited, "content"), (table_name, deleted, "gone:"), (table_name, inserted, "no")} | stale
    if table_name == "review_decisions":     # both decisions were signed: one edited, one deleted since
        assert len(broken) == 2 and any("changed after signing" in w for w in broken) \
            and any(w.endswith("is gone") for w in broken)
    else:
        assert broken == []
    human = main(["audit", "verify"])
    out = capsys.readouterr().out
    assert human == 1 and out.startswith("PROBLEMS:") and f"  {table_name} {inserted}: no audit entry" in out


def test_triggers_refuse_changes_of_results_and_identity(store):
    populate(store)
    refused = [
        "UPDATE measurements SET abc = 9000 WHERE id = 1", "DELETE FROM measurements WHERE id = 2",
        "UPDATE calibrations SET lot = 'x' WHERE id = 1", "DELETE FROM review_decisions WHERE id = 1",
        "UPDATE screening_decisions SET status = 'eligible' WHERE id = 1", "DELETE FROM files WHERE id = 1",
        "UPDATE files SET sha256 = 'x' WHERE id = 1", "DELETE FROM patients WHERE patient_id = 'PT-1'",
        "UPDATE users SET name = 'x' WHERE id = 1", "DELETE FROM users WHERE id = 2",
        "UPDATE outbox SET payload = '{}' WHERE id = 1", "DELETE FROM outbox WHERE id = 1",
        "UPDATE audit_log SET actor = 'x' WHERE seq = 1",
        "UPDATE signatures SET record_key = '2' WHERE id = 1", "DELETE FROM signatures WHERE id = 2",
    ]
    for statement in refused:
        with pytest.raises(sa.exc.DBAPIError, match="append-only|refused"):
            with store.engine.begin() as conn:
                conn.execute(sa.text(statement))
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="refused"):
            with store.engine.begin() as conn:
                conn.execute(sa.text("TRUNCATE measurements CASCADE"))
    assert store.audit.verify().ok
    # what a status transition may change, the trigger lets through; unaudited, verify names it
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE files SET status = 'rejected' WHERE id = 1"))
    assert [(p.table, p.row) for p in store.audit.verify().problems] == [("files", "1")]


def test_a_rewritten_chain_is_caught_against_the_published_head(store, cli_env, as_admin, capsys):
    populate(store)
    code, doc = verify(capsys)
    published = doc["head"]
    assert code == 0 and published == store.audit.head() and published.endswith(f"@{doc['entries']}")
    # the intruder edits a result (and its cut-off copy), then rewrites the whole chain so that it
    # verifies on its own
    with store.engine.begin() as conn:
        drop_every_trigger(conn)
        conn.execute(sa.text("UPDATE measurements SET abc = 9000, below_threshold = false WHERE id = 1"))
        forged = integrity.row_ref(conn, m.Measurement.__table__, 1)
        old = list(integrity.entries(conn))
        conn.execute(sa.text("DELETE FROM audit_log"))
        prev = None
        for e in old:
            row = forged if e.row is not None and (e.row.table, e.row.key) == ("measurements", "1") else e.row
            prev = chain.make_entry(prev, e.at, e.actor, e.action, e.entity, e.entity_id, e.before, e.after, row)
            conn.execute(sa.insert(m.AuditLog.__table__).values(**integrity.entry_columns(prev)))
    code, doc = verify(capsys)
    assert code == 0 and doc["head"] != published          # consistent on its own...
    code, doc = verify(capsys, "--head", published)
    seq = published.split("@")[1]
    assert code == 1 and [(p["table"], p["row"]) for p in doc["problems"]] == [("audit_log", seq)]
    assert "published head" in doc["problems"][0]["what"] and "rewritten" in doc["problems"][0]["what"]


def test_a_cut_chain_and_a_bad_head_argument(store, cli_env, as_admin, capsys):
    populate(store)
    head = store.audit.head()
    digest, seq = chain.parse_head(head)
    code, doc = verify(capsys, "--head", f"{digest}@{int(seq) + 5}")
    assert code == 1 and "past the end of the chain" in doc["problems"][0]["what"]
    assert main(["audit", "verify", "--head", "abc@1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("--head: ") and "HASH@SEQ" in err[0]


def test_verification_reads_a_value_no_column_type_accepts(store, cli_env, as_admin, capsys):
    """A date column holding text (SQLite) or a JSON column holding other JSON is still read and named."""
    populate(store)
    with store.engine.begin() as conn:
        drop_every_trigger(conn)
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("UPDATE measurements SET collection_date = 'not a date' WHERE id = 2"))
        else:
            conn.execute(sa.text("UPDATE measurements SET gates = '[1, 2]' WHERE id = 2"))
    code, doc = verify(capsys)
    assert code == 1 and [(p["table"], p["row"]) for p in doc["problems"]] == [("measurements", "2")]


# -- a store written before 0004 ------------------------------------------------------------------
LATER = {"audit_log": ("row_table", "row_key", "row_digest"), "review_decisions": ("supersedes",),
         "outbox": ("measurement_id", "version", "content"), "users": ("session_generation",)}   # 0004, 0005
NEWER_TABLES = ("signatures", "measurement_versions")      # created by migrations after 0004


def _legacy_copy(source, target: sa.Engine) -> int:
    """Copy every row of ``source`` into a database at revision 0003, as 0003 would have held them:
    without the columns 0004 adds, outbox payloads without their version fields and keyed by
    content, and an audit trail of two entries without row digests. Returns the rows copied."""
    copied = 0
    with source.engine.connect() as src, target.begin() as dst:
        for table in (t for t in integrity.COVERED if t.name not in NEWER_TABLES):
            old = sa.Table(table.name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in table.columns
                                                       if c.name not in LATER.get(table.name, ())))
            for row in src.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings():
                values = {k: v for k, v in row.items() if k in old.c}
                if table.name == "outbox":
                    content = {k: v for k, v in row["payload"].items()      # signatures came after 0003
                               if k not in ("result_id", "version", "status", "signature")}
                    values.update(payload=content, idempotency_key="mhladr-" + content_digest(content))
                dst.execute(sa.insert(old).values(values))
                copied += 1
        first = chain.make_entry(None, datetime(2026, 3, 1, tzinfo=timezone.utc), "pipeline", "record_file", "file",
                                 "x", None, {"path": "/in/a.fcs"})
        second = chain.make_entry(first, datetime(2026, 3, 2, tzinfo=timezone.utc), "tom", "review_approve",
                                  "measurement", "1", None, {"review": "approve"})
        old_log = sa.Table("audit_log", sa.MetaData(), *(sa.Column(c.name, c.type) for c in m.AuditLog.__table__.columns
                                                         if c.name not in LATER["audit_log"]))
        for entry in (first, second):
            dst.execute(sa.insert(old_log).values({k: v for k, v in integrity.entry_columns(entry).items()
                                                   if k in old_log.c}))
    return copied


def test_migration_0004_baselines_every_existing_row(store, tmp_path):
    from alembic import command

    from pipeline.store.engine import alembic_config, make_engine, upgrade
    populate(store)
    if store.engine.dialect.name == "postgresql":
        from tests.store_fixtures import drop_postgres_schema, fresh_postgres_schema, postgres_url
        url, schema = fresh_postgres_schema(postgres_url()[0])
    else:
        url, schema = f"sqlite:///{tmp_path / 'legacy.sqlite'}", None
    legacy = make_engine(url)
    try:
        with legacy.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
        copied = _legacy_copy(store, legacy)
        upgrade(legacy)
        reopened = open_store(load_settings(env={"MHLADR_HOME": str(tmp_path / "legacy")}, database_url=url),
                              clock=store.clock)
        try:
            entries = reopened.audit.entries()
            baseline = [e for e in entries if e.action == "baseline"]
            users = len(keys(reopened, m.User.__table__))          # 0005 baselines the users rows again
            assert [e.seq for e in entries[:2]] == [1, 2] and entries[0].row is None
            assert len(baseline) == copied + users and {e.actor for e in baseline} == {"migration"}
            assert {(e.row.table, e.row.key) for e in baseline} == {
                (t.name, k) for t in integrity.COVERED for k in keys(reopened, t)}
            check = reopened.audit.verify()
            assert check.ok and check.rows == copied and check.entries == copied + users + 2
            items = reopened.outbox.list()
            assert [(i.measurement_id, i.version, i.payload["status"]) for i in items] == [
                (1, 1, "final"), (2, 1, "final"), (3, 1, "cancelled")]
            assert enqueue_results(reopened, ("csv",)) == 0       # same content: no new version, nothing re-sent
            with reopened.engine.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="refused"):
                conn.execute(sa.text("UPDATE measurements SET abc = 1 WHERE id = 1"))
        finally:
            reopened.close()
    finally:
        legacy.dispose()
        if schema is not None:
            drop_postgres_schema(postgres_url()[0], schema)
