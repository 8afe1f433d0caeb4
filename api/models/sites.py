"""Sites, rooms and devices as the command center sees them: state, not configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Colour = Literal["green", "amber", "red"]
_NEXT_PAPER: dict[str, Any] = {"id": "gk-yuwen", "subject": "语文", "start": "2026-06-07T09:00:00+08:00",
               "end": "2026-06-07T11:30:00+08:00", "in_session": False,
               "readiness": {"go": True, "detail": "", "at": "2026-06-07T08:30:00+08:00"}}
_SITE: dict[str, Any] = {"id": "S01", "name": "第一中学", "type": "formal", "status": "amber",
         "reasons": ["2 devices offline"],
         "devices": {"jammer": {"online": 35, "offline": 1}, "camera": {"online": 36, "offline": 1}},
         "alarms": {"critical": 0, "major": 2, "minor": 0, "warning": 0, "total": 2, "drill": 0},
         "next_paper": _NEXT_PAPER}


class KindCount(BaseModel):
    online: int = Field(ge=0)
    offline: int = Field(ge=0)


class AlarmCount(BaseModel):
    critical: int = 0
    major: int = 0
    minor: int = 0
    warning: int = 0
    total: int = 0
    drill: int = Field(default=0, description="of the total, alarms raised by a drill")


class ReadinessBrief(BaseModel):
    go: bool | None = Field(description="go/no-go at T−30 min; null until the rules engine has decided")
    detail: str = ""
    at: datetime | None = None


class NextPaper(BaseModel):
    id: str
    subject: str
    start: datetime
    end: datetime
    in_session: bool
    readiness: ReadinessBrief


class SiteBase(BaseModel):
    id: str
    name: str
    type: Literal["formal", "backup"]


class SitePublic(SiteBase):
    """A site with its roll-up: red (critical alarm or no-go), amber (other alarms, devices offline), green."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SITE]})

    status: Colour
    reasons: list[str] = Field(description="why the status is not green")
    devices: dict[str, KindCount] = Field(description="online and offline devices per kind")
    alarms: AlarmCount
    next_paper: NextPaper | None


class RoomPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "R01", "site": "S01", "name": "第1考场", "type": "exam", "devices_online": 3, "devices_offline": 0}]})

    id: str
    site: str
    name: str
    type: Literal["exam", "entrance", "storage", "rest"]
    devices_online: int
    devices_offline: int


class SiteDetail(SitePublic):
    rooms: list[RoomPublic]


class DevicePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "S01-R01-JAM1", "kind": "jammer", "site": "S01", "room": "R01", "online": True,
         "last_seen": "2026-06-07T08:59:55+08:00", "clock_skew_ms": 120, "status_message": "online"}]})

    id: str
    kind: str
    site: str
    room: str
    online: bool
    last_seen: datetime | None = Field(description="time of the last telemetry (device clock)")
    clock_skew_ms: int | None = Field(description="receive time − device time of the last telemetry, ms")
    status_message: Literal["online", "offline"] | None = Field(description="the last retained status message")


class DeviceDetail(DevicePublic):
    latest: dict[str, Any] | None = Field(description="the last telemetry point's fields")


class RoomDetail(RoomPublic):
    devices: list[DevicePublic]
