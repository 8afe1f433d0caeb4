"""Dependencies as ``Annotated`` aliases: the world's parts, the caller and their role, paging."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.models.common import Page
from api.world import World
from examwatch.store.access import Principal, Role, authenticate

T = TypeVar("T")
_bearer = HTTPBearer(auto_error=False, description="an API token from `examwatch api token create`")


# Dependencies are coroutines: FastAPI runs a plain function in its thread pool, and a thread
# hop per dependency per request both costs CPU and, under load, lets dozens of threads queue
# for the GIL behind whichever one is doing real work.


async def get_world(request: Request) -> World:
    world: World = request.app.state.world
    return world


WorldDep = Annotated[World, Depends(get_world)]


class TokenCache:
    """Answers of ``authenticate`` for ``ttl_s``: a wall polling every second costs no store query each time.

    A token revoked through the API is forgotten at once; one revoked with the CLI (another
    process) stops working within ``ttl_s``.
    """

    def __init__(self, ttl_s: float = 2.0, size: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Principal | None]] = {}

    async def authenticate(self, store: sa.Engine, plain: str) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(plain)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await anyio.to_thread.run_sync(authenticate, store, plain)
        with self._lock:
            if len(self._seen) >= self.size:
                self._seen.clear()
            self._seen[plain] = (now + self.ttl_s, principal)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


async def current_principal(
    request: Request, world: WorldDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The token's holder; 401 without a valid token. Kept on the request for the audit log."""
    tokens: TokenCache = request.app.state.tokens
    principal = None if creds is None else await tokens.authenticate(world.store, creds.credentials)
    if principal is None:
        raise HTTPException(401, "a valid API token is required (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


def require(role: Role) -> object:
    """A dependency that lets through callers whose role includes ``role`` (403 otherwise)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise HTTPException(403, f"this needs the {role.value} role; {principal.name} is {principal.role.value}")
        return principal

    return Depends(check)


Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int

    def window(self, items: Sequence[T]) -> Sequence[T]:
        """This page's part of ``items``."""
        return items[self.offset:self.offset + self.limit]

    def page(self, items: list[T], total: int) -> Page[T]:
        """``items`` (this page's, already mapped) of ``total``."""
        return Page(items=items, total=total, limit=self.limit, offset=self.offset)

    def of(self, items: Sequence[T]) -> Page[T]:
        """This page of a list held in memory."""
        return self.page(list(self.window(items)), len(items))

    def fetch(self, store: sa.Engine, query: sa.Select[Any]) -> tuple[Sequence[sa.Row[Any]], int]:
        """This page of the rows ``query`` selects (in its order), and how many it selects in all."""
        with store.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())).scalar_one()
            rows = conn.execute(query.limit(self.limit).offset(self.offset)).all()
        return rows, total


async def paging(limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
                 offset: Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")] = 0) -> Paging:
    """``limit`` and ``offset`` query parameters of every list."""
    return Paging(limit, offset)


PagingDep = Annotated[Paging, Depends(paging)]


def audit(request: Request, **detail: object) -> None:
    """Say what this write changed; the audit middleware stores it with who, when and from where."""
    request.state.audit = detail
