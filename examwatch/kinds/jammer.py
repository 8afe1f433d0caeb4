"""Mobile-signal jammer (信号屏蔽仪), one or more per exam room.

What each field means, because the easy readings lie:
- ``on`` is the jammer's own "shielding" state. "Module powered" is not "RF coming out":
  only ``rf_dbm`` (measured output per band) shows RF. A jammer that reports only its channel
  bits sends ``channels_on`` and no ``rf_dbm``; the contract carries it, and rules must treat
  the bits as weaker evidence.
- ``attenuation_db`` 0 is full power, not "off".
- Bands are the keys of ``rf_dbm`` / ``channels_on`` / ``attenuation_db`` (see examwatch.bands);
  a band the inventory says the jammer covers and the payload omits is "not reported".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from examwatch.bands import Band
from examwatch.kinds._base import Celsius, DeviceKind, Envelope

Dbm = Annotated[float, Field(ge=-60, le=47, description="RF output, dBm (47 dBm = 50 W)")]
Attenuation = Annotated[float, Field(ge=0, le=31.5, description="attenuation, dB; 0 is full power")]


class JammerMode(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    OFF = "off"


class JammerTelemetry(Envelope):
    on: bool = Field(description="shielding switched on")
    mode: JammerMode = Field(description="schedule, manual or off")
    rf_dbm: dict[Band, Dbm] | None = Field(default=None, description="measured RF output per band")
    channels_on: dict[Band, bool] | None = Field(default=None, description="per-band channel bits")
    attenuation_db: dict[Band, Attenuation] | None = Field(default=None, description="set attenuation per band")
    vswr: float | None = Field(default=None, ge=1, le=20, description="antenna voltage standing wave ratio")
    temperature_c: Celsius | None = None
    voltage_v: float | None = Field(default=None, ge=0, le=400, description="supply voltage, V")
    current_a: float | None = Field(default=None, ge=0, le=50, description="supply current, A")
    fan_ok: bool | None = Field(default=None, description="cooling fan running")
    fault_code: int = Field(default=0, ge=0, le=65535, description="vendor fault code, 0 = none")


class JammerSwitched(Envelope):
    event: Literal["switched"]
    on: bool = Field(description="switched on (true) or off")
    by: Literal["schedule", "manual", "remote"] = Field(description="what switched it")


class JammerFault(Envelope):
    event: Literal["fault"]
    code: int = Field(ge=1, le=65535, description="vendor fault code")
    text: str = Field(default="", max_length=200, description="vendor fault text")
    active: bool = Field(default=True, description="false is the fault's recovery")


JammerEvent = Annotated[JammerSwitched | JammerFault, Field(discriminator="event")]

KIND = DeviceKind(name="jammer", title="signal jammer", zh="屏蔽仪", telemetry=JammerTelemetry, event=JammerEvent)
