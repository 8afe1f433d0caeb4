"""Silences (mute notifications) and the notification outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_ID = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SilenceBase(BaseModel):
    kind: Literal["silence", "maintenance"] = "silence"
    site: str | None = _ID
    room: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$",
                             description="needs site: room ids repeat across sites")
    device: str | None = _ID
    rule: str | None = _ID
    comment: str = Field(default="", max_length=500)


class SilenceCreate(SilenceBase):
    """Mute notifications of alarms matching every matcher given, until ``ends``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "maintenance", "site": "S03", "room": "VAULT", "ends": "2026-06-06T18:00:00+08:00",
        "comment": "UPS replaced by the power bureau"}]})

    starts: datetime | None = Field(default=None, description="default: now")
    ends: datetime


class SilencePublic(SilenceBase):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 5, "kind": "maintenance", "site": "S03", "room": "VAULT", "device": None, "rule": None,
        "comment": "UPS replaced", "starts": "2026-06-06T16:00:00+08:00", "ends": "2026-06-06T18:00:00+08:00",
        "by": "duty officer 王", "created": "2026-06-06T15:58:00+08:00", "expired_by": None}]})

    id: int
    starts: datetime
    ends: datetime
    by: str
    created: datetime
    expired_by: str | None = Field(description="who ended it early")


class NotificationPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 31, "alarm_id": 42, "kind": "alert", "level": 1, "person": "李主考", "address": "13800000000",
        "text": "【考务】S01 R03 屏蔽仪 n78 低于下限", "drill": False, "status": "sent", "silence_id": None,
        "attempts": 1, "created": "2026-06-07T08:46:11+08:00", "sent": "2026-06-07T08:46:11+08:00",
        "result": "0: Accepted for delivery"}]})

    id: int
    alarm_id: int
    kind: str = Field(description="alert, reminder, escalation or all_clear")
    level: int = Field(description="roster level")
    person: str
    address: str = Field(description="phone number")
    text: str
    drill: bool
    status: str = Field(description="queued, sent, muted or failed")
    silence_id: int | None = Field(description="the silence that muted it")
    attempts: int
    created: datetime
    sent: datetime | None
    result: str = Field(description="the SMS gateway's last answer")
