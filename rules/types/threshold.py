"""threshold: a telemetry field against levels of severity, with a separate clear condition.

```yaml
- name: power_mains_low
  type: threshold
  field: mains_v
  levels: [{severity: critical, below: 187}]
  clear: {above: 200}        # hysteresis: fires under 187 V, clears only above 200 V
  for: 5                     # pending for 5 s before firing
  during: always             # or paper / jammer_window
```
The worst level that matches sets the severity; a worse level later raises it. Without
``clear`` the alarm clears as soon as no level matches.

``during: paper`` or ``jammer_window`` judges only reports made ``settle_s`` (2 s) inside a
window and received ``settle_s`` before its end (``World.judge``): a report made before the
window started (received late, or by a clock a little off) says nothing about it, so the first
report of the window is the first judged. A report received outside every window clears the
alarm. A device that does not report at all is the absence rule's (no second "not reporting"
alarm per threshold rule).

``rooms: [storage]`` limits a rule to the devices of some room types: the paper storage room's
cameras are watched at every hour, exam-room cameras during papers:

```yaml
- {name: camera_tamper, type: threshold, field: tamper, levels: [{severity: major, equals: true}],
   during: paper, rooms: [exam, entrance, rest]}
- {name: vault_camera_tamper, type: threshold, field: tamper, levels: [{severity: major, equals: true}],
   rooms: [storage]}
```
"""

from __future__ import annotations

from typing import Any

from examwatch.alarm import Severity, Subject
from examwatch.rulebook.configs import ThresholdConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import Contract, Rule, RuleType, field_of, observe, state_key
from rules.world import Evidence, World

Scalar = bool | float | str


def evaluate(
    cfg: ThresholdConfig, active: str | None, value: Any, applies: bool
) -> tuple[str | None, Finding | None]:
    """New state (the active severity, or None) and what to say, for one reading.

    ``applies`` is False outside the rule's time window (``during``), which clears it. The
    runner names the subject.
    """
    if not applies:
        return None, (
            Finding(False, Severity(active), f"{cfg.field}: outside {cfg.during}") if active else None
        )
    worst = max((lv for lv in cfg.levels if lv.holds(value)), key=lambda lv: lv.severity.rank, default=None)
    if worst is not None:
        if active is None or worst.severity.rank > Severity(active).rank:
            return worst.severity.value, Finding(
                True, worst.severity, f"{cfg.field} = {value} ({worst.describe()})"
            )
        return active, None
    if active is None:
        return None, None
    cleared = cfg.clear.holds(value) if cfg.clear is not None else True
    if cleared:
        return None, Finding(False, Severity(active), f"{cfg.field} = {value}: back to normal")
    return active, None


class ThresholdRule(Rule[ThresholdConfig]):
    def applies(self, obs: Observation) -> Evidence:
        """Whether this report is judged (inside the rule's window), clears (outside), or neither."""
        if self.cfg.during == "always":
            return Evidence.INSIDE
        what = "session" if self.cfg.during == "paper" else "jammers"
        made = obs.made_s or obs.recv_s
        return self.world.judge(what, obs.ref.site, obs.recv_s, made, self.cfg.settle_s)[0]

    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.ref.kind != self.kind or obs.msg is None or obs.channel != "telemetry":
            return []
        value = field_of(obs.msg, self.cfg.field)
        if value is None:
            return []
        applies = self.applies(obs)
        if applies is Evidence.UNSURE:
            return []
        active = self.state.get(state_key(obs))
        new, verdict = evaluate(self.cfg, active, value, applies is Evidence.INSIDE)
        if new != active:
            self.put(state_key(obs), new)
        return [] if verdict is None else [verdict.on(Subject.device(obs.ref), obs.drill)]


def _contract_step(mains_v: float) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        return rule.on_message(observe(world, "S01-VAULT-PWR1", now, mains_v=mains_v))

    return step


TYPE = RuleType(
    "threshold",
    ThresholdConfig,
    ThresholdRule,
    Contract(
        "power",
        {
            "name": "mains",
            "type": "threshold",
            "field": "mains_v",
            "levels": [{"severity": "critical", "below": 187}],
            "clear": {"above": 200},
        },
        _contract_step(0.0),
        _contract_step(220.0),
    ),
)
