"""The device kinds, one module each; ``KINDS`` is the registry every service uses."""

from __future__ import annotations

from enum import StrEnum

from examwatch.kinds import camera, detector, gate, jammer, power
from examwatch.kinds._base import ENVELOPE_FIELDS, STATUS_MEASUREMENT, Channel, DeviceKind, Envelope

KINDS: dict[str, DeviceKind] = {k.KIND.name: k.KIND for k in (gate, jammer, detector, camera, power)}


class Kind(StrEnum):
    GATE = "gate"
    JAMMER = "jammer"
    DETECTOR = "detector"
    CAMERA = "camera"
    POWER = "power"


assert set(KINDS) == {k.value for k in Kind}, "Kind and KINDS must name the same kinds"

__all__ = ["ENVELOPE_FIELDS", "KINDS", "STATUS_MEASUREMENT", "Channel", "DeviceKind", "Envelope", "Kind"]
