"""The time every service judges by: the wall clock, or a drill clock that runs a day in minutes.

A service never reads ``time.time()`` for what it decides (absence, ``for`` durations, the
timetable, reminders, escalation, readiness, a link's expiry): it asks its :class:`Clock`, which
``settings.clock`` chooses and the service is given. So a drill can run the simulator, ingest,
the rules engine, the notifier, the API and the scorer on one :class:`DrillClock` whose time runs
``speed`` times faster than the wall's, and a whole exam day is rehearsed in minutes with every
timeout, reminder and escalation scaled with it.

A service waits for a moment on its clock with :func:`wait_s`: the wall seconds until the clock
reads it. What the network and the gateways do (MQTT keepalives, HTTP timeouts, retry backoff
against a gateway that is down) stays in wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Epoch seconds on this clock, and the wall time at which it will read a given moment."""

    @property
    def speed(self) -> float:
        """Clock seconds per wall second: 1 for the wall clock."""
        ...

    def now(self) -> float:
        """Seconds since the Unix epoch, on this clock."""
        ...

    def wall_at(self, t: float) -> float:
        """The wall time (epoch seconds) at which this clock reads ``t``."""
        ...


class WallClock:
    """Real time: what every service runs on outside a compressed drill."""

    speed = 1.0

    def now(self) -> float:
        return time.time()

    def wall_at(self, t: float) -> float:
        return t

    def __repr__(self) -> str:
        return "WallClock()"


WALL = WallClock()


@dataclass(frozen=True, slots=True)
class DrillClock:
    """``t = start + (wall - wall_start) × speed`` once the wall reaches ``wall_start``.

    Before ``wall_start`` the clock stands at ``start``: services started a little early see the
    drill's first moment and wait for it to run, instead of seeing time pass with no device
    reporting (which would be every device offline).
    """

    start: float
    wall_start: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"a clock's speed must be > 0, not {self.speed}")

    @classmethod
    def starting_now(cls, speed: float = 1.0) -> DrillClock:
        """A clock that reads the wall's now and runs ``speed`` times faster from here."""
        now = time.time()
        return cls(now, now, speed)

    def now(self) -> float:
        return self.start + max(0.0, time.time() - self.wall_start) * self.speed

    def at_wall(self, wall: float) -> float:
        """The clock time that wall time ``wall`` maps to, on the clock's line (not held at ``start``:
        for mapping times recorded by wall-clock parts, such as InfluxDB's receive stamps)."""
        return self.start + (wall - self.wall_start) * self.speed

    def wall_at(self, t: float) -> float:
        return self.wall_start + (t - self.start) / self.speed

    def describe(self) -> str:
        start = datetime.fromtimestamp(self.start, UTC).isoformat(timespec="seconds")
        wall = datetime.fromtimestamp(self.wall_start, UTC).isoformat(timespec="seconds")
        return f"drill clock at {start} from wall {wall}, {self.speed:g}× real time"


def now_ns(clock: Clock) -> int:
    """The clock's time in integer nanoseconds (the store's and InfluxDB's unit)."""
    return int(clock.now() * 1e9)


def ns_reader(clock: Clock) -> Callable[[], int]:
    """A call giving ``clock``'s time in ns: ``time.time_ns`` itself on the wall (a receive
    stamp per message is on the hot path), else ``now_ns`` of the drill clock."""
    return time.time_ns if clock is WALL else lambda: now_ns(clock)


def wait_s(clock: Clock, t: float) -> float:
    """Wall seconds from now until ``clock`` reads ``t`` (0 when it is past)."""
    return max(0.0, clock.wall_at(t) - time.time())


def wall_s(clock: Clock, seconds: float) -> float:
    """How many wall seconds ``seconds`` of clock time take."""
    return seconds / clock.speed


__all__ = ["WALL", "Clock", "DrillClock", "WallClock", "now_ns", "ns_reader", "wait_s", "wall_s"]
