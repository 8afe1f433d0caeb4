"""The faults an exam office rehearses, one pydantic model per scenario fault type.

Each type says which device (or site) it acts on, which alarms it is expected to raise (rule,
severity, how soon) and which others it may cause without being a false alarm (its
*consequences*: a network cut explains every alarm at its site; a mains loss, the UPS ones).
``expect`` and ``also`` in the scenario replace or extend those defaults. Defaults are the rule
names of ``config/rules/``; deadlines are in drill-clock seconds from the fault's start and
grow with the scenario's report ``interval`` (a fault is seen at the device's next report).

Validation needs the inventory and the timetable (pydantic context ``inventory``,
``timetable``, ``anchor``): a device that is not there, of the wrong kind, a band it does not
cover, a jammer fault outside the hours jammers are required, is refused with the file's line.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from drills.times import day_bounds, parse_offset, when
from examwatch.alarm import Severity
from examwatch.bands import Band
from examwatch.inventory import DetectorForm, Inventory, RoomType
from examwatch.kinds import Kind
from examwatch.kinds._base import DeviceId
from examwatch.timetable import JAMMER_LEAD, Timetable


def _when(value: Any, info: ValidationInfo) -> Any:
    return when(value, (info.context or {}).get("anchor"))


#: a moment of the drill: an offset from the anchor paper's start, or "HH:MM[:SS]" on its day
When = Annotated[timedelta, BeforeValidator(_when)]
Length = Annotated[timedelta, BeforeValidator(parse_offset), Field(gt=timedelta(0))]
RuleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Scope(StrEnum):
    """Which subjects a consequence may fall on, seen from the fault's device or site."""

    SUBJECT = "subject"  # the fault's own device (or site)
    ROOM = "room"        # the device's room (S01-R01) and the devices in it
    SITE = "site"        # the site, its rooms and every device there


class Expect(Strict):
    """An alarm the fault must raise: rule and severity, by when, on which subject."""

    rule: RuleName
    severity: Severity
    within: Length | None = Field(default=None, description="after the fault starts (default: per fault type)")
    subject: str | None = Field(default=None, description="default: the fault's device (its site for site faults)")
    clear: bool = Field(default=True, description="the alarm must clear once the fault ends")


def context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if info.context is not None else {}


def _absolute(info: ValidationInfo, offset: timedelta) -> datetime | None:
    anchor: datetime | None = context(info).get("anchor")
    return None if anchor is None else anchor + offset


class _Fault(Strict):
    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                           description="a name for actions to refer to (default: fault-<n>)")
    at: When = Field(description="start: an offset from the anchor paper's start, or HH:MM on its day")
    duration: Length = Field(alias="for", description="how long the fault lasts")
    expect: tuple[Expect, ...] | None = Field(default=None, description="the alarms expected (default: per type)")
    also: tuple[RuleName, ...] = Field(default=(), description="more rules it may cause on its site (not false)")

    #: the device kind this fault applies to (None: any kind, or a site)
    device_kind: ClassVar[Kind | None] = None
    #: consequences it may cause without a false alarm: (rule or "*", where)
    consequences: ClassVar[tuple[tuple[str, Scope], ...]] = ()
    #: how soon its alarm is due after the fault starts: ``detect_base`` + this many report intervals
    detect_intervals: ClassVar[float] = 1.0
    detect_base: ClassVar[timedelta] = timedelta(seconds=30)
    #: how soon its alarm must clear after the fault ends: this + two report intervals
    clear_base: ClassVar[timedelta] = timedelta(seconds=90)

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        """The alarms expected when the scenario does not say (``in_paper``: the fault overlaps a paper)."""
        return ()

    def expected(self, kind: str | None = None, room_type: RoomType | None = None,
                 in_paper: bool = True) -> tuple[Expect, ...]:
        return self.expect if self.expect is not None else self.defaults(kind, room_type, in_paper)

    @property
    def kind_name(self) -> str:
        return str(type(self).model_fields["type"].default)

    @model_validator(mode="after")
    def _on_the_day(self, info: ValidationInfo) -> _Fault:
        start = _absolute(info, self.at)
        if start is not None:
            first, last = day_bounds(context(info)["anchor"])
            if not (first <= start and start + self.duration <= last):
                raise ValueError(f"the fault runs {start:%Y-%m-%d %H:%M} to {start + self.duration:%H:%M}, "
                                 f"outside the drill's day {first:%Y-%m-%d}")
        return self


def _one(rule: str, severity: Severity) -> tuple[Expect, ...]:
    return (Expect(rule=rule, severity=severity),)


class _DeviceFault(_Fault):
    device: DeviceId

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str, info: ValidationInfo) -> str:
        inv: Inventory | None = context(info).get("inventory")
        if inv is None:
            return device
        spec = inv.device_specs.get(device)
        if spec is None:
            raise ValueError(f"device {device} is not in the inventory")
        if cls.device_kind is not None and spec.kind is not cls.device_kind:
            raise ValueError(f"{device} is a {spec.kind.value}; this fault needs a {cls.device_kind.value}")
        return device


class _SiteFault(_Fault):
    site: str

    @field_validator("site")
    @classmethod
    def _known_site(cls, site: str, info: ValidationInfo) -> str:
        inv: Inventory | None = context(info).get("inventory")
        if inv is not None and site not in {s.id for s in inv.sites}:
            raise ValueError(f"site {site} is not in the inventory")
        return site


def required_windows(timetable: Timetable, site: str) -> list[tuple[datetime, datetime]]:
    """When ``site``'s jammers must be on: from T-15 of each paper to its end, less its jammer_off windows."""
    out: list[tuple[datetime, datetime]] = []
    for p in timetable.for_site(site):
        begin = p.start - JAMMER_LEAD
        for w in sorted(p.jammer_off, key=lambda w: w.start):
            out.append((begin, w.start))
            begin = w.end
        out.append((begin, p.end))
    return [(a, b) for a, b in out if b > a]


class _JammerFault(_DeviceFault):
    """A jammer fault: judged only while jammers are required, so it must lie inside such a window."""

    device_kind = Kind.JAMMER
    consequences = (("room_coverage", Scope.ROOM),)

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("jammer_shielding", Severity.CRITICAL)

    @model_validator(mode="after")
    def _while_required(self, info: ValidationInfo) -> _JammerFault:
        start, tt, inv = _absolute(info, self.at), context(info).get("timetable"), context(info).get("inventory")
        if start is None or tt is None or inv is None or self.device not in inv.devices:
            return self
        end = start + self.duration
        windows = required_windows(tt, inv.devices[self.device].site)
        if not any(a <= start and end <= b for a, b in windows):
            hours = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in windows if a.date() == start.date())
            hours = hours or "none that day"
            raise ValueError(f"a {self.kind_name} fault must lie while jammers are required ({hours})")
        return self


class JammerOff(_JammerFault):
    """A jammer switched off (by hand, or its power) while jammers are required."""

    type: Literal["jammer_off"] = "jammer_off"


class JammerNotOn(_JammerFault):
    """A jammer that stays off when its requirement starts (T-15, or the end of the listening window)."""

    type: Literal["jammer_not_on"] = "jammer_not_on"
    # the engine waits for a fresh report after the edge (a grace of one interval), then judges
    detect_intervals = 2.0

    @model_validator(mode="after")
    def _at_an_edge(self, info: ValidationInfo) -> JammerNotOn:
        start, tt, inv = _absolute(info, self.at), context(info).get("timetable"), context(info).get("inventory")
        if start is None or tt is None or inv is None or self.device not in inv.devices:
            return self
        edges = [a for a, _ in required_windows(tt, inv.devices[self.device].site)]
        if start not in edges:
            day = ", ".join(f"{a:%H:%M}" for a in edges if a.date() == start.date())
            raise ValueError(f"jammer_not_on must start when jammers become required ({day or 'never that day'}), "
                             f"not {start:%H:%M:%S}")
        return self


class BandDown(_JammerFault):
    """One band of a jammer falls to ``dbm`` while the others stay up (a failed amplifier)."""

    type: Literal["band_down"] = "band_down"
    band: Band = Band.N78
    dbm: float = Field(default=0.0, ge=-60, le=20, description="the band's RF output during the fault")

    @field_validator("band")
    @classmethod
    def _covered(cls, band: Band, info: ValidationInfo) -> Band:
        inv, device = context(info).get("inventory"), info.data.get("device")
        if inv is not None and device in inv.device_specs and band not in inv.device_specs[device].bands:
            raise ValueError(f"{device} does not cover band {band.value}")
        return band


class MainsLost(_DeviceFault):
    """Storage-room mains lost: 0 V, the UPS takes over and drains at ``drain_pct_per_min``.

    Minutes left on the UPS are its charge divided by the drain rate, so at 2 %/min a full
    battery reports 50 minutes (UPS low) at once and 20 minutes (critical) after 30 minutes.
    """

    type: Literal["mains_lost"] = "mains_lost"
    drain_pct_per_min: float = Field(default=100 / 150, gt=0, le=100, description="UPS charge lost per minute")
    battery_pct: float = Field(default=100.0, gt=0, le=100, description="UPS charge when the mains goes")
    device_kind = Kind.POWER
    consequences = (("power_on_ups", Scope.SUBJECT), ("power_ups_low", Scope.SUBJECT))

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("power_mains_lost", Severity.CRITICAL)


class _CameraFault(_DeviceFault):
    """A camera fault. Exam-room cameras are judged while a paper is on; the storage room's at every hour."""

    device_kind = Kind.CAMERA
    rule: ClassVar[str]
    consequences = (("room_recording", Scope.ROOM),)

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        if room_type is RoomType.STORAGE:
            return _one(f"vault_{self.rule}", Severity.MAJOR)  # config/rules/camera.yaml: watched at every hour
        if room_type is RoomType.EXAM and not in_paper:
            return ()
        return _one(self.rule, Severity.MAJOR)


class Tamper(_CameraFault):
    """A camera reports tamper (occluded, moved, defocused), with an alert event and its recovery."""

    type: Literal["tamper"] = "tamper"
    rule = "camera_tamper"


class VideoLoss(_CameraFault):
    """A camera loses its picture (``video_loss``), with an alert event and its recovery."""

    type: Literal["video_loss"] = "video_loss"
    rule = "camera_video_loss"


class RecordingStopped(_CameraFault):
    """A camera stops recording (its NVR stops writing): ``recording`` false."""

    type: Literal["recording_stopped"] = "recording_stopped"
    rule = "camera_not_recording"


class FaceMatchSurge(_DeviceFault):
    """Face-match failures at one gate reach ``share`` of its passes, at ``passes_per_min`` passes.

    A low pass rate (the thin last minutes before entry closes) is the hard case: a ratio over
    few passes. The gate's own arrivals are replaced by this rate while the fault lasts.
    """

    type: Literal["face_match_surge"] = "face_match_surge"
    share: float = Field(default=0.3, gt=0, le=1, description="face-match failures as a share of passes")
    passes_per_min: float = Field(default=12.0, gt=0, le=600, description="candidates through the gate per minute")
    device_kind = Kind.GATE
    detect_base = timedelta(minutes=5)  # the rule's window
    clear_base = timedelta(minutes=6)

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("gate_face_mismatch_surge", Severity.MAJOR)


class Offline(_DeviceFault):
    """The device goes offline: silence, and its status offline (its Last Will, or the gateway says so)."""

    type: Literal["offline"] = "offline"
    detect_base = timedelta(seconds=90)  # the absence timeout (60 s) and a margin
    consequences = (("room_coverage", Scope.ROOM), ("jammer_shielding", Scope.SUBJECT),
                    ("room_recording", Scope.ROOM))

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        if kind is None:
            return ()
        return _one(f"{kind}_offline", Severity.CRITICAL if kind == Kind.POWER else Severity.MAJOR)


class BatteryFlat(_DeviceFault):
    """A handheld detector's battery runs flat within two minutes, and is swapped when the fault ends."""

    type: Literal["battery_flat"] = "battery_flat"
    device_kind = Kind.DETECTOR
    detect_base = timedelta(minutes=2)

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("detector_battery_low", Severity.MINOR)

    @field_validator("device")
    @classmethod
    def _handheld(cls, device: str, info: ValidationInfo) -> str:
        inv: Inventory | None = context(info).get("inventory")
        spec = inv.device_specs.get(device) if inv is not None else None
        if spec is not None and spec.form is not DetectorForm.HANDHELD:
            raise ValueError(f"{device} is a walk-through detector on mains; battery_flat needs a handheld")
        return device


class NetworkCut(_SiteFault):
    """A whole site's network is cut (a backup site's too): every device there falls silent.

    Its consequences are every alarm at the site: the silence explains its devices' absence,
    its rooms' coverage and its jammers' missing reports.
    """

    type: Literal["network_cut"] = "network_cut"
    consequences = (("*", Scope.SITE),)

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("site_silent", Severity.CRITICAL)


class ClockSkew(_DeviceFault):
    """The device's clock is ``offset`` off (positive: ahead) for the fault's length.

    ``offset`` is the error as it would be on exam day; under a compressed drill clock the
    device stamps ``offset × speed``, because the rules judge skew in wall terms there
    (observed skew ÷ clock speed: see rules/types/skew.py).
    """

    type: Literal["clock_skew"] = "clock_skew"
    offset: Annotated[timedelta, BeforeValidator(parse_offset)] = Field(description="how far off, e.g. +10s")

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return () if kind is None else _one(f"{kind}_clock", Severity.WARNING)

    @field_validator("offset")
    @classmethod
    def _big_enough(cls, offset: timedelta) -> timedelta:
        if abs(offset) < timedelta(seconds=5):
            raise ValueError("an offset under 5 s is too close to the rule's 2 s to rehearse; use 5s or more")
        return offset


class MalformedStyle(StrEnum):
    TRUNCATED = "truncated"    # JSON cut short: not_json
    WRONG_TYPE = "wrong_type"  # a number sent as text: schema
    NAN = "nan"                # NaN in a reading: non_finite
    BINARY = "binary"          # bytes that are not UTF-8: not_utf8


class Malformed(_DeviceFault):
    """A firmware bug: every telemetry payload is malformed in the given way."""

    type: Literal["malformed"] = "malformed"
    style: MalformedStyle = MalformedStyle.TRUNCATED
    consequences = (("*_offline", Scope.SUBJECT), ("room_coverage", Scope.ROOM), ("jammer_shielding", Scope.SUBJECT))

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("payload_rejected", Severity.WARNING)


class RogueDevice(_SiteFault):
    """A device id the inventory lacks publishes through the site's gateway (a rogue or misconfigured unit)."""

    type: Literal["rogue_device"] = "rogue_device"
    device: DeviceId
    kind: Kind = Kind.CAMERA

    def defaults(self, kind: str | None, room_type: RoomType | None, in_paper: bool) -> tuple[Expect, ...]:
        return _one("unknown_device", Severity.MAJOR)

    @field_validator("device")
    @classmethod
    def _unknown(cls, device: str, info: ValidationInfo) -> str:
        inv: Inventory | None = context(info).get("inventory")
        if inv is not None and device in inv.device_specs:
            raise ValueError(f"{device} is in the inventory; a rogue device id must not be")
        return device


Fault = Annotated[
    JammerOff | JammerNotOn | BandDown | MainsLost | Tamper | VideoLoss | RecordingStopped | FaceMatchSurge
    | Offline | BatteryFlat | NetworkCut | ClockSkew | Malformed | RogueDevice,
    Field(discriminator="type"),
]
FAULT_TYPES: tuple[type[_Fault], ...] = (
    JammerOff, JammerNotOn, BandDown, MainsLost, Tamper, VideoLoss, RecordingStopped, FaceMatchSurge, Offline,
    BatteryFlat, NetworkCut, ClockSkew, Malformed, RogueDevice,
)
AnyFault = _Fault
