"""readiness: at T−30 min before each paper, a go/no-go roll-up per room and per site.

Every device of the site must be reporting (kinds in ``optional`` only if they have ever
reported: handheld detectors often have no network) and healthy by its last report: jammer
without fault, camera recording with a picture, detector battery ≥ ``min_battery_pct`` and
self-test not failed, storage-room power on mains ≥ ``min_mains_v``. The roll-up is kept in
the store, written to InfluxDB (``readiness``) and published retained on
``exam/v1/_readiness/{site}``. It is computed once per paper and site, even across restarts.

**Evidence first.** A device counts toward GO only once it has reported since the rules engine
started: what the store remembers from before a restart is not evidence that it works now. Until
every device has, the site's readiness says ``waiting`` (go false, detail ``waiting: N of M
devices not heard since the rules started``, updated as they come in, at most every 10 s);
then the go/no-go is computed. A device still unheard once its absence timeout has passed
since the start is not reporting, and the verdict is given without it (no-go); so is every
unheard one when the paper starts.

```yaml
# site.yaml
- {name: readiness, type: readiness, lead_s: 1800, min_battery_pct: 20, optional: [detector]}
```
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from examwatch.alarm import Severity, Subject
from examwatch.inventory import DeviceRef
from examwatch.kinds import Envelope
from examwatch.rulebook.configs import SITE, ReadinessConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import Contract, ReadinessReport, Rule, RuleType, observe
from rules.world import World

SITE_ROOM = "_site"
WAITING = "waiting"
WAITING_EVERY_S = 10.0  # a waiting site's count is said again at most this often (clock s)
MAX_NAMED = 5  # unheard devices named in a waiting detail


def device_problem(cfg: ReadinessConfig, kind: str, msg: Envelope) -> str | None:
    """What keeps this device from being ready, judged on its last report; None when ready."""
    m: Any = msg
    if kind == "jammer" and getattr(m, "fault_code", None):
        return f"fault {m.fault_code}"
    if kind == "camera" and not (
        getattr(m, "recording", False)
        and not getattr(m, "video_loss", True)
        and not getattr(m, "tamper", True)
    ):
        return "not recording a picture"
    if kind == "detector":
        if getattr(m, "battery_pct", None) is not None and m.battery_pct < cfg.min_battery_pct:
            return f"battery {m.battery_pct:g} %"
        if getattr(m, "self_test", None) == "fail":
            return "self-test failed"
    if kind == "power" and (getattr(m, "on_ups", False) or getattr(m, "mains_v", 999) < cfg.min_mains_v):
        return f"mains {getattr(m, 'mains_v', 0):g} V, on UPS: {getattr(m, 'on_ups', None)}"
    return None


def roll_up(problems: dict[str, list[str]]) -> tuple[bool, str]:
    """Room → its problems, to (go, detail)."""
    bad = {room: p for room, p in problems.items() if p}
    detail = "; ".join(f"{room}: {', '.join(p)}" for room, p in sorted(bad.items()))
    return not bad, detail or "all devices ready"


class ReadinessRule(Rule[ReadinessConfig]):
    """State per device: its last problem (only while it has one); per ``paper/site``: done (the
    time, ISO), or ``["waiting", unheard count, when last said]``."""

    SEES: ClassVar[str] = "all"

    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.msg is None or obs.channel != "telemetry":
            return []
        problem = device_problem(self.cfg, obs.ref.kind, obs.msg)
        if self.state.get(obs.ref.id) != problem:
            self.put(obs.ref.id, problem)
        return []

    def on_tick(self, now: float) -> list[Verdict]:
        if now < self.world.started_s + self.world.grace_s:
            return []  # just started: the devices' reports are still on their way
        for paper in self.world.timetable.ordered:
            begin, start = paper.start.timestamp() - self.cfg.lead_s, paper.start.timestamp()
            if not begin <= now:
                break
            for site in self.world.by_site:
                key = f"{paper.id}/{site}"
                st = self.state.get(key)
                if not paper.at_site(site) or _done(st) or (st is None and now >= start):
                    continue
                self._step(paper.id, site, key, st, now, final=now >= start)
        return []

    def _step(self, paper: str, site: str, key: str, st: Any, now: float, *, final: bool) -> None:
        waiting, total = self.unheard(site, now)
        if waiting and not final:
            if st is None or (len(waiting) != st[1] and now >= st[2] + WAITING_EVERY_S):
                detail = (f"{WAITING}: {len(waiting)} of {total} devices not heard since the rules started "
                          f"({', '.join(waiting[:MAX_NAMED])}{', …' if len(waiting) > MAX_NAMED else ''})")
                self.reports.append(ReadinessReport(paper, site, SITE_ROOM, False, detail, self._drill(site)))
                self.put(key, [WAITING, len(waiting), now])
            return
        self.reports += self.assess(paper, site, now)
        self.put(key, datetime.fromtimestamp(now, UTC).isoformat())

    def _expected(self, ref: DeviceRef) -> bool:
        """Whether readiness needs to hear from this device: every one but an optional kind's
        that has never reported (a handheld detector without a network)."""
        return not (ref.kind in self.cfg.optional and ref.id not in self.world.seen)

    def unheard(self, site: str, now: float) -> tuple[list[str], int]:
        """The site's expected devices not heard since the start whose wait is not over, and how
        many devices are expected in all."""
        expected = [ref for ref in self.world.by_site[site] if self._expected(ref)]
        started = self.world.started_s
        waiting = [ref.id for ref in expected if not self.world.heard_since_start(ref.id)
                   and self.world.silence_now(now) < started + self.world.timeout(ref.id)]
        return waiting, len(expected)

    def _drill(self, site: str) -> bool:
        return any(s.drill for ref in self.world.by_site[site] if (s := self.world.seen.get(ref.id)) is not None)

    def assess(self, paper: str, site: str, now: float) -> list[ReadinessReport]:
        rooms: dict[str, list[str]] = {}
        for ref in self.world.by_site[site]:
            problems = rooms.setdefault(ref.room, [])
            if not self._expected(ref):
                continue
            if not self.world.heard_since_start(ref.id):
                problems.append(f"{ref.id} not heard since the rules started")
            elif not self.world.reporting(ref.id, now):
                problems.append(f"{ref.id} not reporting")
            elif (p := self.state.get(ref.id)) is not None:
                problems.append(f"{ref.id} {p}")
        drill = self._drill(site)
        out = [
            ReadinessReport(paper, site, room, not p, "; ".join(p) or "ready", drill)
            for room, p in sorted(rooms.items())
        ]
        go, detail = roll_up(rooms)
        return [*out, ReadinessReport(paper, site, SITE_ROOM, go, detail, drill)]


def _done(state: Any) -> bool:
    """A paper/site whose verdict was given (an ISO time; a waiting one is a list)."""
    return isinstance(state, str)


def _ready(healthy: bool) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        """Readiness says go/no-go as reports, not verdicts: turn the site roll-up into one."""
        for dev, ref in world.devices.items():
            if ref.site == "S01":
                world.heard(ref, now, False)
                if ref.kind == "camera":
                    rule.on_message(
                        observe(world, dev, now, recording=healthy, video_loss=False, tamper=False)
                    )
        assert isinstance(rule, ReadinessRule)
        reports = rule.assess("contract", "S01", now)
        site = reports[-1]
        return [Finding(not site.go, Severity.MAJOR, site.detail).on(Subject.of_site("S01"))]

    return step


TYPE = RuleType(
    "readiness",
    ReadinessConfig,
    ReadinessRule,
    Contract(SITE, {"name": "readiness", "type": "readiness"}, _ready(False), _ready(True)),
)
