"""Drills: list them, start a scenario (admin), read a drill's scored report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from api.deps import Admin, PagingDep, Viewer, WorldDep, audit
from api.drills import DrillRecord, Drills
from api.models.common import Page, ns_time
from api.models.misc import DrillPublic, DrillStart
from api.problems import Unprocessable

router = APIRouter(tags=["drills"])
DrillIdPath = Path(description="drill id", examples=["20260606T090000-1a2b"], max_length=64,
                   pattern=r"^[0-9A-Za-z-]+$")


def drills_of(request: Request) -> Drills:
    drills: Drills = request.app.state.drills
    return drills


def drill_public(rec: DrillRecord, state: str, has_report: bool) -> DrillPublic:
    return DrillPublic(id=rec.id, scenario=rec.scenario, speed=rec.speed, started=ns_time(rec.started_ns),
                       started_by=rec.started_by, state=state, exit_code=rec.exit_code, has_report=has_report)


@router.get("/scenarios", summary="Drill scenarios that can be started")
def list_scenarios(request: Request, _: Viewer) -> list[str]:
    """Names of the scenario files in the configured scenarios directory."""
    return drills_of(request).scenarios()


@router.get("/drills", summary="Drills started through the API, newest first")
def list_drills(request: Request, _: Viewer, page: PagingDep) -> Page[DrillPublic]:
    """Every drill with its state; a finished drill's report is at /drills/{id}/report."""
    drills = drills_of(request).list()
    return page.page([drill_public(*d) for d in page.window(drills)], len(drills))


@router.post("/drills", status_code=202, summary="Start a drill scenario (admin)")
def start_drill(request: Request, world: WorldDep, who: Admin, body: DrillStart) -> DrillPublic:
    """Run the scenario as a child process (`examwatch drill run`); poll the drill for its state."""
    try:
        rec = drills_of(request).start(body.scenario, body.speed, who.name)
    except KeyError:
        raise Unprocessable("body.scenario", f"no scenario {body.scenario!r} in "
                            f"{world.settings.api.scenarios_dir}") from None
    audit(request, drill=rec.id, scenario=rec.scenario, speed=rec.speed)
    return drill_public(rec, "running", False)


@router.get("/drills/{drill_id}", summary="One drill's state")
def get_drill(request: Request, _: Viewer, drill_id: Annotated[str, DrillIdPath]) -> DrillPublic:
    """What was started, by whom, and whether it is running, passed or failed."""
    try:
        return drill_public(*drills_of(request).get(drill_id))
    except KeyError:
        raise HTTPException(404, f"no drill {drill_id!r}") from None


@router.get("/drills/{drill_id}/report", summary="A drill's scored report")
def get_drill_report(request: Request, _: Viewer, drill_id: Annotated[str, DrillIdPath]) -> dict[str, Any]:
    """The report `examwatch drill run --json` wrote: each fault, whether and how fast it was seen."""
    drills = drills_of(request)
    try:
        report = drills.report(drill_id)
    except KeyError:
        raise HTTPException(404, f"no drill {drill_id!r}") from None
    if report is None:
        _rec, state, _has = drills.get(drill_id)
        if state == "running":
            raise HTTPException(404, f"drill {drill_id} is still running; no report yet")
        raise HTTPException(404, f"drill {drill_id} ({state}) left no report; its log ends: "
                            + drills.log_tail(drill_id, 500))
    return report
