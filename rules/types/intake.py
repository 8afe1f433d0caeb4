"""intake: messages the intake refuses, as alarms.

```yaml
# in site.yaml (every kind), or in a kind's file (that kind's topics only)
- {name: payload_rejected, type: intake, refused: payload, severity: warning, clear_after_s: 60}
- {name: unknown_device, type: intake, refused: unknown_device, severity: major, clear_after_s: 60}
```
``refused: payload``: a device of the inventory sends a message that breaks its kind's contract
(not JSON, not UTF-8, a wrong type, NaN, a status other than online/offline, another device's
id in the payload). The alarm is on the device. ``refused: unknown_device``: a device id the
inventory lacks (or one of ours under another site's or kind's topics) publishes under a site's
topics. The alarm is on that site, and its message names the ids.

Either clears after ``clear_after_s`` with nothing refused, not on the device's next valid
report: a firmware that garbles one report in three would otherwise raise and clear an alarm
(and an SMS) every minute. Refused messages reach no other rule: a device sending only garbage
goes offline, and a rogue device does not keep a dark site "reporting".

A malformed payload carries no readable ``drill`` flag, so it takes the device's last known
one; a rogue device's payload usually parses and carries its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

from examwatch.alarm import Severity, Subject
from examwatch.rejects import Reason
from examwatch.rulebook.configs import SITE, IntakeConfig
from rules.model import Finding, Refusal, Verdict
from rules.types._base import DRILL_SUFFIX, NO_TIMERS, Contract, Rule, RuleType, Timers, keyed
from rules.world import World

MAX_IDS = 5  # ids named in an alarm; a flood of rogue ids is summarised


def evaluate(
    cfg: IntakeConfig, state: list[Any] | None, refusal: Refusal | None, now: float
) -> tuple[list[Any] | None, Finding | None]:
    """A refusal (or a timer, ``refusal`` None) in; (new state ``[last_s, ids]`` or None, finding).

    ``ids`` are the rogue device ids (``unknown_device``) or the reasons (``payload``) seen.
    """
    if refusal is None:
        if state is None or now < state[0] + cfg.clear_after_s:
            return state, None
        return None, Finding(
            False, cfg.severity, f"nothing refused for {cfg.clear_after_s:g} s (was: {', '.join(state[1])})"
        )
    what = refusal.device if cfg.refused == "unknown_device" else refusal.reason
    if state is not None:
        ids = state[1] if what in state[1] or len(state[1]) >= MAX_IDS else [*state[1], what]
        return [refusal.recv_s, ids], None
    if cfg.refused == "unknown_device":
        text = f"site {refusal.site}: messages from {refusal.device}, a device the inventory lacks here"
    else:
        text = f"{refusal.device}: message refused at intake ({refusal.why[:160]})"
    return [refusal.recv_s, [what]], Finding(True, cfg.severity, text)


class IntakeRule(Rule[IntakeConfig]):
    SEES: ClassVar[str] = "none"
    SEES_REFUSALS: ClassVar[bool] = True

    def __init__(self, cfg: IntakeConfig, kind: str, world: World) -> None:
        super().__init__(cfg, kind, world)
        self.timers: Timers = NO_TIMERS

    def start(self, now: float, timers: Timers, grace_s: float) -> None:
        self.timers = timers
        for key in list(self.state):
            if self.cfg.refused == "payload" and key.removesuffix(DRILL_SUFFIX) not in self.world.devices:
                self.put(key, None)  # restored for a device the inventory no longer has
        for key, (last_s, _ids) in self.state.items():
            timers.schedule(max(last_s + self.cfg.clear_after_s, now + grace_s), self.name, key)

    def _subject(self, key: str) -> tuple[Subject, bool]:
        subject = key.removesuffix(DRILL_SUFFIX)
        drill = subject != key
        if self.cfg.refused == "unknown_device":
            return Subject.of_site(subject), drill
        return Subject.device(self.world.devices[subject]), drill

    def on_refusal(self, refusal: Refusal) -> list[Verdict]:
        unknown = refusal.ref is None
        if unknown != (self.cfg.refused == "unknown_device"):
            return []
        if self.kind not in (SITE, refusal.kind):
            return []
        key = keyed(refusal.site if unknown else refusal.device, refusal.drill)
        state, finding = evaluate(self.cfg, self.state.get(key), refusal, refusal.recv_s)
        first = key not in self.state
        self.put(key, state)
        if first:
            self.timers.schedule(refusal.recv_s + self.cfg.clear_after_s, self.name, key)
        if finding is None:
            return []
        subject, drill = self._subject(key)
        return [finding.on(subject, drill)]

    def on_timer(self, subject: str, now: float, timers: Timers) -> list[Verdict]:
        state = self.state.get(subject)
        if state is None:
            return []
        new, finding = evaluate(self.cfg, state, None, now)
        if finding is None:
            timers.schedule(state[0] + self.cfg.clear_after_s, self.name, subject)
            return []
        self.put(subject, new)
        who, drill = self._subject(subject)
        return [finding.on(who, drill)]


def _refusal(world: World, now: float) -> Refusal:
    ref = world.devices["S01-R01-JAM1"]
    detail = "Invalid JSON: EOF while parsing an object"
    return Refusal(Reason.NOT_JSON, ref.site, ref.kind, ref.id, ref, now, False, detail)


def _fire(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
    rule.start(now, NO_TIMERS, 0)
    return rule.on_refusal(_refusal(world, now))


def _clear(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
    cfg: IntakeConfig = rule.cfg
    return rule.on_timer("S01-R01-JAM1", now + cfg.clear_after_s, NO_TIMERS)


TYPE = RuleType(
    "intake",
    IntakeConfig,
    IntakeRule,
    Contract(
        "jammer",
        {"name": "payload_rejected", "type": "intake", "refused": "payload", "severity": Severity.WARNING.value},
        _fire,
        _clear,
    ),
)
