"""MQTT message → Observation, judged by the shared message check (``examwatch.check``).

A message that is not in the contract never reaches a rule as data: it becomes a ``Refusal``
with the check's reason and detail, the same that ingest records as ``ingest_reject``, which
only the ``intake`` rule type judges. So a rogue device under a site's topics does not keep that
site "reporting", and a device sending garbage is as silent to absence and coverage as a device
sending nothing. The limits (payload size, device clock offset) are ``[ingest]``'s, for both.
"""

from __future__ import annotations

from collections import Counter

from pydantic_core import from_json

from examwatch.check import Limits, MessageCheck, Refused
from examwatch.kinds import Channel
from examwatch.rejects import Reason
from rules.model import Observation, Refusal
from rules.world import World

_MAX_PEEK = 1 << 16  # a refused payload larger than this is not read for its drill flag


class Intake:
    def __init__(self, world: World, limits: Limits | None = None) -> None:
        self.world = world
        self.check = MessageCheck(world.devices, limits)
        self.refused: Counter[Reason] = Counter()

    def observe(self, topic: str, payload: bytes, recv_s: float) -> Observation | Refusal | None:
        """The observation for one message; a Refusal (counted) when it breaks the contract under
        a known site's topics; None for a service topic, or a topic that names no known site."""
        try:
            accepted = self.check.check(topic, payload, int(recv_s * 1000))
        except Refused as refused:
            return self._refuse(refused, payload, recv_s)
        if accepted is None:
            return None
        ref = accepted.route.ref
        if accepted.msg is None:
            return Observation(ref, Channel.STATUS, None, accepted.online, recv_s, self._last_drill(ref.id))
        return Observation(ref, accepted.route.channel, accepted.msg, None, recv_s, accepted.msg.drill)

    def _last_drill(self, device: str) -> bool:
        seen = self.world.seen.get(device)
        return seen.drill if seen else False

    def _refuse(self, refused: Refused, payload: bytes, recv_s: float) -> Refusal | None:
        self.refused[refused.reason] += 1
        parts = refused.parts
        if parts is None or parts.site not in self.world.by_site:
            return None  # nobody to tell: no site of ours
        claimed = _drill_flag(payload)
        ref = refused.ref
        if ref is None:
            # A unit we do not know may not make its own alarm a drill: only while a drill runs at the site.
            drill = bool(claimed) and self.world.drill_running(parts.site)
        else:
            drill = self._last_drill(ref.id) if claimed is None else claimed
        return Refusal(refused.reason, parts.site, parts.kind, parts.device, ref, recv_s, drill, refused.detail)


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
