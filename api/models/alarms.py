"""Alarms and their transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from examwatch.alarm import Severity, SubjectType
from examwatch.alarm import State as AlarmState

_ALARM: dict[str, Any] = {"id": 42, "rule": "jammer_shielding", "subject": "S01-R03-JAM1", "subject_type": "device",
          "site": "S01", "kind": "jammer", "severity": "critical", "state": "firing", "drill": False,
          "message": "band n78 at 12 dBm, below the 20 dBm floor", "opened": "2026-06-07T08:46:10+08:00",
          "updated": "2026-06-07T08:46:10+08:00", "seq": 1}


class AlarmBase(BaseModel):
    rule: str
    subject: str = Field(description="device id, room as S01-R01, or site id")
    subject_type: SubjectType
    site: str
    severity: Severity
    state: AlarmState
    drill: bool = Field(description="raised by drill traffic")
    message: str


class AlarmPublic(AlarmBase):
    model_config = ConfigDict(json_schema_extra={"examples": [_ALARM]})

    id: int
    kind: str | None = Field(description="the device's kind, for device alarms")
    opened: datetime
    updated: datetime
    seq: int = Field(description="transitions so far")


class TransitionPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 77, "alarm_id": 42, "seq": 2, "state": "acknowledged", "severity": "critical",
        "at": "2026-06-07T08:47:02+08:00", "by": "duty officer 王", "comment": "technician sent to R03",
        "message": "band n78 at 12 dBm, below the 20 dBm floor"}]})

    id: int = Field(description="monotonically increasing over all alarms: the event stream's event id")
    alarm_id: int
    seq: int
    state: AlarmState
    severity: Severity
    at: datetime
    by: str = Field(description="'rules' for the engine, else the token holder")
    comment: str
    message: str


class AlarmDetail(AlarmPublic):
    transitions: list[TransitionPublic] = Field(description="the full history, oldest first")


class AlarmAction(BaseModel):
    """What an operator says when acknowledging, resolving or commenting."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"comment": "technician sent to R03"}]})

    comment: str = Field(default="", max_length=1000)


class AlarmComment(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"comment": "jammer replaced"}]})

    comment: str = Field(min_length=1, max_length=1000)
