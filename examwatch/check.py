"""The message check: is one MQTT message in the device contract, from a device of the inventory?

One function and one set of reasons (``examwatch.rejects.Reason``) for every service that reads
device topics: ingest records a refusal as an ``ingest_reject`` point, the rules engine's intake
raises its ``intake`` alarms from it, and both name the same reason with the same detail for the
same message. The checks run in this order, and the first that fails names the refusal:

1. ``too_large``: more bytes than ``Limits.max_payload_bytes``;
2. ``bad_topic``: not ``exam/v1/{site}/{kind}/{device}/{channel}``;
3. ``unknown_kind``, ``unknown_channel``: the topic's kind or channel is not in the contract;
4. ``unknown_device``: the device id is not in the inventory (a security event);
5. ``topic_mismatch``: the inventory has that device at another site or as another kind;
6. the payload: ``bad_status`` (a status other than online/offline), or through the kind's
   schema ``not_utf8``, ``not_json``, ``non_finite`` or ``schema``;
7. ``topic_mismatch``: the payload speaks for another device than its topic;
8. ``clock_offset``: the device's timestamp is more than ``Limits.max_clock_offset_s`` from the
   receive time.

A refusal carries, beside its reason and detail, what its topic names (so a service can attribute
it to a site) and the inventory's device when the topic names one of ours at its own site and
kind: a refused payload from a known device is that device's problem; anything else is a stranger.
Service topics (``exam/v1/_…``) are not device messages: the check answers None for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from examwatch import topics
from examwatch.compact import DeviceRef
from examwatch.kinds import KINDS, Channel, DeviceKind, Envelope
from examwatch.rejects import Reason, classify
from examwatch.topics import DeviceTopic

if TYPE_CHECKING:
    from examwatch.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class Limits:
    """What a message may weigh and how far its device clock may be off (ingest's settings set them)."""

    max_payload_bytes: int = 65_536
    max_clock_offset_s: int = 86_400

    @classmethod
    def of(cls, cfg: IngestSettings) -> Limits:
        """The limits configured in ``[ingest]``, which every service applies alike."""
        return cls(cfg.max_payload_bytes, cfg.max_clock_offset_s)


class Devices(Protocol):
    """The inventory's devices by id: a ``dict[str, DeviceRef]`` or the compact inventory."""

    def get(self, device_id: str, /) -> DeviceRef | None: ...


class Refused(Exception):
    """A message the contract refuses: its reason, where it broke (``detail``), and who it names."""

    def __init__(self, reason: Reason, detail: str, parts: DeviceTopic | None = None,
                 ref: DeviceRef | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        #: the topic's site, kind, device and channel; None when the topic is not a device topic
        self.parts = parts
        #: the inventory's device, when the topic names one of ours at its own site and kind
        self.ref = ref


@dataclass(frozen=True, slots=True)
class Route:
    """Where a valid device topic leads: the device, its kind, the channel and the measurement."""

    ref: DeviceRef
    kind: DeviceKind
    channel: Channel
    measurement: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message in the contract: its route, the validated payload (None for a status) or the status."""

    route: Route
    msg: Envelope | None
    online: bool | None
    #: receive time minus device time, ms (0 for a status, which has no device time)
    skew_ms: int


class MessageCheck:
    """Judges messages against the device kinds, the inventory and the limits; routes are cached per topic."""

    def __init__(self, devices: Devices, limits: Limits | None = None, *, cache_routes: bool = True) -> None:
        """``cache_routes``: keep each valid topic's route (ingest keeps its own, slimmer)."""
        self.devices = devices
        self.limits = limits or Limits()
        self._max_offset_ms = self.limits.max_clock_offset_s * 1000
        self._routes: dict[str, Route] = {}
        self._cache = cache_routes
        # pydantic-core's validator per (kind, channel): finding a TypeAdapter hashes the schema's
        # annotated union, which costs more than validating a payload
        self._validators: dict[tuple[str, Channel], Callable[[bytes], Envelope]] = {}

    def check(self, topic: str, payload: bytes, recv_ms: int) -> Accepted | None:
        """The accepted message, or None for a service topic; raises ``Refused`` with the first fault."""
        if topics.is_service_topic(topic):
            return None
        if len(payload) > self.limits.max_payload_bytes:
            raise self._refused(topic, Reason.TOO_LARGE,
                                f"{len(payload)} bytes, limit {self.limits.max_payload_bytes}")
        route = self.route(topic)
        if route.channel is Channel.STATUS:
            if payload == topics.STATUS_ONLINE:
                return Accepted(route, None, True, 0)
            if payload == topics.STATUS_OFFLINE:
                return Accepted(route, None, False, 0)
            raise self._refused(topic, Reason.BAD_STATUS, "status must be 'online' or 'offline'")
        validate = self._validators.get((route.kind.name, route.channel))
        if validate is None:
            validate = self._validators[route.kind.name, route.channel] = route.kind.validator(route.channel)
        try:
            msg: Envelope = validate(payload)
        except ValidationError as exc:
            raise self._refused(topic, *classify(exc, payload)) from None
        return Accepted(route, msg, None, self.judge_envelope(topic, route, msg.device, msg.ts, recv_ms))

    def judge_envelope(self, topic: str, route: Route, device: str, ts_ms: int, recv_ms: int) -> int:
        """Steps 7 and 8 for a payload that passed its schema: the skew (ms), or ``Refused``."""
        if device != route.ref.id:
            raise self._refused(topic, Reason.TOPIC_MISMATCH, f"payload device {device!r} on {route.ref.id}'s topic")
        skew_ms = recv_ms - ts_ms
        if abs(skew_ms) > self._max_offset_ms:
            raise self._refused(topic, Reason.CLOCK_OFFSET, f"device clock {skew_ms / 1000:+.0f} s from receive time")
        return skew_ms

    def route(self, topic: str) -> Route:
        """The route of a device topic (steps 2 to 5), or ``Refused``; valid routes are cached."""
        route = self._routes.get(topic)
        if route is not None:
            return route
        parts = topics.parse(topic)
        if parts is None:
            raise Refused(Reason.BAD_TOPIC, "expected exam/v1/{site}/{kind}/{device}/{channel}")
        kind = KINDS.get(parts.kind)
        if kind is None:
            raise self._refused(topic, Reason.UNKNOWN_KIND, f"no device kind {parts.kind!r}")
        try:
            channel = Channel(parts.channel)
        except ValueError:
            raise self._refused(topic, Reason.UNKNOWN_CHANNEL, f"no channel {parts.channel!r}") from None
        ref = self.devices.get(parts.device)
        if ref is None:
            raise self._refused(topic, Reason.UNKNOWN_DEVICE, f"device {parts.device!r} is not in the inventory")
        if (ref.site, ref.kind) != (parts.site, parts.kind):
            raise self._refused(
                topic,
                Reason.TOPIC_MISMATCH,
                f"inventory has {ref.id} as a {ref.kind} at {ref.site}, topic says {parts.kind} at {parts.site}",
            )
        route = Route(ref, kind, channel, kind.measurement(channel))
        if self._cache:
            self._routes[topic] = route
        return route

    def _refused(self, topic: str, reason: Reason, detail: str) -> Refused:
        parts = topics.parse(topic)
        ref = None
        if parts is not None:
            known = self.devices.get(parts.device)
            if known is not None and (known.site, known.kind) == (parts.site, parts.kind):
                ref = known
        return Refused(reason, detail, parts, ref)
