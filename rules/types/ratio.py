"""ratio: the sum of one counter over the sum of another, over a sliding window.

Gate face-match failures above 20 % of passes over 5 minutes:

```yaml
- name: gate_face_mismatch_surge
  type: ratio
  numerator: face_match_failures
  denominator: passes
  window_s: 300
  above: 0.2
  clear_below: 0.1
  min_denominator: 20       # a ratio is judged on 20 passes or more ...
  min_numerator: 4          # ... or on 4 failures or more, however few the passes
```

**Low traffic.** A ratio over a handful of passes is noise (one failure in two passes is 50 %),
so it is judged only once the window holds ``min_denominator`` passes. But in the thin minutes
before entry closes the window may never hold that many, and a surge of impostors there would
raise nothing. So the ratio is also judged once the window holds ``min_numerator`` failures,
an absolute floor: a count of failures that a healthy gate does not reach among so few passes.
We chose the floor over a confidence bound on the ratio because a bound that fires early at
low traffic must test against the healthy failure rate, which differs by gate, camera and
lighting and would be one more number to configure and defend, while a floor of failures is one
number an operator can check against the gate's log. With the shipped 20 % and a floor of 4:
below 20 passes it takes 4 failures making more than 20 %, which a gate failing 1 % of tries does
by chance less than once in 10,000 windows (4 or more of at most 23 tries: 7.6e-5); one doubtful
candidate (存疑, three failed tries) does not reach it alone. 30 % failures at one pass every
10 s reach the floor after about 13 passes (about 130 s, within the 300 s window); 3 % over
1,000 passes stays quiet (the ratio is judged, and is under 20 %).

**Clearing.** An active alarm clears when the judged ratio falls under ``clear_below``, and, when
the window is too thin to judge, once it holds fewer failures than ``clear_below ×
min_denominator`` (here 2): the surge is over even if the queue has thinned out.
Counters are per report interval, so a window's total is a plain sum (see examwatch.kinds.gate).
"""

from __future__ import annotations

from typing import Any

from examwatch.alarm import Subject
from examwatch.rulebook.configs import RatioConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import Contract, Rule, RuleType, field_of, observe, state_key
from rules.world import World

#: per subject: [active, [[t, numerator, denominator], ...]]
Window = list[list[float]]


def evaluate(
    cfg: RatioConfig, active: bool, window: Window, t: float, *, num: float, den: float
) -> tuple[bool, Window, Finding | None]:
    """Add a reading at ``t``, drop what fell out of the window; (active, window, finding)."""
    kept = [e for e in window if e[0] > t - cfg.window_s] + [[t, num, den]]
    total_num, total_den = sum(e[1] for e in kept), sum(e[2] for e in kept)
    clear_below = cfg.above if cfg.clear_below is None else cfg.clear_below
    counts = f"({total_num:g}/{total_den:g})"
    judged = total_den >= cfg.min_denominator and total_den > 0
    floor = cfg.min_numerator is not None and total_num >= cfg.min_numerator
    if not (judged or floor):
        # Too few passes to judge a ratio; but once the failures themselves have (almost) gone, an
        # active surge is over: else a surge just before the entry queue thins out never clears.
        if active and total_num < clear_below * max(cfg.min_denominator, 1):
            return False, kept, Finding(
                False, cfg.severity, f"{cfg.numerator} back to {total_num:g} over {cfg.window_s:g} s {counts}"
            )
        return active, kept, None
    ratio = total_num / total_den if total_den > 0 else float("inf")
    share = f"{ratio:.0%}" if total_den > 0 else "all"
    text = f"{cfg.numerator}/{cfg.denominator} = {share} over {cfg.window_s:g} s {counts}"
    if not active and ratio > cfg.above:
        return True, kept, Finding(True, cfg.severity, text)
    if active and ratio < clear_below:
        return False, kept, Finding(False, cfg.severity, text)
    return active, kept, None


class RatioRule(Rule[RatioConfig]):
    def on_message(self, obs: Observation) -> list[Verdict]:
        if obs.ref.kind != self.kind or obs.msg is None or obs.channel != "telemetry":
            return []
        num, den = field_of(obs.msg, self.cfg.numerator), field_of(obs.msg, self.cfg.denominator)
        if num is None or den is None:
            return []
        active, window = self.state.get(state_key(obs), (False, []))
        new, kept, finding = evaluate(self.cfg, active, window, obs.recv_s, num=num, den=den)
        self.put(state_key(obs), [new, kept])
        return [] if finding is None else [finding.on(Subject.device(obs.ref), obs.drill)]


def _step(failures: int, passes: int) -> Any:
    def step(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
        out: list[Verdict] = []
        for i in range(3):
            out += rule.on_message(
                observe(world, "S01-ENT-GATE1", now + i, face_match_failures=failures, passes=passes)
            )
        return out

    return step


TYPE = RuleType(
    "ratio",
    RatioConfig,
    RatioRule,
    Contract(
        "gate",
        {
            "name": "surge",
            "type": "ratio",
            "numerator": "face_match_failures",
            "denominator": "passes",
            "window_s": 1,
            "above": 0.2,
            "min_denominator": 5,
        },
        _step(5, 10),
        _step(0, 50),
    ),
)
