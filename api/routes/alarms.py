"""Alarms: filtered lists, one alarm with its full history; acknowledge, resolve and comment.

Reads come straight from the store; every change goes through the alarm lifecycle
(``examwatch.store.lifecycle``), which guards each transition against a concurrent change by the engine,
on the service clock, and is published at once (``api.acting``).
"""

from __future__ import annotations

from typing import Annotated, Any, cast

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.acting import Act, act
from api.deps import Operator, PagingDep, Viewer, WorldDep, audit
from api.models.alarms import (
    AlarmAction,
    AlarmComment,
    AlarmDetail,
    AlarmPublic,
    TransitionPublic,
)
from api.models.common import Page, ns_time
from api.world import World
from examwatch.alarm import Severity
from examwatch.alarm import State as AlarmState
from examwatch.inventory import Inventory
from examwatch.kinds import Kind
from examwatch.store import Alarm, Transition
from examwatch.store.lifecycle import AlarmError

router = APIRouter(prefix="/alarms", tags=["alarms"])
AlarmIdPath = Path(description="alarm id", examples=[42], ge=1, le=2**62)
_A = cast(sa.Table, Alarm.__table__)
_T = cast(sa.Table, Transition.__table__)


def alarm_public(inv: Inventory, row: Any) -> AlarmPublic:
    ref = inv.devices.get(row.subject) if row.subject_type == "device" else None
    return AlarmPublic(id=row.id, rule=row.rule, subject=row.subject, subject_type=row.subject_type, site=row.site,
                       kind=ref.kind if ref else None, severity=row.severity, state=row.state, drill=bool(row.drill),
                       message=row.message, opened=ns_time(row.opened_ns), updated=ns_time(row.updated_ns),
                       seq=row.seq)


def transition_public(row: Any) -> TransitionPublic:
    return TransitionPublic(id=row.id, alarm_id=row.alarm_id, seq=row.seq, state=row.state, severity=row.severity,
                            at=ns_time(row.at_ns), by=row.by, comment=row.comment, message=row.message)


@router.get("", summary="Alarms, newest first, filtered")
def list_alarms(
    world: WorldDep, _: Viewer, page: PagingDep,
    state: Annotated[list[AlarmState] | None, Query(description="any of these states")] = None,
    active: Annotated[bool | None, Query(description="only active (not resolved) or only resolved")] = None,
    severity: Annotated[list[Severity] | None, Query(description="any of these severities")] = None,
    site: Annotated[str | None, Query(description="only this site", max_length=64)] = None,
    kind: Annotated[Kind | None, Query(description="only alarms on devices of this kind")] = None,
    drill: Annotated[bool | None, Query(description="only drill alarms (true) or only real ones (false)")] = None,
) -> Page[AlarmPublic]:
    """Alarms matching every given filter."""
    conds: list[sa.ColumnElement[bool]] = []
    if state:
        conds.append(_A.c.state.in_(state))
    if active is not None:
        conds.append(_A.c.active.is_(active))
    if severity:
        conds.append(_A.c.severity.in_(severity))
    if site is not None:
        conds.append(_A.c.site == site)
    if kind is not None:
        ids = [d.id for d in world.inventory.devices.values() if d.kind == kind.value]
        conds.append(sa.and_(_A.c.subject_type == "device", _A.c.subject.in_(ids)))
    if drill is not None:
        conds.append(_A.c.drill.is_(drill))
    rows, total = page.fetch(world.store, sa.select(_A).where(*conds).order_by(_A.c.id.desc()))
    return page.page([alarm_public(world.inventory, r) for r in rows], total)


def _detail(world: World, alarm_id: int) -> AlarmDetail:
    with world.store.connect() as conn:
        row = conn.execute(sa.select(_A).where(_A.c.id == alarm_id)).first()
        if row is None:
            raise HTTPException(404, f"no alarm {alarm_id}")
        history = conn.execute(sa.select(_T).where(_T.c.alarm_id == alarm_id).order_by(_T.c.seq)).all()
    return AlarmDetail(**alarm_public(world.inventory, row).model_dump(),
                       transitions=[transition_public(t) for t in history])


@router.get("/{alarm_id}", summary="One alarm with its full history")
def get_alarm(world: WorldDep, _: Viewer, alarm_id: int = AlarmIdPath) -> AlarmDetail:
    """The alarm and every transition it went through: who, when, what and why."""
    return _detail(world, alarm_id)


@router.get("/{alarm_id}/transitions", summary="An alarm's transitions")
def list_transitions(world: WorldDep, _: Viewer, alarm_id: int = AlarmIdPath) -> list[TransitionPublic]:
    """Every transition of the alarm, oldest first."""
    return _detail(world, alarm_id).transitions


def _change(world: World, request: Request, alarm_id: int, what: Act, comment: str, by: str) -> AlarmDetail:
    _detail(world, alarm_id)  # 404 before 409
    try:
        view = act(world, alarm_id, what, by, comment)
    except AlarmError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(request, alarm=alarm_id, state=view.state, seq=view.seq, comment=comment)
    return _detail(world, alarm_id)


@router.post("/{alarm_id}/acknowledge", summary="Acknowledge an alarm (operator)")
def acknowledge_alarm(world: WorldDep, request: Request, who: Operator, body: AlarmAction,
                      alarm_id: int = AlarmIdPath) -> AlarmDetail:
    """The caller owns the alarm now. 409 when it is already acknowledged or resolved."""
    return _change(world, request, alarm_id, "acknowledge", body.comment, who.name)


@router.post("/{alarm_id}/resolve", summary="Resolve an alarm by hand (operator)")
def resolve_alarm(world: WorldDep, request: Request, who: Operator, body: AlarmAction,
                  alarm_id: int = AlarmIdPath) -> AlarmDetail:
    """Close the alarm. 409 when it is resolved already."""
    return _change(world, request, alarm_id, "resolve", body.comment, who.name)


@router.post("/{alarm_id}/comments", summary="Comment on an active alarm (operator)")
def comment_alarm(world: WorldDep, request: Request, who: Operator, body: AlarmComment,
                  alarm_id: int = AlarmIdPath) -> AlarmDetail:
    """Add a comment to the alarm's history without changing its state. 409 once it is resolved."""
    return _change(world, request, alarm_id, "comment", body.comment, who.name)
