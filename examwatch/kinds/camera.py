"""HD camera (高清视频): at least one per exam room, two in the storage room and two at the gate."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from examwatch.kinds._base import DeviceKind, Envelope, Percent


class CameraTelemetry(Envelope):
    recording: bool = Field(description="the NVR is recording this camera now")
    fps: float = Field(ge=0, le=120, description="frames per second received")
    bitrate_kbps: float = Field(ge=0, le=100_000, description="stream bitrate, kbit/s")
    video_loss: bool = Field(description="no picture (cable, sensor, encoder)")
    tamper: bool = Field(description="occluded, moved or defocused")
    nvr_used_pct: Percent | None = Field(default=None, description="NVR storage used")
    resolution: str | None = Field(default=None, pattern=r"^\d{3,5}x\d{3,5}$", description="e.g. 1920x1080")


class CameraAlert(Envelope):
    """A change of a camera's alert state; ``active: false`` is its recovery."""

    event: Literal["alert"]
    alert: Literal["video_loss", "tamper", "recording_stopped", "storage_full"]
    active: bool


CameraEvent = Annotated[CameraAlert, Field(discriminator="event")]

KIND = DeviceKind(name="camera", title="HD camera", zh="摄像机", telemetry=CameraTelemetry, event=CameraEvent)
