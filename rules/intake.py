"""MQTT message → Observation, validated against the device kinds and the inventory.

A message that is not in the contract never reaches a rule as data: it becomes a ``Refusal``
with one of ingest's reasons (``examwatch.rejects``), which only the ``intake`` rule type judges.
So a rogue device under a site's topics does not keep that site "reporting", and a device sending
garbage is as silent to absence and coverage as a device sending nothing. Ingest records the same
refusals (``ingest_reject``) for the dashboards; the size and clock-offset limits are ingest's alone.
"""

from __future__ import annotations

from collections import Counter

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from examwatch import topics
from examwatch.inventory import DeviceRef
from examwatch.kinds import KINDS, Channel, Envelope
from examwatch.rejects import Reason, classify
from rules.model import Observation, Refusal
from rules.world import World

_ROUTES: dict[tuple[str, str], tuple[Channel, TypeAdapter[Envelope]]] = {
    **{(k, "telemetry"): (Channel.TELEMETRY, kind.telemetry_adapter) for k, kind in KINDS.items()},
    **{(k, "event"): (Channel.EVENT, kind.event_adapter) for k, kind in KINDS.items()},
}


_MAX_PEEK = 1 << 16  # a refused payload larger than this is not read for its drill flag


class Intake:
    def __init__(self, world: World) -> None:
        self.world = world
        self.refused: Counter[Reason] = Counter()

    def observe(self, topic: str, payload: bytes, recv_s: float) -> Observation | Refusal | None:
        """The observation for one message; a Refusal (counted) when it breaks the contract under
        a known site's topics; None for a service topic, or a topic that names no known site."""
        if topics.is_service_topic(topic):
            return None
        parts = topics.parse(topic)
        if parts is None:
            self.refused[Reason.BAD_TOPIC] += 1
            return None
        ref: DeviceRef | None = self.world.devices.get(parts.device)
        if ref is None or (ref.site, ref.kind) != (parts.site, parts.kind):
            return self._refuse(Reason.UNKNOWN_DEVICE, "", parts.site, parts.kind, parts.device, None, payload, recv_s)
        return self._judge(parts.channel, ref, payload, recv_s)

    def _judge(self, channel_name: str, ref: DeviceRef, payload: bytes, recv_s: float) -> Observation | Refusal | None:
        if channel_name == Channel.STATUS:
            if payload not in (topics.STATUS_ONLINE, topics.STATUS_OFFLINE):
                return self._refuse(Reason.BAD_STATUS, "", ref.site, ref.kind, ref.id, ref, payload, recv_s)
            return Observation(ref, Channel.STATUS, None, payload == topics.STATUS_ONLINE, recv_s,
                               self._last_drill(ref.id))
        route = _ROUTES.get((ref.kind, channel_name))
        if route is None:
            return self._refuse(Reason.UNKNOWN_CHANNEL, "", ref.site, ref.kind, ref.id, ref, payload, recv_s)
        channel, adapter = route
        try:
            msg = adapter.validate_json(payload)
        except ValidationError as exc:
            return self._refuse(*classify(exc, payload), ref.site, ref.kind, ref.id, ref, payload, recv_s)
        if msg.device != ref.id:
            return self._refuse(Reason.TOPIC_MISMATCH, "", ref.site, ref.kind, ref.id, ref, payload, recv_s)
        return Observation(ref, channel, msg, None, recv_s, msg.drill)

    def _last_drill(self, device: str) -> bool:
        seen = self.world.seen.get(device)
        return seen.drill if seen else False

    def _refuse(
        self,
        reason: Reason,
        detail: str,
        site: str,
        kind: str,
        device: str,
        ref: DeviceRef | None,
        payload: bytes,
        recv_s: float,
    ) -> Refusal | None:
        self.refused[reason] += 1
        if site not in self.world.by_site:
            return None  # nobody to tell: no site of ours
        claimed = _drill_flag(payload)
        if ref is None:
            # A unit we do not know may not make its own alarm a drill: only while a drill runs at the site.
            drill = bool(claimed) and self.world.drill_running(site)
        else:
            drill = self._last_drill(device) if claimed is None else claimed
        return Refusal(reason, site, kind, device, ref, recv_s, drill, detail)


def _drill_flag(payload: bytes) -> bool | None:
    """The payload's ``drill`` flag when it parses as a JSON object, else None (not readable).

    pydantic's parser, not ``json``: a payload nested thousands deep is refused as a ValueError
    instead of raising RecursionError in the engine's loop."""
    if len(payload) > _MAX_PEEK:
        return None
    try:
        doc = from_json(payload)
    except ValueError:  # not JSON, not UTF-8, or nested too deep
        return None
    flag = doc.get("drill") if isinstance(doc, dict) else None
    return flag if isinstance(flag, bool) else None
