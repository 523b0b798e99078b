"""Alembic environment: runs on the connection (already inside a locked transaction) that
``pipeline.store.engine.upgrade`` passes in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from pipeline.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
