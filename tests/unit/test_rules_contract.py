"""Every rule type through the same checks: registry names, config, raise, clear, purity, state round trip."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from pydantic import ValidationError

from examwatch.alarm import Severity
from examwatch.rulebook.files import AnyRule, RulesFile
from harness import rules_kit
from rules.types import RULE_TYPES, RuleType
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
    assert AnyRule is not None


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
def test_state_is_json_and_survives_a_round_trip(rt: RuleType) -> None:
    now = time.time()
    rule, world = _rule(rt, now)
    rt.contract.fire(rule, world, now)
    dumped = {k: json.loads(json.dumps(v)) for k, v in rule.state.items()}
    again, _ = _rule(rt, now)
    again.state = copy.deepcopy(dumped)
    assert {k: json.loads(json.dumps(v)) for k, v in again.state.items()} == dumped
    assert rule.dirty >= set(rule.state), "every state change is marked for persisting"


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
