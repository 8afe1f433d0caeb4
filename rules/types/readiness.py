"""readiness: at T−30 min before each paper, a go/no-go roll-up per room and per site.

Every device of the site must be reporting (kinds in ``optional`` only if they have ever
reported: handheld detectors often have no network) and healthy by its last report: jammer
without fault, camera recording with a picture, detector battery ≥ ``min_battery_pct`` and
self-test not failed, storage-room power on mains ≥ ``min_mains_v``. The roll-up is kept in
the store, written to InfluxDB (``readiness``) and published retained on
``exam/v1/_readiness/{site}``. It is computed once per paper and site, even across restarts.

```yaml
# site.yaml
- {name: readiness, type: readiness, lead_s: 1800, min_battery_pct: 20, optional: [detector]}
```
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from examwatch.alarm import Severity, Subject
from examwatch.kinds import Envelope
from examwatch.rulebook.configs import SITE, ReadinessConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import Contract, ReadinessReport, Rule, RuleType, observe
from rules.world import World

SITE_ROOM = "_site"


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
    """State per device: its last problem (only while it has one); per ``paper/site``: done."""

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
        at = datetime.fromtimestamp(now, UTC)
        for paper in self.world.timetable.ordered:
            if not paper.start.timestamp() - self.cfg.lead_s <= now < paper.start.timestamp():
                continue
            for site in self.world.by_site:
                key = f"{paper.id}/{site}"
                if paper.at_site(site) and key not in self.state:
                    self.reports += self.assess(paper.id, site, now)
                    self.put(key, at.isoformat())
        return []

    def assess(self, paper: str, site: str, now: float) -> list[ReadinessReport]:
        rooms: dict[str, list[str]] = {}
        drill = False
        for ref in self.world.by_site[site]:
            problems = rooms.setdefault(ref.room, [])
            seen = self.world.seen.get(ref.id)
            drill = drill or (seen is not None and seen.drill)
            if not self.world.reporting(ref.id, now):
                if not (ref.kind in self.cfg.optional and seen is None):
                    problems.append(f"{ref.id} not reporting")
            elif (p := self.state.get(ref.id)) is not None:
                problems.append(f"{ref.id} {p}")
        out = [
            ReadinessReport(paper, site, room, not p, "; ".join(p) or "ready", drill)
            for room, p in sorted(rooms.items())
        ]
        go, detail = roll_up(rooms)
        return [*out, ReadinessReport(paper, site, SITE_ROOM, go, detail, drill)]


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
