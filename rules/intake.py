"""MQTT message → Observation, validated against the device kinds and the inventory.

Ingest records why a message is refused (``ingest_reject``); here a refused message is only
counted and skipped, so a rule never judges data that is not in the contract.
"""

from __future__ import annotations

from collections import Counter

from pydantic import ValidationError

from examwatch import topics
from examwatch.inventory import DeviceRef
from examwatch.kinds import KINDS, Channel
from rules.model import Observation
from rules.world import World


class Intake:
    def __init__(self, world: World) -> None:
        self.world = world
        self.refused: Counter[str] = Counter()

    def observe(self, topic: str, payload: bytes, recv_s: float) -> Observation | None:
        """The observation for one message, or None (service topic, or refused and counted)."""
        if topics.is_service_topic(topic):
            return None
        parts = topics.parse(topic)
        ref: DeviceRef | None = self.world.devices.get(parts.device) if parts else None
        if parts is None or ref is None or (ref.site, ref.kind) != (parts.site, parts.kind):
            self.refused["unknown_device"] += 1
            return None
        if parts.channel == Channel.STATUS:
            if payload not in (topics.STATUS_ONLINE, topics.STATUS_OFFLINE):
                self.refused["bad_status"] += 1
                return None
            seen = self.world.seen.get(ref.id)
            return Observation(ref, Channel.STATUS, None, payload == topics.STATUS_ONLINE, recv_s,
                               seen.drill if seen else False)
        kind = KINDS[ref.kind]
        if parts.channel == Channel.TELEMETRY:
            adapter, channel = kind.telemetry_adapter, Channel.TELEMETRY
        elif parts.channel == Channel.EVENT:
            adapter, channel = kind.event_adapter, Channel.EVENT
        else:
            self.refused["unknown_channel"] += 1
            return None
        try:
            msg = adapter.validate_json(payload)
        except ValidationError:
            self.refused["schema"] += 1
            return None
        if msg.device != ref.id:
            self.refused["topic_mismatch"] += 1
            return None
        return Observation(ref, channel, msg, None, recv_s, msg.drill)
