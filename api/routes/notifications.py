"""Silences (create, list, expire: operator) and the notification outbox with each SMS's delivery state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.deps import Operator, PagingDep, Viewer, WorldDep, audit
from api.models.common import Page, ns_time
from api.models.notify import NotificationPublic, SilenceCreate, SilencePublic
from api.problems import Unprocessable
from examwatch.clock import now_ns
from examwatch.store import silences
from examwatch.store.notify_models import Notification

router = APIRouter(tags=["notifications"])
_N = cast(sa.Table, Notification.__table__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = datetime(2262, 1, 1, tzinfo=UTC)


def silence_public(v: silences.SilenceView) -> SilencePublic:
    return SilencePublic(id=v.id, kind=v.kind, site=v.site, room=v.room, device=v.device, rule=v.rule,
                         comment=v.comment, starts=ns_time(v.starts_ns), ends=ns_time(v.ends_ns), by=v.by,
                         created=ns_time(v.created_ns), expired_by=v.expired_by)


def _ns(t: datetime, field: str) -> int:
    t = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    if not _EPOCH <= t < _LAST:
        raise Unprocessable(field, "times must lie between 1970 and 2261")
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


@router.get("/silences", summary="Silences and maintenance windows, newest first")
def list_silences(world: WorldDep, _: Viewer, page: PagingDep,
                  active: Annotated[bool, Query(description="only those in force or yet to start")] = True,
                  ) -> Page[SilencePublic]:
    """Silences mute notifications only; the alarms and their transitions are kept."""
    views = silences.list_silences(world.notify, active_only=active, now_ns=now_ns(world.clock))
    return page.page([silence_public(v) for v in page.window(views)], len(views))


@router.post("/silences", status_code=201, summary="Silence notifications (operator)")
def create_silence(world: WorldDep, request: Request, who: Operator, body: SilenceCreate) -> SilencePublic:
    """Mute notifications of matching alarms from ``starts`` (default now) until ``ends``."""
    try:
        starts = _ns(body.starts, "body.starts") if body.starts is not None else None
        view = silences.create(world.notify, ends_ns=_ns(body.ends, "body.ends"), by=who.name, site=body.site,
                               room=body.room, device=body.device, rule=body.rule, starts_ns=starts, kind=body.kind,
                               comment=body.comment, now_ns=now_ns(world.clock))
    except silences.SilenceError as exc:
        raise Unprocessable("body", str(exc)) from None
    audit(request, silence=view.id, matchers=view.describe(), ends=view.ends_ns)
    return silence_public(view)


@router.post("/silences/{silence_id}/expire", summary="End a silence now (operator)")
def expire_silence(world: WorldDep, request: Request, who: Operator,
                   silence_id: Annotated[int, Path(ge=1, le=2**62, examples=[5])]) -> SilencePublic:
    """The silence ends now; kept with who ended it. 409 when it had ended already, 404 when there is none."""
    if not any(v.id == silence_id for v in silences.list_silences(world.notify, active_only=False)):
        raise HTTPException(404, f"no silence {silence_id}")
    try:
        view = silences.expire(world.notify, silence_id, who.name, now_ns=now_ns(world.clock))
    except silences.SilenceError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(request, silence=silence_id)
    return silence_public(view)


@router.get("/notifications", summary="The SMS outbox with delivery state")
def list_notifications(
    world: WorldDep, _: Viewer, page: PagingDep,
    alarm_id: Annotated[int | None, Query(ge=1, le=2**62, description="only this alarm's")] = None,
    status: Annotated[list[str] | None, Query(description="queued, sent, muted or failed", max_length=4)] = None,
    drill: Annotated[bool | None, Query(description="only drill (true) or only real (false) notifications")] = None,
) -> Page[NotificationPublic]:
    """Every message the notifier planned, newest first: to whom, what, and whether it was delivered."""
    conds: list[sa.ColumnElement[bool]] = []
    if alarm_id is not None:
        conds.append(_N.c.alarm_id == alarm_id)
    if status:
        conds.append(_N.c.status.in_(status))
    if drill is not None:
        conds.append(_N.c.drill.is_(drill))
    rows, total = page.fetch(world.notify, sa.select(_N).where(*conds).order_by(_N.c.id.desc()))
    items = [NotificationPublic(id=r.id, alarm_id=r.alarm_id, kind=r.kind, level=r.level, person=r.person,
                                address=r.address, text=r.text, drill=r.drill, status=r.status,
                                silence_id=r.silence_id, attempts=r.attempts, created=ns_time(r.created_ns),
                                sent=ns_time(r.sent_ns), result=r.result) for r in rows]
    return page.page(items, total)
