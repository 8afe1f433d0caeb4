"""API tokens and the audit log (admin). The audit log can be read, never changed."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.deps import Admin, PagingDep, WorldDep, audit
from api.models.common import Page, ns_time
from api.models.misc import AuditPublic, TokenCreate, TokenIssued, TokenPublic
from examwatch.store.access import TokenView, audit_query, create_token, list_tokens, revoke_token

router = APIRouter(tags=["access"])


def token_public(t: TokenView) -> TokenPublic:
    return TokenPublic(id=t.id, name=t.name, role=t.role, created=ns_time(t.created_ns), created_by=t.created_by,
                       revoked=ns_time(t.revoked_ns))


@router.get("/audit", summary="The audit log, newest first (admin)")
def list_audit(
    world: WorldDep, _: Admin, page: PagingDep,
    actor: Annotated[str | None, Query(description="only this token holder", max_length=64)] = None,
    action: Annotated[str | None, Query(description="only this operation", max_length=64)] = None,
) -> Page[AuditPublic]:
    """Every write ever attempted through the API: who, what, when, from where, and the answer."""
    q = audit_query(actor=actor, action=action)
    rows, total = page.fetch(world.store, q)
    items = [AuditPublic(id=r.id, at=ns_time(r.at_ns), actor=r.actor, token_id=r.token_id, role=r.role,
                         method=r.method, path=r.path, action=r.action, status=r.status, remote=r.remote,
                         detail=json.loads(r.detail)) for r in rows]
    return page.page(items, total)


@router.get("/tokens", summary="Every token issued, without secrets (admin)")
def get_tokens(world: WorldDep, _: Admin, page: PagingDep) -> Page[TokenPublic]:
    """Tokens oldest first, with who holds them and whether they are revoked."""
    tokens = list_tokens(world.store)
    return page.page([token_public(t) for t in page.window(tokens)], len(tokens))


@router.post("/tokens", status_code=201, summary="Issue a token (admin)")
def post_token(world: WorldDep, request: Request, who: Admin, body: TokenCreate) -> TokenIssued:
    """A new token for ``name`` with ``role``; the answer is the only time its secret is shown."""
    view, plain = create_token(world.store, body.name, body.role, who.name)
    audit(request, token=view.id, name=view.name, role=view.role)
    return TokenIssued(**token_public(view).model_dump(), token=plain)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token (admin)")
def delete_token(world: WorldDep, request: Request, _: Admin,
                 token_id: Annotated[int, Path(ge=1, le=2**62, examples=[3])]) -> None:
    """The token stops working at once. 404 when there is no such token or it is revoked already."""
    if not revoke_token(world.store, token_id):
        raise HTTPException(404, f"no active token {token_id}")
    request.app.state.tokens.forget()
    audit(request, token=token_id)
