"""What rules see and say: observations in, verdicts out (severities and subjects: ``examwatch.alarm``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from examwatch.alarm import Severity, Subject
from examwatch.inventory import DeviceRef
from examwatch.kinds import Channel, Envelope
from examwatch.rejects import Reason


class Finding(NamedTuple):
    """What a pure evaluation function says, before the runner names the subject."""

    active: bool
    severity: Severity
    message: str

    def on(self, subject: Subject, drill: bool = False) -> Verdict:
        return Verdict(subject, self.active, self.severity, self.message, drill)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's judgement on a subject: the condition holds (``active``) or has cleared."""

    subject: Subject
    active: bool
    severity: Severity
    message: str
    drill: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """One valid device message as the engine received it.

    ``msg`` is the validated payload (telemetry or event); for a status message it is None and
    ``online`` says which. ``recv_s`` is the receive time (seconds, the engine's clock): absence
    and skew are measured on it, never on the device's own clock.
    """

    ref: DeviceRef
    channel: Channel
    msg: Envelope | None
    online: bool | None
    recv_s: float
    drill: bool
    #: when a telemetry report was made, on the engine's clock (the engine sets it: World.note_report);
    #: 0 for other messages
    made_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message the intake refused, attributed to the site and device id its topic names.

    ``ref`` is the inventory's device when the id belongs there under this topic's site and kind
    (its payload broke the contract); None for a device id the inventory lacks, or one publishing
    under another site's or kind's topics. ``drill`` is the payload's own flag when it can be read,
    else the device's last known one. ``detail`` says where a payload broke its schema.
    """

    reason: Reason
    site: str
    kind: str  # the topic's
    device: str
    ref: DeviceRef | None
    recv_s: float
    drill: bool
    detail: str = ""

    @property
    def why(self) -> str:
        """The reason in ingest's words, e.g. ``not_json: Invalid JSON: EOF while parsing …``."""
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


#: the engine's clock: epoch seconds now (the service passes its ``examwatch.clock.Clock``'s ``now``)
Now = Callable[[], float]
