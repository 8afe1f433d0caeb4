"""What every device message has in common, and what a device kind declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from examwatch import topics

#: Epoch milliseconds: 2001-09-09 .. 2286-11-20, so a seconds or microseconds value is refused.
EpochMs = Annotated[int, Field(ge=1_000_000_000_000, le=9_999_999_999_999)]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Percent = Annotated[float, Field(ge=0, le=100, description="percent")]
Celsius = Annotated[float, Field(ge=-40, le=125, description="temperature, °C")]


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


class Envelope(BaseModel):
    """Fields every telemetry and event payload carries.

    ``ts`` is the device's own clock (epoch ms); ingest keeps its receive time beside it, so
    every point stores the device's clock skew. ``device`` must equal the topic's device id.
    ``drill`` marks traffic injected by a drill (应急演练): it is stored as the tag
    ``drill=true`` and its alarms and SMS are routed as drills, never as the real thing.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)

    ts: EpochMs = Field(description="device clock, milliseconds since the Unix epoch (UTC)")
    device: DeviceId = Field(description="the sending device's id; must match the topic")
    drill: bool = Field(default=False, description="true for traffic injected by a drill")


#: Envelope fields that become the point's time and tags, not InfluxDB fields.
ENVELOPE_FIELDS = frozenset(Envelope.model_fields)
#: Every kind's status messages (``online`` / ``offline``) share one measurement.
STATUS_MEASUREMENT = "device_status"


@dataclass(frozen=True)
class DeviceKind:
    """One kind of device: its name (topic level, tag and measurement), its names for people, and its schemas."""

    name: str
    title: str
    zh: str  # what a duty officer's text calls it (闸机, 屏蔽仪, …)
    telemetry: type[Envelope]
    event: Any  # a discriminated union of Envelope subclasses, keyed by ``event``

    @property
    def telemetry_adapter(self) -> TypeAdapter[Envelope]:
        return _adapter(self.telemetry)

    @property
    def event_adapter(self) -> TypeAdapter[Envelope]:
        return _adapter(self.event)

    def schema(self, channel: Channel) -> Any:
        """The payload schema of ``channel`` (telemetry or event); status payloads have none."""
        if channel is Channel.STATUS:
            raise ValueError("status payloads are 'online' or 'offline', not JSON")
        return self.telemetry if channel is Channel.TELEMETRY else self.event

    def validator(self, channel: Channel) -> Callable[[bytes], Envelope]:
        """The strict JSON validator of ``channel``'s payload (pydantic-core's own, without
        TypeAdapter's Python wrapper); it raises ``pydantic.ValidationError``."""
        validate: Callable[[bytes], Envelope] = _adapter(self.schema(channel)).validator.validate_json
        return validate

    def topic(self, site: str, device: str, channel: Channel) -> str:
        """The topic a device of this kind publishes ``channel`` on: ``exam/v1/{site}/{kind}/{device}/{channel}``."""
        return topics.device_topic(site, self.name, device, channel.value)

    def measurement(self, channel: Channel) -> str:
        """The InfluxDB measurement of this kind's ``channel``: ``camera``, ``camera_event``, ``device_status``."""
        if channel is Channel.TELEMETRY:
            return self.name
        if channel is Channel.EVENT:
            return f"{self.name}_event"
        return STATUS_MEASUREMENT


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(schema: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(schema)
    if adapter is None:
        adapter = _ADAPTERS[schema] = TypeAdapter(schema)
    return adapter
