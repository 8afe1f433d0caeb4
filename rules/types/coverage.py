"""coverage: a room with a paper in progress and no reporting jammer, or no reporting camera.

A gap in coverage, not a device fault: the device alarms say which device failed, this one
says the room is unshielded or unwatched. "Reporting" means heard within the device's absence
timeout with no Last Will offline since (see rules.world).

```yaml
# site.yaml
- {name: room_coverage, type: coverage, severity: critical, kinds: [jammer, camera]}
```
"""

from __future__ import annotations

from typing import Any, ClassVar

from examwatch.alarm import Severity, Subject
from examwatch.rulebook.configs import SITE, CoverageConfig
from rules.model import Finding, Verdict
from rules.types._base import Contract, Rule, RuleType, observe
from rules.world import World


def evaluate(
    severity: Severity, active: bool, paper: str | None, missing: list[str], room: str
) -> tuple[bool, Finding | None]:
    """Active while a paper is on and some required kind has no reporting device in the room."""
    gap = paper is not None and bool(missing)
    if gap and not active:
        return True, Finding(
            True, severity, f"room {room} during {paper}: no reporting {' or '.join(missing)}"
        )
    if active and not gap:
        return False, Finding(
            False, severity, f"room {room}: covered" if paper else f"room {room}: paper over"
        )
    return active, None


class CoverageRule(Rule[CoverageConfig]):
    SEES: ClassVar[str] = "none"

    def on_tick(self, now: float) -> list[Verdict]:
        out: list[Verdict] = []
        sessions: dict[str, str | None] = {}
        for site, room in self.world.exam_rooms:
            if site not in sessions:
                paper = self.world.in_session(site, now)
                sessions[site] = paper.id if paper else None
            key = f"{site}-{room}"
            active = bool(self.state.get(key))
            if sessions[site] is None and not active:
                continue
            devices = self.world.by_room.get((site, room), [])
            missing = [
                k.value
                for k in self.cfg.kinds
                if not any(d.kind == k and self.world.reporting(d.id, now) for d in devices)
            ]
            new, finding = evaluate(self.cfg.severity, active, sessions[site], missing, key)
            if new != active:
                self.put(key, True if new else None)
            if finding is not None:
                drill = any(s.drill for d in devices if (s := self.world.seen.get(d.id)) is not None)
                out.append(finding.on(Subject.room(site, room), drill))
        return out


def _fire(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
    world.seen.clear()
    return rule.on_tick(now)


def _clear(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
    for dev in ("S01-R01-JAM1", "S01-R01-CAM1"):
        obs = observe(world, dev, now, on=True)
        world.heard(obs.ref, now, False)
    return [v for v in rule.on_tick(now) if v.subject.id == "S01-R01"]


TYPE = RuleType(
    "coverage",
    CoverageConfig,
    CoverageRule,
    Contract(SITE, {"name": "room_coverage", "type": "coverage"}, _fire, _clear),
)
