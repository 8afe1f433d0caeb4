"""API access: hashed tokens with a role, and the append-only audit log of every write.

A token is 32 random bytes shown once; only its SHA-256 is stored. A slow password hash
(bcrypt, argon2) guards low-entropy secrets people choose; a 256-bit random token cannot be
guessed offline, and a fast hash keeps the check off the request's critical path.
The audit log is append-only: this module has no update or delete, and the migration adds
triggers that refuse both in the database itself.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from examwatch.store.db import writing
from examwatch.store.models import Base

TOKEN_PREFIX = "ew_"  # noqa: S105 - marks a string as an examwatch token, not a secret


class Role(StrEnum):
    """viewer reads; operator also acknowledges, resolves and silences; admin also changes configuration."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """True when this role includes ``needed`` (admin ⊃ operator ⊃ viewer)."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), doc="who holds it: a person or a system")
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, doc="hex SHA-256 of the token")
    created_ns: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AuditEntry(Base):
    __tablename__ = "api_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_ns: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64), doc="token holder's name, or 'anonymous'")
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="")
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64), doc="the operation's name in the OpenAPI document")
    status: Mapped[int] = mapped_column(Integer, doc="HTTP status of the answer")
    remote: Mapped[str] = mapped_column(String(64), doc="client address")
    detail: Mapped[str] = mapped_column(Text, default="{}", doc="JSON: what was changed")

    __table_args__ = (Index("ix_api_audit_at", "at_ns"),)


_TOK = cast(sa.Table, ApiToken.__table__)
_AUD = cast(sa.Table, AuditEntry.__table__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, holder and role."""

    token_id: int
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    role: str
    created_ns: int
    created_by: str
    revoked_ns: int | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: sa.Engine, name: str, role: Role, created_by: str) -> tuple[TokenView, str]:
    """Store a new token for ``name``; returns it with its plain text, which is never stored."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = time.time_ns()
    with writing(engine) as conn:
        token_id = conn.execute(
            sa.insert(_TOK).values(name=name, role=role.value, token_hash=hash_token(plain), created_ns=now,
                                   created_by=created_by, revoked_ns=None).returning(_TOK.c.id)
        ).scalar_one()
    return TokenView(token_id, name, role.value, now, created_by, None), plain


def authenticate(engine: sa.Engine, plain: str) -> Principal | None:
    """The token's holder, or None when it is unknown or revoked."""
    if not plain.startswith(TOKEN_PREFIX):
        return None
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(_TOK.c.id, _TOK.c.name, _TOK.c.role)
            .where(_TOK.c.token_hash == hash_token(plain), _TOK.c.revoked_ns.is_(None))
        ).first()
    return None if row is None else Principal(row.id, row.name, Role(row.role))


def list_tokens(engine: sa.Engine) -> list[TokenView]:
    """Every token ever issued (without its secret), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_TOK).order_by(_TOK.c.id))
        return [TokenView(r.id, r.name, r.role, r.created_ns, r.created_by, r.revoked_ns) for r in rows]


def revoke_token(engine: sa.Engine, token_id: int) -> bool:
    """Revoke a token; False when there is no such token or it was revoked already."""
    with writing(engine) as conn:
        res = conn.execute(sa.update(_TOK).where(_TOK.c.id == token_id, _TOK.c.revoked_ns.is_(None))
                           .values(revoked_ns=time.time_ns()))
        return res.rowcount == 1


def record(engine: sa.Engine, *, actor: str, token_id: int | None, role: str, method: str, path: str, action: str,
           status: int, remote: str, detail: dict[str, Any]) -> None:
    """Append one entry to the audit log."""
    with writing(engine) as conn:
        conn.execute(sa.insert(_AUD).values(
            at_ns=time.time_ns(), actor=actor, token_id=token_id, role=role, method=method, path=path[:256],
            action=action, status=status, remote=remote[:64], detail=json.dumps(detail, ensure_ascii=False)))


def audit_query(*, actor: str | None = None, action: str | None = None) -> sa.Select[Any]:
    """The audit log, newest first, optionally for one actor or action (page it with limit/offset)."""
    q = sa.select(_AUD).order_by(_AUD.c.id.desc())
    if actor is not None:
        q = q.where(_AUD.c.actor == actor)
    if action is not None:
        q = q.where(_AUD.c.action == action)
    return q
