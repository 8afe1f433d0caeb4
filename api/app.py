"""The FastAPI application: routers, problem details, metrics and audit middleware."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems
from api.deps import TokenCache
from api.drills import Drills
from api.models.common import problem_responses
from api.observe import Metrics, Observe
from api.routes import (
    access,
    alarms,
    devices,
    drills,
    events,
    health,
    inventory,
    metrics,
    mobile,
    notifications,
    roster,
    rules,
    sites,
    sms,
    timetable,
)
from api.world import World

DESCRIPTION = """\
The command center's API: sites and their status, rooms and devices, telemetry history,
alarms (acknowledge, resolve, comment), timetable, readiness, drills, inventory, the audit
log, and live updates over Server-Sent Events.

Every endpoint but `/health` needs `Authorization: Bearer <token>` (`examwatch api token create`).
Roles: **viewer** reads; **operator** also acknowledges, resolves, comments and silences; **admin** also
changes the inventory, timetable, rules and roster, starts drills and manages tokens. Every write is in the
audit log. Errors are RFC 9457 problem details (`application/problem+json`).
"""


def create_app(world: World) -> FastAPI:
    """The API over ``world``."""
    drill_runner = Drills(world.settings.api, world.config_path)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The inventory, the app and the libraries are long-lived: taken out of the collector's
        # view, a full collection no longer walks them and stalls every request for its length.
        gc.collect()
        gc.freeze()
        if world.publisher is not None:
            world.publisher.start()
        yield
        drill_runner.stop_all()
        if world.publisher is not None:
            world.publisher.stop()

    app = FastAPI(title="examwatch command-center API", version="1", description=DESCRIPTION,
                  lifespan=lifespan, responses=problem_responses(422))
    app.state.world = world
    app.state.drills = drill_runner
    app.state.metrics = Metrics()
    app.state.tokens = TokenCache()
    problems.install(app)
    app.include_router(health.router)
    app.include_router(sms.router)
    app.include_router(mobile.router)
    guarded = problem_responses(401, 403, 404)
    for module in (sites, devices, alarms, notifications, timetable, drills, inventory, rules, roster, access, events,
                   metrics):
        app.include_router(module.router, responses=guarded)
    app.add_middleware(Observe, metrics=app.state.metrics)
    return app
