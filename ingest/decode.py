"""Validate one MQTT message and turn it into a line-protocol point, or into a rejection record.

A rejection is data too: measurement ``ingest_reject`` keeps the reason, the topic and a
truncated copy of the payload, so a misbehaving device or a rogue publisher is visible on the
wall. Nothing about a bad message affects the messages around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from examwatch import lineproto, topics
from examwatch.inventory import DeviceRef
from examwatch.kinds import ENVELOPE_FIELDS, KINDS, Channel, Envelope
from examwatch.rejects import REJECT_MEASUREMENT, Reason, classify

STATUS_MEASUREMENT = "device_status"
_PAYLOAD_KEPT = 512
#: The envelope becomes time and tags, and an event's type becomes its ``event`` tag.
_NOT_FIELDS = ENVELOPE_FIELDS | {"event"}


@dataclass(frozen=True, slots=True)
class _Route:
    ref: DeviceRef
    channel: Channel
    #: the schema's JSON validator (pydantic-core's own, without TypeAdapter's wrapper); None for status
    validate_json: Callable[[bytes | bytearray], Any] | None
    measurement: str


class Rejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Decoder:
    """Turns (topic, payload, receive time) into line protocol, using the inventory's tags."""

    def __init__(self, devices: dict[str, DeviceRef], max_payload_bytes: int, max_clock_offset_s: int) -> None:
        self._devices = devices
        self._sites = {d.site for d in devices.values()}
        self._max_payload = max_payload_bytes
        self._max_offset_ms = max_clock_offset_s * 1000
        self._routes: dict[str, _Route] = {}
        self._last_reject_ns = 0

    def _route(self, topic: str) -> _Route:
        route = self._routes.get(topic)
        if route is not None:
            return route
        parts = topics.parse(topic)
        if parts is None:
            raise Rejected(Reason.BAD_TOPIC, "expected exam/v1/{site}/{kind}/{device}/{channel}")
        kind = KINDS.get(parts.kind)
        if kind is None:
            raise Rejected(Reason.UNKNOWN_KIND, f"no device kind {parts.kind!r}")
        try:
            channel = Channel(parts.channel)
        except ValueError:
            raise Rejected(Reason.UNKNOWN_CHANNEL, f"no channel {parts.channel!r}") from None
        ref = self._devices.get(parts.device)
        if ref is None:
            raise Rejected(Reason.UNKNOWN_DEVICE, f"device {parts.device!r} is not in the inventory")
        if (ref.site, ref.kind) != (parts.site, parts.kind):
            raise Rejected(
                Reason.TOPIC_MISMATCH,
                f"inventory has {ref.id} as a {ref.kind} at {ref.site}, topic says {parts.kind} at {parts.site}",
            )
        if channel is Channel.TELEMETRY:
            route = _Route(ref, channel, kind.telemetry_adapter.validator.validate_json, kind.name)
        elif channel is Channel.EVENT:
            route = _Route(ref, channel, kind.event_adapter.validator.validate_json, f"{kind.name}_event")
        else:
            route = _Route(ref, channel, None, STATUS_MEASUREMENT)
        self._routes[topic] = route
        return route

    def decode(self, topic: str, payload: bytes | bytearray, recv_ns: int) -> tuple[bytes | None, Reason | None]:
        """The point for this message, or its rejection record and reason; no line for service topics."""
        if topics.is_service_topic(topic):
            return None, None
        try:
            return self._point(topic, payload, recv_ns), None
        except Rejected as rej:
            return self.reject_line(topic, payload, recv_ns, rej.reason, rej.detail), rej.reason

    def _point(self, topic: str, payload: bytes | bytearray, recv_ns: int) -> bytes:
        if len(payload) > self._max_payload:
            raise Rejected(Reason.TOO_LARGE, f"{len(payload)} bytes, limit {self._max_payload}")
        route = self._route(topic)
        ref = route.ref
        if route.validate_json is None:
            if payload == topics.STATUS_ONLINE:
                online = "true"
            elif payload == topics.STATUS_OFFLINE:
                online = "false"
            else:
                raise Rejected(Reason.BAD_STATUS, "status must be 'online' or 'offline'")
            return lineproto.line(route.measurement, ref.tags, f"online={online}", self._unique_ns(recv_ns))
        try:
            msg: Envelope = route.validate_json(payload)
        except ValidationError as exc:
            raise Rejected(*classify(exc, payload)) from None
        if msg.device != ref.id:
            raise Rejected(Reason.TOPIC_MISMATCH, f"payload device {msg.device!r} on {ref.id}'s topic")
        skew_ms = recv_ns // 1_000_000 - msg.ts
        if abs(skew_ms) > self._max_offset_ms:
            raise Rejected(Reason.CLOCK_OFFSET, f"device clock {skew_ms / 1000:+.0f} s from receive time")
        tags = ref.tags + ",drill=true" if msg.drill else ref.tags
        pairs = lineproto.fields(msg, _NOT_FIELDS)
        event = msg.__dict__.get("event")  # events only; getattr on a pydantic model misses slowly
        if event is not None:
            tags += f",event={event}"
        pairs.append(f"skew_ms={skew_ms}i")
        return lineproto.line(route.measurement, tags, ",".join(pairs), msg.ts * 1_000_000)

    def _unique_ns(self, recv_ns: int) -> int:
        # Receive-time points (status, rejections) must not overwrite each other within a nanosecond.
        self._last_reject_ns = max(recv_ns, self._last_reject_ns + 1)
        return self._last_reject_ns

    def reject_line(self, topic: str, payload: bytes | bytearray, recv_ns: int, reason: Reason, detail: str) -> bytes:
        parts = topics.parse(topic)
        tags = f",reason={reason.value}"
        if parts is not None and parts.site in self._sites:
            tags += f",site={lineproto.escape_tag(parts.site)}"
        kept = payload[:_PAYLOAD_KEPT].decode("utf-8", errors="backslashreplace")
        field_set = ",".join(
            (
                f"topic={lineproto.quote(topic[:256])}",
                f"device={lineproto.quote(parts.device[:64] if parts else '')}",
                f"detail={lineproto.quote(detail[:300])}",
                f"payload={lineproto.quote(kept)}",
                f"size={len(payload)}i",
            )
        )
        return lineproto.line(REJECT_MEASUREMENT, tags, field_set, self._unique_ns(recv_ns))
