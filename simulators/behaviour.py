"""How each kind of device behaves over an exam day, driven by the timetable.

- gates: candidates arrive from 60 to 15 minutes before a paper (the surge), a trickle in the
  last 15 minutes, none once the paper starts; about 1 % fail the face match, each failure is
  a ``reject`` event, and a third failed try marks the candidate doubtful (存疑);
- jammers: on from 15 minutes before each paper until its end, off in its ``jammer_off``
  windows (listening), a ``switched`` event at every change;
- cameras: steady fps and bitrate; NVR storage filling slowly;
- detectors: handheld batteries drain over the day (about 6 %/h, more while in use before a
  paper); walk-through passes follow the gates; a self-test at the first report;
- storage-room power: mains 220 V ± 5 %, the door opened 60 minutes before each paper to take
  the papers out, with ``door`` events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from examwatch import topics
from examwatch.inventory import DetectorForm, Device, RoomType, Site
from examwatch.kinds import Kind
from examwatch.timetable import JAMMER_LEAD, Timetable
from simulators import readings
from simulators.effects import Effect
from simulators.readings import Payload, poisson

CANDIDATES_PER_ROOM = 30
SURGE = (3600.0, 900.0)  # the entry surge: from 60 to 15 minutes before a paper
SURGE_SHARE = 0.9        # of a paper's candidates arrive in the surge, the rest after it
DOOR_OPEN = (3600.0, 3300.0)
BATTERY_DRAIN_PER_H = 6.0


@dataclass
class SiteDay:
    """One site's papers in simulated epoch seconds, and what they imply at a moment."""

    starts: list[float]
    jammer_windows: list[tuple[float, float]]
    candidates_per_gate: float

    @classmethod
    def build(cls, timetable: Timetable, site: Site) -> SiteDay:
        papers = timetable.for_site(site.id)
        windows: list[tuple[float, float]] = []
        for p in papers:
            offs = sorted(p.jammer_off, key=lambda w: w.start)
            cuts = [(w.start.timestamp(), w.end.timestamp()) for w in offs]
            begin = (p.start - JAMMER_LEAD).timestamp()
            for cut_start, cut_end in cuts:
                windows.append((begin, cut_start))
                begin = cut_end
            windows.append((begin, p.end.timestamp()))
        rooms = sum(1 for r in site.rooms if r.type is RoomType.EXAM)
        gates = sum(1 for d in site.devices if d.kind is Kind.GATE) or 1
        return cls([p.start.timestamp() for p in papers], [w for w in windows if w[1] > w[0]],
                   rooms * CANDIDATES_PER_ROOM / gates)

    def jammers_on(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.jammer_windows)

    def arrival_rate(self, t: float) -> float:
        """Candidates per second arriving at one gate at simulated time ``t``."""
        for s in self.starts:
            before = s - t
            if SURGE[1] <= before < SURGE[0]:
                return self.candidates_per_gate * SURGE_SHARE / (SURGE[0] - SURGE[1])
            if 0 < before < SURGE[1]:
                return self.candidates_per_gate * (1 - SURGE_SHARE) / SURGE[1]
        return 0.0

    def door_open(self, t: float) -> bool:
        return any(DOOR_OPEN[1] <= s - t < DOOR_OPEN[0] for s in self.starts)


@dataclass(slots=True, eq=False)
class DeviceSim:
    """One simulated device: its spec, topic prefix and the little state its behaviour keeps."""

    spec: Device
    site: str
    phase: float  # seconds into each report interval at which it reports
    prefix: str = ""
    battery: float = 100.0
    last_on: bool | None = None
    announced: bool = False
    effects: list[Effect] = field(default_factory=list)  # drill faults acting on this device
    window: tuple[float, float] | None = None  # a rogue device reports only inside this window

    def __post_init__(self) -> None:
        self.prefix = f"{topics.ROOT}/{self.site}/{self.spec.kind.value}/{self.spec.id}/"

    @property
    def id(self) -> str:
        return self.spec.id


Events = list[Payload]
Report = tuple[Payload, Events]
Step = Callable[[DeviceSim, float, SiteDay, random.Random, int], Report]


def _ev(dev: DeviceSim, ts: int, **fields: Any) -> Payload:
    return {"ts": ts, "device": dev.id, **fields}


def _gate(dev: DeviceSim, t: float, day: SiteDay, rng: random.Random, interval: int) -> Report:
    ts = int(t * 1000)
    passes = poisson(rng, day.arrival_rate(t) * interval)
    p = readings.gate(dev.spec, ts, rng, interval, passes)
    events: Events = []
    for n in range(p["face_match_failures"]):
        attempt = 1 + n % 3
        events.append(_ev(dev, ts, event="reject", reason="face_mismatch", attempt=attempt,
                          score=round(rng.uniform(40, 79), 1)))
        if attempt == 3:
            events.append(_ev(dev, ts, event="doubtful", attempts=3))
    events += [_ev(dev, ts, event="reject", reason="liveness") for _ in range(p["liveness_failures"])]
    return p, events


def _jammer(dev: DeviceSim, t: float, day: SiteDay, rng: random.Random, interval: int) -> Report:
    ts = int(t * 1000)
    on = day.jammers_on(t)
    events: Events = []
    if dev.last_on is not None and on != dev.last_on:
        events.append(_ev(dev, ts, event="switched", on=on, by="schedule"))
    dev.last_on = on
    return readings.jammer(dev.spec, ts, rng, interval, on), events


def _detector(dev: DeviceSim, t: float, day: SiteDay, rng: random.Random, interval: int) -> Report:
    ts = int(t * 1000)
    events: Events = []
    if dev.last_on is None:  # first report of the day: the morning self-test
        dev.last_on = True
        events.append(_ev(dev, ts, event="self_test", result="pass"))
    if dev.spec.form is DetectorForm.WALKTHROUGH:
        passes = poisson(rng, day.arrival_rate(t) * 2 * interval)
        p = readings.detector(dev.spec, ts, rng, interval, passes=passes)
        events += [_ev(dev, ts, event="alarm", zone=rng.randint(1, 6), direction="in")
                   for _ in range(p["alarms"])]
        return p, events
    in_use = day.arrival_rate(t) > 0
    dev.battery = max(0.0, dev.battery - BATTERY_DRAIN_PER_H * (2 if in_use else 1) * interval / 3600)
    return readings.detector(dev.spec, ts, rng, interval, battery=dev.battery), events


def _camera(dev: DeviceSim, t: float, day: SiteDay, rng: random.Random, interval: int) -> Report:
    return readings.camera(dev.spec, int(t * 1000), rng, interval), []


def _power(dev: DeviceSim, t: float, day: SiteDay, rng: random.Random, interval: int) -> Report:
    ts = int(t * 1000)
    door = day.door_open(t)
    events: Events = []
    if dev.last_on is not None and door != dev.last_on:
        events.append(_ev(dev, ts, event="door", open=door))
    dev.last_on = door
    return readings.power(dev.spec, ts, rng, interval, door_open=door), events


STEPS: dict[str, Step] = {
    Kind.GATE: _gate, Kind.JAMMER: _jammer, Kind.DETECTOR: _detector,
    Kind.CAMERA: _camera, Kind.POWER: _power,
}


def step(dev: DeviceSim, t: float, day: SiteDay, rng: random.Random, interval: int) -> Report:
    """The device's telemetry at simulated time ``t`` and the events since its last report."""
    return STEPS[dev.spec.kind](dev, t, day, rng, interval)
