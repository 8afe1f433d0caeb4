"""Metal detector (金属探测仪): handheld per room (GB 12899), walk-through at the entrance (GB 15210).

Handhelds usually report through a charging dock or app, so most fields may be absent; whether a
detector is handheld or walk-through is in the inventory (``form``), not in every message.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from examwatch.kinds._base import Count, DeviceKind, Envelope, Percent


class SelfTest(StrEnum):
    PASS = "pass"  # noqa: S105 - a self-test result, not a password
    FAIL = "fail"
    NOT_RUN = "not_run"


class DetectorTelemetry(Envelope):
    interval_s: int = Field(ge=1, le=3600, description="seconds covered by the counts below")
    battery_pct: Percent | None = Field(default=None, description="absent on mains-powered units")
    self_test: SelfTest = Field(default=SelfTest.NOT_RUN, description="result of the last self-test")
    alarms: Count = Field(default=0, description="alarms raised in the interval")
    passes: Count | None = Field(default=None, description="people through a walk-through in the interval")
    sensitivity: int | None = Field(default=None, ge=1, le=100, description="sensitivity level")


class DetectorAlarm(Envelope):
    event: Literal["alarm"]
    zone: int | None = Field(default=None, ge=1, le=18, description="walk-through zone")
    direction: Literal["in", "out"] | None = None


class DetectorSelfTest(Envelope):
    event: Literal["self_test"]
    result: SelfTest


DetectorEvent = Annotated[DetectorAlarm | DetectorSelfTest, Field(discriminator="event")]

KIND = DeviceKind(name="detector", title="metal detector", zh="探测仪",
                  telemetry=DetectorTelemetry, event=DetectorEvent)
