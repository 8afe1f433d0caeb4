"""Opening the store: SQLite (WAL) by default, PostgreSQL by URL; the schema is migrated by alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event

_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    # SQLAlchemy, not the sqlite3 module, decides where transactions begin (see _begin_immediate).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets the API and the CLI read while the engine writes; NORMAL is durable across a
    # process crash (SIGKILL), which is the failure the engine is tested against.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _begin(conn: sa.Connection) -> None:
    # A writer takes the lock at BEGIN (see ``writing``): a deferred transaction that read before
    # another process committed would fail on its first write (SQLITE_BUSY_SNAPSHOT) instead of
    # waiting. Readers begin deferred and never wait in WAL mode.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writer") else "BEGIN")


@contextmanager
def writing(eng: sa.Engine) -> Iterator[sa.Connection]:
    """A read-write transaction (on SQLite it holds the write lock from its start)."""
    with eng.connect() as conn:
        conn.execution_options(writer=True)
        with conn.begin():
            yield conn


def engine(url: str) -> sa.Engine:
    """An engine for ``url``; a SQLite file's directory is created."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    eng = sa.create_engine(url)
    if eng.dialect.name == "sqlite":
        event.listen(eng, "connect", _sqlite_pragmas)
        event.listen(eng, "begin", _begin)
    return eng


def alembic_config(eng: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection_engine"] = eng
    return cfg


def migrate(eng: sa.Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    command.upgrade(alembic_config(eng), "head")


def open_store(url: str) -> sa.Engine:
    """Engine for ``url`` with the schema migrated to head."""
    eng = engine(url)
    migrate(eng)
    return eng
