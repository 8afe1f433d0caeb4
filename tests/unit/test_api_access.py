"""Tokens are stored hashed; roles nest; the audit log cannot be changed, even with SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api.cli import app
from examwatch.store import open_store, writing
from examwatch.store.access import (
    ApiToken,
    AuditEntry,
    Role,
    authenticate,
    create_token,
    hash_token,
    record,
    revoke_token,
)


@pytest.fixture
def store(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def test_roles_nest() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.ADMIN)


def test_tokens_are_stored_hashed_and_can_be_revoked(store: sa.Engine) -> None:
    view, plain = create_token(store, "王", Role.OPERATOR, "test")
    with store.connect() as conn:
        stored = conn.execute(sa.select(ApiToken.__table__)).one()
    assert plain not in str(tuple(stored))
    assert stored.token_hash == hash_token(plain)
    who = authenticate(store, plain)
    assert who is not None
    assert (who.name, who.role) == ("王", Role.OPERATOR)
    assert authenticate(store, plain + "x") is None
    assert authenticate(store, "Bearer " + plain) is None
    assert revoke_token(store, view.id)
    assert not revoke_token(store, view.id)
    assert authenticate(store, plain) is None


def test_audit_log_is_append_only_in_the_database(store: sa.Engine) -> None:
    record(store, actor="a", token_id=1, role="admin", method="PUT", path="/inventory", action="put_inventory",
           status=200, remote="127.0.0.1", detail={"sites": 21})
    table = AuditEntry.__table__
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), writing(store) as conn:
        conn.execute(sa.update(table).values(actor="someone else"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), writing(store) as conn:
        conn.execute(sa.delete(table))
    with store.connect() as conn:
        assert conn.execute(sa.select(table.c.actor)).scalars().all() == ["a"]


def test_token_create_command_prints_the_token_once(tmp_path: Path) -> None:
    cfg = tmp_path / "examwatch.toml"
    cfg.write_text(f'mode = "demo"\n[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    result = CliRunner().invoke(app, ["token", "create", "--role", "admin", "--name", "lead", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    plain = result.stdout.strip().splitlines()[-1]
    who = authenticate(open_store(f"sqlite:///{tmp_path / 's.db'}"), plain)
    assert who is not None
    assert (who.name, who.role) == ("lead", Role.ADMIN)
    listed = CliRunner().invoke(app, ["token", "list", "--config", str(cfg)])
    assert "lead\tadmin\tactive" in listed.stdout
    assert plain not in listed.stdout
    bad = CliRunner().invoke(app, ["token", "create", "--role", "root", "--name", "x", "--config", str(cfg)])
    assert bad.exit_code == 2


def test_serve_refuses_a_missing_or_demo_secret_outside_demo_mode(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXAMWATCH_SECRET", raising=False)
    cfg = tmp_path / "examwatch.toml"
    cfg.write_text('secret = "examwatch-demo-secret-not-for-exams"\n')
    result = CliRunner().invoke(app, ["serve", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "published demo secret" in result.output
