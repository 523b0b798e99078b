"""Gate corrections: later versions of a measurement (``measurement_versions``), append-only like
the other results (UPDATE and DELETE refused by triggers on both databases).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "measurement_versions"
_REFUSE = "append-only: a correction is a new version, a change an audited transition; rows are never deleted"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("measurement_id", sa.Integer, sa.ForeignKey("measurements.id",
                  name="fk_measurement_versions_measurement_id_measurements"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("monocytes", sa.Integer, nullable=False),
        sa.Column("pe_statistic", sa.Float),
        sa.Column("abc", sa.Float),
        sa.Column("abc_low", sa.Float),
        sa.Column("abc_high", sa.Float),
        sa.Column("below_threshold", sa.Boolean),
        sa.Column("category", sa.String(32)),
        sa.Column("qc_status", sa.String(8), nullable=False),
        sa.Column("qc_reasons", sa.JSON, nullable=False),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("analysed_at", UTCDateTime, nullable=False),
        sa.Column("software_version", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.UniqueConstraint("measurement_id", "version", name="uq_measurement_versions_version"),
        sa.CheckConstraint("qc_status IN ('pass', 'review', 'fail')", name="ck_measurement_versions_qc_status"),
    )
    op.create_index("ix_measurement_versions_measurement_id", TABLE, ["measurement_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        statements = [f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
                      "FOR EACH ROW EXECUTE FUNCTION mhladr_refuse()",
                      f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
                      "FOR EACH STATEMENT EXECUTE FUNCTION mhladr_refuse()"]
    else:
        statements = [f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                      f"BEGIN SELECT RAISE(ABORT, '{verb} of {TABLE}: refused ({_REFUSE})'); END"
                      for verb in ("UPDATE", "DELETE")]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    names = ((f"{TABLE}_append_only", f"{TABLE}_no_truncate") if bind.dialect.name == "postgresql"
             else (f"{TABLE}_no_update", f"{TABLE}_no_delete"))
    for name in names:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {TABLE}" if bind.dialect.name == "postgresql" else ""))
    op.drop_index("ix_measurement_versions_measurement_id", TABLE)
    op.drop_table(TABLE)
