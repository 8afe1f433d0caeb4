"""The inventory: everyone reads it, admins replace it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import Admin, Viewer, WorldDep, audit
from api.problems import Unprocessable
from examwatch.inventory import Inventory

router = APIRouter(prefix="/inventory", tags=["inventory"])


@router.get("", summary="The district's sites, rooms and devices")
def get_inventory(world: WorldDep, _: Viewer) -> Inventory:
    """The inventory as loaded from its file (or last replaced through the API)."""
    return world.inventory


@router.put("", summary="Replace the inventory (admin)")
def put_inventory(world: WorldDep, request: Request, _: Admin, body: Inventory) -> Inventory:
    """Validate and store a new inventory file. Ingest, rules and the broker ACL pick it up at their next start.
    An inventory without a site the duty roster still routes is refused (422): change the roster first."""
    before = set(world.inventory.devices)
    try:
        world.replace_inventory(body)
    except ValueError as exc:
        raise Unprocessable("body.sites", str(exc)) from exc
    after = set(body.devices)
    audit(request, sites=len(body.sites), devices=len(after), added=sorted(after - before)[:100],
          removed=sorted(before - after)[:100])
    return world.inventory
