"""Alembic environment: runs on the engine handed over by examwatch.store.db (no alembic.ini)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from examwatch.store.db import writing
from examwatch.store.models import Base

config = context.config
eng = config.attributes.get("connection_engine")
if eng is None:
    eng = sa.create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///var/examwatch.db")

# Rules, notifier and API migrate at start and may start together: the migration takes the write
# lock before it reads the schema's revision (BEGIN IMMEDIATE on SQLite, an advisory lock on
# PostgreSQL), so the second waits and then finds nothing to do instead of creating tables twice.
with writing(eng) as connection:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7423001)")
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
