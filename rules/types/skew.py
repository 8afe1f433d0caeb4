"""skew: a device clock off by more than ``warn_s`` (default 2 s) is a warning.

skew = receive time − device timestamp. It clears below ``clear_s`` (hysteresis), so a clock
hovering at the limit does not flap.

```yaml
- {name: camera_clock, type: skew, severity: warning, warn_s: 2, clear_s: 1.5}
```
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from rules.model import Finding, Observation, Severity, Subject, Verdict
from rules.types._base import Contract, Rule, RuleConfig, RuleType, observe, state_key
from rules.world import World


class SkewConfig(RuleConfig):
    type: Literal["skew"]
    severity: Severity = Severity.WARNING
    warn_s: float = Field(default=2.0, gt=0, le=86_400)
    clear_s: float | None = Field(default=None, gt=0, description="clears below this; default warn_s")

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.clear_s is not None and self.clear_s > self.warn_s:
            raise ValueError("clear_s must not exceed warn_s")
        return self


def evaluate(cfg: SkewConfig, active: bool, skew_s: float) -> tuple[bool, Finding | None]:
    """New state (active or not) and what to say, for one message's clock skew."""
    off = abs(skew_s)
    if not active and off > cfg.warn_s:
        return True, Finding(
            True, cfg.severity, f"device clock off by {skew_s:+.1f} s (limit {cfg.warn_s:g} s)"
        )
    clear_s = cfg.warn_s if cfg.clear_s is None else cfg.clear_s
    if active and off < clear_s:
        return False, Finding(
            False, cfg.severity, f"device clock back within {clear_s:g} s ({skew_s:+.1f} s)"
        )
    return active, None


class SkewRule(Rule[SkewConfig]):
    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.ref.kind != self.kind or obs.msg is None:
            return []
        active = bool(self.state.get(state_key(obs)))
        new, finding = evaluate(self.cfg, active, obs.recv_s - obs.msg.ts / 1000)
        if new != active:
            self.put(state_key(obs), True if new else None)
        return [] if finding is None else [finding.on(Subject.device(obs.ref), obs.drill)]


def _step(skew_s: float) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        return rule.on_message(observe(world, "S01-R01-CAM1", now, ts_s=now - skew_s, recording=True))

    return step


TYPE = RuleType(
    "skew",
    SkewConfig,
    SkewRule,
    Contract("camera", {"name": "clock", "type": "skew"}, _step(3.5), _step(0.2)),
)
