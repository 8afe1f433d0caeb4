"""The inventory: sites, rooms and devices of a district, loaded from a YAML data file.

Every point is tagged from here (site, room, kind, device), and a message from a device that is
not here is a security event, not data. See ``config/district.yaml`` for the sample district.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from examwatch import datafile
from examwatch.bands import Band
from examwatch.compact import DeviceRef, tags
from examwatch.kinds import Kind
from examwatch.kinds._base import DeviceId

# DeviceRef is re-exported: rules, the API and the alarm contract take it from here.
__all__ = ["DetectorForm", "Device", "DeviceRef", "Inventory", "Room", "RoomType", "Site", "SiteType", "load"]

SiteId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")]
RoomId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteType(StrEnum):
    FORMAL = "formal"
    BACKUP = "backup"


class RoomType(StrEnum):
    EXAM = "exam"  # 考场
    ENTRANCE = "entrance"  # gates, walk-through detectors
    STORAGE = "storage"  # 保密室, the paper storage room
    REST = "rest"  # early leavers wait here, with a jammer


class DetectorForm(StrEnum):
    HANDHELD = "handheld"
    WALKTHROUGH = "walkthrough"


class Room(_Strict):
    id: RoomId
    name: str = Field(min_length=1, max_length=64)
    type: RoomType = RoomType.EXAM


class Device(_Strict):
    id: DeviceId
    kind: Kind
    room: RoomId
    bands: tuple[Band, ...] = Field(default=(), description="jammers only: the bands it covers")
    form: DetectorForm | None = Field(default=None, description="detectors only")

    @model_validator(mode="after")
    def _kind_specific(self) -> Self:
        if self.kind is Kind.JAMMER and not self.bands:
            raise ValueError("a jammer must list the bands it covers")
        if self.kind is not Kind.JAMMER and self.bands:
            raise ValueError(f"bands apply to jammers only, not to a {self.kind.value}")
        if self.kind is Kind.DETECTOR and self.form is None:
            raise ValueError("a detector must say its form: handheld or walkthrough")
        if self.kind is not Kind.DETECTOR and self.form is not None:
            raise ValueError(f"form applies to detectors only, not to a {self.kind.value}")
        if len(set(self.bands)) != len(self.bands):
            raise ValueError("bands are listed twice")
        return self


class Site(_Strict):
    id: SiteId
    name: str = Field(min_length=1, max_length=64)
    district: str = Field(min_length=1, max_length=64)
    type: SiteType = SiteType.FORMAL
    rooms: tuple[Room, ...]
    devices: tuple[Device, ...]

    @model_validator(mode="after")
    def _rooms_exist(self) -> Self:
        room_ids = [r.id for r in self.rooms]
        dup = {r for r in room_ids if room_ids.count(r) > 1}
        if dup:
            raise ValueError(f"room ids repeated in site {self.id}: {', '.join(sorted(dup))}")
        for device in self.devices:
            if device.room not in room_ids:
                raise ValueError(f"device {device.id} is in room {device.room}, which site {self.id} lacks")
        return self


class Inventory(_Strict):
    district: str = Field(min_length=1, max_length=64)
    sites: tuple[Site, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen_sites: set[str] = set()
        seen_devices: dict[str, str] = {}
        for site in self.sites:
            if site.id in seen_sites:
                raise ValueError(f"site id {site.id} is used twice")
            seen_sites.add(site.id)
            for device in site.devices:
                if device.id in seen_devices:
                    raise ValueError(
                        f"device id {device.id} is used twice (sites {seen_devices[device.id]} and {site.id})"
                    )
                seen_devices[device.id] = site.id
        return self

    @cached_property
    def devices(self) -> dict[str, DeviceRef]:
        """Every device by id."""
        return {
            d.id: DeviceRef(d.id, d.kind.value, s.id, d.room, tags(s.id, d.room, d.kind.value, d.id))
            for s in self.sites
            for d in s.devices
        }

    @cached_property
    def device_specs(self) -> dict[str, Device]:
        return {d.id: d for s in self.sites for d in s.devices}

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)


def load(path: Path) -> Inventory:
    """Load and check an inventory file; DataFileError names the line and field of any fault."""
    return datafile.load(path, Inventory)
