"""skew: a device clock off by more than ``warn_s`` (default 2 s) is a warning.

skew = receive time − device timestamp − transport delay. It clears below ``clear_s``
(hysteresis), so a clock hovering at the limit does not flap.

The transport delay matters when the engine reads a backlog (after a restart, a broker outage,
or under load): every message then looks seconds late, and every device would be warned about.
So the rule estimates the delay as the median raw skew of the last messages of this kind, from
at least 16 devices, and subtracts it when it is positive; a device whose clock is off stands out
from that baseline. With fewer devices of the kind, the delay is the engine's estimate over every
device (``World.transport_s``: the median of each device's least offset).

**On a compressed drill clock** everything the transport adds is multiplied by the clock's speed
(50 ms on the wire is 3 s of a 60x clock, and a simulator a quarter second behind is 15 s), so a
clock error as small as ``warn_s`` cannot be told from it. So the skew left after the delay is
judged in wall terms: divided by the clock's speed before it is compared with ``warn_s`` and
``clear_s``. At speed 1 nothing changes; at 60x a drill's clock fault must be more than 2 minutes
(of drill time) to warn.

A warning also needs ``confirm`` (2) reports in a row beyond the limit, so the first reports of a
backlog, read before the baseline exists, raise nothing: a device's next report comes after a
whole round of the others. The cost: if most of a kind's devices share one wrong clock (a bad NTP
server) and are behind, they hide each other; ahead, or a single drifting device, is always seen.

```yaml
- {name: camera_clock, type: skew, severity: warning, warn_s: 2, clear_s: 1.5}
```
"""

from __future__ import annotations

import statistics
from collections import deque
from functools import cached_property
from typing import Any

from examwatch.alarm import Subject
from examwatch.rulebook.configs import SkewConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import Contract, Rule, RuleType, observe, state_key
from rules.world import World


def evaluate(
    cfg: SkewConfig, active: bool, skew_s: float, beyond: int = 1, speed: float = 1.0
) -> tuple[bool, Finding | None]:
    """New state (active or not) and what to say, for one message's clock skew (clock seconds);
    ``beyond`` counts this device's reports in a row (this one included) beyond ``warn_s``. On a
    clock ``speed`` times faster than the wall, the skew is judged divided by it."""
    off = abs(skew_s) / speed
    if not active and off > cfg.warn_s and beyond >= cfg.confirm:
        return True, Finding(
            True, cfg.severity, f"device clock off by {skew_s:+.1f} s (limit {cfg.warn_s:g} s)"
        )
    clear_s = cfg.warn_s if cfg.clear_s is None else cfg.clear_s
    if active and off < clear_s:
        return False, Finding(
            False, cfg.severity, f"device clock back within {clear_s:g} s ({skew_s:+.1f} s)"
        )
    return active, None


class Baseline:
    """The median raw skew of recent messages from many devices: the transport delay, when positive."""

    WINDOW, MIN_DEVICES, EVERY = 257, 16, 64

    def __init__(self) -> None:
        self._recent: deque[tuple[str, float]] = deque(maxlen=self.WINDOW)
        self._count = 0
        self.delay_s = 0.0
        self.enough = False  # recent messages come from enough devices for a median

    def add(self, device: str, skew_s: float) -> float:
        """Record one message's raw skew; return the current delay estimate."""
        self._recent.append((device, skew_s))
        self._count += 1
        if self._count < self.EVERY or self._count % self.EVERY == 0:
            self.enough = len({d for d, _ in self._recent}) >= self.MIN_DEVICES
            self.delay_s = max(0.0, statistics.median(s for _, s in self._recent)) if self.enough else 0.0
        return self.delay_s


class SkewRule(Rule[SkewConfig]):
    @cached_property
    def _baselines(self) -> tuple[Baseline, Baseline]:
        """Real data and drill data travel (and are timed) apart: one baseline each."""
        return Baseline(), Baseline()

    @cached_property
    def _beyond(self) -> dict[str, int]:
        """Reports in a row beyond warn_s, per state key (transient: a restart starts counting anew)."""
        return {}

    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.ref.kind != self.kind or obs.msg is None:
            return []
        raw = obs.recv_s - obs.msg.ts / 1000
        baseline = self._baselines[obs.drill]
        delay = baseline.add(obs.ref.id, raw)
        if not baseline.enough:
            delay = max(0.0, self.world.transport_s)
        speed = max(1.0, self.world.speed)
        key = state_key(obs)
        beyond = self._beyond.get(key, 0) + 1 if abs(raw - delay) / speed > self.cfg.warn_s else 0
        if beyond:
            self._beyond[key] = beyond
        else:
            self._beyond.pop(key, None)
        active = bool(self.state.get(key))
        new, finding = evaluate(self.cfg, active, raw - delay, beyond, speed)
        if new != active:
            self.put(key, True if new else None)
        return [] if finding is None else [finding.on(Subject.device(obs.ref), obs.drill)]


def _step(skew_s: float, reports: int) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        out: list[Verdict] = []
        for i in range(reports):
            t = now + i * 0.1
            out += rule.on_message(observe(world, "S01-R01-CAM1", t, ts_s=t - skew_s, recording=True))
        return out

    return step


TYPE = RuleType(
    "skew",
    SkewConfig,
    SkewRule,
    Contract("camera", {"name": "clock", "type": "skew"}, _step(3.5, 2), _step(0.2, 1)),
)
