"""Paper storage room (保密室) power sensor: mains, UPS, door and climate.

A power cut here is critical at any hour ("绝不允许停电、断电"): mains readings are sent even when
mains is lost (``mains_v`` 0, ``on_ups`` true), so the loss is seen as data, not as silence.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from examwatch.kinds._base import DeviceKind, Envelope, Percent


class PowerTelemetry(Envelope):
    mains_v: float = Field(ge=0, le=300, description="mains voltage, V RMS (220 V nominal)")
    current_a: float = Field(ge=0, le=100, description="load current, A")
    frequency_hz: float = Field(ge=0, le=70, description="mains frequency, Hz; 0 when mains is lost")
    on_ups: bool = Field(description="the room runs on UPS battery")
    ups_battery_pct: Percent = Field(description="UPS charge")
    ups_minutes_left: float = Field(ge=0, le=1440, description="UPS runtime left at this load, minutes")
    temperature_c: float = Field(ge=-20, le=60, description="room temperature, °C")
    humidity_pct: Percent = Field(description="relative humidity")
    door_open: bool = Field(description="storage-room door open")


class PowerDoor(Envelope):
    event: Literal["door"]
    open: bool


class PowerMains(Envelope):
    event: Literal["mains"]
    lost: bool


class PowerIntrusion(Envelope):
    event: Literal["intrusion"]
    zone: str = Field(min_length=1, max_length=32, description="infrared detector: door or window id")


PowerEvent = Annotated[PowerDoor | PowerMains | PowerIntrusion, Field(discriminator="event")]

KIND = DeviceKind(name="power", title="storage-room power sensor", zh="电力监测",
                  telemetry=PowerTelemetry, event=PowerEvent)
