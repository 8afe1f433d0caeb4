"""Sites with their status roll-up, and their rooms."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from api.deps import PagingDep, Viewer, WorldDep
from api.models.common import Page
from api.models.sites import RoomDetail, RoomPublic, SiteDetail, SitePublic
from api.rollup import Rollup, device_public
from api.world import World
from examwatch.inventory import Site
from examwatch.store import Readiness, Transition

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
        return Rollup(world.inventory, world.timetable, states, conn, world.now(), site)


class _Answers:
    """Serialized roll-ups, reused while nothing they depend on has changed.

    They depend on the device-state snapshot (replaced at most every ``status_cache_s``), the
    alarms (any change adds a transition), the readiness rows, the inventory and the timetable.
    Checking that costs two indexed aggregates; building the roll-up of 2,700 devices and
    serializing it costs milliseconds, which a wall of clients would pay on every poll.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._key: tuple[object, ...] = ()
        self._refs: tuple[object, ...] = ()
        self._bodies: dict[str, bytes] = {}

    async def get(self, world: World, name: str, build: Callable[[Rollup], bytes]) -> Response:
        """The answer ``name``, built by ``build`` when its inputs changed.

        Runs on the event loop: the store reads here take well under a millisecond and a build a
        few, once per change, while a thread per request would queue dozens of threads for the GIL.
        Only a snapshot that must be read from InfluxDB first goes to a thread.
        """
        if not world.states.ready():
            await anyio.to_thread.run_sync(world.states.snapshot)
        states = world.states.snapshot()
        with world.store.connect() as conn:
            marks = conn.execute(_MARKS).one()
        refs = (world, states, world.inventory, world.timetable)
        key = (*map(id, refs), *marks)
        with self._lock:
            if key != self._key:
                # Holding the objects keeps their ids from being reused by others while cached.
                self._key, self._refs, self._bodies = key, refs, {}
            body = self._bodies.get(name)
        if body is None:
            with world.store.connect() as conn:
                body = build(Rollup(world.inventory, world.timetable, states, conn, world.now()))
            with self._lock:
                if key == self._key:
                    self._bodies[name] = body
        return Response(body, media_type="application/json")


_T = cast(sa.Table, Transition.__table__)
_R = cast(sa.Table, Readiness.__table__)
_MARKS = sa.select(sa.select(sa.func.max(_T.c.id)).scalar_subquery(),
                   sa.select(sa.func.max(_R.c.at_ns)).scalar_subquery(),
                   sa.select(sa.func.count()).select_from(_R).scalar_subquery())
_answers = _Answers()


@router.get("", summary="Every site with its status roll-up", response_model=Page[SitePublic])
async def list_sites(world: WorldDep, _: Viewer, page: PagingDep) -> Response:
    """Sites in inventory order: colour, devices online/offline per kind, active alarms, next paper."""
    sites = world.inventory.sites

    def build(r: Rollup) -> bytes:
        items = [r.site(s) for s in sites[page.offset:page.offset + page.limit]]
        return Page(items=items, total=len(sites), limit=page.limit, offset=page.offset).model_dump_json().encode()

    return await _answers.get(world, f"sites?{page.limit},{page.offset}", build)


@router.get("/{site_id}", summary="One site's roll-up and its rooms", response_model=SiteDetail)
async def get_site(world: WorldDep, _: Viewer, site_id: str = SiteIdPath) -> Response:
    """The site's status roll-up, with every room's devices online and offline."""
    site = site_or_404(world, site_id)

    def build(r: Rollup) -> bytes:
        return SiteDetail(**r.site(site).model_dump(), rooms=r.rooms(site)).model_dump_json().encode()

    return await _answers.get(world, f"site/{site.id}", build)


@router.get("/{site_id}/rooms", summary="A site's rooms")
def list_rooms(world: WorldDep, _: Viewer, page: PagingDep, site_id: str = SiteIdPath) -> Page[RoomPublic]:
    """Rooms of the site with their devices online and offline."""
    site = site_or_404(world, site_id)
    rooms = rollup(world, site.id).rooms(site)
    return page.of(rooms)


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
