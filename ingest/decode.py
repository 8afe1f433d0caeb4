"""One MQTT message → one line-protocol point, or a rejection record naming the message check's reason.

The verdict is the shared message check's (``examwatch.check``), the same the rules engine's
intake gives. Ingest adds speed: once a topic has carried a valid message, its route is kept
with the point's series preformatted (measurement and tag set, with and without ``drill=true``)
and its payload schema compiled (``ingest.fast``); a message on that topic that the compiled
check accepts becomes a line in one step. Anything else, first messages and every fault, goes
through the message check itself, so each refusal keeps its reason and detail.

A rejection is data too: measurement ``ingest_reject`` keeps the reason, the topic and a
truncated copy of the payload, so a misbehaving device or a rogue publisher is visible on the
wall. Nothing about a bad message affects the messages around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from examwatch import lineproto, topics
from examwatch.check import Accepted, Devices, Limits, MessageCheck, Refused
from examwatch.kinds import Channel, DeviceKind
from examwatch.rejects import REJECT_MEASUREMENT, Reason
from ingest.fast import NOT_FIELDS, DecodeError, FastStruct, Unsupported, compile_schema

log = logging.getLogger("examwatch.ingest")
_PAYLOAD_KEPT = 512
_SERVICE_PREFIX = f"{topics.ROOT}/_".encode()


class _Series(NamedTuple):
    """A topic whose payloads the compiled check may accept, with its series preformatted.

    Kept for every device topic that carried a valid message (about 300 bytes each with its key),
    so it holds only what the fast path reads."""

    decode: Callable[[bytes], FastStruct]
    device: str
    head: str  # "camera,device=…,kind=camera,room=R01,site=S01"


class Decoder:
    """Turns (topic, payload, receive time) into line protocol, using the inventory's tags."""

    def __init__(self, devices: Devices, max_payload_bytes: int, max_clock_offset_s: int,
                 sites: frozenset[str] | None = None) -> None:
        """``devices`` by id (a dict or the compact inventory); ``sites``: every site id (by default
        the sites of ``devices.values()``), so a refusal under one of them is tagged with it."""
        limits = Limits(max_payload_bytes, max_clock_offset_s)
        self.check = MessageCheck(devices, limits, cache_routes=False)
        if sites is None:
            if not isinstance(devices, dict):
                raise TypeError("a compact inventory comes with its sites")
            sites = frozenset(d.site for d in devices.values())
        self._sites = sites
        self._max_payload = limits.max_payload_bytes
        self._max_offset_ms = limits.max_clock_offset_s * 1000
        self._series: dict[bytes, _Series] = {}
        self._schemas: dict[tuple[str, Channel], Callable[[bytes], FastStruct] | None] = {}
        self._last_unique_ns = 0

    def decode(self, topic: bytes | str, payload: bytes, recv_ns: int) -> tuple[bytes | None, Reason | None]:
        """The point for this message, or its rejection record and reason; (None, None) for service topics."""
        key = topic if isinstance(topic, bytes) else topic.encode()
        series = self._series.get(key)
        if series is not None and len(payload) <= self._max_payload:
            try:
                msg = series.decode(payload)
            except DecodeError:
                pass  # the message check says why
            else:
                ts, tag, limit = msg.ts, msg.EVENT_TAG, self._max_offset_ms
                skew_ms = recv_ns // 1_000_000 - ts
                if tag is not None and msg.device == series.device and -limit <= skew_ms <= limit:
                    head = series.head + ",drill=true" if msg.drill else series.head
                    return f"{head}{tag} {msg.lp()}skew_ms={skew_ms}i {ts * 1_000_000}".encode(), None
        if key.startswith(_SERVICE_PREFIX):
            return None, None
        return self._checked(key, payload, recv_ns)

    def _checked(self, key: bytes, payload: bytes, recv_ns: int) -> tuple[bytes | None, Reason | None]:
        topic = key.decode("utf-8", errors="replace")
        try:
            accepted = self.check.check(topic, payload, recv_ns // 1_000_000)
        except Refused as refused:
            return self.reject_line(topic, payload, recv_ns, refused.reason, refused.detail), refused.reason
        if accepted is None:
            return None, None
        return self._line(key, accepted, recv_ns), None

    def _line(self, key: bytes, accepted: Accepted, recv_ns: int) -> bytes:
        route, ref = accepted.route, accepted.route.ref
        if accepted.msg is None:
            online = "true" if accepted.online else "false"
            return lineproto.line(route.measurement, ref.tags, f"online={online}", self._unique_ns(recv_ns))
        decode = self._schema(route.kind, route.channel)
        if decode is not None:
            self._series[key] = _Series(decode, ref.id, f"{route.measurement}{ref.tags}")
        msg = accepted.msg
        tags = ref.tags + ",drill=true" if msg.drill else ref.tags
        event = msg.__dict__.get("event")  # events only; getattr on a pydantic model misses slowly
        if event is not None:
            tags += f",event={event}"
        pairs = lineproto.fields(msg, NOT_FIELDS)
        pairs.append(f"skew_ms={accepted.skew_ms}i")
        return lineproto.line(route.measurement, tags, ",".join(pairs), msg.ts * 1_000_000)

    def _schema(self, kind: DeviceKind, channel: Channel) -> Callable[[bytes], FastStruct] | None:
        key = (kind.name, channel)
        if key not in self._schemas:
            try:
                self._schemas[key] = compile_schema(kind, channel)
            except Unsupported as exc:  # correct, only slower: the message check judges every message
                log.warning("%s %s payloads are checked by the models only: %s", kind.name, channel.value, exc)
                self._schemas[key] = None
        return self._schemas[key]

    def _unique_ns(self, recv_ns: int) -> int:
        # Receive-time points (status, rejections) must not overwrite each other within a nanosecond.
        self._last_unique_ns = max(recv_ns, self._last_unique_ns + 1)
        return self._last_unique_ns

    def reject_line(self, topic: str, payload: bytes, recv_ns: int, reason: Reason, detail: str) -> bytes:
        """The ``ingest_reject`` record of a refused message."""
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
