"""absence: no message from a device for T means it is offline; from a whole site, the site is silent.

```yaml
# in jammer.yaml: per-kind T, overridable per device
- {name: jammer_offline, type: absence, severity: major, timeout_s: 60, overrides: {S01-REST-JAM1: 120}}
# in site.yaml: a site with no message from any device for T is silent (root cause)
- {name: site_silent, type: absence, severity: critical, timeout_s: 30}
```
A Last Will ``offline`` on ``…/status`` takes a device offline at once. While its site is
silent, a device's offline alarm is suppressed (the site alarm explains it); when the site
returns, devices still silent their own ``timeout_s`` later get their own alarm. A site
timeout must be shorter than every device timeout by more than the devices' report interval,
so a site going dark is seen as a site before its devices time out one by one; and shorter than
1.5 × the devices' MQTT keepalive, so the broker's burst of Last Wills for a dark site arrives
when the site alarm is already up and is suppressed too.

Silence carries no drill flag: a device's offline alarm takes its last data's flag, and a site's
silence is a drill when every device of the site that was heard last sent drill data.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from examwatch.alarm import Severity, Subject
from examwatch.rulebook.configs import SITE, AbsenceConfig
from rules.model import Finding, Observation, Verdict
from rules.types._base import DRILL_SUFFIX, NO_TIMERS, Contract, Rule, RuleType, Timers, observe
from rules.world import World

log = logging.getLogger("examwatch.rules")
ALARMED = "alarmed"
SUPPRESSED = "suppressed"


def alarmed(drill: bool) -> str:
    """The state of a raised alarm, remembering whether it was raised as a drill: it must clear as
    it was raised, whatever the first message back says (the book keeps drill and real apart)."""
    return ALARMED + DRILL_SUFFIX if drill else ALARMED


def is_alarmed(state: object) -> bool:
    return state in (ALARMED, ALARMED + DRILL_SUFFIX)


def raised_as_drill(state: object) -> bool:
    return state == ALARMED + DRILL_SUFFIX


def evaluate(
    state: str | None,
    last_s: float,
    timeout_s: float,
    now: float,
    *,
    site_silent: bool,
    severity: Severity,
    what: str,
) -> tuple[str | None, Finding | None, float | None]:
    """At a timer: (new state, finding, next deadline or None).

    Not yet due → a new deadline. Due → alarmed, or suppressed while the site is silent.
    """
    due = last_s + timeout_s
    if now < due:
        return state, None, due
    if state is not None:
        return state, None, None
    if site_silent:
        return SUPPRESSED, None, None
    return ALARMED, Finding(True, severity, f"{what}: nothing heard for {now - last_s:.0f} s"), None


class AbsenceRule(Rule[AbsenceConfig]):
    """Device scope (a device kind's file) or site scope (site.yaml)."""

    PRIORITY: ClassVar[int] = 0
    SEES: ClassVar[str] = "all"  # a device of another kind speaking may end its site's silence

    def __init__(self, cfg: AbsenceConfig, kind: str, world: World) -> None:
        super().__init__(cfg, kind, world)
        self.started = 0.0
        self.scheduled: set[str] = set()
        self.timers: Timers = NO_TIMERS
        self.suppressed: dict[str, set[str]] = {}  # site → its devices whose offline alarm waits
        self.site_scope = kind == SITE
        self.subjects = (
            list(world.by_site)
            if self.site_scope
            else [d for d, ref in world.devices.items()
                  if ref.kind == kind and cfg.covers(world.room_types[(ref.site, ref.room)])]
        )
        self.subject_set = set(self.subjects)
        unknown = sorted(set(cfg.overrides) - set(self.subjects))
        if unknown:
            log.warning("rule %s: overrides name no %s of the inventory: %s", cfg.name,
                        "site" if self.site_scope else kind, ", ".join(unknown))
        # A device's own timeout is in world.timeouts, from examwatch.liveness, the same as the API's.

    def timeout(self, subject: str) -> float:
        return self.cfg.overrides.get(subject, self.cfg.timeout_s)

    def last_heard(self, subject: str) -> float:
        if self.site_scope:
            return self.world.site_last_s.get(subject, self.started)
        seen = self.world.seen.get(subject)
        return seen.last_s if seen is not None else self.started

    def start(self, now: float, timers: Timers, grace_s: float) -> None:
        self.started = now
        for subject in self.subjects:
            if self.site_scope and is_alarmed(self.state.get(subject)):
                self.world.silent_sites.add(subject)
            if not self.site_scope and self.state.get(subject) == SUPPRESSED:
                self.suppressed.setdefault(self.world.devices[subject].site, set()).add(subject)
            self._schedule(
                subject, max(self.last_heard(subject) + self.timeout(subject), now + grace_s), timers
            )
        self.timers = timers

    def _schedule(self, subject: str, at: float, timers: Timers) -> None:
        self.scheduled.add(subject)
        timers.schedule(at, self.name, subject)

    def _subject(self, subject: str) -> Subject:
        return Subject.of_site(subject) if self.site_scope else Subject.device(self.world.devices[subject])

    def on_message(self, obs: Observation) -> list[Verdict]:
        if self.site_scope:
            return self._site_heard(obs)
        if obs.ref.id not in self.subject_set:  # another kind, or a room this rule does not watch
            return self._release(obs)
        dev = obs.ref.id
        state = self.state.get(dev)
        if obs.online is False:  # Last Will, or the device saying goodbye: offline at once
            if state is not None:
                return []
            if obs.ref.site in self.world.silent_sites:
                self.put(dev, SUPPRESSED)
                return []
            self.put(dev, alarmed(obs.drill))
            return [
                Verdict(
                    Subject.device(obs.ref), True, self.cfg.severity, f"{dev}: offline (Last Will)", obs.drill
                )
            ]
        out = self._release(obs)
        if state is not None:
            self.put(dev, None)
            if is_alarmed(state):
                out.append(
                    Verdict(
                        Subject.device(obs.ref), False, self.cfg.severity, f"{dev}: back online",
                        raised_as_drill(state),
                    )
                )
        if dev not in self.scheduled:
            self._schedule(dev, obs.recv_s + self.timeout(dev), self.timers)
        return out

    def put(self, subject: str, value: Any) -> None:
        if not self.site_scope and subject in self.subject_set:
            site = self.world.devices[subject].site
            if value == SUPPRESSED:
                self.suppressed.setdefault(site, set()).add(subject)
            elif site in self.suppressed:
                self.suppressed[site].discard(subject)
        super().put(subject, value)

    def _release(self, obs: Observation) -> list[Verdict]:
        """The site spoke again: each of its suppressed devices gets its own timeout, from now, to
        speak too (judged on fresh evidence: the site's first message says nothing of the others,
        which report at their own phases and may lose a report, as at any other time)."""
        site = obs.ref.site
        if site not in self.suppressed or site in self.world.silent_sites:
            return []
        for dev in self.suppressed.pop(site):
            if dev != obs.ref.id:
                self.state.pop(dev, None)
                self.dirty.add(dev)
                self._schedule(dev, obs.recv_s + self.timeout(dev), self.timers)
        return []

    def _site_heard(self, obs: Observation) -> list[Verdict]:
        site = obs.ref.site
        if obs.online is False:
            return []  # a Last Will: the broker speaking, not the site (see World.heard)
        if site not in self.scheduled:
            self._schedule(site, obs.recv_s + self.timeout(site), self.timers)
        state = self.state.get(site)
        if not is_alarmed(state):
            return []
        self.put(site, None)
        self.world.silent_sites.discard(site)
        return [
            Verdict(
                Subject.of_site(site),
                False,
                self.cfg.severity,
                f"site {site}: reporting again",
                raised_as_drill(state),
            )
        ]

    def on_timer(self, subject: str, now: float, timers: Timers) -> list[Verdict]:
        self.scheduled.discard(subject)
        seen = None if self.site_scope else self.world.seen.get(subject)
        silent = not self.site_scope and self.world.devices[subject].site in self.world.silent_sites
        if seen is not None and seen.lwt_offline:
            if self.state.get(subject) is not None or silent:
                return []
            # released from a site's suppression, its Last Will still standing
            self.put(subject, alarmed(seen.drill))
            message = f"{subject}: offline (Last Will)"
            return [Verdict(self._subject(subject), True, self.cfg.severity, message, seen.drill)]
        what = f"site {subject}" if self.site_scope else subject
        state, finding, again = evaluate(
            self.state.get(subject),
            self.last_heard(subject),
            self.timeout(subject),
            now,
            site_silent=silent,
            severity=self.cfg.severity,
            what=what,
        )
        if again is not None:
            self._schedule(subject, again, timers)
        drill = seen.drill if seen is not None else self.site_scope and self.world.site_drill(subject)
        if finding is not None:
            state = alarmed(drill)
        if state != self.state.get(subject):
            self.put(subject, state)
        if finding is None:
            return []
        message = finding.message
        if self.site_scope:
            self.world.silent_sites.add(subject)
            message += f"; offline alarms of its {len(self.world.by_site[subject])} devices suppressed"
        return [Verdict(self._subject(subject), True, self.cfg.severity, message, drill)]


def _fire(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
    rule.start(now - 10, NO_TIMERS, 0)
    return rule.on_timer("S01-R01-JAM1", now, NO_TIMERS)


def _clear(rule: Rule[Any], world: World, now: float) -> list[Verdict]:
    return rule.on_message(observe(world, "S01-R01-JAM1", now, on=True))


TYPE = RuleType(
    "absence",
    AbsenceConfig,
    AbsenceRule,
    Contract("jammer", {"name": "jammer_offline", "type": "absence", "timeout_s": 5}, _fire, _clear),
)
