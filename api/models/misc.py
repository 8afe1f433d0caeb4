"""Readiness, audit entries, tokens, health and drills."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from examwatch.store.access import Role


class ReadinessPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "paper": "gk-yuwen", "site": "S01", "room": "R01", "go": False, "detail": "jammer S01-R01-JAM1 offline",
        "drill": False, "at": "2026-06-07T08:30:00+08:00"}]})

    paper: str
    site: str
    room: str = Field(description="room id, or _site for the site's roll-up")
    go: bool
    detail: str
    drill: bool
    at: datetime


class AuditPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 9, "at": "2026-06-07T08:47:02+08:00", "actor": "duty officer 王", "token_id": 3, "role": "operator",
        "method": "POST", "path": "/alarms/42/acknowledge", "action": "acknowledge_alarm", "status": 200,
        "remote": "10.1.2.3", "detail": {"alarm": 42, "state": "acknowledged"}}]})

    id: int
    at: datetime
    actor: str = Field(description="the token holder, or anonymous")
    token_id: int | None
    role: str
    method: str
    path: str
    action: str = Field(description="the operation (its OpenAPI name)")
    status: int = Field(description="HTTP status answered: refused attempts are recorded too")
    remote: str = Field(description="client address")
    detail: dict[str, Any]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "wall-1", "role": "viewer"}]})

    name: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$", description="who will hold it")
    role: Role


class TokenPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "name": "wall-1", "role": "viewer", "created": "2026-06-06T18:00:00+08:00",
        "created_by": "admin", "revoked": None}]})

    id: int
    name: str
    role: Role
    created: datetime
    created_by: str
    revoked: datetime | None


class TokenIssued(TokenPublic):
    token: str = Field(description="the secret, shown only now; the store keeps its hash")


class Check(BaseModel):
    ok: bool
    detail: str = ""
    ms: float = Field(description="how long the check took")


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "checks": {"broker": {"ok": True, "detail": "", "ms": 2.1},
                                   "influxdb": {"ok": True, "detail": "", "ms": 1.0},
                                   "store": {"ok": True, "detail": "", "ms": 0.3}}}]})

    status: Literal["ok", "degraded"]
    checks: dict[str, Check] = Field(description="liveness has none; readiness checks broker, InfluxDB, store")


DrillState = Literal["running", "passed", "failed", "lost"]


class DrillStart(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"scenario": "power", "speed": 1.0}]})

    scenario: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="a scenario file's name")
    speed: float = Field(default=1.0, ge=0.1, le=1000, description="time compression (1: real time)")


class DrillPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "20260606T090000-1a2b", "scenario": "power", "speed": 1.0, "started": "2026-06-06T09:00:00Z",
        "started_by": "admin", "state": "running", "exit_code": None, "has_report": False}]})

    id: str
    scenario: str
    speed: float
    started: datetime
    started_by: str
    state: DrillState = Field(description="passed: every fault seen; failed: a fault unseen or an error; "
                                          "lost: the API restarted while it ran")
    exit_code: int | None
    has_report: bool
