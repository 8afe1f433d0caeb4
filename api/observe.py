"""One ASGI middleware for what every request leaves behind: Prometheus metrics and, for writes, the audit log.

The audit entry is written by the middleware, not by each route, so no write can forget it:
every POST, PUT, PATCH and DELETE is recorded after its answer with the caller (or
"anonymous"), the operation, the HTTP status (refused attempts included), the client address
and what the route said it changed (``api.deps.audit``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examwatch.store.access import Principal, record

log = logging.getLogger("examwatch.api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Metrics:
    """The API's own Prometheus registry (one per app, so tests can build several apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("examwatch_api_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("examwatch_api_request_seconds", "time to answer, by route", ["route"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                                 registry=self.registry)
        self.sse_clients = Gauge("examwatch_api_sse_clients", "event-stream clients connected",
                                 registry=self.registry)
        self.audit_failures = Counter("examwatch_api_audit_failures_total", "audit entries that could not be stored",
                                      registry=self.registry)


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
            if scope["method"] not in SAFE_METHODS:
                await anyio.to_thread.run_sync(self._audit, scope, getattr(route, "name", "unmatched"), status)

    def _audit(self, scope: Scope, action: str, status: int) -> None:
        state: dict[str, Any] = scope.get("state", {})
        who: Principal | None = state.get("principal")
        client = scope.get("client")
        try:
            actor = who.name if who else state.get("actor", "anonymous")  # the gateway, a phone's page
            record(scope["app"].state.world.store, actor=actor,
                   token_id=who.token_id if who else None, role=who.role.value if who else "",
                   method=scope["method"], path=scope["path"], action=action, status=status,
                   remote=client[0] if client else "", detail=state.get("audit", {}))
        except Exception:  # the answer is already sent; losing the entry must be loud, not fatal
            self.metrics.audit_failures.inc()
            log.exception("audit entry for %s %s not stored", scope["method"], scope["path"])
