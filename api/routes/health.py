"""Health: liveness (the process answers) and readiness (broker, InfluxDB and store reachable). No token."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import WorldDep
from api.models.misc import Check, Health
from api.world import World
from examwatch import mqtt

router = APIRouter(prefix="/health", tags=["health"])
BROKER_TIMEOUT_S = 3.0


def _timed(check: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # any failure of a dependency is its health, not ours
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return Check(ok=ok, detail=detail, ms=round((time.perf_counter() - start) * 1000, 2))


def _broker(world: World) -> str:
    cfg = world.settings.mqtt
    c = mqtt.service_client(world.settings, "api", f"api-health-{secrets.token_hex(4)}")
    try:
        mqtt.connect_and_wait(c, cfg, clean_start=True, timeout_s=BROKER_TIMEOUT_S)
    finally:
        c.disconnect()
        c.loop_stop()
    return f"{cfg.host}:{cfg.port}"


def _influx(world: World) -> str:
    if not world.influx.ping():
        raise ConnectionError(f"{world.settings.influx.url}/ping did not answer 204")
    return world.settings.influx.url


def _store(world: World) -> str:
    with world.store.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return world.store.dialect.name


@router.get("", summary="Liveness: the API process answers")
async def liveness() -> Health:
    """Always ok while the process serves requests; checks nothing else."""
    return Health(status="ok", checks={})


@router.get("/ready", response_model=Health, summary="Readiness: broker, InfluxDB and store",
            responses={503: {"model": Health, "description": "a dependency is down"}})
def readiness(world: WorldDep) -> JSONResponse:
    """Each dependency checked now; 503 when any is down."""
    checks = {"broker": _timed(lambda: _broker(world)), "influxdb": _timed(lambda: _influx(world)),
              "store": _timed(lambda: _store(world))}
    ok = all(c.ok for c in checks.values())
    body = Health(status="ok" if ok else "degraded", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
