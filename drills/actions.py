"""What people do during a drill, and what the scenario expects beyond its faults.

- ``ack``: a person acknowledges the alarm a fault raised, through the API with a token of
  their ``role`` (``via: api``, the default) or by replying to the alert SMS from their phone
  (``via: sms``: ``1 <code>``, or ``2 <code> <comment>`` with a comment);
- ``resolve``: a person closes it by hand through the API;
- ``silence``: a person mutes notifications (site, room, device, rule) for a while, through the API;
- ``expect``: an alarm the scenario expects that no fault causes (rule, subject, severity, by when);
- ``expect_quiet``: a span of time and a set of subjects on which no alarm at all may fire.

People are the roster's (``notify.roster``); an action naming someone else, a role that does not
exist, or a fault that raises no such alarm is refused with the file's line before the drill starts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from drills.fault_types import AnyFault, Length, RuleName, Strict, When, context
from examwatch.alarm import Severity
from examwatch.inventory import Inventory
from examwatch.roster import Roster
from examwatch.store.access import Role
from examwatch.timetable import Timetable


def fault_rules(fault: AnyFault, ctx: dict[str, Any]) -> list[str]:
    """The rules a fault is expected to raise: its ``expect``, or its type's default on its device
    at its hour (an exam-room camera outside a paper raises nothing)."""
    inventory: Inventory | None = ctx.get("inventory")
    timetable: Timetable | None = ctx.get("timetable")
    anchor: datetime | None = ctx.get("anchor")
    kind, room_type, in_paper = None, None, True
    device = getattr(fault, "device", None)
    if inventory is not None and device in inventory.devices:
        ref = inventory.devices[device]
        kind = ref.kind
        room_type = next(r.type for r in inventory.site(ref.site).rooms if r.id == ref.room)
        if timetable is not None and anchor is not None:
            start, end = anchor + fault.at, anchor + fault.at + fault.duration
            in_paper = any(p.start < end and start < p.end for p in timetable.for_site(ref.site))
    return [e.rule for e in fault.expected(kind, room_type, in_paper)]


class _Action(Strict):
    at: When = Field(description="when: an offset from the anchor paper's start, or HH:MM")
    by: str = Field(description="a person of the roster")
    comment: str = Field(default="", max_length=200)

    @field_validator("by")
    @classmethod
    def _on_roster(cls, by: str, info: ValidationInfo) -> str:
        roster: Roster | None = context(info).get("roster")
        if roster is not None and by not in roster.by_id:
            raise ValueError(f"{by} is not a person of the roster ({', '.join(sorted(roster.by_id)[:6])}, …)")
        return by


class _OnAlarm(_Action):
    fault: str = Field(description="the id of the fault whose alarm this acts on")
    rule: RuleName | None = Field(default=None, description="which of its alarms (default: its first expected)")
    role: Role = Field(default=Role.OPERATOR, alias="as", description="the API role the person acts with")

    @model_validator(mode="after")
    def _raised_by_a_fault(self, info: ValidationInfo) -> _OnAlarm:
        faults: dict[str, AnyFault] | None = context(info).get("faults")
        if faults is None:
            return self
        fault = faults.get(self.fault)
        if fault is None:
            raise ValueError(f"no fault {self.fault!r} (faults: {', '.join(faults)})")
        rules = fault_rules(fault, context(info))
        if not rules:
            raise ValueError(f"fault {self.fault!r} raises no alarm to {self.kind_name}")
        if self.rule is not None and self.rule not in rules:
            raise ValueError(f"fault {self.fault!r} raises {', '.join(rules)}, not {self.rule}")
        if self.at < fault.at:
            raise ValueError(f"{self.kind_name} before fault {self.fault!r} starts")
        return self

    @property
    def kind_name(self) -> str:
        return str(type(self).model_fields["type"].default)


class Ack(_OnAlarm):
    type: Literal["ack"] = "ack"
    via: Literal["api", "sms"] = Field(default="api", description="the API, or a reply to the alert SMS")


class Resolve(_OnAlarm):
    type: Literal["resolve"] = "resolve"


class SilenceAction(_Action):
    type: Literal["silence"] = "silence"
    duration: Length = Field(alias="for", description="how long it mutes")
    kind: Literal["silence", "maintenance"] = "silence"
    site: str | None = None
    room: str | None = Field(default=None, description="room id within the site (needs site)")
    device: str | None = None
    rule: RuleName | None = None
    role: Role = Field(default=Role.OPERATOR, alias="as")

    @model_validator(mode="after")
    def _matches_something(self, info: ValidationInfo) -> SilenceAction:
        if not (self.site or self.device or self.rule):
            raise ValueError("a silence needs at least one of site, device, rule")
        if self.room and not self.site:
            raise ValueError("room needs site")
        inv: Inventory | None = context(info).get("inventory")
        if inv is not None:
            if self.site and self.site not in {s.id for s in inv.sites}:
                raise ValueError(f"site {self.site} is not in the inventory")
            if self.device and self.device not in inv.devices:
                raise ValueError(f"device {self.device} is not in the inventory")
        return self


Action = Annotated[Ack | Resolve | SilenceAction, Field(discriminator="type")]


class ExpectAlarm(Strict):
    """An alarm expected without a fault: on ``subject``, from ``after`` to ``after + within``."""

    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    rule: RuleName
    severity: Severity
    subject: str = Field(description="device id, room as S01-R01, or site id")
    after: When = Field(description="it may fire from then")
    within: Length = Field(description="and must have fired by after + within")

    @field_validator("subject")
    @classmethod
    def _known_subject(cls, subject: str, info: ValidationInfo) -> str:
        inv: Inventory | None = context(info).get("inventory")
        if inv is not None and subject not in subjects(inv):
            raise ValueError(f"{subject} is no device, room (S01-R01) or site of the inventory")
        return subject


def subjects(inv: Inventory) -> set[str]:
    """Every alarm subject the inventory has: devices, rooms as ``S01-R01``, sites."""
    out = set(inv.devices)
    for s in inv.sites:
        out.add(s.id)
        out.update(f"{s.id}-{r.id}" for r in s.rooms)
    return out


class Quiet(Strict):
    """No alarm at all may fire on these subjects from ``from`` to ``to`` (every subject when none given)."""

    start: When = Field(alias="from")
    end: When = Field(alias="to")
    sites: tuple[str, ...] = Field(default=(), description="every subject at these sites")
    devices: tuple[str, ...] = ()
    why: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _sane(self, info: ValidationInfo) -> Quiet:
        if self.end <= self.start:
            raise ValueError("to must be after from")
        inv: Inventory | None = context(info).get("inventory")
        if inv is not None:
            unknown = [s for s in self.sites if s not in {x.id for x in inv.sites}]
            unknown += [d for d in self.devices if d not in inv.devices]
            if unknown:
                raise ValueError(f"not in the inventory: {', '.join(unknown)}")
        return self

    def covers(self, site: str, subject: str) -> bool:
        if not self.sites and not self.devices:
            return True
        return site in self.sites or subject in self.devices


class Deadlines(Strict):
    """How fast people must hear, in drill-clock seconds, and what a compressed clock may add.

    ``processing_s`` is wall time: every wall second the chain spends (MQTT hops, commits, the
    gateway) shows as ``speed`` seconds on a compressed clock, so each deadline is checked
    against itself plus ``processing_s × speed`` (at speed 1, half a second more).
    """

    notify: dict[Severity, Length] = Field(
        default_factory=lambda: {Severity.CRITICAL: timedelta(seconds=10), Severity.MAJOR: timedelta(seconds=60),
                                 Severity.MINOR: timedelta(minutes=5), Severity.WARNING: timedelta(minutes=5)},
        description="first SMS after the alarm fires (or rises to this severity)")
    all_clear: Length = Field(default=timedelta(seconds=60), description="all-clear SMS after the alarm resolves")
    processing_s: float = Field(default=0.5, ge=0, le=30, description="wall seconds of processing allowed")

    @field_validator("notify", mode="before")
    @classmethod
    def _complete(cls, value: Any) -> Any:
        if isinstance(value, dict):
            defaults = {"critical": "10s", "major": "60s", "minor": "5m", "warning": "5m"}
            return {**defaults, **value}
        return value
