"""Console sign-outs that hold across restarts: ``users.session_generation``.

A console session cookie carries its user's generation at sign-in; signing out, a password
change, ``users disable`` and ``users enable`` raise it (audited), so every earlier cookie of that
user is refused from then on, whatever restarted meanwhile. The column changes the digest of
every ``users`` row: one ``baseline`` audit entry per row records it (pipeline.store.integrity).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from pipeline.store.integrity import baseline

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer, nullable=False, server_default="0"))
    baseline(op.get_bind(), "migration", "baseline", datetime.now(timezone.utc), tables=("users",))


def downgrade() -> None:
    raise NotImplementedError("0005 adds baseline audit entries, which are append-only; restore a backup to go "
                              "back")
