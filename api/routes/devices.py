"""Devices: online state, last seen, clock skew, the latest readings, and telemetry history."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import PagingDep, Viewer, WorldDep
from api.fields import telemetry_fields
from api.models.common import Page, ns_time
from api.models.sites import DeviceDetail, DevicePublic
from api.models.telemetry import Aggregate, TelemetryPoint, TelemetrySeries
from api.problems import Unprocessable
from api.rollup import device_public
from api.world import World
from examwatch.inventory import DeviceRef
from examwatch.kinds import Kind

router = APIRouter(prefix="/devices", tags=["devices"])
DeviceIdPath = Path(description="device id from the inventory", examples=["S01-R01-JAM1"], max_length=64)
MAX_POINTS = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = datetime(2262, 1, 1, tzinfo=UTC)  # InfluxDB's int64 nanoseconds end in 2262
_TAGS = frozenset({"time", "device", "kind", "room", "site", "drill"})
_LATEST = 'SELECT * FROM "{kind}" WHERE "device" = $device AND time > $since ORDER BY time DESC LIMIT 1'
_HISTORY = ('SELECT {agg}("{field}") AS "value" FROM "{kind}" WHERE "device" = $device '
            "AND time >= $start AND time < $end GROUP BY time({every}s) fill(none)")


def device_or_404(world: World, device_id: str) -> DeviceRef:
    ref = world.inventory.devices.get(device_id)
    if ref is None:
        raise HTTPException(404, f"no device {device_id!r} in the inventory")
    return ref


@router.get("", summary="Devices with their online state")
def list_devices(
    world: WorldDep, _: Viewer, page: PagingDep,
    site: Annotated[str | None, Query(description="only this site", max_length=64)] = None,
    room: Annotated[str | None, Query(description="only this room", max_length=64)] = None,
    kind: Annotated[Kind | None, Query(description="only this kind")] = None,
    online: Annotated[bool | None, Query(description="only online (true) or offline (false) devices")] = None,
) -> Page[DevicePublic]:
    """Devices in inventory order, filtered; each with online, last seen and clock skew."""
    states = world.states.snapshot()
    refs = [r for r in world.inventory.devices.values()
            if (site is None or r.site == site) and (room is None or r.room == room)
            and (kind is None or r.kind == kind.value)]
    items = [device_public(world.inventory, states, r.id) for r in refs]
    if online is not None:
        items = [d for d in items if d.online is online]
    return page.of(items)


@router.get("/{device_id}", summary="One device and its latest readings")
def get_device(world: WorldDep, _: Viewer, device_id: str = DeviceIdPath) -> DeviceDetail:
    """Online state, last seen, clock skew and the fields of its last telemetry point."""
    ref = device_or_404(world, device_id)
    since = world.now() - timedelta(hours=world.settings.api.lookback_h)
    rows = world.influx.rows(_LATEST.format(kind=ref.kind),
                             {"device": ref.id, "since": int(since.timestamp() * 1e9)})
    latest: dict[str, Any] | None = None
    if rows:
        latest = {k: v for k, v in rows[0].items() if k not in _TAGS and v is not None}
    base = device_public(world.inventory, world.states.snapshot(), ref.id)
    return DeviceDetail(**base.model_dump(), latest=latest)


@router.get("/{device_id}/telemetry", summary="One field's history, downsampled")
def telemetry_history(
    world: WorldDep, _: Viewer, device_id: str = DeviceIdPath,
    field: Annotated[str, Query(description="a telemetry field of the device's kind (see the device contract)",
                                examples=["rf_dbm_n78"], max_length=64)] = "skew_ms",
    start: Annotated[datetime | None, Query(description="from (default: an hour before end)")] = None,
    end: Annotated[datetime | None, Query(description="until (default: now)")] = None,
    every_s: Annotated[int | None, Query(ge=1, le=86_400, description="bucket width; default: about 500 buckets")]
    = None,
    agg: Annotated[Aggregate | None, Query(description="mean, min, max or last; default mean for numbers, "
                                                       "last for flags and text")] = None,
) -> TelemetrySeries:
    """Values of one field over a time range in buckets of ``every_s``, at most 5000 buckets."""
    ref = device_or_404(world, device_id)
    fields = telemetry_fields(ref.kind)
    if field not in fields:
        raise Unprocessable("query.field", f"{ref.kind} telemetry has no field {field!r}; it has "
                                            + ", ".join(sorted(fields)))
    end = _aware(end) if end is not None else world.now()
    start = _aware(start) if start is not None else end - timedelta(hours=1)
    if start < _EPOCH or end > _LAST:
        raise Unprocessable("query.start" if start < _EPOCH else "query.end", "must lie between 1970 and 2261")
    if start >= end:
        raise Unprocessable("query.start", "start must be before end")
    span = (end - start).total_seconds()
    every = every_s or max(1, math.ceil(span / 500))
    if span / every > MAX_POINTS:
        raise Unprocessable("query.every_s", f"{span:.0f} s in buckets of {every} s is more than {MAX_POINTS}")
    aggregate: Aggregate = agg or ("mean" if fields[field] else "last")
    if aggregate != "last" and not fields[field]:
        raise Unprocessable("query.agg", f"{field} is not a number; only last applies")
    q = _HISTORY.format(agg=aggregate, field=field, kind=ref.kind, every=every)
    rows = world.influx.rows(q, {"device": ref.id, "start": _ns(start), "end": _ns(end)})
    points = [TelemetryPoint(time=ns_time(r["time"] * 1_000_000) or start, value=r["value"]) for r in rows]
    return TelemetrySeries(device=ref.id, kind=ref.kind, field=field, aggregate=aggregate, start=start, end=end,
                           every_s=every, points=points)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


