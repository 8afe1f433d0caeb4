"""What a drill can do to a simulated device's reports: the engine's side of a fault.

An effect is active on one device for a simulated window ``[start, end)``. The engine asks it
to change each report (a value, a timestamp, a payload mangled into bytes) or to silence it,
and calls it at both edges for the events a real device would send (``mains`` lost and back,
a camera's ``tamper`` alert and its recovery); it may also drop events the faulty device would
not send.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.readings import Payload


@dataclass(eq=False)
class Effect:
    """The do-nothing effect; subclasses override what their fault changes."""

    start: float
    end: float
    #: the device sends nothing while active (offline, network cut)
    silence: bool = False
    #: a gateway reports the device offline/online at the edges (a device's own link drops with its will)
    announce: bool = False
    begun: bool = False
    done: bool = False

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        """The report as the faulty device sends it: a changed payload, or raw bytes."""
        return payload

    def events(self, payload: Payload, begins: bool) -> list[Payload]:
        """Events at the fault's start (``begins``) or end, built on the report's envelope."""
        return []

    def filter_events(self, events: list[Payload]) -> list[Payload]:
        """The device's own events while the fault is active, as the faulty device sends them
        (a jammer held off sends no scheduled "switched on")."""
        return events
