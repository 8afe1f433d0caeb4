"""The duty roster: operators read it (it holds phone numbers); admins replace it and the notifier reloads."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from api.deps import Admin, Operator, WorldDep, audit
from api.reload import ReloadOutcome, request_reload
from examwatch.roster import Roster

router = APIRouter(prefix="/roster", tags=["roster"])


class RosterSaved(BaseModel):
    roster: Roster
    reload: ReloadOutcome = Field(description="whether the running notifier took the new roster")


@router.get("", summary="The duty roster (operator)")
def get_roster(world: WorldDep, _: Operator) -> Roster:
    """People (names, phones, hours on duty), routes (who is told of what, at which level) and the
    words used for each rule in messages."""
    if not world.settings.notify.roster.exists():
        raise HTTPException(404, f"no roster file ({world.settings.notify.roster.name}): PUT one")
    return world.roster()


@router.put("", summary="Replace the duty roster (admin)")
def put_roster(world: WorldDep, request: Request, principal: Admin, body: Roster) -> RosterSaved:
    """Check the roster (every person a route names is listed, every site is in the inventory),
    save it, and ask the running notifier to use it for the next message."""
    roster = world.replace_roster(body)
    outcome = request_reload(world.settings, "notifier", principal.name)
    audit(request, people=[p.id for p in roster.people], routes=[r.name for r in roster.routes],
          reload=outcome.state)
    return RosterSaved(roster=roster, reload=outcome)
