"""Sites with their status roll-up, and their rooms."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Path

from api.deps import PagingDep, Viewer, WorldDep
from api.models.common import Page
from api.models.sites import RoomDetail, RoomPublic, SiteDetail, SitePublic
from api.rollup import Rollup, device_public
from api.world import World
from examwatch.inventory import Site

router = APIRouter(prefix="/sites", tags=["sites"])
SiteIdPath = Path(description="site id from the inventory", examples=["S01"], max_length=64)
RoomIdPath = Path(description="room id within the site", examples=["R01"], max_length=64)


def site_or_404(world: World, site_id: str) -> Site:
    try:
        return world.inventory.site(site_id)
    except KeyError:
        raise HTTPException(404, f"no site {site_id!r} in the inventory") from None


def rollup(world: World, site: str | None = None) -> Rollup:
    states = world.states.snapshot()
    with world.store.connect() as conn:
        return Rollup(world.inventory, world.timetable, states, conn, datetime.now(UTC), site)


@router.get("", summary="Every site with its status roll-up")
def list_sites(world: WorldDep, _: Viewer, page: PagingDep) -> Page[SitePublic]:
    """Sites in inventory order: colour, devices online/offline per kind, active alarms, next paper."""
    sites = world.inventory.sites
    r = rollup(world)
    items = [r.site(s) for s in sites[page.offset:page.offset + page.limit]]
    return Page(items=items, total=len(sites), limit=page.limit, offset=page.offset)


@router.get("/{site_id}", summary="One site's roll-up and its rooms")
def get_site(world: WorldDep, _: Viewer, site_id: str = SiteIdPath) -> SiteDetail:
    """The site's status roll-up, with every room's devices online and offline."""
    site = site_or_404(world, site_id)
    r = rollup(world, site.id)
    return SiteDetail(**r.site(site).model_dump(), rooms=r.rooms(site))


@router.get("/{site_id}/rooms", summary="A site's rooms")
def list_rooms(world: WorldDep, _: Viewer, page: PagingDep, site_id: str = SiteIdPath) -> Page[RoomPublic]:
    """Rooms of the site with their devices online and offline."""
    site = site_or_404(world, site_id)
    rooms = rollup(world, site.id).rooms(site)
    return Page(items=rooms[page.offset:page.offset + page.limit], total=len(rooms), limit=page.limit,
                offset=page.offset)


@router.get("/{site_id}/rooms/{room_id}", summary="One room and its devices")
def get_room(world: WorldDep, _: Viewer, site_id: str = SiteIdPath, room_id: str = RoomIdPath) -> RoomDetail:
    """The room, with each device's online state, last seen and clock skew."""
    site = site_or_404(world, site_id)
    r = rollup(world, site.id)
    room = next((x for x in r.rooms(site) if x.id == room_id), None)
    if room is None:
        raise HTTPException(404, f"no room {room_id!r} at site {site_id}")
    devices = [device_public(world.inventory, r.states, d.id) for d in site.devices if d.room == room_id]
    return RoomDetail(**room.model_dump(), devices=devices)
