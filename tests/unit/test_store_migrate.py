"""Rules, notifier and API migrate the store at start, often together: that must be safe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from examwatch.store.db import alembic_config


def test_processes_migrating_one_store_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    code = f"from examwatch.store import open_store; open_store({url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with sa.create_engine(url).connect() as conn:
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    (head,) = ScriptDirectory.from_config(alembic_config(sa.create_engine(url))).get_heads()
    assert versions == [head]
