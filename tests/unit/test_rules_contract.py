"""Every rule type through the same checks: registry names, config, raise, clear, purity, state round trip."""

from __future__ import annotations

import json
import time
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from examwatch.alarm import Severity
from examwatch.rulebook.files import AnyRule, RulesFile
from harness import rules_kit
from rules.types import NO_TIMERS, RULE_TYPES, RuleType
from rules.world import World

TYPES = sorted(RULE_TYPES.values(), key=lambda t: t.name)


def _rule(rt: RuleType, now: float) -> Any:
    cfg = RulesFile.model_validate({"rules": [rt.contract.config]}, context={"kind": rt.contract.kind}).rules[
        0
    ]
    world = World(rules_kit.inventory(), rules_kit.timetable(now))
    return rt.runner(cfg, rt.contract.kind, world), world


def test_registry_matches_modules_and_union() -> None:
    assert set(RULE_TYPES) == {
        "threshold", "absence", "ratio", "timetable", "readiness", "coverage", "skew", "intake"
    }
    for name, rt in RULE_TYPES.items():
        assert rt.config.model_fields["type"].annotation.__args__ == (name,)
        assert rt.runner.__module__ == f"rules.types.{name}"
    # the rules files' union holds exactly the registered configs: a type left out of either
    # could be written in a file and not run, or run and never be accepted from a file
    union = set(get_args(get_args(AnyRule)[0]))
    assert union == {rt.config for rt in RULE_TYPES.values()}


@pytest.mark.parametrize("rt", TYPES, ids=lambda t: t.name)
def test_config_refuses_unknown_field(rt: RuleType) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        RulesFile.model_validate(
            {"rules": [{**rt.contract.config, "bogus": 1}]}, context={"kind": rt.contract.kind}
        )


@pytest.mark.parametrize("rt", TYPES, ids=lambda t: t.name)
def test_config_refuses_wrong_file(rt: RuleType) -> None:
    with pytest.raises(ValidationError, match="rules files, not nosuch"):
        RulesFile.model_validate({"rules": [rt.contract.config]}, context={"kind": "nosuch"})


@pytest.mark.parametrize("rt", TYPES, ids=lambda t: t.name)
def test_raises_then_clears(rt: RuleType) -> None:
    now = time.time()
    rule, world = _rule(rt, now)
    fired = [v for v in rt.contract.fire(rule, world, now) if v.active]
    assert fired, f"{rt.name}: the contract's fire step raised nothing"
    assert all(isinstance(v.severity, Severity) and v.message for v in fired)
    subject = fired[0].subject
    cleared = [v for v in rt.contract.clear(rule, world, now + 1) if not v.active and v.subject == subject]
    assert cleared, f"{rt.name}: the contract's clear step did not clear {subject.id}"


@pytest.mark.parametrize("rt", TYPES, ids=lambda t: t.name)
def test_state_survives_a_restart_through_json(rt: RuleType) -> None:
    """The state as the engine keeps it (JSON in the store) restores a runner that goes on where
    the first stopped: it clears the alarm the first raised, and does not raise it again."""
    now = time.time()
    rule, world = _rule(rt, now)
    fired = [v for v in rt.contract.fire(rule, world, now) if v.active]
    assert rule.dirty >= set(rule.state), "every state change is marked for persisting"
    stored = {k: json.dumps(v) for k, v in rule.state.items()}  # what the engine writes
    again, _ = _rule(rt, now)
    again.world = world  # liveness is restored apart from rule state (the engine's _seen rows)
    again.state = {k: json.loads(v) for k, v in stored.items()}
    again.start(now, NO_TIMERS, 0.0)
    if rt.name != "readiness":  # a roll-up is a report each time it is asked, not a state
        refired = [v for v in rt.contract.fire(again, world, now + 0.5) if v.active and v.subject == fired[0].subject]
        assert not refired, f"{rt.name}: the restored state forgot that its alarm is raised"
    cleared = [v for v in rt.contract.clear(again, world, now + 1) if not v.active and v.subject == fired[0].subject]
    assert cleared, f"{rt.name}: the restored state did not clear {fired[0].subject.id}"


@pytest.mark.parametrize("rt", TYPES, ids=lambda t: t.name)
def test_firing_twice_raises_once(rt: RuleType) -> None:
    now = time.time()
    rule, world = _rule(rt, now)
    first = [v for v in rt.contract.fire(rule, world, now) if v.active]
    second = [
        v for v in rt.contract.fire(rule, world, now + 0.5) if v.active and v.subject == first[0].subject
    ]
    if rt.name != "readiness":  # a roll-up is a report each time it is asked, not a state change
        assert not second, f"{rt.name} raised the same condition twice"
