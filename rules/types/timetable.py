"""timetable: what the timetable requires of a room's devices while a paper is on.

``require: jammer_shielding`` (jammer.yaml): from 15 minutes before each paper to its end,
outside its ``jammer_off`` windows (English listening), every jammer is on and every band it
covers (the inventory's ``bands``) is at or above ``floor_dbm``. A jammer that reports only
channel bits (no ``rf_dbm``) is judged on them: weaker evidence, but evidence.
``require: camera_recording`` (camera.yaml): during each paper every exam room has at least
one reporting camera that is recording with a picture.

```yaml
- {name: jammer_shielding, type: timetable, require: jammer_shielding, severity: critical, floor_dbm: 20}
- {name: room_recording, type: timetable, require: camera_recording, severity: major}
```

**Judged on fresh evidence.** When a window starts or resumes (T−15, the end of the listening),
a jammer's last report was made while it was rightly off: it says nothing about the window. So a
device is judged only on a report made and received ``settle_s`` (2 s) inside the window (see
``World.judge``); one made within ``settle_s`` of the window's end is not judged either (a jammer
switching off on time by a clock a second fast). A jammer with no such report ``grace_s`` after
the window started is reported as *not reporting* (shielding unknown), not as switched off;
``grace_s`` defaults to the jammer's own report interval plus half of it, at least 10 s more
(its absence timeout until the interval is known). A jammer that really is off at T−15 is
alarmed at its first report in the window, within one report interval. Nothing is said for a
jammer whose site is silent or which is offline: the site and absence alarms speak for them.
A room's cameras are judged the same way at a paper's start: the room is found unwatched only
when every camera has reported in the paper without recording a picture, or once the grace
has passed.
"""

from __future__ import annotations

from typing import Any

from examwatch.alarm import Severity, Subject
from examwatch.bands import Band
from examwatch.kinds import Envelope
from examwatch.rulebook.configs import TimetableConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import DRILL_SUFFIX, NO_TIMERS, Contract, Rule, RuleType, Timers, keyed, observe, state_key
from rules.world import Evidence, Window, World

#: the least margin over a device's report interval before it counts as not reporting (clock s)
GRACE_MARGIN_S = 10.0
NOT_REPORTING = "not reporting"


def jammer_problems(msg: Envelope, bands: tuple[Band, ...], floor_dbm: float) -> list[str]:
    """What is wrong with a jammer's shielding in this report, whatever the time."""
    if not getattr(msg, "on", False):
        return ["switched off"]
    rf: dict[Band, float] | None = getattr(msg, "rf_dbm", None)
    bits: dict[Band, bool] | None = getattr(msg, "channels_on", None)
    out = []
    for band in bands:
        if rf is not None:
            level = rf.get(band)
            if level is None:
                out.append(f"{band.value} not reported")
            elif level < floor_dbm:
                out.append(f"{band.value} {level:g} dBm < {floor_dbm:g}")
        elif bits is not None:
            if not bits.get(band, False):
                out.append(f"{band.value} channel off")
        else:
            out.append(f"{band.value} not reported")
    return out


def evaluate(
    severity: Severity, active: bool, paper: str | None, problems: list[str], what: str
) -> tuple[bool, Finding | None]:
    """Active when a paper requires it now and something is wrong; cleared otherwise."""
    bad = paper is not None and bool(problems)
    if bad and not active:
        return True, Finding(True, severity, f"{what} during {paper}: {', '.join(problems)}")
    if active and not bad:
        why = "fixed" if paper is not None else "no paper requires it now"
        return False, Finding(False, severity, f"{what}: {why}")
    return active, None


def grace_for(cfg: TimetableConfig, interval_s: float, timeout_s: float) -> float:
    """How long after a window starts a device may take to report in it."""
    if cfg.grace_s is not None:
        return cfg.grace_s
    if interval_s <= 0:
        return timeout_s
    return interval_s + max(GRACE_MARGIN_S, 0.5 * interval_s) + cfg.settle_s


class TimetableRule(Rule[TimetableConfig]):
    """State per jammer: [active, problems]; per camera: [picture ok, device time of the report];
    per room: active."""

    def __init__(self, cfg: TimetableConfig, kind: str, world: World) -> None:
        super().__init__(cfg, kind, world)
        self.what = "jammers" if cfg.require == "jammer_shielding" else "session"
        #: per site, the window the last tick saw (None outside every window)
        self.current: dict[str, Window | None] = {}
        self.timers: Timers = NO_TIMERS
        self.restart_grace_s = 0.0
        self.started = 0.0
        #: each exam room's cameras
        self.cameras = {key: [d.id for d in world.by_room.get(key, ()) if d.kind == "camera"]
                        for key in world.exam_rooms}

    def start(self, now: float, timers: Timers, grace_s: float) -> None:
        self.timers, self.restart_grace_s, self.started = timers, grace_s, now
        self.current.clear()  # the next tick schedules the waits of the windows open now

    def waits_from(self, window: Window) -> float:
        """When a device's grace in ``window`` begins: the window's start, or the engine's if it
        started (or reloaded) later: nobody was listening before."""
        return max(window.start_s, self.started)

    def grace(self, device: str) -> float:
        seen = self.world.seen.get(device)
        return grace_for(self.cfg, seen.interval_s if seen else 0.0, self.world.timeout(device))

    # -- messages ------------------------------------------------------------------------------

    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.ref.kind != self.kind or obs.msg is None or obs.channel != "telemetry":
            return []
        made = obs.made_s or obs.recv_s
        if self.cfg.require == "camera_recording":
            m = obs.msg
            ok = bool(
                getattr(m, "recording", False)
                and not getattr(m, "video_loss", True)
                and not getattr(m, "tamper", True)
            )
            self.put(state_key(obs), [ok, made])
            return self._room(obs.ref.site, obs.ref.room, obs.recv_s, obs.drill)
        problems = jammer_problems(obs.msg, self.world.specs[obs.ref.id].bands, self.cfg.floor_dbm)
        evidence, window = self.world.judge(self.what, obs.ref.site, obs.recv_s, made, self.cfg.settle_s)
        return self._jammer(obs.ref.id, problems, evidence, window, obs.drill)

    def _jammer(
        self, dev: str, problems: list[str], evidence: Evidence, window: Window | None, drill: bool
    ) -> list[Verdict]:
        key = keyed(dev, drill)
        active = bool(self.state.get(key, [False])[0])
        new, finding = active, None
        if evidence is Evidence.INSIDE:
            new, finding = evaluate(self.cfg.severity, active, window.paper if window else None, problems, dev)
        elif evidence is Evidence.OUTSIDE:
            new, finding = evaluate(self.cfg.severity, active, None, problems, dev)
        if [new, problems] != self.state.get(key):
            self.put(key, [new, problems])
        return [] if finding is None else [finding.on(Subject.device(self.world.devices[dev]), drill)]

    # -- rooms (camera_recording) --------------------------------------------------------------

    def _room(self, site: str, room: str, now: float, drill: bool = False) -> list[Verdict]:
        key = keyed(f"{site}-{room}", drill)
        if (site, room) not in self.world.exam_rooms_set:
            return []
        states = {c: self.state.get(keyed(c, drill)) for c in self.cameras[(site, room)]}
        active = bool(self.state.get(key))
        if not any(states.values()) and not active:
            return []  # no camera has said anything yet: coverage speaks for silence
        window = self.world.window(self.what, site, now)
        problems: list[str] = []
        if window is not None:
            found = self._room_problems(window, states, now)
            if found is None:
                return []  # not enough evidence yet, either way
            problems = found
        new, finding = evaluate(self.cfg.severity, active, window.paper if window else None, problems,
                                f"room {site}-{room}")
        if new != active:
            self.put(key, True if new else None)
        return [] if finding is None else [finding.on(Subject.room(site, room), drill)]

    def _room_problems(self, window: Window, states: dict[str, Any], now: float) -> list[str] | None:
        """The room's problems in ``window``, or None while the evidence cannot tell."""
        if now > window.end_s - self.cfg.settle_s:
            return None  # the paper is ending: a recording plan that stops on time is no fault
        fresh_from = window.start_s + self.cfg.settle_s
        fresh = {c: st for c, st in states.items()
                 if st is not None and len(st) > 1 and st[1] >= fresh_from and self.world.reporting(c, now)}
        if any(st[0] for st in fresh.values()):
            return []
        if len(fresh) < len(states):
            grace = max((self.grace(c) for c in states), default=0.0)
            waited = self.world.silence_now(now) >= self.waits_from(window) + grace
            if not waited:
                return None
        missing = len(states) - len(fresh)
        text = f"none of {len(states)} cameras recording"
        return [text + (f" ({missing} without a report since {self.world.local(window.start_s)})" if missing else "")]

    # -- ticks and timers ----------------------------------------------------------------------

    def on_tick(self, now: float) -> list[Verdict]:
        if self.cfg.require == "camera_recording":
            out: list[Verdict] = []
            in_paper: dict[str, bool] = {}
            for site, room in self.world.exam_rooms:
                if site not in in_paper:
                    in_paper[site] = self.world.window(self.what, site, now) is not None
                real, drill = keyed(f"{site}-{room}", False), keyed(f"{site}-{room}", True)
                if in_paper[site] or self.state.get(real):  # outside papers only an alarm to clear matters
                    out += self._room(site, room, now)
                if self.state.get(drill):  # drill data is judged as its camera reports come in
                    out += self._room(site, room, now, drill=True)
            return out
        return self._jammer_edges(now)

    def _jammer_edges(self, now: float) -> list[Verdict]:
        """At each window's start, wait for each jammer's fresh report; at its end, clear."""
        out: list[Verdict] = []
        for site, refs in self.world.by_site.items():
            window = self.world.window(self.what, site, now)
            if site in self.current and self.current[site] == window:
                continue
            self.current[site] = window
            jammers = [ref for ref in refs if ref.kind == self.kind]
            if window is None:
                for ref in jammers:
                    for drill in (False, True):
                        st = self.state.get(keyed(ref.id, drill))
                        if st is not None and st[0]:
                            out += self._jammer(ref.id, list(st[1]), Evidence.OUTSIDE, None, drill)
                continue
            for ref in jammers:
                at = max(self.waits_from(window) + self.grace(ref.id), now + self.restart_grace_s)
                self.timers.schedule(at, self.name, ref.id)
        return out

    def on_timer(self, subject: str, now: float, timers: Timers) -> list[Verdict]:
        """A jammer's grace after its window started: no report made in the window yet?"""
        ref = self.world.devices[subject]
        window = self.world.window(self.what, ref.site, now)
        seen = self.world.seen.get(subject)
        if window is None or seen is None:
            return []  # the window closed; a jammer never heard is the absence rule's
        if now < self.waits_from(window) + self.grace(subject):
            timers.schedule(self.waits_from(window) + self.grace(subject), self.name, subject)  # a later window
            return []
        if seen.made_s >= window.start_s + self.cfg.settle_s:
            return []  # it reported in the window (real or drill data): judged on that
        if ref.site in self.world.silent_sites or not self.world.reporting(subject, now):
            return []  # the site's or the device's own silence alarm explains it
        key = keyed(subject, seen.drill)
        if self.state.get(key, [False])[0]:
            return []
        self.put(key, [True, [NOT_REPORTING]])
        message = (f"{subject} during {window.paper}: {NOT_REPORTING} since shielding became required at "
                   f"{self.world.local(window.start_s)} (waited {self.grace(subject):.0f} s): shielding unknown")
        return [Verdict(Subject.device(ref), True, self.cfg.severity, message, seen.drill)]


def _jammer_step(rf: float) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        bands = world.specs["S01-R01-JAM1"].bands
        return rule.on_message(observe(world, "S01-R01-JAM1", now, on=True, rf_dbm=dict.fromkeys(bands, rf)))

    return step


TYPE = RuleType(
    "timetable",
    TimetableConfig,
    TimetableRule,
    Contract(
        "jammer",
        {"name": "shielding", "type": "timetable", "require": "jammer_shielding"},
        _jammer_step(5.0),
        _jammer_step(27.0),
    ),
)

__all__ = ["DRILL_SUFFIX", "TYPE", "TimetableRule", "evaluate", "grace_for", "jammer_problems"]
