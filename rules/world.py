"""What every rule may consult: the inventory indexed by site and room, the timetable, and liveness.

Liveness (when each device was last heard, whether its Last Will said offline, whether the
site is silent) is kept here once for all rules, so absence, coverage and readiness agree on
what "reporting" means.

Silence is judged on the stream's time, not on the clock's alone. ``frontier_s`` is how far the
engine has read the stream: the latest device time among the reports it has judged (never later
than their receive time, so a device whose clock runs ahead cannot push it). A silence that
falls after the frontier may be the engine's own lag (a backlog in its inbox, a socket it has not
read, a stall of its process, or of the simulator feeding a drill), not the site's; so silence is
judged at ``silence_now``: the frontier, or, when nothing comes at all, the clock less the usual
transport delay (``transport_s``) and ``hold_s`` (a broker or a network that is really down must
still be seen). ``hold_s`` is a wall-time
allowance (``rules.silence_hold_s``) times the clock's speed: on a drill clock at 60x one second
of stall is a minute of clock.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import NamedTuple

from examwatch import liveness
from examwatch.inventory import Device, DeviceRef, Inventory, RoomType
from examwatch.timetable import JAMMER_LEAD, Paper, Timetable

TRANSPORT_EVERY = 256  # reports between two estimates of the transport's share of offsets
TRANSPORT_MIN_DEVICES = 16  # devices whose offsets make that estimate


class Window(NamedTuple):
    """One stretch of a requirement at a site: a paper in session, or jammers required."""

    start_s: float
    end_s: float
    paper: str


class Evidence(Enum):
    """What a report says about a time-dependent requirement (see :meth:`World.judge`)."""

    OUTSIDE = "outside"  # no window holds at its receive time: the requirement does not apply
    UNSURE = "unsure"  # too close to a window's edge, or made before it: no verdict either way
    INSIDE = "inside"  # made and received well inside a window: judge it


@dataclass(slots=True)
class Seen:
    """A device's liveness: last receive time, Last Will offline, and whether its data is a drill;
    and the device time of the last telemetry it was judged on (to know a redelivery again)."""

    last_s: float
    lwt_offline: bool = False
    drill: bool = False
    last_ts_ms: int = 0
    #: the device's report interval (device time between telemetry reports, smoothed); 0: not known yet
    interval_s: float = 0.0
    #: receive time − device time, at its least over recent reports: the device clock's offset plus
    #: the quickest transport (a backlog's late deliveries do not move it much)
    offset_s: float | None = None
    #: when its last report was made, on the engine's clock (see :meth:`World.note_report`)
    made_s: float = 0.0


@dataclass
class World:
    inventory: Inventory
    timetable: Timetable
    #: absence timeout per device, filled in by the absence rules (coverage and readiness use it)
    timeouts: dict[str, float] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    silent_sites: set[str] = field(default_factory=set)
    #: when the engine started, and how long after it every device counts as reporting (the
    #: broker's backlog for our session arrives first); a device never heard counts from the start
    started_s: float = 0.0
    grace_s: float = 0.0
    #: the stream's time as far as the engine has judged it, and how long (clock seconds) silence
    #: waits for it before it is judged on the clock (see the module's docstring)
    frontier_s: float = 0.0
    hold_s: float = 2.0
    #: the transport's share of every device's offset (see :meth:`note_report`), clock seconds
    transport_s: float = 0.0
    #: clock seconds per wall second (1 but on a drill clock)
    speed: float = 1.0

    def __post_init__(self) -> None:
        self.devices: dict[str, DeviceRef] = self.inventory.devices
        self.specs: dict[str, Device] = self.inventory.device_specs
        by_room: dict[tuple[str, str], list[DeviceRef]] = defaultdict(list)
        by_site: dict[str, list[DeviceRef]] = defaultdict(list)
        for ref in self.devices.values():
            by_room[(ref.site, ref.room)].append(ref)
            by_site[ref.site].append(ref)
        self.by_room = dict(by_room)
        self.by_site = dict(by_site)
        self.room_types = {(s.id, r.id): r.type for s in self.inventory.sites for r in s.rooms}
        self.exam_rooms = [k for k, t in self.room_types.items() if t is RoomType.EXAM]
        self.exam_rooms_set = set(self.exam_rooms)
        self.site_last_s: dict[str, float] = {}
        self._cache: dict[tuple[str, str], Paper | None] = {}
        self._cache_second = 0
        self._reports = 0
        self._transport_known = False
        self._windows = {what: {site: _windows(self.timetable, site, what) for site in self.by_site}
                         for what in ("session", "jammers")}

    def timeout(self, device: str) -> float:
        return self.timeouts.get(device, liveness.DEFAULT_TIMEOUT_S)

    def heard(self, ref: DeviceRef, now: float, drill: bool, lwt_offline: bool = False) -> bool:
        """Record a message from ``ref``; True when the device's liveness record changed much
        (worth persisting): a second or more later, or a change of Last Will or drill flag."""
        s = self.seen.get(ref.id)
        if not lwt_offline:
            # A Last Will is the broker speaking for a device it lost, not the site speaking: a
            # site whose network fails sends a burst of them, and stays silent.
            self.site_last_s[ref.site] = now
        if s is None:
            self.seen[ref.id] = Seen(now, lwt_offline, drill)
            return True
        changed = now - s.last_s >= 1.0 or s.lwt_offline != lwt_offline or s.drill != drill
        s.last_s, s.lwt_offline, s.drill = now, lwt_offline, drill
        return changed

    def note_report(self, device: str, ts_ms: int, recv_s: float) -> float:
        """A report (telemetry) made at device time ``ts_ms`` is being judged: move the stream's
        frontier, learn the device's report interval and clock offset, and return when the
        report was made on the engine's clock.

        When it was made is the device time corrected by the device clock's error, never later
        than its receipt. The error is the device's offset (receive − device time, at its least
        over recent reports) less the transport's share, ``transport_s``: the median offset over
        all devices (clocks do not all drift the same way; the transport delays them all alike,
        and a compressed drill clock makes it seconds). So a report made before a timetable edge
        is known as such whether the device's clock is a little off, the engine reads a backlog,
        or every report arrives late. The least offset follows a clock that jumps back at once,
        and one that jumps ahead slowly.
        A gap longer than the device's absence timeout is an outage, not an interval."""
        ts_s = ts_ms / 1000
        self.frontier_s = max(self.frontier_s, min(ts_s, recv_s))
        s = self.seen.get(device)
        if s is None:
            return recv_s
        if s.last_ts_ms and ts_ms > s.last_ts_ms:
            gap = (ts_ms - s.last_ts_ms) / 1000
            if gap <= self.timeout(device):
                s.interval_s = gap if not s.interval_s else 0.7 * s.interval_s + 0.3 * gap
        sample = recv_s - ts_s
        if s.offset_s is None or sample < s.offset_s:
            s.offset_s = sample
        else:
            s.offset_s += 0.05 * (sample - s.offset_s)
        s.last_ts_ms = ts_ms
        self._reports += 1
        if self._reports % (TRANSPORT_EVERY if self._transport_known else TRANSPORT_MIN_DEVICES) == 0:
            self.estimate_transport()
        made = min(recv_s, ts_s + s.offset_s - self.transport_s)
        s.made_s = max(s.made_s, made)
        return made

    def estimate_transport(self) -> None:
        """``transport_s``: the median of the devices' offsets, once there are enough of them."""
        offsets = [x.offset_s for x in self.seen.values() if x.offset_s is not None]
        # a median of a few devices would be their own clocks' errors, not the transport's
        self._transport_known = len(offsets) >= TRANSPORT_MIN_DEVICES
        self.transport_s = statistics.median(offsets) if self._transport_known else 0.0

    def note_event(self, ts_ms: int, recv_s: float) -> None:
        """An event was judged: it moves the frontier like a report."""
        self.frontier_s = max(self.frontier_s, min(ts_ms / 1000, recv_s))

    def silence_now(self, now: float) -> float:
        """The time at which silence is judged now (see the module's docstring): the frontier, or
        the clock less the usual transport delay and the hold when the stream stops."""
        return min(now, max(self.frontier_s, now - max(0.0, self.transport_s) - self.hold_s))

    def heard_since_start(self, device: str) -> bool:
        """Whether the device has spoken since the engine started (not only before a restart)."""
        s = self.seen.get(device)
        return s is not None and s.last_s >= self.started_s

    def window(self, what: str, site: str, at: float) -> Window | None:
        """The stretch of ``what`` (``session`` or ``jammers``) at ``site`` that holds at ``at``."""
        windows = self._windows[what].get(site, ())
        i = bisect.bisect_right(windows, (at, float("inf"), "")) - 1
        while i >= 0:  # papers of a site may overlap: the latest stretch that holds
            if windows[i].start_s <= at < windows[i].end_s:
                return windows[i]
            i -= 1
        return None

    def windows(self, what: str, site: str) -> tuple[Window, ...]:
        """Every stretch of ``what`` at ``site``, in time order."""
        return self._windows[what].get(site, ())

    def judge(
        self, what: str, site: str, recv_s: float, made_s: float, settle_s: float
    ) -> tuple[Evidence, Window | None]:
        """Whether a report made at ``made_s`` (see :meth:`note_report`) and received at ``recv_s``
        is evidence for the requirement ``what``: made at least ``settle_s`` after one window
        started, and received ``settle_s`` before it ends. A report received outside every
        window says the requirement does not apply."""
        w = self.window(what, site, recv_s)
        if w is None:
            return Evidence.OUTSIDE, None
        if min(made_s, recv_s) >= w.start_s + settle_s and max(made_s, recv_s) <= w.end_s - settle_s:
            return Evidence.INSIDE, w
        return Evidence.UNSURE, w

    def local(self, t: float) -> str:
        """``t`` as the timetable's wall-clock time, ``HH:MM:SS`` (for messages people read)."""
        tz = self.timetable.papers[0].start.tzinfo if self.timetable.papers else UTC
        return datetime.fromtimestamp(t, tz).strftime("%H:%M:%S")

    def site_drill(self, site: str) -> bool:
        """Whether a site's silence belongs to a drill: every device of it that was ever heard
        last sent drill data (silence itself carries no flag)."""
        flags = [self.seen[d.id].drill for d in self.by_site.get(site, ()) if d.id in self.seen]
        return bool(flags) and all(flags)

    def knows(self, subject_type: str, subject: str) -> bool:
        """Whether an alarm's subject (a device, a room ``S01-R01`` or a site) is in the inventory."""
        if subject_type == "device":
            return subject in self.devices
        if subject_type == "room":
            return any(f"{site}-{room}" == subject for site, room in self.room_types)
        return subject in self.by_site

    def drill_running(self, site: str) -> bool:
        """Whether some device of the site last sent drill data: a drill is under way there."""
        return any(self.seen[d.id].drill for d in self.by_site.get(site, ()) if d.id in self.seen)

    def reporting(self, device: str, now: float) -> bool:
        """Heard from within its absence timeout, and its Last Will has not said offline (silence
        judged at :meth:`silence_now`)."""
        if now < self.started_s + self.grace_s:
            return True
        s = self.seen.get(device)
        return liveness.reporting(None if s is None else s.last_s, s is not None and s.lwt_offline,
                                  self.timeout(device), self.silence_now(now), self.started_s)

    def in_session(self, site: str, now: float) -> Paper | None:
        return self._when("session", site, now)

    def jammers_required(self, site: str, now: float) -> Paper | None:
        return self._when("jammers", site, now)

    def _when(self, what: str, site: str, now: float) -> Paper | None:
        # Asked for every message; the answer changes at most once a second that matters.
        second = int(now)
        if second != self._cache_second:
            self._cache.clear()
            self._cache_second = second
        key = (what, site)
        if key not in self._cache:
            at = _dt(now)
            self._cache[key] = (
                self.timetable.current(site, at)
                if what == "session"
                else self.timetable.jammers_required(site, at)
            )
        return self._cache[key]


def _dt(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def _windows(timetable: Timetable, site: str, what: str) -> tuple[Window, ...]:
    """The stretches of ``what`` at ``site``: papers in session, or the jammers' windows (from
    15 minutes before each paper to its end, cut by its ``jammer_off`` windows)."""
    out: list[Window] = []
    for p in timetable.for_site(site):
        if what == "session":
            out.append(Window(p.start.timestamp(), p.end.timestamp(), p.id))
            continue
        begin = (p.start - JAMMER_LEAD).timestamp()
        for off in sorted(p.jammer_off, key=lambda w: w.start):
            if off.start.timestamp() > begin:
                out.append(Window(begin, off.start.timestamp(), p.id))
            begin = max(begin, off.end.timestamp())
        if p.end.timestamp() > begin:
            out.append(Window(begin, p.end.timestamp(), p.id))
    return tuple(sorted(out))
