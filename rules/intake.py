"""MQTT message → Observation, validated against the device kinds and the inventory.

Ingest records why a message is refused (``ingest_reject``); here a refused message is only
counted and skipped, so a rule never judges data that is not in the contract.
"""

from __future__ import annotations

from collections import Counter

from pydantic import TypeAdapter, ValidationError

from examwatch import topics
from examwatch.inventory import DeviceRef
from examwatch.kinds import KINDS, Channel, Envelope
from rules.model import Observation
from rules.world import World

_ROUTES: dict[tuple[str, str], tuple[Channel, TypeAdapter[Envelope]]] = {
    **{(k, "telemetry"): (Channel.TELEMETRY, kind.telemetry_adapter) for k, kind in KINDS.items()},
    **{(k, "event"): (Channel.EVENT, kind.event_adapter) for k, kind in KINDS.items()},
}


class Intake:
    def __init__(self, world: World) -> None:
        self.world = world
        self.refused: Counter[str] = Counter()

    def observe(self, topic: str, payload: bytes, recv_s: float) -> Observation | None:
        """The observation for one message, or None (service topic, or refused and counted)."""
        if topics.is_service_topic(topic):
            return None
        obs, refused = self._observe(topic, payload, recv_s)
        if refused:
            self.refused[refused] += 1
        return obs

    def _observe(self, topic: str, payload: bytes, recv_s: float) -> tuple[Observation | None, str]:
        parts = topics.parse(topic)
        ref: DeviceRef | None = self.world.devices.get(parts.device) if parts else None
        if parts is None or ref is None or (ref.site, ref.kind) != (parts.site, parts.kind):
            return None, "unknown_device"
        if parts.channel == Channel.STATUS:
            return self._status(ref, payload, recv_s)
        route = _ROUTES.get((ref.kind, parts.channel))
        if route is None:
            return None, "unknown_channel"
        channel, adapter = route
        try:
            msg = adapter.validate_json(payload)
        except ValidationError:
            return None, "schema"
        if msg.device != ref.id:
            return None, "topic_mismatch"
        return Observation(ref, channel, msg, None, recv_s, msg.drill), ""

    def _status(self, ref: DeviceRef, payload: bytes, recv_s: float) -> tuple[Observation | None, str]:
        if payload not in (topics.STATUS_ONLINE, topics.STATUS_OFFLINE):
            return None, "bad_status"
        seen = self.world.seen.get(ref.id)
        drill = seen.drill if seen else False
        return Observation(ref, Channel.STATUS, None, payload == topics.STATUS_ONLINE, recv_s, drill), ""
