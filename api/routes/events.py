"""Live updates over Server-Sent Events: alarm transitions and site status changes.

Each alarm transition is one ``alarm`` event whose id is the transition's row id, which only
grows. A client that reconnects with ``Last-Event-ID`` (browsers send it by themselves) gets
every transition after that id from the table, so nothing is missed however long it was away.
``site-status`` events carry no id, so they never move the resume point: on connecting a
client first gets every site's current status, then a change whenever a colour changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from pydantic import Field
from sse_starlette import EventSourceResponse

from api.deps import Viewer, WorldDep
from api.models.alarms import TransitionPublic
from api.rollup import Rollup
from api.routes.alarms import transition_public
from api.world import World
from examwatch.influx import InfluxUnavailable
from examwatch.store import Alarm, Transition

router = APIRouter(tags=["events"])
BATCH = 500
STATUS_EVERY_S = 1.0
_A = cast(sa.Table, Alarm.__table__)
_T = cast(sa.Table, Transition.__table__)


class AlarmEvent(TransitionPublic):
    """The data of an ``alarm`` event: the transition and what the alarm is about."""

    rule: str
    subject: str
    subject_type: str
    site: str
    kind: str | None = Field(description="the device's kind, for device alarms")
    drill: bool


def _last_id(world: World) -> int:
    with world.store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(_T.c.id), 0))).scalar_one())


def _after(world: World, last: int) -> list[AlarmEvent]:
    q = (sa.select(_T, _A.c.rule, _A.c.subject, _A.c.subject_type, _A.c.site, _A.c.drill)
         .join(_A, _A.c.id == _T.c.alarm_id).where(_T.c.id > last).order_by(_T.c.id).limit(BATCH))
    with world.store.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        ref = world.inventory.devices.get(r.subject) if r.subject_type == "device" else None
        out.append(AlarmEvent(**transition_public(r).model_dump(), rule=r.rule, subject=r.subject,
                              subject_type=r.subject_type, site=r.site, kind=ref.kind if ref else None,
                              drill=bool(r.drill)))
    return out


def _colours(world: World) -> dict[str, dict[str, Any]]:
    try:
        states = world.states.snapshot()
    except InfluxUnavailable:
        return {}
    with world.store.connect() as conn:
        r = Rollup(world.inventory, world.timetable, states, conn, world.now())
        sites = [r.site(s) for s in world.inventory.sites]
    return {s.id: {"site": s.id, "status": s.status, "reasons": s.reasons} for s in sites}


async def _stream(request: Request, world: World, last: int) -> AsyncIterator[dict[str, str]]:
    metrics = request.app.state.metrics
    metrics.sse_clients.inc()
    try:
        colours = await anyio.to_thread.run_sync(_colours, world)
        for status in colours.values():
            yield {"event": "site-status", "data": json.dumps(status, ensure_ascii=False)}
        next_status = time.monotonic() + STATUS_EVERY_S
        poll_s = world.settings.api.sse_poll_ms / 1000
        while True:
            batch = await anyio.to_thread.run_sync(_after, world, last)
            for ev in batch:
                last = ev.id
                yield {"event": "alarm", "id": str(ev.id), "data": ev.model_dump_json()}
            if batch or time.monotonic() >= next_status:
                now = await anyio.to_thread.run_sync(_colours, world)
                for site, status in now.items():
                    if colours.get(site, {}).get("status") != status["status"]:
                        yield {"event": "site-status", "data": json.dumps(status, ensure_ascii=False)}
                colours = now or colours
                next_status = time.monotonic() + STATUS_EVERY_S
            if len(batch) < BATCH:
                await anyio.sleep(poll_s)
    finally:
        metrics.sse_clients.dec()


@router.get("/events", summary="Live alarm transitions and site status changes (SSE)",
            response_class=EventSourceResponse,
            responses={200: {"description": "an endless text/event-stream: `alarm` events (data: AlarmEvent, id: "
                                            "the transition id) and `site-status` events (no id)",
                             "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def events(
    request: Request, world: WorldDep, _: Viewer,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**62, description="resume after this event id")] = None,
    since: Annotated[int | None, Query(ge=0, le=2**62, description="as Last-Event-ID, for clients that cannot "
                                                                   "set headers")] = None,
) -> EventSourceResponse:
    """Without Last-Event-ID the stream starts with transitions from now on; with it, right after that id."""
    resume = last_event_id if last_event_id is not None else since
    start = resume if resume is not None else await anyio.to_thread.run_sync(_last_id, world)
    return EventSourceResponse(_stream(request, world, start), ping=15)
