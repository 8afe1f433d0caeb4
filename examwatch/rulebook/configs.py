"""The rules files' schema: one pydantic config per rule type, shared by the rules engine and the API.

The rules engine (``rules/types/<type>.py``) gives each config its evaluation; the API validates
a rules file an admin uploads against the same models, so both refuse the same mistakes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from examwatch.alarm import Severity
from examwatch.inventory import RoomType
from examwatch.kinds import KINDS, Kind
from examwatch.timetable import READINESS_LEAD

#: The rules file for room- and site-wide rules (coverage, readiness, site silence) is site.yaml.
SITE = "site"
RuleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Scalar = bool | float | str


def has_field(kind: str, path: str) -> bool:
    """Whether ``kind``'s telemetry has the field that ``path`` (``rf_dbm.n78`` → ``rf_dbm``) names."""
    head = path.partition(".")[0]
    return head in KINDS[kind].telemetry.model_fields


class RuleConfig(BaseModel):
    """Fields every rule has. ``for`` (``for_s``) is how long the condition must hold before the
    alarm goes from pending to firing; 0 fires at once."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    #: the rules files (device kinds, or ``site``) this type may appear in
    FILES: ClassVar[frozenset[str]] = frozenset(KINDS)

    name: RuleName = Field(description="unique across all rules files; the alarm's rule tag")
    severity: Severity = Severity.MAJOR
    for_s: float = Field(default=0, ge=0, le=86_400, alias="for", description="pending duration, seconds")
    description: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _fits_file(self, info: ValidationInfo) -> Any:
        kind = (info.context or {}).get("kind")
        if kind is not None:
            if kind not in self.FILES:
                allowed = ", ".join(sorted(self.FILES))
                raise ValueError(
                    f"a {getattr(self, 'type', '?')} rule belongs in {allowed} rules files, not {kind}"
                )
            self.check_kind(kind)
        return self

    def check_kind(self, kind: str) -> None:
        """Raise ValueError when this rule cannot apply to ``kind`` (e.g. a field it lacks)."""


class DeviceScoped(RuleConfig):
    """A rule that judges devices may be limited to the rooms of some types (``rooms: [storage]``).

    The paper storage room (保密室) is watched at every hour while exam-room cameras matter during
    papers: two rules of one kind, each with its rooms, say so without a second notion of time."""

    rooms: tuple[RoomType, ...] = Field(
        default=(), description="only devices in rooms of these types (exam, entrance, storage, rest); empty: all"
    )

    @model_validator(mode="after")
    def _rooms_once(self) -> Self:
        if len(set(self.rooms)) != len(self.rooms):
            raise ValueError("rooms lists a room type twice")
        return self

    def covers(self, room_type: RoomType) -> bool:
        """Whether a device in a room of ``room_type`` is this rule's to judge."""
        return not self.rooms or room_type in self.rooms


class TimeEdges(RuleConfig):
    """How a rule whose requirement depends on the timetable judges around its edges.

    A report is evidence for a window (a paper, or the jammers' window) only if it was made at
    least ``settle_s`` after the window started and ``settle_s`` before it ends, by the device's
    clock and by the engine's: a jammer switched on at T−15 by its own clock may be a second or two
    off, and a report made just before the edge but received after it says nothing about the window.
    """

    settle_s: float = Field(
        default=2.0, ge=0, le=600,
        description="reports within this many seconds of a window's start or end are not judged (s)",
    )


class Condition(BaseModel):
    """Exactly one of ``above`` (>), ``below`` (<) or ``equals`` (==)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    above: float | None = None
    below: float | None = None
    equals: Scalar | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if sum(v is not None for v in (self.above, self.below, self.equals)) != 1:
            raise ValueError("give exactly one of above, below or equals")
        return self

    def holds(self, value: Any) -> bool:
        if self.equals is not None:
            return bool(value == self.equals)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.above is not None:
            return value > self.above
        return self.below is not None and value < self.below

    def describe(self) -> str:
        if self.equals is not None:
            return f"= {self.equals}"
        return f"> {self.above}" if self.above is not None else f"< {self.below}"


class Level(Condition):
    severity: Severity


class ThresholdConfig(DeviceScoped, TimeEdges):
    type: Literal["threshold"]
    field: str = Field(
        pattern=r"^[a-z_0-9]+(\.[a-z0-9_]+)?$", description="telemetry field, e.g. mains_v or rf_dbm.n78"
    )
    levels: tuple[Level, ...] = Field(min_length=1)
    clear: Condition | None = Field(default=None, description="clears only when this holds (hysteresis)")
    during: Literal["always", "paper", "jammer_window"] = "always"

    def check_kind(self, kind: str) -> None:
        if not has_field(kind, self.field):
            raise ValueError(f"a {kind} telemetry message has no field {self.field.partition('.')[0]!r}")


class AbsenceConfig(DeviceScoped):
    FILES: ClassVar[frozenset[str]] = frozenset({*KINDS, SITE})

    type: Literal["absence"]
    timeout_s: float = Field(gt=0, le=86_400, description="silence longer than this is offline")
    overrides: dict[str, float] = Field(
        default_factory=dict, description="device (or site) id → its own timeout_s"
    )

    def check_kind(self, kind: str) -> None:
        if kind == SITE and self.rooms:
            raise ValueError("rooms applies to device rules; a site's silence is the whole site's")


class RatioConfig(DeviceScoped):
    type: Literal["ratio"]
    numerator: str
    denominator: str
    window_s: float = Field(default=300, gt=0, le=86_400)
    above: float = Field(gt=0)
    clear_below: float | None = Field(default=None, gt=0, description="clears below this; default above")
    min_denominator: float = Field(
        default=1, ge=0, description="no verdict while the window's denominator is smaller ..."
    )
    min_numerator: float | None = Field(
        default=None, gt=0,
        description="... unless the window's numerator reaches this (a surge at low traffic); none: off",
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.clear_below is not None and self.clear_below > self.above:
            raise ValueError("clear_below must not exceed above")
        return self

    def check_kind(self, kind: str) -> None:
        for f in (self.numerator, self.denominator):
            if not has_field(kind, f):
                raise ValueError(f"a {kind} telemetry message has no field {f!r}")


class TimetableConfig(TimeEdges):
    type: Literal["timetable"]
    require: Literal["jammer_shielding", "camera_recording"]
    severity: Severity = Severity.CRITICAL
    floor_dbm: float = Field(default=20.0, ge=-60, le=47, description="lowest RF output per band, dBm")
    grace_s: float | None = Field(
        default=None, gt=0, le=3600,
        description="after a window starts, a device with no report for this long is 'not reporting'; "
        "none: its own report interval, plus half of it and at least 10 s",
    )

    def check_kind(self, kind: str) -> None:
        wanted = "jammer" if self.require == "jammer_shielding" else "camera"
        if kind != wanted:
            raise ValueError(f"require: {self.require} belongs in {wanted}.yaml, not {kind}.yaml")


class ReadinessConfig(RuleConfig):
    FILES: ClassVar[frozenset[str]] = frozenset({SITE})

    type: Literal["readiness"]
    lead_s: float = Field(
        default=READINESS_LEAD.total_seconds(), gt=0, le=86_400, description="before each paper"
    )
    min_battery_pct: float = Field(default=20, ge=0, le=100)
    min_mains_v: float = Field(default=187, ge=0, le=300, description="220 V − 15 %")
    optional: tuple[Kind, ...] = Field(default=(Kind.DETECTOR,), description="kinds that may never report")


class CoverageConfig(RuleConfig):
    FILES: ClassVar[frozenset[str]] = frozenset({SITE})

    type: Literal["coverage"]
    severity: Severity = Severity.CRITICAL
    kinds: tuple[Kind, ...] = Field(
        default=(Kind.JAMMER, Kind.CAMERA),
        min_length=1,
        description="each exam room needs at least one reporting device of each",
    )


class SkewConfig(DeviceScoped):
    type: Literal["skew"]
    severity: Severity = Severity.WARNING
    warn_s: float = Field(default=2.0, gt=0, le=86_400)
    clear_s: float | None = Field(default=None, gt=0, description="clears below this; default warn_s")
    confirm: int = Field(default=2, ge=1, le=10, description="reports in a row beyond warn_s before warning")

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.clear_s is not None and self.clear_s > self.warn_s:
            raise ValueError("clear_s must not exceed warn_s")
        return self


class IntakeConfig(RuleConfig):
    """Messages the intake refuses: ``payload`` (a known device's message that breaks its kind's
    contract) alarms on the device; ``unknown_device`` (a device id the inventory lacks, or one
    under another site's or kind's topics) alarms on the site whose topics it used."""

    FILES: ClassVar[frozenset[str]] = frozenset({*KINDS, SITE})

    type: Literal["intake"]
    refused: Literal["payload", "unknown_device"]
    severity: Severity = Severity.WARNING
    clear_after_s: float = Field(
        default=60, gt=0, le=86_400, description="clears when nothing was refused for this long"
    )
