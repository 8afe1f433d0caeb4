"""Alembic environment: runs on the engine handed over by examwatch.store.db (no alembic.ini)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from examwatch.store.models import Base

config = context.config
eng = config.attributes.get("connection_engine")
if eng is None:
    eng = sa.create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///var/examwatch.db")

with eng.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
