"""Electronic signatures (``signatures``): signer, meaning, UTC time and the digest of the record
signed; append-only on both databases (UPDATE and DELETE refused, TRUNCATE too on PostgreSQL).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.store.models import UTCDateTime

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

_REFUSE = "append-only: a signature is never changed or removed"


def upgrade() -> None:
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("signer", sa.String(128), nullable=False),
        sa.Column("meaning", sa.String(128), nullable=False),
        sa.Column("signed_at", UTCDateTime, nullable=False),
        sa.Column("record_table", sa.String(32), nullable=False),
        sa.Column("record_key", sa.String(128), nullable=False),
        sa.Column("record_digest", sa.String(64), nullable=False),
    )
    op.create_index("ix_signatures_record", "signatures", ["record_table", "record_key"])
    if op.get_bind().dialect.name == "postgresql":      # mhladr_refuse() comes from 0004
        op.execute("CREATE TRIGGER signatures_append_only BEFORE UPDATE OR DELETE ON signatures "
                   "FOR EACH ROW EXECUTE FUNCTION mhladr_refuse()")
        op.execute("CREATE TRIGGER signatures_no_truncate BEFORE TRUNCATE ON signatures "
                   "FOR EACH STATEMENT EXECUTE FUNCTION mhladr_refuse()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER signatures_no_{verb.lower()} BEFORE {verb} ON signatures "
                       f"BEGIN SELECT RAISE(ABORT, '{verb} of signatures: refused ({_REFUSE})'); END")


def downgrade() -> None:
    op.drop_table("signatures")
