"""Face-recognition gate (人脸识别闸机) at the site entrance.

Counts are per report interval (``interval_s``), so a window's total is a plain sum. A match
score may be absent: many terminals report only pass or fail.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from examwatch.kinds._base import Celsius, Count, DeviceKind, Envelope


class GateTelemetry(Envelope):
    interval_s: int = Field(ge=1, le=3600, description="seconds covered by the counts below")
    passes: Count = Field(description="candidates let through in the interval")
    face_match_failures: Count = Field(description="person-to-ID comparisons that failed")
    liveness_failures: Count = Field(description="liveness checks failed (photo, mask, screen)")
    blocklist_hits: Count = Field(default=0, description="matches against the blocklist")
    queue_length: int = Field(ge=0, le=5000, description="people waiting at the gate now")
    db_version: str = Field(min_length=1, max_length=64, description="candidate database version")
    temperature_c: Celsius | None = Field(default=None, description="terminal temperature, °C")


class RejectReason(StrEnum):
    FACE_MISMATCH = "face_mismatch"
    LIVENESS = "liveness"
    BLOCKLIST = "blocklist"
    NO_RECORD = "no_record"


Score = Annotated[float, Field(ge=0, le=100, description="similarity, percent")]


class GatePass(Envelope):
    event: Literal["pass"]
    score: Score | None = None


class GateReject(Envelope):
    event: Literal["reject"]
    reason: RejectReason
    attempt: int = Field(default=1, ge=1, le=20, description="try number for this candidate")
    score: Score | None = None


class GateDoubtful(Envelope):
    """After three failed tries the terminal photographs the candidate: 存疑 until two invigilators sign."""

    event: Literal["doubtful"]
    attempts: int = Field(ge=1, le=20)


GateEvent = Annotated[GatePass | GateReject | GateDoubtful, Field(discriminator="event")]

KIND = DeviceKind(name="gate", title="face-recognition gate", zh="闸机", telemetry=GateTelemetry, event=GateEvent)
