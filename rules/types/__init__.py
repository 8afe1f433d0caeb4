"""The rule types, one module each; ``RULE_TYPES`` maps the name used in rules files to each."""

from __future__ import annotations

from examwatch.rulebook.files import TYPE_NAMES
from rules.types import absence, coverage, intake, ratio, readiness, skew, threshold, timetable
from rules.types._base import NO_TIMERS, Contract, ReadinessReport, Rule, RuleType, Timers

RULE_TYPES: dict[str, RuleType] = {
    m.TYPE.name: m.TYPE for m in (threshold, absence, ratio, timetable, readiness, coverage, skew, intake)
}
assert set(RULE_TYPES) == TYPE_NAMES, "the rules files' schema and RULE_TYPES must name the same rule types"

__all__ = [
    "NO_TIMERS",
    "RULE_TYPES",
    "Contract",
    "ReadinessReport",
    "Rule",
    "RuleType",
    "Timers",
]
