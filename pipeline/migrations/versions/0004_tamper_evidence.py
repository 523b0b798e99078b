"""Records that cannot change behind the application's back.

- ``audit_log`` entries name the row they wrote and its digest (``row_table``, ``row_key``,
  ``row_digest``; see ``pipeline.store.integrity``).
- ``review_decisions.supersedes``: a later decision names the one it replaces.
- ``outbox`` rows are numbered versions of a result (``measurement_id``, ``version``,
  ``content``). Rows queued before are numbered here, per result in the order they were queued
  (one version per distinct key), and their payloads gain ``result_id``, ``version`` and
  ``status`` (what the version said is unchanged; their keys stay those they were delivered under).
- Triggers on both databases: results (calibrations, measurements, review and screening
  decisions) refuse UPDATE and DELETE; files, patients, users and the outbox refuse DELETE and
  any change of their identity columns (their status changes are audited transitions); every
  table refuses TRUNCATE on PostgreSQL.
- One ``baseline`` audit entry (actor ``migration``) per row that exists at this point, carrying
  its digest, so every row is covered from here on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from pipeline.store.outbox import content_digest, lifecycle_status
from pipeline.store.integrity import baseline

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("calibrations", "measurements", "review_decisions", "screening_decisions")
# Tables whose rows change through audited transitions, and the columns that never change.
FIXED_COLUMNS = {
    "files": ("id", "sha256", "size", "first_seen"),
    "patients": ("patient_id",),
    "users": ("id", "name", "created"),
    "outbox": ("id", "sink", "idempotency_key", "payload", "measurement_id", "version", "content", "created"),
}
_REFUSE = "append-only: a correction is a new version, a change an audited transition; rows are never deleted"

_PG_FUNCTIONS = (
    "CREATE FUNCTION mhladr_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '% of %: refused ({_REFUSE})', TG_OP, TG_TABLE_NAME; END $$",
    "CREATE FUNCTION mhladr_fixed_columns() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE col text; BEGIN "
    "FOREACH col IN ARRAY TG_ARGV LOOP "
    "IF to_jsonb(NEW) -> col IS DISTINCT FROM to_jsonb(OLD) -> col THEN "
    f"RAISE EXCEPTION 'UPDATE of %.%: refused ({_REFUSE})', TG_TABLE_NAME, col; "
    "END IF; END LOOP; RETURN NEW; END $$",
)


def _postgres_triggers() -> list[str]:
    statements = list(_PG_FUNCTIONS)
    for table in APPEND_ONLY:
        statements.append(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                          "FOR EACH ROW EXECUTE FUNCTION mhladr_refuse()")
    for table, columns in FIXED_COLUMNS.items():
        args = ", ".join(f"'{c}'" for c in columns)
        statements.append(f"CREATE TRIGGER {table}_fixed_columns BEFORE UPDATE ON {table} "
                          f"FOR EACH ROW EXECUTE FUNCTION mhladr_fixed_columns({args})")
        statements.append(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                          "FOR EACH ROW EXECUTE FUNCTION mhladr_refuse()")
    for table in (*APPEND_ONLY, *FIXED_COLUMNS):
        statements.append(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                          "FOR EACH STATEMENT EXECUTE FUNCTION mhladr_refuse()")
    return statements


def _sqlite_triggers() -> list[str]:
    statements = []
    for table in APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            statements.append(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                              f"BEGIN SELECT RAISE(ABORT, '{verb} of {table}: refused ({_REFUSE})'); END")
    for table, columns in FIXED_COLUMNS.items():
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
        statements.append(f"CREATE TRIGGER {table}_fixed_columns BEFORE UPDATE ON {table} WHEN {changed} "
                          f"BEGIN SELECT RAISE(ABORT, 'UPDATE of {table} ({', '.join(columns)}): refused "
                          f"({_REFUSE})'); END")
        statements.append(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                          f"BEGIN SELECT RAISE(ABORT, 'DELETE of {table}: refused ({_REFUSE})'); END")
    return statements


def _number_outbox(bind: sa.Connection) -> None:
    """Version numbers, content digests and lifecycle fields for the rows queued before 0004."""
    outbox = sa.table("outbox", sa.column("id"), sa.column("idempotency_key"), sa.column("payload", sa.JSON),
                      sa.column("measurement_id"), sa.column("version"), sa.column("content"))
    versions: dict[int, dict[str, tuple[int, dict]]] = {}       # result -> key -> (version, stamped payload)
    for row in bind.execute(sa.select(outbox).order_by(outbox.c.id)).all():
        content = dict(row.payload)
        if "measurement_id" not in content or "file_sha256" not in content:
            raise RuntimeError(f"outbox item {row.id} is not a result (no measurement_id/file_sha256): "
                               "deliver or remove it before upgrading")
        mid = int(content["measurement_id"])
        known = versions.setdefault(mid, {})
        if row.idempotency_key not in known:
            previous = max(known.values(), key=lambda v: v[0])[1] if known else None
            number = len(known) + 1
            known[row.idempotency_key] = (number, {**content, "result_id": content["file_sha256"], "version": number,
                                                   "status": lifecycle_status(content, previous)})
        number, stamped = known[row.idempotency_key]
        key = row.idempotency_key
        digest = key[len("mhladr-"):] if key.startswith("mhladr-") and len(key) == 71 else content_digest(content)
        bind.execute(outbox.update().where(outbox.c.id == row.id)
                     .values(measurement_id=mid, version=number, content=digest, payload=stamped))


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("audit_log", sa.Column("row_table", sa.String(32)))
    op.add_column("audit_log", sa.Column("row_key", sa.String(128)))
    op.add_column("audit_log", sa.Column("row_digest", sa.String(64)))
    with op.batch_alter_table("review_decisions") as batch:
        batch.add_column(sa.Column("supersedes", sa.Integer))
        batch.create_foreign_key("fk_review_decisions_supersedes_review_decisions", "review_decisions",
                                 ["supersedes"], ["id"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("measurement_id", sa.Integer))
        batch.add_column(sa.Column("version", sa.Integer))
        batch.add_column(sa.Column("content", sa.String(64)))
    _number_outbox(bind)
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("measurement_id", existing_type=sa.Integer, nullable=False)
        batch.alter_column("version", existing_type=sa.Integer, nullable=False)
        batch.alter_column("content", existing_type=sa.String(64), nullable=False)
        batch.create_foreign_key("fk_outbox_measurement_id_measurements", "measurements", ["measurement_id"], ["id"])
        batch.create_index("ix_outbox_measurement", ["measurement_id", "version"])
    for statement in _postgres_triggers() if bind.dialect.name == "postgresql" else _sqlite_triggers():
        op.execute(statement)
    baseline(bind, "migration", "baseline", datetime.now(timezone.utc))


def downgrade() -> None:
    raise NotImplementedError("0004 adds baseline audit entries, which are append-only; restore a backup to go "
                              "back to 0003")
