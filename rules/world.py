"""What every rule may consult: the inventory indexed by site and room, the timetable, and liveness.

Liveness (when each device was last heard, whether its Last Will said offline, whether the
site is silent) is kept here once for all rules, so absence, coverage and readiness agree on
what "reporting" means.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from examwatch.inventory import Device, DeviceRef, Inventory, RoomType
from examwatch.timetable import Paper, Timetable

DEFAULT_TIMEOUT_S = 60.0


@dataclass(slots=True)
class Seen:
    """A device's liveness: last receive time, Last Will offline, and whether its data is a drill;
    and the device time of the last telemetry it was judged on (to know a redelivery again)."""

    last_s: float
    lwt_offline: bool = False
    drill: bool = False
    last_ts_ms: int = 0


@dataclass
class World:
    inventory: Inventory
    timetable: Timetable
    #: absence timeout per device, filled in by the absence rules (coverage and readiness use it)
    timeouts: dict[str, float] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    silent_sites: set[str] = field(default_factory=set)
    #: the site-silence timeout (site.yaml's absence rule); 0 when there is none
    site_timeout_s: float = 0.0
    #: when the engine started, and how long after it every device counts as reporting (the
    #: broker's backlog for our session arrives first); a device never heard counts from the start
    started_s: float = 0.0
    grace_s: float = 0.0

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

    def timeout(self, device: str) -> float:
        return self.timeouts.get(device, DEFAULT_TIMEOUT_S)

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
        """Heard from within its absence timeout, and its Last Will has not said offline."""
        if now < self.started_s + self.grace_s:
            return True
        s = self.seen.get(device)
        if s is None:
            return now < self.started_s + self.timeout(device)
        return not s.lwt_offline and now - s.last_s < self.timeout(device)

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
