"""Initial results database: files, calibrations, measurements, patients, screening, reviews,
outbox and the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-03-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_FILE_STATUSES = "status IN ('calibrated', 'measured', 'pending_calibration', 'qc_fail', 'rejected', 'duplicate')"
_QC = "qc_status IN ('pass', 'review', 'fail')"

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
_POSTGRES_TRIGGERS = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("collection_date", sa.Date),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.UniqueConstraint("sha256", "path", name="uq_files_sha256_path"),
        sa.CheckConstraint(_FILE_STATUSES, name="ck_files_status"),
    )
    op.create_index("ix_files_original", "files", ["sha256"], unique=True,
                    sqlite_where=sa.text("status <> 'duplicate'"),
                    postgresql_where=sa.text("status <> 'duplicate'"))
    op.create_index("ix_files_patient_id", "files", ["patient_id"])
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("instrument", sa.String(128), nullable=False),
        sa.Column("serial", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("voltage", sa.Float),
        sa.Column("gain", sa.Float),
        sa.Column("acquisition_date", sa.Date, nullable=False),
        sa.Column("lot", sa.String(64), nullable=False),
        sa.Column("bead_values", sa.JSON, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("slope", sa.Float, nullable=False),
        sa.Column("intercept", sa.Float, nullable=False),
        sa.Column("r2", sa.Float, nullable=False),
        sa.Column("covariance", sa.JSON),
        sa.Column("peaks", sa.JSON, nullable=False),
        sa.Column("qc_status", sa.String(8), nullable=False),
        sa.Column("qc_reasons", sa.JSON, nullable=False),
        sa.Column("statistic", sa.String(32), nullable=False),
        sa.Column("software_version", sa.String(64), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.UniqueConstraint("file_sha256", "channel", name="uq_calibrations_file_channel"),
        sa.CheckConstraint(_QC, name="ck_calibrations_qc_status"),
    )
    op.create_index("ix_calibrations_key", "calibrations",
                    ["instrument", "serial", "channel", "acquisition_date"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("collection_date", sa.Date, nullable=False),
        sa.Column("icu_day", sa.Integer),
        sa.Column("in_window", sa.Boolean),
        sa.Column("monocytes", sa.Integer, nullable=False),
        sa.Column("statistic", sa.String(32), nullable=False),
        sa.Column("pe_statistic", sa.Float),
        sa.Column("abc", sa.Float),
        sa.Column("abc_low", sa.Float),
        sa.Column("abc_high", sa.Float),
        sa.Column("below_threshold", sa.Boolean),
        sa.Column("category", sa.String(32)),
        sa.Column("qc_status", sa.String(8), nullable=False),
        sa.Column("qc_reasons", sa.JSON, nullable=False),
        sa.Column("calibration_id", sa.Integer,
                  sa.ForeignKey("calibrations.id", name="fk_measurements_calibration_id_calibrations")),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("software_version", sa.String(64), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.UniqueConstraint("file_sha256", name="uq_measurements_file_sha256"),
        sa.CheckConstraint(_QC, name="ck_measurements_qc_status"),
    )
    op.create_index("ix_measurements_patient_id", "measurements", ["patient_id"])
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("icu_admission", sa.String(32), nullable=False),
        sa.Column("sofa_24h", sa.Integer, nullable=False),
        sa.Column("mechanical_ventilation", sa.Boolean, nullable=False),
        sa.Column("exclusion", sa.Text, nullable=False),
        sa.Column("randomized_at", sa.String(32)),
        sa.Column("updated", UTCDateTime, nullable=False),
    )
    op.create_table(
        "screening_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("measurement_id", sa.Integer,
                  sa.ForeignKey("measurements.id", name="fk_screening_decisions_measurement_id_measurements")),
        sa.Column("abc", sa.Float),
        sa.Column("icu_day", sa.Integer),
        sa.Column("file_sha256", sa.String(64)),
        sa.Column("evaluated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("status IN ('eligible', 'not_eligible', 'pending')",
                           name="ck_screening_decisions_status"),
    )
    op.create_index("ix_screening_decisions_patient_id", "screening_decisions", ["patient_id"])
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("measurement_id", sa.Integer,
                  sa.ForeignKey("measurements.id", name="fk_review_decisions_measurement_id_measurements"),
                  nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("decision IN ('approve', 'reject')", name="ck_review_decisions_decision"),
    )
    op.create_index("ix_review_decisions_measurement_id", "review_decisions", ["measurement_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sink", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.UniqueConstraint("sink", "idempotency_key", name="uq_outbox_sink_key"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash", name="uq_audit_log_hash"),
    )
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.drop_table("audit_log")
    for table in ("outbox", "review_decisions", "screening_decisions", "patients",
                  "measurements", "calibrations", "files"):
        op.drop_table(table)
