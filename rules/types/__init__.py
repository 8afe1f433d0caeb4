"""The rule types, one module each; ``RULE_TYPES`` maps the name used in rules files to each."""

from __future__ import annotations

from rules.types import absence, coverage, ratio, readiness, skew, threshold, timetable
from rules.types._base import NO_TIMERS, SITE, Contract, ReadinessReport, Rule, RuleConfig, RuleType, Timers

RULE_TYPES: dict[str, RuleType] = {
    m.TYPE.name: m.TYPE for m in (threshold, absence, ratio, timetable, readiness, coverage, skew)
}

__all__ = [
    "NO_TIMERS",
    "RULE_TYPES",
    "SITE",
    "Contract",
    "ReadinessReport",
    "Rule",
    "RuleConfig",
    "RuleType",
    "Timers",
]
