"""The words texts are made of: Chinese (and English) for severities, device kinds and subjects.

Rules take their words from the roster's ``labels``; a rule the roster has no label for is named
by what it is about (``屏蔽仪告警``), never by the rules engine's English message: a duty officer
reads Chinese, and an English sentence costs a second SMS segment.
"""

from __future__ import annotations

from examwatch.alarm import Severity
from examwatch.kinds import KINDS
from examwatch.roster import Roster

SEVERITY_ZH = {Severity.CRITICAL: "紧急", Severity.MAJOR: "重要", Severity.MINOR: "一般", Severity.WARNING: "提示"}
SEVERITY_EN = {Severity.CRITICAL: "CRITICAL", Severity.MAJOR: "MAJOR", Severity.MINOR: "minor",
               Severity.WARNING: "warning"}
#: device kinds, and the room and site subjects of room and site rules (``roster.SUBJECT_KINDS``)
KIND_ZH = {**{name: k.zh for name, k in KINDS.items()}, "room": "考场", "site": "考点", "device": "设备"}
KIND_EN = {**{name: name for name in KINDS}, "room": "room", "site": "site", "device": "device"}


def rule_words(roster: Roster, rule: str, kind: str, language: str) -> str:
    """What an alarm of ``rule`` on a subject of ``kind`` is called in a text."""
    label = roster.labels.get(rule)
    if language == "zh":
        return label.zh if label is not None else f"{KIND_ZH.get(kind, '设备')}告警"
    return label.en if label is not None else f"{KIND_EN.get(kind, 'device')} alarm"


__all__ = ["KIND_EN", "KIND_ZH", "SEVERITY_EN", "SEVERITY_ZH", "rule_words"]
