"""The timetable (papers per site) and readiness (go/no-go per paper, site and room)."""

from __future__ import annotations

from typing import Annotated, cast

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request

from api.deps import Admin, PagingDep, Viewer, WorldDep, audit
from api.models.common import Page, ns_time
from api.models.misc import ReadinessPublic
from examwatch.store import Readiness
from examwatch.timetable import Timetable

router = APIRouter(tags=["timetable"])
_R = cast(sa.Table, Readiness.__table__)


@router.get("/timetable", summary="The exam's papers")
def get_timetable(
    world: WorldDep, _: Viewer,
    site: Annotated[str | None, Query(description="only papers at this site", max_length=64)] = None,
) -> Timetable:
    """Papers in start order: subject, start, end, the sites they apply to, jammer-off windows."""
    tt = world.timetable
    papers = tt.ordered if site is None else tuple(tt.for_site(site))
    return Timetable(exam=tt.exam, papers=papers)


@router.put("/timetable", summary="Replace the timetable (admin)")
def put_timetable(world: WorldDep, request: Request, _: Admin, body: Timetable) -> Timetable:
    """Validate and store a new timetable file. The rules engine and simulator read it at their next start."""
    world.replace_timetable(body)
    audit(request, exam=body.exam, papers=[p.id for p in body.papers])
    return world.timetable


@router.get("/readiness", summary="Go/no-go per paper, site and room", tags=["readiness"])
def list_readiness(
    world: WorldDep, _: Viewer, page: PagingDep,
    paper: Annotated[str | None, Query(description="only this paper", max_length=64)] = None,
    site: Annotated[str | None, Query(description="only this site", max_length=64)] = None,
    go: Annotated[bool | None, Query(description="only go (true) or no-go (false)")] = None,
    site_level: Annotated[bool, Query(description="only the site roll-ups (room _site)")] = False,
) -> Page[ReadinessPublic]:
    """The rules engine's readiness verdicts at T−30 min, newest paper first."""
    conds: list[sa.ColumnElement[bool]] = []
    if paper is not None:
        conds.append(_R.c.paper == paper)
    if site is not None:
        conds.append(_R.c.site == site)
    if go is not None:
        conds.append(_R.c.go.is_(go))
    if site_level:
        conds.append(_R.c.room == "_site")
    rows, total = page.fetch(world.store, sa.select(_R).where(*conds).order_by(_R.c.at_ns.desc(), _R.c.site, _R.c.room))
    items = [ReadinessPublic(paper=r.paper, site=r.site, room=r.room, go=r.go, detail=r.detail, drill=r.drill,
                             at=ns_time(r.at_ns)) for r in rows]
    return page.page(items, total)
