"""The alarm contract: severities and their order, states, subjects, and the transition message.

Defined once here and used by everything that touches an alarm: the rules engine raises them,
the notifier texts them, the API shows and acknowledges them, drills score them, the dashboards
query them. The store keeps them (``examwatch.store.models``) and moves them through their
lifecycle (``examwatch.store.lifecycle``).

An alarm is about one subject (a device, a room or a site) and one rule. It goes
pending → firing → acknowledged → resolved; every step is a transition with who, when and why.
Each transition is published, retained, as an :class:`AlarmTransition` on
``exam/v1/_alarm/{site}/{rule}/{subject}``; ``(alarm_id, seq)`` identifies it, so a consumer
tells a repeat (after a crash, a broker restart) from news.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from examwatch import topics
from examwatch.inventory import DeviceRef

#: who the rules engine is in an alarm's history
ENGINE = "rules"
#: where transitions are published (retained): ``exam/v1/_alarm/{site}/{rule}/{subject}``
ALARM_TOPICS = f"{topics.ROOT}/_alarm/#"
#: the version of :class:`AlarmTransition` this code writes
VERSION = 1


class Severity(StrEnum):
    """How bad an alarm is, from worst to least; ``rank`` orders them (critical 4 … warning 1)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 4 … warning 1."""
        return _RANK[self]


_RANK = {Severity.CRITICAL: 4, Severity.MAJOR: 3, Severity.MINOR: 2, Severity.WARNING: 1}


class State(StrEnum):
    """Where an alarm is in its lifecycle."""

    PENDING = "pending"  # the condition holds, not yet for the rule's ``for``
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"  # someone owns it; reminders and escalation stop
    RESOLVED = "resolved"  # the condition cleared, or someone closed it: the record is closed

    @property
    def active(self) -> bool:
        return self is not State.RESOLVED


class SubjectType(StrEnum):
    DEVICE = "device"
    ROOM = "room"
    SITE = "site"


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alarm is about: a device id, a room as ``S01-R01``, or a site id."""

    id: str
    type: SubjectType
    site: str

    @classmethod
    def device(cls, ref: DeviceRef) -> Subject:
        return cls(ref.id, SubjectType.DEVICE, ref.site)

    @classmethod
    def room(cls, site: str, room: str) -> Subject:
        return cls(f"{site}-{room}", SubjectType.ROOM, site)

    @classmethod
    def of_site(cls, site: str) -> Subject:
        return cls(site, SubjectType.SITE, site)


def alarm_topic(site: str, rule: str, subject: str) -> str:
    """The retained topic of an alarm's transitions."""
    return f"{topics.ROOT}/_alarm/{site}/{rule}/{subject}"


def transition_id(alarm_id: int, seq: int) -> str:
    """``alarm_id.seq``: a transition's id, the same in the store, on MQTT and in the notifier's outbox."""
    return f"{alarm_id}.{seq}"


class AlarmTransition(BaseModel):
    """One step of an alarm, as published on :func:`alarm_topic` (JSON, UTF-8).

    Consumers ignore fields they do not know (a newer ``version`` may add some) and apply a
    transition only if its ``seq`` is newer than the last they applied for that alarm.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal[1] = Field(default=1, description="of this message's schema (VERSION)")
    alarm_id: int = Field(ge=1)
    seq: int = Field(ge=1, description="1 for the opening transition, then +1 per step")
    rule: str = Field(min_length=1, max_length=64)
    severity: Severity
    site: str = Field(min_length=1, max_length=32)
    subject: str = Field(min_length=1, max_length=64)
    subject_type: SubjectType
    state: State
    message: str = Field(default="", description="what the rule saw, in the rule's words")
    drill: bool = Field(default=False, description="raised by drill traffic: routed to drill recipients only")
    at_ns: int = Field(description="when it happened, ns since the Unix epoch, on the engine's clock")
    by: str = Field(default=ENGINE, description="'rules' for the engine, else who acted")
    comment: str = ""

    @property
    def transition_id(self) -> str:
        return transition_id(self.alarm_id, self.seq)

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def topic(self) -> str:
        return alarm_topic(self.site, self.rule, self.subject)

    def payload(self) -> bytes:
        """The message body; ``transition_id`` and ``active`` are included for readers of the raw JSON."""
        data = self.model_dump(mode="json")
        data["transition_id"] = self.transition_id
        data["active"] = self.active
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


__all__ = [
    "ALARM_TOPICS",
    "ENGINE",
    "VERSION",
    "AlarmTransition",
    "Severity",
    "State",
    "Subject",
    "SubjectType",
    "alarm_topic",
    "transition_id",
]
