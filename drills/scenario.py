"""Drill scenario files: a timeline of faults, validated against the inventory and timetable.

A scenario anchors on one paper of the timetable; every fault's ``at`` is an offset from that
paper's start (``-40m`` is during the entry surge, ``30m`` half an hour into the paper) and
``for`` is how long it lasts, in simulated time. The drill runs from ``warmup`` before the first
fault to ``tail`` after the last one ends, so that both the fault and its recovery are seen.
See config/scenarios/ for one scenario per device kind and a full exam morning.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from examwatch import datafile
from examwatch.alarm import Severity
from examwatch.bands import Band
from examwatch.inventory import DetectorForm, Inventory
from examwatch.kinds import Kind
from examwatch.kinds._base import DeviceId
from examwatch.timetable import JAMMER_LEAD, Timetable

_DURATION = re.compile(r"^([+-])?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_offset(value: Any) -> Any:
    """``"-1h30m"``, ``"5m"``, ``"+90s"`` → timedelta; anything else is left for pydantic to refuse."""
    if not isinstance(value, str):
        return value
    m = _DURATION.match(value.strip())
    if m is None or not any(m.groups()[1:]):
        raise ValueError(f"{value!r} is not a duration such as 5m, -1h30m or 90s")
    sign = -1 if m.group(1) == "-" else 1
    h, mins, s = (int(g or 0) for g in m.groups()[1:])
    return sign * timedelta(hours=h, minutes=mins, seconds=s)


Offset = Annotated[timedelta, BeforeValidator(parse_offset)]
Length = Annotated[timedelta, BeforeValidator(parse_offset), Field(gt=timedelta(0))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Expect(_Strict):
    """The alarm the backend should raise: its rule name and severity."""

    rule: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    severity: Severity


def _inventory(info: ValidationInfo) -> Inventory | None:
    return (info.context or {}).get("inventory")


class _Fault(_Strict):
    at: Offset = Field(description="start, as an offset from the anchor paper's start")
    duration: Length = Field(alias="for", description="how long the fault lasts")
    expect: Expect | None = Field(default=None, description="the alarm expected (default: per fault type)")

    #: the device kind this fault applies to (None: any kind, or a site)
    device_kind: ClassVar[Kind | None] = None
    default_expect: ClassVar[Expect]

    def expected(self, kind: str | None = None) -> Expect:
        """The alarm expected for this fault on a device of ``kind`` (the names in config/rules/)."""
        return self.expect or self.default_for(kind)

    def default_for(self, kind: str | None) -> Expect:
        return self.default_expect

    @property
    def kind_name(self) -> str:
        return str(self.model_fields["type"].default)


class _DeviceFault(_Fault):
    device: DeviceId

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str, info: ValidationInfo) -> str:
        inv = _inventory(info)
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
        inv = _inventory(info)
        if inv is not None and site not in {s.id for s in inv.sites}:
            raise ValueError(f"site {site} is not in the inventory")
        return site


class MainsLost(_DeviceFault):
    """Storage-room mains lost: 0 V, the UPS takes over and drains."""

    type: Literal["mains_lost"] = "mains_lost"
    device_kind = Kind.POWER
    default_expect = Expect(rule="power_mains_lost", severity=Severity.CRITICAL)


class BandDown(_DeviceFault):
    """One band of a jammer falls to ``dbm`` while the others stay up (a failed amplifier)."""

    type: Literal["band_down"] = "band_down"
    band: Band = Band.N78
    dbm: float = Field(default=0.0, ge=-60, le=20, description="the band's RF output during the fault")
    device_kind = Kind.JAMMER
    default_expect = Expect(rule="jammer_shielding", severity=Severity.CRITICAL)

    @field_validator("band")
    @classmethod
    def _covered(cls, band: Band, info: ValidationInfo) -> Band:
        inv, device = _inventory(info), info.data.get("device")
        if inv is not None and device in inv.device_specs and band not in inv.device_specs[device].bands:
            raise ValueError(f"{device} does not cover band {band.value}")
        return band

    @model_validator(mode="after")
    def _during_paper(self, info: ValidationInfo) -> BandDown:
        length = (info.context or {}).get("paper_length")
        if length is not None and not (self.at >= -JAMMER_LEAD and self.at + self.duration <= length):
            raise ValueError("a band_down fault must lie while jammers are required (from -15m to the paper's end)")
        return self


class Offline(_DeviceFault):
    """The device goes offline: silence, and its status offline (its Last Will, or the gateway says so)."""

    type: Literal["offline"] = "offline"
    default_expect = Expect(rule="device_offline", severity=Severity.MAJOR)

    def default_for(self, kind: str | None) -> Expect:
        if kind is None:
            return self.default_expect
        return Expect(rule=f"{kind}_offline", severity=Severity.CRITICAL if kind == Kind.POWER else Severity.MAJOR)


class Tamper(_DeviceFault):
    """A camera reports tamper (occluded, moved, defocused), with an alert event and its recovery."""

    type: Literal["tamper"] = "tamper"
    device_kind = Kind.CAMERA
    default_expect = Expect(rule="camera_tamper", severity=Severity.MAJOR)


class FaceMatchSurge(_DeviceFault):
    """Face-match failures at one gate rise to ``per_minute`` (impostors, a bad candidate database)."""

    type: Literal["face_match_surge"] = "face_match_surge"
    per_minute: float = Field(default=12.0, gt=0, le=600)
    device_kind = Kind.GATE
    default_expect = Expect(rule="gate_face_mismatch_surge", severity=Severity.MAJOR)


class BatteryFlat(_DeviceFault):
    """A handheld detector's battery runs flat within two minutes, and is swapped when the fault ends."""

    type: Literal["battery_flat"] = "battery_flat"
    device_kind = Kind.DETECTOR
    default_expect = Expect(rule="detector_battery_low", severity=Severity.MINOR)

    @field_validator("device")
    @classmethod
    def _handheld(cls, device: str, info: ValidationInfo) -> str:
        inv = _inventory(info)
        spec = inv.device_specs.get(device) if inv is not None else None
        if spec is not None and spec.form is not DetectorForm.HANDHELD:
            raise ValueError(f"{device} is a walk-through detector on mains; battery_flat needs a handheld")
        return device


class NetworkCut(_SiteFault):
    """A whole site's network is cut: every device there falls silent."""

    type: Literal["network_cut"] = "network_cut"
    default_expect = Expect(rule="site_silent", severity=Severity.CRITICAL)


class ClockDrift(_DeviceFault):
    """The device's clock is ``offset`` off (positive: ahead) for the fault's length."""

    type: Literal["clock_drift"] = "clock_drift"
    offset: Offset = Field(description="how far the clock is off, e.g. +3m")
    default_expect = Expect(rule="clock_offset", severity=Severity.WARNING)

    def default_for(self, kind: str | None) -> Expect:
        return self.default_expect if kind is None else Expect(rule=f"{kind}_clock", severity=Severity.WARNING)

    @field_validator("offset")
    @classmethod
    def _big_enough(cls, offset: timedelta) -> timedelta:
        if abs(offset) < timedelta(seconds=30):
            raise ValueError("a drift under 30 s is lost in a compressed drill's timing; use minutes")
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
    default_expect = Expect(rule="payload_rejected", severity=Severity.WARNING)


class RogueDevice(_SiteFault):
    """A device id the inventory lacks publishes through the site's gateway (a rogue or misconfigured unit)."""

    type: Literal["rogue_device"] = "rogue_device"
    device: DeviceId
    kind: Kind = Kind.CAMERA
    default_expect = Expect(rule="unknown_device", severity=Severity.MAJOR)

    @field_validator("device")
    @classmethod
    def _unknown(cls, device: str, info: ValidationInfo) -> str:
        inv = _inventory(info)
        if inv is not None and device in inv.device_specs:
            raise ValueError(f"{device} is in the inventory; a rogue device id must not be")
        return device


Fault = Annotated[
    MainsLost | BandDown | Offline | Tamper | FaceMatchSurge | BatteryFlat | NetworkCut | ClockDrift | Malformed
    | RogueDevice,
    Field(discriminator="type"),
]
FAULT_TYPES: tuple[type[_Fault], ...] = (
    MainsLost, BandDown, Offline, Tamper, FaceMatchSurge, BatteryFlat, NetworkCut, ClockDrift, Malformed, RogueDevice,
)


class Scenario(_Strict):
    """A drill: which paper it is anchored on, its report cadence, and its timeline of faults."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    title: str = Field(min_length=1, max_length=120)
    description: str = ""
    paper: str | None = Field(default=None, validate_default=True,
                              description="anchor paper id (default: the timetable's first)")
    interval: int = Field(default=30, ge=1, le=600, description="simulated seconds between a device's reports")
    warmup: Length = Field(default=timedelta(minutes=10), description="normal traffic before the first fault")
    tail: Length = Field(default=timedelta(minutes=10), description="normal traffic after the last fault")
    faults: tuple[Fault, ...] = Field(min_length=1)

    @field_validator("paper")
    @classmethod
    def _known_paper(cls, paper: str | None, info: ValidationInfo) -> str | None:
        timetable: Timetable | None = (info.context or {}).get("timetable")
        if timetable is None:
            return paper
        papers = {p.id: p for p in timetable.papers}
        if paper is not None and paper not in papers:
            raise ValueError(f"no paper {paper} in the timetable ({', '.join(papers)})")
        anchor = papers[paper] if paper else min(timetable.papers, key=lambda p: p.start)
        if info.context is not None:
            # Later fields (band_down's window) are checked against the anchor paper's length.
            info.context["paper_length"] = anchor.end - anchor.start
        return paper

    @property
    def first(self) -> timedelta:
        return min(f.at for f in self.faults) - self.warmup

    @property
    def last(self) -> timedelta:
        return max(f.at + f.duration for f in self.faults) + self.tail


def load(path: Path, inventory: Inventory, timetable: Timetable) -> Scenario:
    """Load and check a scenario against the inventory and timetable; DataFileError names line and field."""
    return datafile.load(path, Scenario, context={"inventory": inventory, "timetable": timetable})
