"""MQTT message → Observation, validated against the device kinds and the inventory.

A message that is not in the contract never reaches a rule as data: it becomes a ``Refusal``
(counted here by reason), which only the ``intake`` rule type judges. So a rogue device under a
site's topics does not keep that site "reporting", and a device sending garbage is as silent to
absence and coverage as a device sending nothing. Ingest records the same refusals
(``ingest_reject``) for the dashboards.
"""

from __future__ import annotations

import json
from collections import Counter

from pydantic import TypeAdapter, ValidationError

from examwatch import topics
from examwatch.inventory import DeviceRef
from examwatch.kinds import KINDS, Channel, Envelope
from rules.model import Observation, Refusal
from rules.world import World

_ROUTES: dict[tuple[str, str], tuple[Channel, TypeAdapter[Envelope]]] = {
    **{(k, "telemetry"): (Channel.TELEMETRY, kind.telemetry_adapter) for k, kind in KINDS.items()},
    **{(k, "event"): (Channel.EVENT, kind.event_adapter) for k, kind in KINDS.items()},
}


class Intake:
    def __init__(self, world: World) -> None:
        self.world = world
        self.refused: Counter[str] = Counter()

    def observe(self, topic: str, payload: bytes, recv_s: float) -> Observation | Refusal | None:
        """The observation for one message; a Refusal (counted) when it breaks the contract under
        a known site's topics; None for a service topic, or a topic that names no known site."""
        if topics.is_service_topic(topic):
            return None
        parts = topics.parse(topic)
        if parts is None:
            self.refused["unknown_device"] += 1
            return None
        ref: DeviceRef | None = self.world.devices.get(parts.device)
        if ref is None or (ref.site, ref.kind) != (parts.site, parts.kind):
            return self._refuse("unknown_device", parts.site, parts.kind, parts.device, None, payload, recv_s)
        return self._judge(parts.channel, ref, payload, recv_s)

    def _judge(self, channel_name: str, ref: DeviceRef, payload: bytes, recv_s: float) -> Observation | Refusal | None:
        if channel_name == Channel.STATUS:
            if payload not in (topics.STATUS_ONLINE, topics.STATUS_OFFLINE):
                return self._refuse("bad_status", ref.site, ref.kind, ref.id, ref, payload, recv_s)
            return Observation(ref, Channel.STATUS, None, payload == topics.STATUS_ONLINE, recv_s,
                               self._last_drill(ref.id))
        route = _ROUTES.get((ref.kind, channel_name))
        if route is None:
            return self._refuse("unknown_channel", ref.site, ref.kind, ref.id, ref, payload, recv_s)
        channel, adapter = route
        try:
            msg = adapter.validate_json(payload)
        except ValidationError as exc:
            reason = exc.errors()[0]["type"] if exc.error_count() else "schema"
            return self._refuse(f"schema: {reason}", ref.site, ref.kind, ref.id, ref, payload, recv_s)
        if msg.device != ref.id:
            return self._refuse("topic_mismatch", ref.site, ref.kind, ref.id, ref, payload, recv_s)
        return Observation(ref, channel, msg, None, recv_s, msg.drill)

    def _last_drill(self, device: str) -> bool:
        seen = self.world.seen.get(device)
        return seen.drill if seen else False

    def _refuse(
        self, reason: str, site: str, kind: str, device: str, ref: DeviceRef | None, payload: bytes, recv_s: float
    ) -> Refusal | None:
        self.refused[reason.partition(":")[0]] += 1
        if site not in self.world.by_site:
            return None  # nobody to tell: no site of ours
        drill = _drill_flag(payload)
        if drill is None:
            drill = self._last_drill(device)
        return Refusal(reason, site, kind, device, ref, recv_s, drill)


def _drill_flag(payload: bytes) -> bool | None:
    """The payload's ``drill`` flag when it parses as a JSON object, else None (not readable)."""
    try:
        doc = json.loads(payload)
    except ValueError:  # not JSON, or not UTF-8
        return None
    flag = doc.get("drill") if isinstance(doc, dict) else None
    return flag if isinstance(flag, bool) else None
