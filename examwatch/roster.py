"""The duty roster's file: who is told of which alarm, at which level, and what the rule is called.

``config/roster.yaml`` lists people (phones, group-chat robots, active hours), routes (sites,
device kinds, severities → people at a level; level 1 is told first, the next level when nobody
acknowledges), labels (the words for each rule) and incidents (the rules that are one cause at
one site, and which of them imply which: one thread of texts instead of one per alarm). Drill
alarms follow only routes marked ``drill: true``, and real alarms never do. A bad file is refused
with ``file:line: field: reason``. The notifier routes alarms by it (``notify.roster``); the API
lets admins replace it.
"""

from __future__ import annotations

import re
from datetime import time as dtime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from examwatch import datafile
from examwatch.alarm import Severity
from examwatch.kinds import Kind

PersonId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9]{5,20}$", description="digits, optionally with a leading +")]
#: A group-chat robot as an Apprise URL: ``dingtalk://[secret@]token/``, ``wecombot://key``, or any other.
RobotUrl = Annotated[str, Field(pattern=r"^[a-z][a-z0-9+]{1,15}://\S+$", max_length=500,
                                description="Apprise URL of a group-chat robot (dingtalk://…, wecombot://…)")]
RuleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
SEVERITIES = tuple(s.value for s in Severity)
#: What a route's ``kinds`` may name: device kinds, and the room and site subjects of room/site rules.
SUBJECT_KINDS = (*tuple(k.value for k in Kind), "room", "site")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hours(_Strict):
    """A daily window ``HH:MM-HH:MM`` in the notifier's time zone; it may cross midnight."""

    start: dtime
    end: dtime | None  # None: until midnight (24:00)

    def covers(self, t: dtime) -> bool:
        if self.end is None:
            return t >= self.start
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


def _hours(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    m = _HOURS.match(value.strip())
    if m is None:
        raise ValueError(f"active hours must look like 08:00-20:00, not {value!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h2 == 24 and m2 != 0:
        raise ValueError(f"{value!r}: 24:00 is the latest end")
    return {"start": dtime(h1, m1), "end": None if h2 == 24 else dtime(h2, m2)}


class Person(_Strict):
    """Someone on duty, with phones, or a duty group chat with its robot(s) (``robots``), or both."""

    id: PersonId
    name: str = Field(min_length=1, max_length=32)
    phones: tuple[Phone, ...] = Field(default=())
    robots: tuple[RobotUrl, ...] = Field(default=(), description="group-chat robots told what the phones are")
    active_hours: tuple[Hours, ...] = Field(default=(), description="empty: always on duty")

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if not self.phones and not self.robots:
            raise ValueError("give phones, robots (a group chat), or both")
        return self

    @field_validator("active_hours", mode="before")
    @classmethod
    def _parse_hours(cls, v: Any) -> Any:
        return [_hours(x) for x in v] if isinstance(v, list | tuple) else v

    def on_duty(self, t: dtime) -> bool:
        return not self.active_hours or any(h.covers(t) for h in self.active_hours)


class Route(_Strict):
    name: str = Field(min_length=1, max_length=64)
    level: int = Field(ge=1, le=9, description="1 is told first; higher levels when nobody acknowledges")
    sites: tuple[str, ...] = Field(default=(), description="empty: every site")
    kinds: tuple[str, ...] = Field(default=(), description="device kinds, room or site; empty: all")
    severities: tuple[str, ...] = Field(default=("critical", "major"), min_length=1)
    drill: bool = Field(default=False, description="this route carries drill alarms only")
    people: tuple[PersonId, ...] = Field(min_length=1)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for k in v:
            if k not in SUBJECT_KINDS:
                raise ValueError(f"unknown kind {k!r}; one of {', '.join(SUBJECT_KINDS)}")
        return v

    @field_validator("severities")
    @classmethod
    def _known_severities(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            if s not in SEVERITIES:
                raise ValueError(f"unknown severity {s!r}; one of {', '.join(SEVERITIES)}")
        return v

    @field_validator("sites")
    @classmethod
    def _known_sites(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = (info.context or {}).get("sites")
        for s in v:
            if known is not None and s not in known:
                raise ValueError(f"site {s} is not in the inventory")
        return v

    def matches(self, site: str, kind: str, severity: str, drill: bool) -> bool:
        return (self.drill == drill and severity in self.severities
                and (not self.sites or site in self.sites) and (not self.kinds or kind in self.kinds))


class Label(_Strict):
    zh: str = Field(min_length=1, max_length=24)
    en: str = Field(min_length=1, max_length=40)


class Incident(_Strict):
    """Rules that are one cause at one site: alarms of them within ``window_s`` of the first are one
    incident, told as one thread (an alert, updates when it worsens, one all-clear).

    ``implies``: rule → rules it brings about (mains lost → on UPS); an implied alarm raised while
    its cause is active is inhibited, not texted.
    """

    rules: tuple[RuleName, ...] = Field(min_length=2)
    implies: dict[RuleName, tuple[RuleName, ...]] = Field(default_factory=dict)
    window_s: float = Field(default=1800.0, gt=0, le=86_400, description="later alarms join within this")

    @model_validator(mode="after")
    def _within(self) -> Self:
        for cause, effects in self.implies.items():
            outside = [r for r in (cause, *effects) if r not in self.rules]
            if outside:
                raise ValueError(f"implies names rules not in this incident's rules: {', '.join(outside)}")
        return self

    def implied(self, cause: str) -> set[str]:
        """Every rule ``cause`` implies, directly or through others."""
        out: set[str] = set()
        todo = list(self.implies.get(cause, ()))
        while todo:
            rule = todo.pop()
            if rule not in out and rule != cause:
                out.add(rule)
                todo.extend(self.implies.get(rule, ()))
        return out

    def depth(self, rule: str) -> int:
        """How many rules imply ``rule`` (0 for a first cause): causes are applied before their effects."""
        return sum(rule in self.implied(other) for other in self.rules)


class Roster(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{
        "people": [{"id": "chief-S01", "name": "S01主考", "phones": ["13900000001"]},
                   {"id": "center-day", "name": "指挥中心白班", "phones": ["13800000001"],
                    "active_hours": ["08:00-20:00"]}],
        "routes": [{"name": "chief-S01", "level": 1, "sites": ["S01"], "people": ["chief-S01"]},
                   {"name": "center", "level": 2, "people": ["center-day"]}],
        "labels": {"power_mains_lost": {"zh": "保密室市电中断", "en": "storage-room mains lost"}},
    }]})

    people: tuple[Person, ...] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)
    labels: dict[str, Label] = Field(default_factory=dict, description="rule name → words used in messages")
    incidents: dict[str, Incident] = Field(default_factory=dict, description="cause name → its rules")

    @model_validator(mode="after")
    def _people_known(self) -> Self:
        ids = [p.id for p in self.people]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"person ids repeated: {', '.join(dup)}")
        for r in self.routes:
            missing = [p for p in r.people if p not in ids]
            if missing:
                raise ValueError(f"route {r.name} names people not listed: {', '.join(missing)}")
        seen: dict[str, str] = {}
        for name, incident in self.incidents.items():
            for rule in incident.rules:
                if rule in seen:
                    raise ValueError(f"rule {rule} is in incidents {seen[rule]} and {name}; one cause per rule")
                seen[rule] = name
        return self

    def incident_of(self, rule: str) -> Incident | None:
        """The incident (cause) ``rule`` belongs to, if any."""
        return next((i for i in self.incidents.values() if rule in i.rules), None)

    @cached_property
    def by_id(self) -> dict[str, Person]:
        """People by id (made once: the notifier asks for every recipient of every alarm)."""
        return {p.id: p for p in self.people}


def load(path: Path, sites: set[str] | None = None) -> Roster:
    """Read and check a roster file; ``sites`` (the inventory's) refuses routes naming other sites."""
    return datafile.load(path, Roster, context={"sites": sites} if sites is not None else None)
